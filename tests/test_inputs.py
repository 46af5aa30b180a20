"""The input model: forms, packing, dtypes and every bad input's error."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.preprocessing import StandardScaler

from sk_attention import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    ElementwiseTransformer,
)
from sk_attention._collections import check_collections

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [
    lambda: AttentionClassifier(n_heads=2, max_iter=5, random_state=0),
    lambda: AttentionRegressor(n_heads=2, max_iter=5, random_state=0),
    lambda: AttentionPooling(n_heads=2, max_iter=5, random_state=0),
    lambda: ElementwiseTransformer(StandardScaler()),
]
ESTIMATOR_IDS = ["classifier", "regressor", "pooling", "elementwise"]


def _ragged(rng, n=8, width=5):
    return [rng.normal(size=(rng.randint(1, 5), width)) for _ in range(n)]


def _padded(ragged):
    steps = max(len(s) for s in ragged)
    out = np.full((len(ragged), steps, ragged[0].shape[1]), np.nan)
    for i, s in enumerate(ragged):
        out[i, : len(s)] = s
    return out


def _fit_and_output(estimator, X, y):
    estimator.fit(X, y)
    for method in ("predict", "transform", "attention_weights"):
        if hasattr(estimator, method):
            getattr(estimator, method)(X)


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    ragged = _ragged(rng)
    return ragged, np.arange(len(ragged)) % 2


# -- packing ---------------------------------------------------------------


def test_three_forms_pack_to_the_same_elements(data):
    ragged, _ = data
    est = BaseEstimator()
    from_ragged = check_collections(ragged, estimator=est, reset=True)
    from_3d = check_collections(_padded(ragged), estimator=est, reset=True)
    np.testing.assert_array_equal(from_ragged.elements, from_3d.elements)
    np.testing.assert_array_equal(from_ragged.offsets, from_3d.offsets)
    assert from_ragged.offsets[-1] == sum(len(s) for s in ragged)
    flat = np.vstack(ragged)
    from_2d = check_collections(flat, estimator=est, reset=True)
    np.testing.assert_array_equal(from_2d.offsets, np.arange(len(flat) + 1))
    assert est.n_features_in_ == 5


def test_padding_may_sit_anywhere():
    X = np.full((1, 5, 2), np.nan)
    X[0, 1] = [1.0, 2.0]
    X[0, 3] = [3.0, 4.0]
    packed = check_collections(X, estimator=BaseEstimator(), reset=True)
    np.testing.assert_array_equal(packed.elements, [[1, 2], [3, 4]])
    weights = packed.unpack(np.array([[0.25], [0.75]]), fill=0.0)
    np.testing.assert_array_equal(weights[0, :, 0], [0, 0.25, 0, 0.75, 0])


def test_lists_of_lists_and_tuples_are_ragged():
    X = ([[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0]])
    packed = check_collections(X, estimator=BaseEstimator(), reset=True)
    assert packed.form == "ragged"
    assert packed.offsets.tolist() == [0, 2, 3]
    # a plain list of rows is 2D: one element per sample
    packed = check_collections([[1.0, 2.0], [3.0, 4.0]], estimator=BaseEstimator(), reset=True)
    assert packed.form == "2d"


@pytest.mark.parametrize("make", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_user_arrays_are_not_modified(make, data):
    ragged, y = data
    padded = _padded(ragged)
    copies = [s.copy() for s in ragged], padded.copy()
    _fit_and_output(make(), ragged, y)
    _fit_and_output(make(), padded, y)
    for original, copy in zip(ragged, copies[0]):
        np.testing.assert_array_equal(original, copy)
    np.testing.assert_array_equal(padded, copies[1])


@pytest.mark.parametrize("form", ["2d", "3d", "ragged"])
def test_float32_is_computed_in_float32(form, data):
    ragged, y = data
    X = {"2d": np.vstack([s[0] for s in ragged]), "3d": _padded(ragged), "ragged": ragged}[form]
    X32 = [s.astype(np.float32) for s in X] if form == "ragged" else X.astype(np.float32)
    pooling = AttentionPooling(n_heads=2, max_iter=20, random_state=0).fit(X32, y)
    out32 = pooling.transform(X32)
    assert out32.dtype == np.float32
    assert pooling.transform(X).dtype == np.float64
    np.testing.assert_allclose(out32, pooling.transform(X), rtol=1e-4, atol=1e-5)
    scaled = ElementwiseTransformer(StandardScaler()).fit_transform(X32)
    first = scaled[0] if form == "ragged" else scaled
    assert first.dtype == np.float32


def test_float32_fit_matches_float64_fit(data):
    ragged, y = data
    kwargs = dict(n_heads=2, max_iter=15, random_state=0)
    clf64 = AttentionClassifier(**kwargs).fit(ragged, y)
    clf32 = AttentionClassifier(**kwargs).fit([s.astype(np.float32) for s in ragged], y)
    np.testing.assert_allclose(clf32.loss_curve_[:5], clf64.loss_curve_[:5], rtol=1e-4)


def test_feature_names_from_dataframes():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frames = [pd.DataFrame(rng.normal(size=(3, 2)), columns=["a", "b"]) for _ in range(6)]
    y = np.arange(6) % 2
    clf = AttentionClassifier(n_heads=1, max_iter=5, random_state=0).fit(frames, y)
    assert clf.feature_names_in_.tolist() == ["a", "b"]
    renamed = [f.rename(columns={"a": "z"}) for f in frames]
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(renamed)
    flat = pd.DataFrame(rng.normal(size=(6, 2)), columns=["a", "b"])
    clf.fit(flat, y)
    assert clf.feature_names_in_.tolist() == ["a", "b"]
    clf.fit(frames[0].to_numpy()[None].repeat(6, axis=0), y)
    assert not hasattr(clf, "feature_names_in_")


# -- bad input, at fit and at predict ----------------------------------------


def _bad_inputs():
    rng = np.random.RandomState(1)
    good = _ragged(rng, n=6, width=5)

    def ragged_with(i, value):
        X = [s.copy() for s in good]
        X[i] = value
        return X

    nan_partial = _padded(good)
    nan_partial[4, 0, 2] = np.nan
    inf_3d = _padded(good)
    inf_3d[3, 0, 1] = np.inf
    empty_3d = _padded(good)
    empty_3d[2] = np.nan
    partial_ragged = [s.copy() for s in good]
    partial_ragged[5][0, 0] = np.nan
    inf_ragged = [s.copy() for s in good]
    inf_ragged[1][0, 4] = -np.inf
    return {
        "3d partial NaN": (nan_partial, ValueError, "sample 4 contains NaN in a partially filled element"),
        "3d inf": (inf_3d, ValueError, "sample 3 contains infinity"),
        "3d only padding": (empty_3d, ValueError, "sample 2 has no elements"),
        "ragged NaN": (partial_ragged, ValueError, "sample 5 contains NaN"),
        "ragged inf": (inf_ragged, ValueError, "sample 1 contains infinity"),
        "ragged empty": (ragged_with(3, np.empty((0, 5))), ValueError, "sample 3 has no elements"),
        "ragged width": (ragged_with(4, np.ones((2, 3))), ValueError, "sample 4 has 3 features, expected 5"),
        "ragged complex": (ragged_with(2, np.ones((2, 5)) * 1j), ValueError, "sample 2 is complex"),
        "ragged sparse": (ragged_with(1, sparse.csr_matrix(np.ones((2, 5)))), TypeError, "sample 1 is a sparse matrix"),
        "ragged strings": (ragged_with(5, np.array([["a"] * 5])), ValueError, "sample 5 holds strings"),
        "ragged 1D item": (ragged_with(3, np.ones(5)), ValueError, "sample 3 is not 2D"),
        "2d NaN": (np.array([[1.0, np.nan]] * 6), ValueError, "Input X contains NaN"),
        "2d inf": (np.array([[1.0, np.inf]] * 6), ValueError, "Input X contains infinity"),
        "2d complex": (np.ones((6, 2)) * 1j, ValueError, "Complex data not supported"),
        "2d sparse": (sparse.csr_matrix(np.ones((6, 2))), TypeError, "Sparse data was passed"),
        "1D": (np.ones(6), ValueError, "Expected 2D array, got 1D array"),
        "2d strings": (np.array([["a", "b"]] * 6), ValueError, "could not convert|string"),
        "3d complex": (np.ones((6, 2, 2)) * 1j, ValueError, "Complex data not supported"),
        "3d no features": (np.ones((6, 2, 0)), ValueError, "0 feature"),
    }


BAD = _bad_inputs()


def _assert_nan_passes_through(out):
    values = np.concatenate([np.ravel(s) for s in out]) if isinstance(out, list) else np.ravel(out)
    padding_free = values[np.isfinite(values)]
    assert np.isnan(values).any() and padding_free.size > 0


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("make", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_bad_input_is_rejected_at_fit(make, case):
    X, error, message = BAD[case]
    y = np.arange(6) % 2
    est = make()
    if isinstance(est, ElementwiseTransformer) and "NaN" in case:
        # StandardScaler allows NaN, so ElementwiseTransformer(StandardScaler())
        # does: the NaN is kept, not dropped or imputed (an all-NaN column
        # makes StandardScaler warn about its mean, which is its business)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _assert_nan_passes_through(est.fit(X, y).transform(X))
        return
    with pytest.raises(error, match=message):
        est.fit(X, y)


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("make", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_bad_input_is_rejected_at_predict(make, case):
    X, error, message = BAD[case]
    width = 2 if case.startswith("2d") or case == "3d complex" else 5
    rng = np.random.RandomState(2)
    est = make().fit(_ragged(rng, n=6, width=width), np.arange(6) % 2)
    if isinstance(est, ElementwiseTransformer) and "NaN" in case:
        _assert_nan_passes_through(est.transform(X))
        return
    method = est.predict if hasattr(est, "predict") else est.transform
    with pytest.raises(error, match=message):
        method(X)


def test_mixed_list_names_first_bad_sample():
    X = [np.ones((2, 3)), np.ones((1, 3)), [1.0, 2.0, 3.0], np.ones((2, 3))]
    with pytest.raises(ValueError, match="sample 2 is not 2D"):
        AttentionClassifier().fit(X, [0, 1, 0, 1])


@pytest.mark.parametrize("make", ESTIMATORS, ids=ESTIMATOR_IDS)
@pytest.mark.parametrize("form", ["2d", "3d", "ragged"])
def test_wrong_width_at_predict(make, form, data):
    ragged, y = data
    est = make().fit(ragged, y)
    narrow = [s[:, :3] for s in ragged]
    X = {"2d": np.vstack([s[0] for s in narrow]), "3d": _padded(narrow), "ragged": narrow}[form]
    name = type(est).__name__
    method = est.predict if hasattr(est, "predict") else est.transform
    with pytest.raises(ValueError, match=f"X has 3 features, but {name} is expecting 5 features"):
        method(X)


def test_targets_are_checked(data):
    ragged, y = data
    with pytest.raises(ValueError, match="requires y to be passed"):
        AttentionClassifier().fit(ragged, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AttentionClassifier().fit(ragged, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        AttentionClassifier().fit(ragged, np.linspace(0, 1, len(ragged)))
    with pytest.raises(ValueError, match="class"):
        AttentionClassifier().fit(ragged, np.zeros(len(ragged)))
    with pytest.raises(ValueError, match="requires y to be passed"):
        AttentionPooling().fit(ragged)


def test_ragged_frames_must_share_columns():
    pd = pytest.importorskip("pandas")
    frames = [pd.DataFrame(np.ones((2, 2)), columns=["a", "b"]) for _ in range(3)]
    frames[2] = frames[2].rename(columns={"b": "c"})
    with pytest.raises(ValueError, match="sample 2 has other feature names"):
        AttentionClassifier().fit(frames, [0, 1, 0])
