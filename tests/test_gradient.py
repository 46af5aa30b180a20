"""The exact gradient, and the blocked evaluation that computes it.

- central differences on every parameter, each parameter block held to a
  relative tolerance of its own (a wrong bias gradient cannot hide behind
  a large matrix gradient), for every alignment, loss, head count and input
  form, with and without the element embedding, through whole-sample
  blocks and through a sample cut in pieces;
- cutting the samples into blocks, or one sample into pieces, gives the
  one-block loss and gradient;
- the number of threads changes nothing, to the last bit.
"""

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

import sk_attention._base as base_module
from sk_attention import AttentionClassifier, AttentionRegressor
from sk_attention._alignments import ALIGNMENTS, param_layout
from sk_attention._attention import loss_and_gradient
from sk_attention._base import _pack
from sk_attention._collections import check_collections
from sk_attention._segments import Segments
from sk_attention._workspace import Workspace, _cut_blocks, _LongSample

N_FEATURES, HIDDEN = 3, 4
LENGTHS = [3, 1, 5, 2, 6]

LOSS_SETUPS = {
    "binary": ("binary_log_loss", 1, np.array([0, 1, 1, 0, 1])),
    "multiclass": ("log_loss", 3, np.array([0, 2, 1, 1, 0])),
    "regression": (
        "squared_error",
        2,
        np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.0], [2.0, 1.0], [0.1, 0.7]]),
    ),
}


def _forms(rng):
    """Five samples as ragged and as 3D padded input, and five 2D one-element samples."""
    ragged = [rng.normal(size=(length, N_FEATURES)) for length in LENGTHS]
    padded = np.full((len(LENGTHS), max(LENGTHS) + 1, N_FEATURES), np.nan)
    for i, sample in enumerate(ragged):
        padded[i, 1 : 1 + len(sample)] = sample  # padding before and after
    return {"2d": rng.normal(size=(len(LENGTHS), N_FEATURES)), "3d": padded, "ragged": ragged}


def _random_params(layout, rng, dtype=np.float64):
    # non-zero everywhere (v and q included), so that every path carries gradient
    return {name: rng.normal(scale=0.7, size=shape).astype(dtype) for name, shape, _ in layout}


def _objective(P, segments, alignment, loss, targets, sample_weight, alpha, **workspace_options):
    """``params -> (value, grads)`` on a workspace of these elements."""
    workspace = Workspace(P, segments, **workspace_options)

    def f(params):
        return loss_and_gradient(params, workspace, alignment, loss, targets, sample_weight, alpha)

    f.workspace = workspace
    return f


def _central_differences(f, params, eps=1e-6):
    numeric = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for idx in np.ndindex(*value.shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            grad[idx] = (f(plus)[0] - f(minus)[0]) / (2 * eps)
        numeric[name] = grad
    return numeric


def _assert_gradient_per_block(analytic, numeric, rtol=1e-6):
    for name, expected in numeric.items():
        scale = np.linalg.norm(expected)
        if scale < 1e-9:  # e.g. a bias no loss reaches: must be zero, not small
            np.testing.assert_allclose(analytic[name], 0.0, atol=1e-9, err_msg=name)
            continue
        error = np.linalg.norm(analytic[name] - expected) / scale
        assert error < rtol, f"gradient of {name!r}: relative error {error:.2e}"


@pytest.mark.parametrize("embedding_size", [None, 3])
@pytest.mark.parametrize("alignment", sorted(ALIGNMENTS))
@pytest.mark.parametrize("n_heads", [1, 3])
@pytest.mark.parametrize("form", ["2d", "3d", "ragged"])
@pytest.mark.parametrize("task", sorted(LOSS_SETUPS))
def test_gradient_matches_central_differences_per_block(
    alignment, n_heads, form, task, embedding_size
):
    rng = np.random.RandomState(0)
    packed = check_collections(_forms(rng)[form], estimator=BaseEstimator(), reset=True)
    loss, n_outputs, targets = LOSS_SETUPS[task]
    layout = param_layout(alignment, N_FEATURES, n_heads, HIDDEN, n_outputs, embedding_size)
    params = _random_params(layout, rng)
    sample_weight = rng.uniform(0.5, 2.0, size=packed.n_samples)
    f = _objective(
        packed.elements, Segments(packed.offsets, n_heads), alignment, loss, targets,
        sample_weight, 0.3,
    )
    _assert_gradient_per_block(f(params)[1], _central_differences(f, params))


@pytest.mark.parametrize("embedding_size", [None, 3])
@pytest.mark.parametrize("alignment", sorted(ALIGNMENTS))
@pytest.mark.parametrize("task", sorted(LOSS_SETUPS))
def test_gradient_through_a_sample_cut_in_pieces(alignment, task, embedding_size):
    # the longest sample (6 elements) is cut into pieces of at most 2: its
    # softmax is put together from the pieces' maxima and sums
    rng = np.random.RandomState(1)
    packed = check_collections(_forms(rng)["ragged"], estimator=BaseEstimator(), reset=True)
    loss, n_outputs, targets = LOSS_SETUPS[task]
    layout = param_layout(alignment, N_FEATURES, 2, HIDDEN, n_outputs, embedding_size)
    params = _random_params(layout, rng)
    sample_weight = rng.uniform(0.5, 2.0, size=packed.n_samples)
    f = _objective(
        packed.elements, Segments(packed.offsets, 2), alignment, loss, targets, sample_weight,
        0.3, block_size=2,
    )
    assert any(isinstance(unit, _LongSample) for unit in f.workspace.units)
    _assert_gradient_per_block(f(params)[1], _central_differences(f, params))


@pytest.mark.parametrize("embedding_size", [None, 3])
@pytest.mark.parametrize("alignment", sorted(ALIGNMENTS))
@pytest.mark.parametrize("task", sorted(LOSS_SETUPS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocks_and_pieces_give_the_one_block_loss_and_gradient(
    alignment, task, dtype, embedding_size
):
    rng = np.random.RandomState(1)
    lengths = LENGTHS + [40] + LENGTHS[::-1]  # one sample far longer than a block
    bags = [rng.normal(size=(length, N_FEATURES)).astype(dtype) for length in lengths]
    packed = check_collections(bags, estimator=BaseEstimator(), reset=True)
    assert packed.elements.dtype == dtype
    loss, n_outputs, targets = LOSS_SETUPS[task]
    targets = np.concatenate([targets, targets[:1], targets[::-1]])
    if targets.dtype.kind == "f":
        targets = targets.astype(dtype)
    layout = param_layout(alignment, N_FEATURES, 2, HIDDEN, n_outputs, embedding_size)
    params = _random_params(layout, rng, dtype)
    segments = Segments(packed.offsets, 2)
    sample_weight = rng.uniform(0.5, 2.0, size=packed.n_samples)
    args = (alignment, loss, targets, sample_weight, 0.3)

    whole = Workspace(packed.elements, segments, block_size=10_000)
    assert len(whole.units) == 1
    cut = Workspace(packed.elements, segments, n_threads=3, block_size=7)
    long = [unit for unit in cut.units if isinstance(unit, _LongSample)]
    assert [unit.samples for unit in long] == [slice(len(LENGTHS), len(LENGTHS) + 1)]
    assert len(long[0].pieces) == 6 and all(
        piece.elements.stop - piece.elements.start <= 7 for piece in long[0].pieces
    )
    assert len(cut.units) >= 4
    # units own consecutive samples, all of them, in order
    owned = [unit.samples for unit in cut.units]
    assert [s.start for s in owned] == [0] + [s.stop for s in owned[:-1]]
    assert owned[-1].stop == len(lengths)

    value, grads = loss_and_gradient(params, whole, *args)
    expected = _pack(grads, layout)
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (1e-4, 1e-6 * np.abs(expected).max())
    for _ in range(2):  # and the reused buffers hold nothing over between calls
        cut_value, cut_grads = loss_and_gradient(params, cut, *args)
        assert cut_value == pytest.approx(value, rel=rtol)
        np.testing.assert_allclose(_pack(cut_grads, layout), expected, rtol=rtol, atol=atol)


def test_units_are_whole_samples_of_about_block_size():
    lengths = np.array([3, 2, 50, 1, 1, 1, 4000, 3000, 9000, 2, 2, 5000])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    bounds = _cut_blocks(offsets, 4096)
    assert bounds[0] == 0 and bounds[-1] == len(lengths)
    assert np.all(np.diff(bounds) > 0)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        size = offsets[stop] - offsets[start]
        # fewer than twice block_size, or one longer sample on its own
        assert size < 2 * 4096 or stop - start == 1
        if np.any(lengths[start:stop] > 4096):
            assert stop - start == 1
    with pytest.raises(ValueError, match="block_size"):
        Workspace(np.zeros((3, 2)), Segments([0, 3], 1), block_size=0)


def test_a_long_sample_is_cut_into_pieces_of_at_most_block_size():
    P = np.random.RandomState(0).normal(size=(10_001 + 7, 2))
    workspace = Workspace(P, Segments([0, 10_001, 10_008], 1), block_size=4096)
    long, short = workspace.units
    sizes = [piece.elements.stop - piece.elements.start for piece in long.pieces]
    assert sum(sizes) == 10_001 and max(sizes) <= 4096 and len(sizes) == 3
    stored = long.pieces[1].elements_t(None)  # [x; 1], held by the workspace
    np.testing.assert_array_equal(stored[:2].T, P[sizes[0] : sum(sizes[:2])])
    np.testing.assert_array_equal(stored[2], 1.0)
    assert short.samples == slice(1, 2) and short.elements == slice(10_001, 10_008)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threads_change_no_bit_of_the_loss_or_gradient(dtype):
    rng = np.random.RandomState(2)
    bags = [rng.normal(size=(rng.randint(1, 30), N_FEATURES)).astype(dtype) for _ in range(300)]
    bags[7] = rng.normal(size=(700, N_FEATURES)).astype(dtype)  # cut into pieces
    packed = check_collections(bags, estimator=BaseEstimator(), reset=True)
    loss, n_outputs, _ = LOSS_SETUPS["multiclass"]
    targets = np.arange(300) % 3
    layout = param_layout("gated", N_FEATURES, 2, HIDDEN, n_outputs)
    params = _random_params(layout, rng, dtype)
    segments = Segments(packed.offsets, 2)
    weights = rng.uniform(0.5, 2.0, size=300)
    results = []
    for n_threads in (1, 2, 4):
        workspace = Workspace(packed.elements, segments, n_threads=n_threads, block_size=256)
        assert workspace.n_threads == n_threads and len(workspace.units) > 4
        results.append(
            loss_and_gradient(params, workspace, "gated", loss, targets, weights, 0.1)
        )
    for value, grads in results[1:]:
        assert value == results[0][0]
        for name in grads:
            np.testing.assert_array_equal(grads[name], results[0][1][name])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("Estimator", [AttentionClassifier, AttentionRegressor])
def test_fits_with_1_2_and_4_threads_are_bit_identical(Estimator, monkeypatch):
    # DESIGN: "the same model on any machine": how the samples are cut into
    # blocks and the order of the block sums do not depend on the threads
    rng = np.random.RandomState(3)
    lengths = rng.randint(10, 45, size=1000)
    bags = [rng.normal(size=(length, 6)) for length in lengths]
    assert lengths.sum() >= 25_000
    y = np.array([bag[:, 0].max() for bag in bags])
    if Estimator is AttentionClassifier:
        y = (y > np.median(y)).astype(int)
    fitted, original = [], base_module.Workspace
    for n_threads in (1, 2, 4):
        monkeypatch.setattr(base_module, "_n_threads", lambda n=n_threads: n)
        made = []

        def recording(*args, **kwargs):
            made.append(original(*args, **kwargs))
            return made[-1]

        monkeypatch.setattr(base_module, "Workspace", recording)
        model = Estimator(max_iter=15, random_state=0).fit(bags, y)
        assert made[0].n_threads == n_threads  # the fit really ran on that many threads
        fitted.append(model)
    for model in fitted[1:]:
        assert model.loss_curve_ == fitted[0].loss_curve_
        for attribute in ("coefs_", "intercepts_"):
            for name, value in getattr(model, attribute).items():
                np.testing.assert_array_equal(value, getattr(fitted[0], attribute)[name])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fits_under_blas_limits_of_1_and_2_threads_are_bit_identical():
    # the thread count a fit uses is the BLAS limit its caller sets
    rng = np.random.RandomState(4)
    bags = [rng.normal(size=(rng.randint(10, 45), 5)) for _ in range(1000)]
    y = np.array([int(bag[:, 0].max() > 2.0) for bag in bags])
    fitted = []
    for limit in (1, 2):
        with threadpool_limits(limits=limit, user_api="blas"):
            assert base_module._n_threads() == limit
            fitted.append(AttentionClassifier(max_iter=10, random_state=0).fit(bags, y))
    assert fitted[0].loss_curve_ == fitted[1].loss_curve_
    for name, value in fitted[0].coefs_.items():
        np.testing.assert_array_equal(fitted[1].coefs_[name], value)


@pytest.mark.parametrize("factor", [1e307, 1e-300])
def test_loss_and_gradient_take_weights_of_any_scale(factor):
    # DESIGN's objective depends on w_i / sum w and alpha / sum w only
    rng = np.random.RandomState(5)
    packed = check_collections(_forms(rng)["ragged"], estimator=BaseEstimator(), reset=True)
    loss, n_outputs, targets = LOSS_SETUPS["binary"]
    layout = param_layout("additive", N_FEATURES, 2, HIDDEN, n_outputs)
    params = _random_params(layout, rng)
    workspace = Workspace(packed.elements, Segments(packed.offsets, 2))
    weights = rng.uniform(0.5, 2.0, size=packed.n_samples)
    args = (params, workspace, "additive", loss, targets)
    value, grads = loss_and_gradient(*args, weights, 0.3)
    scaled_value, scaled_grads = loss_and_gradient(*args, weights * factor, 0.3 * factor)
    assert scaled_value == pytest.approx(value, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(scaled_grads[name], grads[name], rtol=1e-12)


@pytest.mark.parametrize("embedding_size", [None, 3])
@pytest.mark.parametrize("task", sorted(LOSS_SETUPS))
def test_a_weight_of_two_is_a_repeated_sample(task, embedding_size):
    # the objective itself, at any parameters: what sklearn's sample-weight
    # check asks of the fitted model, without the optimiser's path
    rng = np.random.RandomState(6)
    bags = _forms(rng)["ragged"]
    loss, n_outputs, targets = LOSS_SETUPS[task]
    counts = np.array([0, 1, 2, 3, 1])
    repeated = [bag for bag, c in zip(bags, counts) for _ in range(c)]
    layout = param_layout("gated", N_FEATURES, 2, HIDDEN, n_outputs, embedding_size)
    params = _random_params(layout, rng)
    results = []
    for X, t, w in ((bags, targets, counts), (repeated, np.repeat(targets, counts, axis=0), None)):
        packed = check_collections(X, estimator=BaseEstimator(), reset=True)
        weights = np.ones(packed.n_samples) if w is None else w.astype(float)
        results.append(
            _objective(packed.elements, Segments(packed.offsets, 2), "gated", loss, t, weights, 0.3)(params)
        )
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    for name in params:
        np.testing.assert_allclose(results[0][1][name], results[1][1][name], rtol=1e-10, atol=1e-14)
