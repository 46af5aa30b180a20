"""Inference runs the training forward, block by block.

- predictions equal the logits the training objective computes, to rounding;
- how the samples are cut into blocks (and a long sample into pieces) and
  the number of threads change nothing;
- predicting on one very long sample needs no more memory than on short ones.
"""

import tracemalloc

import numpy as np
import pytest
from sklearn.base import BaseEstimator

import sk_attention._attention as attention_module
import sk_attention._base as base_module
from sk_attention import AttentionClassifier, AttentionPooling, AttentionRegressor
from sk_attention._attention import loss_and_gradient
from sk_attention._collections import check_collections
from sk_attention._segments import Segments
from sk_attention._workspace import Workspace

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _bags(n_samples=30, n_features=3, dtype=np.float64, seed=0, long=None):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, size=n_samples)
    if long is not None:
        lengths[n_samples // 2] = long
    bags = [rng.standard_normal((m, n_features)).astype(dtype) for m in lengths]
    y = np.array([int(b[:, 0].max() > 1.0) for b in bags])
    return bags, y


def _padded(bags):
    T = max(len(b) for b in bags)
    out = np.full((len(bags), T, bags[0].shape[1]), np.nan, dtype=bags[0].dtype)
    for i, b in enumerate(bags):
        out[i, : len(b)] = b
    return out


def _outputs(est, X):
    out = {"attention_weights": est.attention_weights(X)}
    for method in ("predict", "predict_proba", "decision_function", "transform"):
        if hasattr(est, method):
            out[method] = getattr(est, method)(X)
    return out


def _assert_same(a, b, rtol):
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, z in zip(a, b):
            _assert_same(x, z, rtol)
        return
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("Estimator", [AttentionClassifier, AttentionRegressor, AttentionPooling])
@pytest.mark.parametrize("alignment", ["additive", "gated", "dot"])
@pytest.mark.parametrize("embedding_size", [None, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocks_pieces_and_threads_change_no_prediction(
    Estimator, alignment, embedding_size, dtype, monkeypatch
):
    bags, y = _bags(dtype=dtype, long=40)
    if Estimator is AttentionRegressor:
        y = y + 0.5 * np.arange(len(y)) / len(y)
    est = Estimator(
        n_heads=3, hidden_size=4, embedding_size=embedding_size, alignment=alignment,
        max_iter=15, random_state=0,
    ).fit(bags, y)
    original = base_module.Workspace
    for X in (bags, _padded(bags), np.concatenate(bags)):
        whole = _outputs(est, X)
        made = []

        def small_blocks(*args, **kwargs):  # blocks of 3 elements, the long sample in 14 pieces
            made.append(original(*args, **dict(kwargs, block_size=3, n_threads=3)))
            return made[-1]

        monkeypatch.setattr(base_module, "Workspace", small_blocks)
        cut = _outputs(est, X)
        monkeypatch.setattr(base_module, "Workspace", original)
        assert len(made[0].units) > 5 and made[0].n_threads == 3
        for method in whole:
            _assert_same(cut[method], whole[method], 1e-12 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize("alignment", ["additive", "gated", "dot"])
@pytest.mark.parametrize("embedding_size", [None, 4])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_predictions_are_the_logits_of_the_training_forward(
    alignment, embedding_size, n_classes, monkeypatch
):
    bags, _ = _bags(seed=1, long=30)
    y = np.arange(len(bags)) % n_classes
    est = AttentionClassifier(
        n_heads=2, hidden_size=4, embedding_size=embedding_size, alignment=alignment,
        max_iter=10, random_state=0,
    ).fit(bags, y)
    logits = []
    original = attention_module._head_loss

    def recording(head, intercept, *args):
        logits.append(head.sum(axis=1) + intercept)
        return original(head, intercept, *args)

    monkeypatch.setattr(attention_module, "_head_loss", recording)
    packed = check_collections(bags, estimator=BaseEstimator(), reset=True)
    workspace = Workspace(packed.elements, Segments(packed.offsets, 2), block_size=8)
    params = base_module._from_attributes(est.coefs_, est.intercepts_)
    loss = "binary_log_loss" if n_classes == 2 else "log_loss"
    loss_and_gradient(params, workspace, alignment, loss, y, np.ones(len(y)), 0.1)
    training = np.vstack(logits)  # in unit order, the samples' order
    decision = est.decision_function(bags)
    np.testing.assert_allclose(decision.reshape(len(bags), -1), training, rtol=1e-12, atol=1e-14)


def test_prediction_memory_does_not_depend_on_sample_lengths():
    rng = np.random.RandomState(0)
    elements = rng.normal(size=(100_000, 16))
    est = AttentionClassifier(n_heads=4, max_iter=2, random_state=0).fit(
        np.split(elements[:20_000], 400), np.arange(400) % 2
    )
    peaks = []
    for bags in ([elements], np.split(elements, 2_000)):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        est.predict_proba(bags)
        est.attention_weights(bags)
        peaks.append(tracemalloc.get_traced_memory()[1] - before)
        tracemalloc.stop()
    # the validated copy of X (1x), the weights (0.25x) and one block of
    # work arrays per thread (a few MiB): no (N, hidden) temporaries
    assert peaks[0] < 2.0 * elements.nbytes and peaks[1] < 2.0 * elements.nbytes
    assert peaks[0] < 1.1 * peaks[1]
