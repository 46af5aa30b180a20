"""Inference in chunks of whole samples, sized by sklearn's working_memory.

Chunked predict / transform / attention_weights must give the unchunked
results, and no chunk may split a sample.
"""

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose

import sk_attention._base as base_module
from sk_attention import AttentionClassifier, AttentionPooling, AttentionRegressor
from sk_attention._collections import gen_sample_chunks

TINY = 1e-4  # MiB: about 100 bytes, less than one element costs


def _bags(n_samples=23, n_features=3, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, size=n_samples)
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


def _assert_same(a, b, dtype):
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, z in zip(a, b):
            _assert_same(x, z, dtype)
        return
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.kind == "f":
        assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)
    else:
        np.testing.assert_array_equal(a, b)


class _RecordChunks:
    """Records the element count and offsets of every chunk _base computes."""

    def __init__(self, monkeypatch):
        self.chunks = []
        for name in ("forward", "attention"):
            original = getattr(base_module, name)
            monkeypatch.setattr(base_module, name, self._wrap(original))

    def _wrap(self, original):
        def recorded(params, P, segments, alignment):
            assert segments.n_elements == P.shape[0]
            self.chunks.append(segments.offsets.copy())
            return original(params, P, segments, alignment)

        return recorded

    def joined_offsets(self):
        """Offsets of the whole input, rebuilt from the chunks' own offsets."""
        parts, shift = [np.zeros(1, dtype=np.int64)], 0
        for offsets in self.chunks:
            parts.append(offsets[1:] + shift)
            shift += offsets[-1]
        return np.concatenate(parts)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "Estimator", [AttentionClassifier, AttentionRegressor, AttentionPooling]
)
@pytest.mark.parametrize("alignment", ["additive", "gated", "dot"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunked_inference_equals_unchunked(Estimator, alignment, dtype, monkeypatch):
    bags, y = _bags(dtype=dtype)
    if Estimator is AttentionRegressor:
        y = y + 0.5 * np.arange(len(y)) / len(y)
    est = Estimator(n_heads=3, hidden_size=4, alignment=alignment, max_iter=15, random_state=0)
    est.fit(bags, y)
    for X in (bags, _padded(bags), np.concatenate(bags)):
        whole = _outputs(est, X)
        recorder = _RecordChunks(monkeypatch)
        with sklearn.config_context(working_memory=TINY):
            chunked = _outputs(est, X)
        # every sample its own chunk here, so there were several chunks
        n_samples = len(bags) if not isinstance(X, np.ndarray) or X.ndim == 3 else len(X)
        assert len(recorder.chunks) == len(chunked) * n_samples
        for method in whole:
            _assert_same(chunked[method], whole[method], dtype)
        monkeypatch.undo()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("working_memory", [TINY, 0.001, 0.01, 1024])
def test_chunks_never_split_a_sample(working_memory, monkeypatch):
    bags, y = _bags(n_samples=200, seed=1)
    est = AttentionPooling(n_heads=2, hidden_size=4, max_iter=5, random_state=0)
    est.fit(bags, y)
    lengths = np.array([len(b) for b in bags])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    recorder = _RecordChunks(monkeypatch)
    with sklearn.config_context(working_memory=working_memory):
        est.transform(bags)
    # the chunks' own offsets, put end to end, are the input's offsets: each
    # chunk starts and ends at a sample boundary and holds whole samples only
    np.testing.assert_array_equal(recorder.joined_offsets(), offsets)
    if working_memory == 1024:
        assert len(recorder.chunks) == 1
    else:
        assert len(recorder.chunks) > 1


def test_gen_sample_chunks_respects_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, size=500)
    lengths[7] = 5000  # one sample larger than the budget
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    element_bytes, sample_bytes, working_memory = 64, 256, 0.1
    budget = working_memory * 2**20
    chunks = list(gen_sample_chunks(offsets, element_bytes, sample_bytes, working_memory))
    # consecutive, covering every sample once, in order
    assert chunks[0].start == 0 and chunks[-1].stop == len(lengths)
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
    for chunk in chunks:
        n_el = offsets[chunk.stop] - offsets[chunk.start]
        cost = n_el * element_bytes + (chunk.stop - chunk.start) * sample_bytes
        # within budget, unless the chunk is one sample too large by itself
        assert cost <= budget or chunk.stop - chunk.start == 1
        # as long as the budget allows: one more sample would not fit
        if chunk.stop < len(lengths):
            more = cost + lengths[chunk.stop] * element_bytes + sample_bytes
            assert more > budget


def test_gen_sample_chunks_follows_sklearn_working_memory():
    offsets = np.arange(0, 1001, 10)  # 100 samples of 10 elements
    with sklearn.config_context(working_memory=1):
        chunks = list(gen_sample_chunks(offsets, element_bytes=2**20 // 50))
    # 1 MiB holds 50 elements: 5 samples per chunk
    assert [c.stop - c.start for c in chunks] == [5] * 20
