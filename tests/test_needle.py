"""Attention does its job: it finds the one element that decides the label.

A bag is positive iff it holds a 'needle' (an element with a large value of
feature 0).  Every bag is centred, so its mean is exactly zero whatever its
label: mean pooling has nothing to learn from, attention must look inside.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sk_attention import AttentionClassifier


def make_needle_bags(n_bags, seed, n_features=6):
    rng = np.random.RandomState(seed)
    bags, y, needles = [], [], []
    for i in range(n_bags):
        bag = rng.normal(size=(rng.randint(5, 16), n_features))
        label = i % 2
        needle = rng.randint(len(bag)) if label else -1
        if label:
            bag[needle, 0] = 5.0
        bags.append(bag - bag.mean(axis=0))
        y.append(label)
        needles.append(needle)
    return bags, np.array(y), np.array(needles)


@pytest.fixture(scope="module")
def needle_task():
    train = make_needle_bags(300, seed=0)
    test = make_needle_bags(300, seed=1)
    clf = AttentionClassifier(random_state=0).fit(*train[:2])
    return clf, train, test


def test_attention_solves_the_needle_task(needle_task):
    clf, train, (bags, y, _) = needle_task
    assert clf.score(*train[:2]) >= 0.95
    assert clf.score(bags, y) >= 0.95


def test_largest_weight_lands_on_the_needle(needle_task):
    clf, _, (bags, y, needles) = needle_task
    weights = clf.attention_weights(bags)
    found = [
        np.unravel_index(np.argmax(w), w.shape)[0] == needle
        for w, label, needle in zip(weights, y, needles)
        if label == 1
    ]
    assert np.mean(found) >= 0.9


def test_mean_pooling_cannot_solve_it(needle_task):
    _, (bags, y, _), (test_bags, test_y, _) = needle_task
    means = np.array([bag.mean(axis=0) for bag in bags])
    test_means = np.array([bag.mean(axis=0) for bag in test_bags])
    assert LogisticRegression().fit(means, y).score(test_means, test_y) <= 0.65
    # the same classifier given only each bag's mean (one element per sample);
    # every mean is 0 up to rounding, and the fit says they are not scaled
    with pytest.warns(UserWarning, match="do not look standardised"):
        clf = AttentionClassifier(random_state=0).fit(means, y)
    assert clf.score(test_means, test_y) <= 0.65
