"""The attention math: segment softmax, invariances, the uniform start.

The gradient and the blocked evaluation are tested in test_gradient.py.
"""

import numpy as np
import pytest

from sk_attention import AttentionClassifier, AttentionPooling, AttentionRegressor
from sk_attention._alignments import ALIGNMENTS, param_layout
from sk_attention._attention import attend
from sk_attention._base import _init_params
from sk_attention._collections import check_collections
from sk_attention._segments import Segments, segment_softmax
from sk_attention._workspace import Workspace
from sklearn.base import BaseEstimator

N_FEATURES = 3
LENGTHS = [3, 1, 5, 2]


def _forms(rng):
    """The same four samples as 2D-per-element, 3D padded and ragged input."""
    ragged = [rng.normal(size=(length, N_FEATURES)) for length in LENGTHS]
    padded = np.full((len(LENGTHS), max(LENGTHS), N_FEATURES), np.nan)
    for i, sample in enumerate(ragged):
        padded[i, : len(sample)] = sample
    flat = rng.normal(size=(4, N_FEATURES))
    return {"2d": flat, "3d": padded, "ragged": ragged}


def test_segment_softmax_is_stable_for_extreme_scores():
    segments = Segments([0, 3, 5, 6], n_heads=2)
    scores = np.array(
        [[1e4, -1e4], [-1e4, -1e4], [0.0, -1e4], [-1e4, 1e4], [-1e4, 1e4], [1e4, -1e4]]
    )
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        weights = segment_softmax(scores, segments)
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(segments.sum(weights), np.ones((3, 2)))
    np.testing.assert_allclose(weights[:, 0], [1, 0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(weights[:, 1], [1 / 3, 1 / 3, 1 / 3, 0.5, 0.5, 1])


def test_segment_softmax_equals_per_sample_softmax():
    rng = np.random.RandomState(1)
    offsets = np.array([0, 4, 5, 9])
    scores = rng.normal(scale=3, size=(9, 2))
    weights = segment_softmax(scores, Segments(offsets, n_heads=2))
    for start, stop in zip(offsets[:-1], offsets[1:]):
        block = np.exp(scores[start:stop] - scores[start:stop].max(axis=0))
        np.testing.assert_allclose(weights[start:stop], block / block.sum(axis=0))


def _bags(rng, n=30, width=4):
    bags = [rng.normal(size=(rng.randint(1, 7), width)) for _ in range(n)]
    y = np.arange(n) % 2
    for bag, label in zip(bags, y):
        bag[0, 0] += 3 * label
    return bags, y


@pytest.fixture(scope="module")
def fitted_models():
    rng = np.random.RandomState(0)
    bags, y = _bags(rng)
    models = {
        alignment: AttentionClassifier(
            alignment=alignment, n_heads=2, max_iter=30, random_state=0
        ).fit(bags, y)
        for alignment in ALIGNMENTS
    }
    return models, bags


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("alignment", sorted(ALIGNMENTS))
def test_permuting_elements_changes_nothing(fitted_models, alignment):
    models, bags = fitted_models
    model = models[alignment]
    rng = np.random.RandomState(3)
    orders = [rng.permutation(len(bag)) for bag in bags]
    permuted = [bag[order] for bag, order in zip(bags, orders)]
    np.testing.assert_allclose(
        model.predict_proba(permuted), model.predict_proba(bags), rtol=1e-10
    )
    weights, weights_permuted = model.attention_weights(bags), model.attention_weights(permuted)
    for w, wp, order in zip(weights, weights_permuted, orders):
        np.testing.assert_allclose(wp, w[order], rtol=1e-10, atol=1e-14)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("alignment", sorted(ALIGNMENTS))
def test_padding_changes_nothing(fitted_models, alignment):
    models, bags = fitted_models
    model = models[alignment]
    steps = max(len(bag) for bag in bags) + 2
    padded = np.full((len(bags), steps, bags[0].shape[1]), np.nan)
    rng = np.random.RandomState(4)
    positions = []
    for i, bag in enumerate(bags):
        # padding at the start, in the middle and at the end
        where = np.sort(rng.choice(steps, size=len(bag), replace=False))
        padded[i, where] = bag
        positions.append(where)
    np.testing.assert_allclose(
        model.predict_proba(padded), model.predict_proba(bags), rtol=1e-10
    )
    weights_3d = model.attention_weights(padded)
    for w3, w, where in zip(weights_3d, model.attention_weights(bags), positions):
        np.testing.assert_allclose(w3[where], w, rtol=1e-10)
        assert np.all(np.delete(w3, where, axis=0) == 0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sample_output_does_not_depend_on_batch(fitted_models):
    models, bags = fitted_models
    model = models["additive"]
    batch = model.predict_proba(bags)
    alone = np.vstack([model.predict_proba([bag]) for bag in bags])
    np.testing.assert_allclose(alone, batch, rtol=1e-10)
    reversed_batch = model.predict_proba(bags[::-1])[::-1]
    np.testing.assert_allclose(reversed_batch, batch, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("Estimator", [AttentionRegressor, AttentionPooling])
def test_regressor_and_pooling_are_invariant_too(Estimator):
    rng = np.random.RandomState(5)
    bags, _ = _bags(rng)
    y = np.array([bag[:, 0].max() for bag in bags])
    model = Estimator(n_heads=2, max_iter=20, random_state=0).fit(bags, y)
    output = model.predict if hasattr(model, "predict") else model.transform
    permuted = [bag[::-1] for bag in bags]
    np.testing.assert_allclose(output(permuted), output(bags), rtol=1e-10)
    alone = np.concatenate([np.atleast_1d(output([bag])) for bag in bags])
    np.testing.assert_allclose(alone.reshape(output(bags).shape), output(bags), rtol=1e-10)


@pytest.mark.parametrize("embedding_size", [None, 2])
@pytest.mark.parametrize("alignment", sorted(ALIGNMENTS))
def test_initial_attention_is_mean_pooling(alignment, embedding_size):
    rng = np.random.RandomState(6)
    packed = check_collections(_forms(rng)["ragged"], estimator=BaseEstimator(), reset=True)
    layout = param_layout(alignment, N_FEATURES, 2, 4, 1, embedding_size)
    params = _init_params(layout, 2, np.random.RandomState(0))
    workspace = Workspace(packed.elements, Segments(packed.offsets, 2), store=False)
    weights = attend(params, workspace, alignment, "weights")
    pooled = attend(params, workspace, alignment, "pooled")
    read = packed.elements
    if embedding_size:  # h' = [x, relu(E.T x + e)], e starts at 0
        read = np.hstack([read, np.maximum(read @ params["E"], 0.0)])
    means = np.vstack([read[a:b].mean(axis=0) for a, b in zip(packed.offsets[:-1], packed.offsets[1:])])
    np.testing.assert_allclose(pooled, np.hstack([means, means]), rtol=1e-12)
    np.testing.assert_allclose(weights, np.repeat(1.0 / packed.lengths, packed.lengths)[:, None] * [1, 1])
