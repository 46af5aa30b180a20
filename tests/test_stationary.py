"""The default model leaves mean pooling when the mean carries no signal.

Attention starts uniform (mean pooling).  When every sample is z-normalised,
its mean element is the same for both classes: the head learns nothing from
the pooled mean, and a model that stays at uniform attention is at chance
(the stationary point described in DESIGN.md, "Defaults").  Here one
element's value carries the class, so attention that moves solves it.
"""

import numpy as np
import pytest

from sk_attention import AttentionClassifier

N_STEPS = 10


def _spike_task(n_samples, rng):
    """Z-normalised noise; class 1 has one element raised by 4 before scaling."""
    X = rng.normal(size=(n_samples, N_STEPS, 1))
    y = np.arange(n_samples) % 2
    spike = rng.randint(0, N_STEPS, size=n_samples)
    X[y == 1, spike[y == 1], 0] += 4.0
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    return X, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_default_model_leaves_mean_pooling():
    rng = np.random.RandomState(0)
    X_train, y_train = _spike_task(200, rng)
    X_test, y_test = _spike_task(400, rng)
    # every sample's mean is 0 and its std is 1: mean pooling sees no class
    np.testing.assert_allclose(X_train.mean(axis=1), 0.0, atol=1e-12)

    clf = AttentionClassifier(random_state=0).fit(X_train, y_train)

    assert clf.score(X_test, y_test) >= 0.75  # chance is 0.5
    weights = clf.attention_weights(X_test)  # (n, N_STEPS, n_heads)
    # uniform attention gives every element 1 / N_STEPS; at least one head
    # concentrates on some elements of each sample
    mean_max_weight = weights.max(axis=1).mean(axis=0)
    assert mean_max_weight.max() >= 2.0 / N_STEPS
    assert np.abs(weights - 1.0 / N_STEPS).max() > 0.1
