"""RandomConvolutions: responses against plain loops, forms, padding, draws, names."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from sk_attention import RandomConvolutions
from sk_attention._collections import step_positions
from sk_attention._random_convolutions import convolve, local_proportions


def _ragged(seed=0, lengths=(5, 40, 17, 1, 60, 90, 45), n_channels=3, dtype=np.float64):
    rng = np.random.RandomState(seed)
    return [rng.normal(size=(n, n_channels)).astype(dtype) for n in lengths]


def _pad(samples, n_steps, where="end"):
    """NaN-pad ragged samples to ``n_steps``: at the end, the start, or split around."""
    n_channels = samples[0].shape[1]
    out = np.full((len(samples), n_steps, n_channels), np.nan, dtype=samples[0].dtype)
    for i, sample in enumerate(samples):
        gap = n_steps - len(sample)
        first = {"end": 0, "start": gap, "middle": gap // 2}[where]
        if where == "middle" and len(sample) > 1:
            # a padded hole inside the sample: real steps on both sides of it
            half = len(sample) // 2
            out[i, :half] = sample[:half]
            out[i, half + gap :] = sample[half:]
        else:
            out[i, first : first + len(sample)] = sample
    return out


def _reference(model, sample):
    """Output of a fitted model for one sample, by plain loops (the Notes' formulas)."""
    x = (np.asarray(sample, dtype=np.float64) - model.mean_) / model.scale_
    T = len(x)
    features = np.empty((T, model.n_kernels))
    for k in range(model.n_kernels):
        L, d = model.lengths_[k], model.dilations_[k]
        w = model.weights_[k]  # 11 taps, the kernel's L in the middle
        r = np.zeros(T)
        for t in range(T):
            for j in range(11):
                s = t + (j - 5) * d
                if 0 <= s < T:
                    r[t] += w[j] @ x[s]
        positive = r > model.biases_[k] + 1e-4 * np.abs(w).sum()
        h = int(round(model.window * ((L - 1) // 2 * d)))
        for t in range(T):
            features[t, k] = positive[max(t - h, 0) : t + h + 1].mean()
    if model.keep_input:
        return np.hstack([sample, features])
    return features


@pytest.mark.parametrize("window", [0, 1, 16])
def test_output_equals_plain_loops(window):
    X = _ragged()
    model = RandomConvolutions(n_kernels=25, window=window, random_state=0).fit(X)
    assert len(np.unique(model.dilations_)) > 1  # several groups are exercised
    for sample, got in zip(X, model.transform(X)):
        assert_allclose(got, _reference(model, sample), atol=1e-12)


def test_univariate_responses_equal_numpy_convolve():
    rng = np.random.RandomState(3)
    series = [rng.normal(size=(n, 1)) for n in (50, 23, 8)]
    offsets = np.array([0, 50, 73, 81])
    weights = rng.normal(size=(4, 9, 1))
    for dilation in (1, 3):
        got = convolve(np.concatenate(series), offsets, weights, dilation)
        for i, s in enumerate(series):
            for k in range(4):
                # a dilated kernel is the kernel with d - 1 zeros between taps;
                # np.convolve flips its second argument, so flip it first
                dilated = np.zeros(8 * dilation + 1)
                dilated[::dilation] = weights[k, :, 0]
                full = np.convolve(s[:, 0], dilated[::-1], mode="full")
                expected = full[4 * dilation : 4 * dilation + len(s)]
                assert_allclose(got[offsets[i] : offsets[i + 1], k], expected, atol=1e-12)


def test_local_proportions_counts_within_each_sample():
    above = np.array([[1], [0], [1], [1], [0], [0], [1]], dtype=bool)
    offsets = np.array([0, 4, 7])  # samples [1 0 1 1] and [0 0 1]
    got = local_proportions(above, *step_positions(offsets), 1)
    assert_allclose(got[:, 0], [1 / 2, 2 / 3, 2 / 3, 1, 0, 1 / 3, 1 / 2])


@pytest.mark.parametrize("where", ["end", "start", "middle"])
def test_3d_equals_ragged_and_padding_stays_padding(where):
    X = _ragged()
    model = RandomConvolutions(n_kernels=12, random_state=0).fit(X)
    ragged_out = model.transform(X)
    padded = _pad(X, 96, where)
    out_3d = model.transform(padded)
    assert out_3d.shape == (len(X), 96, 3 + 12)
    real = ~np.isnan(padded).all(axis=2)
    assert np.isnan(out_3d[~real]).all()
    for i, got in enumerate(ragged_out):
        assert_allclose(out_3d[i][real[i]], got, atol=1e-12)
    # fitted on the padded form: the same kernels, biases and output
    again = clone(model).fit(padded)
    assert_allclose(again.biases_, model.biases_)
    assert_allclose(again.transform(padded)[real], out_3d[real], atol=1e-12)


def test_a_sample_never_reads_its_neighbours():
    X = _ragged()
    model = RandomConvolutions(n_kernels=12, random_state=0).fit(X)
    alone = [model.transform([sample])[0] for sample in X]
    together = model.transform(X)
    shuffled = model.transform(X[::-1])[::-1]
    for a, b, c in zip(alone, together, shuffled):
        assert_allclose(a, b, atol=1e-12)
        assert_allclose(a, c, atol=1e-12)


def test_float32_is_computed_and_returned_in_float32():
    X64 = _ragged()
    X32 = [s.astype(np.float32) for s in X64]
    model = RandomConvolutions(n_kernels=10, random_state=0)
    out32 = model.fit(X32).transform(X32)
    assert all(s.dtype == np.float32 for s in out32)
    assert model.transform(_pad(X32, 96)).dtype == np.float32
    out64 = clone(model).fit(X64).transform(X64)
    assert all(s.dtype == np.float64 for s in out64)
    # the same kernels; proportions may differ where a response sits at its bias
    agree = np.mean([np.isclose(a, b, atol=1e-6).mean() for a, b in zip(out32, out64)])
    assert agree > 0.95


def test_2d_input_is_one_step_per_sample():
    X = np.random.RandomState(0).normal(size=(20, 4))
    model = RandomConvolutions(n_kernels=5, random_state=0).fit(X)
    out = model.transform(X)
    assert out.shape == (20, 4 + 5)
    assert_array_equal(model.dilations_, 1)  # training samples of one step
    assert set(np.unique(out[:, 4:])) <= {0.0, 1.0}  # a window of one step


def test_dilations_bounded_by_the_training_lengths():
    rng = np.random.RandomState(0)
    X = [rng.normal(size=(n, 1)) for n in rng.randint(80, 121, size=30)]
    model = RandomConvolutions(n_kernels=300, random_state=0).fit(X)
    median = np.median([len(s) for s in X])
    span = (model.lengths_ - 1) * model.dilations_ + 1
    assert span.max() <= median
    assert model.dilations_.max() >= 6  # the range is used, not only d = 1
    assert set(np.unique(model.lengths_)) == {7, 9, 11}
    # sorted by dilation then length: groups are runs
    key = model.dilations_ * 100 + model.lengths_
    assert np.all(np.diff(key) >= 0)


def test_short_sequences_get_short_dilations():
    X = [np.random.RandomState(i).normal(size=(10, 2)) for i in range(8)]
    model = RandomConvolutions(n_kernels=50, random_state=0).fit(X)
    assert_array_equal(model.dilations_, 1)


def test_multivariate_kernels_read_a_few_channels_and_sum_to_zero():
    X = _ragged(n_channels=12, lengths=(30, 40, 50))
    model = RandomConvolutions(n_kernels=200, random_state=0).fit(X)
    read = np.abs(model.weights_).sum(axis=1) > 0  # (n_kernels, n_channels)
    n_read = read.sum(axis=1)
    assert n_read.min() == 1 and n_read.max() <= 9
    assert len(np.unique(n_read)) > 3
    assert_allclose(model.weights_.sum(axis=(1, 2)), 0, atol=1e-12)
    for k in range(model.n_kernels):  # the kernel's taps are the middle ones
        unused = (11 - model.lengths_[k]) // 2
        assert not model.weights_[k, :unused].any() and not model.weights_[k, 11 - unused :].any()
        assert model.weights_[k, unused].any() and model.weights_[k, 10 - unused].any()


def test_biases_are_quantiles_of_training_responses():
    X = _ragged(n_channels=1, lengths=(100, 120, 90))
    model = RandomConvolutions(n_kernels=40, keep_input=False, random_state=0).fit(X)
    above = np.concatenate([o for o in model.transform(X)])
    mean_share = above.mean(axis=0)
    # neither all-positive nor all-negative on the training data, for most kernels
    assert 0.1 < mean_share.mean() < 0.9
    assert np.ptp(mean_share) > 0.5  # quantiles spread over (0, 1)


def test_random_state_reproducible_and_seeds_differ():
    X = _ragged()
    a = RandomConvolutions(n_kernels=8, random_state=1).fit(X)
    b = RandomConvolutions(n_kernels=8, random_state=1).fit(X)
    c = RandomConvolutions(n_kernels=8, random_state=2).fit(X)
    assert_array_equal(a.weights_, b.weights_)
    assert_array_equal(a.biases_, b.biases_)
    for x, y in zip(a.transform(X), b.transform(X)):
        assert_array_equal(x, y)
    assert not np.array_equal(a.weights_, c.weights_)


def test_keep_input_and_feature_names():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 4.0, 0.0]})
    model = RandomConvolutions(n_kernels=3, random_state=0).fit(X)
    assert model.get_feature_names_out().tolist() == ["a", "b", "conv0", "conv1", "conv2"]
    out = model.set_output(transform="pandas").transform(X)
    assert out.columns.tolist() == ["a", "b", "conv0", "conv1", "conv2"]
    assert_array_equal(out[["a", "b"]].to_numpy(), X.to_numpy())

    series = _ragged()
    without = RandomConvolutions(n_kernels=3, keep_input=False, random_state=0).fit(series)
    assert without.get_feature_names_out().tolist() == ["conv0", "conv1", "conv2"]
    with_input = RandomConvolutions(n_kernels=3, random_state=0).fit(series)
    for w, wo, s in zip(with_input.transform(series), without.transform(series), series):
        assert_array_equal(w[:, :3], s)
        assert_array_equal(w[:, 3:], wo)


def test_validation_names_the_sample():
    X = _ragged()
    model = RandomConvolutions(n_kernels=3, random_state=0)
    bad = [s.copy() for s in X]
    bad[4][7, 1] = np.nan
    with pytest.raises(ValueError, match="sample 4 contains NaN"):
        model.fit(bad)
    bad = [s.copy() for s in X]
    bad[2][0, 0] = np.inf
    with pytest.raises(ValueError, match="sample 2 contains infinity"):
        model.fit(bad)
    with pytest.raises(ValueError, match="sample 3 has 2 features, expected 3"):
        model.fit(X[:3] + [np.ones((4, 2))])
    padded = _pad(X, 96)
    padded[5, 2, 0] = np.nan  # partly NaN: not padding
    with pytest.raises(ValueError, match="sample 5 contains NaN in a partially filled element"):
        model.fit(padded)
    model.fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but RandomConvolutions is expecting 3"):
        model.transform([np.ones((4, 2))])
    with pytest.raises(ValueError, match="n_kernels"):
        RandomConvolutions(n_kernels=0).fit(X)
    with pytest.raises(ValueError, match="window"):
        RandomConvolutions(window=-1).fit(X)


def test_channel_units_do_not_matter():
    # the kernels read standardised channels: any positive scale and shift
    # per channel gives the same kernels the same inputs
    X = _ragged(n_channels=4)
    units = np.array([1e-3, 1.0, 50.0, 1e4]), np.array([0.0, -3.0, 100.0, 7.0])
    rescaled = [s * units[0] + units[1] for s in X]
    kwargs = dict(n_kernels=30, keep_input=False, random_state=0)
    out = RandomConvolutions(**kwargs).fit(X).transform(X)
    out_rescaled = RandomConvolutions(**kwargs).fit(rescaled).transform(rescaled)
    for a, b in zip(out, out_rescaled):
        assert_allclose(a, b, atol=1e-12)


def test_float32_responses_are_computed_in_float32(monkeypatch):
    import sk_attention._random_convolutions as module

    seen = []
    original = module.convolve

    def recording(elements, *args):
        seen.append(elements.dtype)
        out = original(elements, *args)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(module, "convolve", recording)
    X32 = [s.astype(np.float32) for s in _ragged()]
    RandomConvolutions(n_kernels=10, random_state=0).fit(X32).transform(X32)
    assert seen and set(seen) == {np.dtype(np.float32)}
