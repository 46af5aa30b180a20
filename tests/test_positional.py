"""PositionalEncoding: exact values, padding, forms, and an order task."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.pipeline import make_pipeline

from sk_attention import AttentionClassifier, PositionalEncoding


def _encoding(r, n_frequencies):
    """Expected position columns for relative positions ``r``."""
    r = np.asarray(r, dtype=np.float64)
    columns = [r]
    for j in range(1, n_frequencies + 1):
        columns += [np.sin(np.pi * j * r), np.cos(np.pi * j * r)]
    return np.column_stack(columns)


def test_exact_values_ragged():
    rng = np.random.RandomState(0)
    X = [rng.normal(size=(n, 2)) for n in (5, 1, 3)]
    out = PositionalEncoding(n_frequencies=2).fit_transform(X)
    assert isinstance(out, list)
    expected_r = [[0, 0.25, 0.5, 0.75, 1], [0], [0, 0.5, 1]]
    for sample, got, r in zip(X, out, expected_r):
        assert got.shape == (len(sample), 2 + 5)
        assert_array_equal(got[:, :2], sample)
        assert_allclose(got[:, 2:], _encoding(r, 2), atol=1e-15)
    # the written-out values for one element: r = 0.25, j = 1 and 2
    assert_allclose(
        out[0][1, 2:],
        [0.25, np.sqrt(0.5), np.sqrt(0.5), 1.0, 0.0],
        atol=1e-15,
    )


def test_exact_values_3d_padding_start_middle_end():
    # 6 steps; sample 0 padded at the start, sample 1 in the middle,
    # sample 2 at the end, sample 3 everywhere but one step
    rng = np.random.RandomState(1)
    X = rng.normal(size=(4, 6, 3))
    padding = {0: [0, 1], 1: [2, 3], 2: [4, 5], 3: [0, 1, 3, 4, 5]}
    for i, steps in padding.items():
        X[i, steps] = np.nan
    out = PositionalEncoding(n_frequencies=1).fit_transform(X)
    assert out.shape == (4, 6, 3 + 3)
    for i, steps in padding.items():
        real = np.setdiff1d(np.arange(6), steps)
        assert np.isnan(out[i, steps]).all()  # padding stays padding
        assert_array_equal(out[i, real, :3], X[i, real])
        T = len(real)
        r = np.arange(T) / (T - 1) if T > 1 else np.zeros(1)
        assert_allclose(out[i, real, 3:], _encoding(r, 1), atol=1e-15)


def test_2d_input_is_one_element_at_position_zero():
    X = np.arange(6.0).reshape(3, 2)
    out = PositionalEncoding().fit_transform(X)
    assert_allclose(out, np.hstack([X, np.tile(_encoding([0.0], 2), (3, 1))]))


def test_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    encoder = PositionalEncoding(n_frequencies=2).fit(X)
    names = ["a", "b", "position", "position_sin1", "position_cos1",
             "position_sin2", "position_cos2"]
    assert encoder.get_feature_names_out().tolist() == names
    out = encoder.set_output(transform="pandas").transform(X)
    assert out.columns.tolist() == names
    assert PositionalEncoding(n_frequencies=0).fit([np.ones((2, 1))]).get_feature_names_out().tolist() == [
        "x0",
        "position",
    ]


def test_float32_is_kept():
    X32 = np.ones((2, 4, 3), dtype=np.float32)
    X32[0, 0] = np.nan
    assert PositionalEncoding().fit_transform(X32).dtype == np.float32
    ragged = [np.ones((3, 2), dtype=np.float32), np.ones((2, 2), dtype=np.float32)]
    assert all(s.dtype == np.float32 for s in PositionalEncoding().fit_transform(ragged))


def test_width_checked_at_transform():
    encoder = PositionalEncoding().fit([np.ones((3, 2))])
    with pytest.raises(ValueError, match="X has 3 features, but PositionalEncoding"):
        encoder.transform([np.ones((3, 3))])


def _order_task(n_samples, rng):
    """One spike per sequence; the class is whether it comes early or late.

    Each sequence is z-normalised noise of 12 to 24 steps with a spike of
    +4 in its first third (class 0) or last third (class 1): the set of
    values has the same distribution in both classes, only the order differs.
    """
    X, y = [], np.arange(n_samples) % 2
    for label in y:
        T = rng.randint(12, 25)
        series = rng.normal(size=(T, 1))
        third = T // 3
        where = rng.randint(0, third) if label == 0 else rng.randint(T - third, T)
        series[where] += 4.0
        X.append(series)
    return X, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_positional_encoding_solves_an_order_task():
    rng = np.random.RandomState(0)
    X_train, y_train = _order_task(100, rng)
    X_test, y_test = _order_task(200, rng)

    with_position = make_pipeline(PositionalEncoding(), AttentionClassifier(random_state=0))
    order_free = AttentionClassifier(random_state=0)
    acc_position = with_position.fit(X_train, y_train).score(X_test, y_test)
    acc_order_free = order_free.fit(X_train, y_train).score(X_test, y_test)

    assert acc_position >= 0.9
    assert acc_order_free <= 0.65
