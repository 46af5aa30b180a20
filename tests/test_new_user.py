"""What a new user tries first: output containers, common inputs, errors that say what to do.

Each test here failed before issue 12 was fixed.
"""

import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sk_attention import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    ElementwiseTransformer,
    PositionalEncoding,
    attention_weights,
)

pd = pytest.importorskip("pandas")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _bags(n=40, width=5, seed=0):
    rng = np.random.RandomState(seed)
    bags = [rng.normal(size=(rng.randint(2, 9), width)) for _ in range(n)]
    y = np.arange(n) % 2
    for bag, label in zip(bags, y):
        bag[0, 0] += 3.0 * label
    return bags, y


def _padded(bags):
    out = np.full((len(bags), max(map(len, bags)) + 1, bags[0].shape[1]), np.nan)
    for i, bag in enumerate(bags):
        out[i, 1 : 1 + len(bag)] = np.asarray(bag)
    return out


def _forms():
    bags, y = _bags()
    return {"ragged": bags, "3d": _padded(bags), "2d": np.vstack([b[0] for b in bags])}, y


# -- 1, 2: pandas and polars output ----------------------------------------------------


def _sklearn_reads_polars_names():
    """Whether this scikit-learn takes feature names from a polars DataFrame.

    scikit-learn 1.6 reads them through the dataframe interchange protocol,
    which polars 2 no longer has: there even ``StandardScaler`` fitted on a
    polars frame has no ``feature_names_in_``, and a Pipeline's output
    columns fall back to ``x0, x1, ...`` -- ours as scikit-learn's own.
    """
    import polars as pl

    frame = pl.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
    return hasattr(StandardScaler().fit(frame), "feature_names_in_")


@pytest.mark.parametrize("container", ["pandas", "polars"])
@pytest.mark.parametrize("how", ["global", "set_output"])
@pytest.mark.parametrize("form", ["ragged", "3d", "2d"])
def test_every_estimator_works_under_dataframe_output(container, how, form):
    if container == "polars":
        pytest.importorskip("polars")
    forms, y = _forms()
    X = forms[form]
    pipelines = [
        make_pipeline(ElementwiseTransformer(StandardScaler()), AttentionClassifier(max_iter=5)),
        make_pipeline(ElementwiseTransformer(StandardScaler()), AttentionRegressor(max_iter=5)),
        make_pipeline(
            ElementwiseTransformer(StandardScaler()), PositionalEncoding(),
            AttentionPooling(n_heads=2, max_iter=5),
        ),
    ]
    context = (
        sklearn.config_context(transform_output=container)
        if how == "global" else warnings.catch_warnings()
    )
    with context:
        for pipe in pipelines:
            if how == "set_output":
                pipe.set_output(transform=container)
            target = y.astype(float) if isinstance(pipe[-1], AttentionRegressor) else y
            pipe.fit(X, target)
            if hasattr(pipe[-1], "transform"):
                pooled = pipe.transform(X)
                assert type(pooled).__module__.split(".")[0] == container  # a DataFrame
                if container == "pandas" or _sklearn_reads_polars_names():
                    assert list(pooled.columns) == list(pipe.get_feature_names_out())
            else:
                assert pipe.predict(X).shape == (len(y),)
        scaled = ElementwiseTransformer(StandardScaler())
        if how == "set_output":
            scaled.set_output(transform=container)
        out = scaled.fit_transform(X)
    if form == "2d":
        assert type(out).__module__.split(".")[0] == container
    elif form == "3d":
        assert isinstance(out, np.ndarray) and out.shape == X.shape  # keeps its form
        np.testing.assert_array_equal(np.isnan(out).all(axis=2), np.isnan(X).all(axis=2))
    else:  # a list, of DataFrames, so the names travel to the next step
        assert isinstance(out, list) and len(out) == len(X)
        assert all(type(o).__module__.split(".")[0] == container for o in out)
        assert [o.shape for o in out] == [x.shape for x in X]


def test_pandas_output_keeps_the_input_names():
    bags, y = _bags()
    frames = [pd.DataFrame(b, columns=list("abcde")) for b in bags]
    pipe = make_pipeline(
        ElementwiseTransformer(StandardScaler()), AttentionPooling(n_heads=2, max_iter=5)
    ).set_output(transform="pandas")
    pooled = pipe.fit(frames, y).transform(frames)
    assert list(pooled.columns) == list(pipe.get_feature_names_out())
    assert list(pooled.columns[:5]) == [f"head0__{c}" for c in "abcde"]
    scaled = ElementwiseTransformer(StandardScaler()).set_output(transform="pandas")
    flat = np.vstack([b[0] for b in bags])
    assert isinstance(scaled.fit_transform(flat), pd.DataFrame)
    assert isinstance(scaled.transform(flat.tolist()), pd.DataFrame)


# -- 4: the containers users hold collections in ---------------------------------------------


@pytest.mark.parametrize(
    "container",
    [
        lambda bags: np.array(bags + [np.zeros((1, 5))], dtype=object)[:-1],
        lambda bags: pd.Series(bags),
        lambda bags: pd.Series([pd.DataFrame(b, columns=list("abcde")[: b.shape[1]]) for b in bags]),
        lambda bags: tuple(bags),
    ],
    ids=["object ndarray", "Series of arrays", "Series of DataFrames", "tuple"],
)
def test_object_arrays_and_series_are_ragged_collections(container):
    bags, y = _bags()
    X = container(bags)
    if isinstance(X, np.ndarray):
        assert X.dtype == object and X.ndim == 1
    model = AttentionClassifier(n_heads=2, max_iter=10, random_state=0)
    expected = model.fit(bags, y).predict_proba(bags)
    np.testing.assert_allclose(model.fit(X, y).predict_proba(X), expected, rtol=1e-12)
    weights = model.attention_weights(X)
    assert isinstance(weights, list) and [len(w) for w in weights] == [len(b) for b in bags]
    broken = list(bags)
    broken[3] = broken[3][:, :4]
    with pytest.raises(ValueError, match="sample 3 (has 4 features, expected 5|has other feature names)"):
        model.fit(container(broken), y)


# -- 5: errors that say what to do ----------------------------------------------------------


def test_four_dimensions_name_the_accepted_forms():
    with pytest.raises(ValueError, match=r"X has 4 dimensions; pass a 2D array .* a 3D array .* a list of 2D arrays"):
        AttentionClassifier().fit(np.zeros((4, 3, 2, 2)), np.arange(4) % 2)


@pytest.mark.parametrize("empty", [[], (), pd.Series([], dtype=object)])
def test_no_samples_says_so(empty):
    bags, y = _bags()
    model = AttentionClassifier(max_iter=5).fit(bags, y)
    with pytest.raises(ValueError, match="X holds no samples"):
        model.predict(empty)


def test_nan_in_a_ragged_sample_names_the_element_and_the_remedy():
    bags, y = _bags()
    bags[3] = bags[3].copy()
    bags[3][1, 2] = np.nan
    message = (
        r"sample 3 contains NaN in element 1; missing values can be imputed per element "
        r"with ElementwiseTransformer\(SimpleImputer\(\)\); all-NaN elements are padding "
        r"only in 3D arrays"
    )
    with pytest.raises(ValueError, match=message):
        AttentionClassifier().fit(bags, y)
    bags[5] = bags[5].copy()
    bags[5][0, 0] = np.inf
    with pytest.raises(ValueError, match="sample 3 contains NaN in element 1"):
        AttentionClassifier().fit(bags, y)  # the first bad sample is named
    imputed = make_pipeline(ElementwiseTransformer(SimpleImputer()), AttentionClassifier(max_iter=5))
    with pytest.raises(ValueError, match="sample 5 contains infinity in element 0"):
        imputed.fit(bags, y)  # NaN is the imputer's, infinity nobody's


def test_feature_names_are_checked_as_for_2d_input():
    bags, y = _bags()
    frames = [pd.DataFrame(b, columns=list("abcde")) for b in bags]
    model = AttentionClassifier(max_iter=5).fit(frames, y)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but AttentionClassifier was fitted with feature names"):
        model.predict(bags)
    renamed = [f.rename(columns={"a": "z"}) for f in frames]
    with pytest.raises(ValueError, match=r"(?s)Feature names unseen at fit time:\n- z\nFeature names seen at fit time, yet now missing:\n- a"):
        model.predict(renamed)
    plain = AttentionClassifier(max_iter=5).fit(bags, y)
    with pytest.warns(UserWarning, match="X has feature names, but AttentionClassifier was fitted without feature names"):
        plain.predict(frames)
    # 3D arrays carry names under pandas output (no DataFrame is 3D)
    with sklearn.config_context(transform_output="pandas"):
        named = ElementwiseTransformer(StandardScaler()).fit_transform(_padded(frames))
    assert list(named.columns) == [f"x{j}" for j in range(5)]
    model3d = AttentionClassifier(max_iter=5).fit(named, y)
    assert list(model3d.feature_names_in_) == list(named.columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model3d.predict(np.asarray(named))
    named.columns = ["x0", "x1", "x2", "x3", "w"]
    with pytest.raises(ValueError, match=r"(?s)unseen at fit time:\n- w\n.*yet now missing:\n- x4"):
        model3d.predict(named)


@pytest.mark.parametrize("form", ["ragged", "3d", "2d"])
@pytest.mark.parametrize(
    "make_bad",
    [
        lambda X: X.astype(str),
        lambda X: X.astype(str).astype(bytes),
        lambda X: X.astype(str).astype(object),
        lambda X: np.ma.masked_invalid(np.where(X > 1.5, np.nan, X)),
    ],
    ids=["strings", "bytes", "object strings", "masked"],
)
def test_strings_bytes_and_masked_arrays_are_refused(form, make_bad):
    forms, y = _forms()
    X = forms[form]
    with np.errstate(invalid="ignore"):  # numpy < 1.25 warns when it writes NaN as a string
        bad = [make_bad(x) for x in X] if form == "ragged" else make_bad(X)
    kind = "masked" if np.ma.isMaskedArray(bad if form != "ragged" else bad[0]) else "strings"
    match = "masked array" if kind == "masked" else "holds strings"
    with pytest.raises(ValueError, match=match):
        AttentionClassifier(max_iter=5).fit(bad, y)


def test_a_transformer_may_not_turn_a_real_element_into_padding():
    forms, y = _forms()
    X = np.abs(forms["3d"])
    X[2, 3, :] = 0.0  # log(0) = -inf is not NaN: fine; a negative gives NaN
    X[4, 2, :] = -1.0
    logged = ElementwiseTransformer(FunctionTransformer(np.log))
    with np.errstate(invalid="ignore", divide="ignore"), pytest.raises(
        ValueError, match="FunctionTransformer turned step 2 of sample 4, a real element, into all NaN"
    ):
        logged.fit_transform(X)


# -- 6, 7: attention weights from a pipeline, and plots --------------------------------------


@pytest.mark.parametrize("form", ["ragged", "3d"])
def test_attention_weights_from_a_pipeline_and_raw_X(form):
    forms, y = _forms()
    X = forms[form]
    pipe = make_pipeline(
        ElementwiseTransformer(StandardScaler()), PositionalEncoding(),
        AttentionClassifier(n_heads=2, max_iter=10, random_state=0),
    ).fit(X, y)
    expected = pipe[-1].attention_weights(pipe[:-1].transform(X))
    got = attention_weights(pipe, X)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    # the attention step need not be last, and a bare estimator works too
    pooled = make_pipeline(
        ElementwiseTransformer(StandardScaler()), AttentionPooling(n_heads=2, max_iter=5),
        StandardScaler(),
    ).fit(X, y)
    assert len(attention_weights(pooled, X)) == len(y)
    assert len(attention_weights(pipe[-1], pipe[:-1].transform(X))) == len(y)
    with pytest.raises(TypeError, match="no step with attention_weights"):
        attention_weights(make_pipeline(StandardScaler()), forms["2d"])


def test_display_names_the_sample_and_refuses_one_out_of_range():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sk_attention.plotting import AttentionDisplay

    bags, y = _bags()
    pipe = make_pipeline(
        ElementwiseTransformer(StandardScaler()), PositionalEncoding(),
        AttentionClassifier(n_heads=2, max_iter=10, random_state=0),
    ).fit(bags, y)
    display = AttentionDisplay.from_estimator(pipe, bags, sample=7)
    assert display.ax_.get_title() == "Attention of AttentionClassifier, sample 7"
    expected = attention_weights(pipe, bags[7:8])[0].mean(axis=1)
    np.testing.assert_allclose([bar.get_height() for bar in display.bars_], expected)
    plt.close("all")
    for sample in (40, 500, -41, 1.5):
        with pytest.raises(ValueError, match=r"out of range: X holds 40 samples"):
            AttentionDisplay.from_estimator(pipe, bags, sample=sample)


# -- 9: one bag -----------------------------------------------------------------------------


def test_the_docstrings_say_how_to_pass_one_bag():
    for method in (
        AttentionClassifier.predict, AttentionClassifier.predict_proba,
        AttentionRegressor.predict, AttentionPooling.transform,
        AttentionClassifier.attention_weights,
    ):
        text = re.sub(r"\s+", " ", method.__doc__)
        assert "pass ``[bag]``" in text, method.__qualname__
