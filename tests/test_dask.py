"""Fitting on dask arrays, on a real ``distributed.LocalCluster`` (not a mock).

Two worker processes of one thread each: the partitions are packed, kept
and evaluated in other processes than the test, as on a cluster.
"""

import collections
import gc
import os
import pickle
import re
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from sklearn.base import clone  # noqa: E402

from sk_attention import AttentionClassifier, AttentionPooling, AttentionRegressor  # noqa: E402

# small and quick: a few iterations suffice to compare two fits' paths
_SMALL = dict(n_heads=2, hidden_size=4, max_iter=15, random_state=0)

_ESTIMATORS = {
    "classifier": AttentionClassifier,
    "regressor": AttentionRegressor,
    "pooling": AttentionPooling,
}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def _data(form, n=70, seed=0):
    """3D NaN-padded sequences of 1 to 6 elements (or their first elements as 2D)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6, 3))
    lengths = rng.integers(1, 7, size=n)
    for i, length in enumerate(lengths):
        X[i, length:] = np.nan
    y_class = (X[:, 0, 0] + np.nanmax(X[:, :, 1], axis=1) > 0.5).astype(int)
    y_value = X[:, 0, 0] + 0.5 * np.nanmean(X[:, :, 2], axis=1)
    if form == "2d":
        X = X[:, 0, :].copy()
    return X, y_class, y_value


def _to_dask(X, chunks=(30, 25, 15)):
    """Uneven chunks along samples only, not aligned with any block of the in-memory fit."""
    return da.from_array(X, chunks=(chunks,) + X.shape[1:])


def _relative_difference(a, b):
    """Largest difference of any parameter, relative to the largest parameter.

    Over all arrays at once: a parameter whose optimum is 0 (the scorer of
    one-element samples gets no gradient, so only the penalty shrinks it)
    has a relative difference of rounding noise over nearly nothing.
    """
    arrays = [(a.coefs_, b.coefs_), (a.intercepts_, b.intercepts_)]
    difference = max(np.abs(x[k] - y[k]).max() for x, y in arrays for k in x)
    size = max(np.abs(x[k]).max() for x, _ in arrays for k in x)
    return difference / size


def _fit_recording(estimator, X, y, **fit_params):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X, y, **fit_params)
    return estimator, sorted({w.category.__name__ for w in caught})


@pytest.mark.parametrize(
    "name, form, target, weighted, dask_y",
    [
        ("classifier", "3d", "class", True, True),
        ("classifier", "2d", "class", False, False),
        ("regressor", "3d", "value", False, False),
        ("regressor", "2d", "value", True, True),
        ("pooling", "3d", "class", False, False),
        ("pooling", "2d", "value", False, False),
    ],
)
def test_dask_fit_equals_in_memory_fit(client, name, form, target, weighted, dask_y):
    X, y_class, y_value = _data(form)
    y = y_class if target == "class" else y_value
    fit_params = {}
    if weighted:
        fit_params["sample_weight"] = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    in_memory, in_memory_warnings = _fit_recording(_ESTIMATORS[name](**_SMALL), X, y, **fit_params)
    if dask_y:
        y = da.from_array(y, chunks=30)
        fit_params = {key: da.from_array(value, chunks=30) for key, value in fit_params.items()}
    on_cluster, cluster_warnings = _fit_recording(
        _ESTIMATORS[name](**_SMALL), _to_dask(X), y, **fit_params
    )

    assert _relative_difference(on_cluster, in_memory) <= 1e-10
    assert on_cluster.n_iter_ == in_memory.n_iter_
    np.testing.assert_allclose(on_cluster.loss_curve_, in_memory.loss_curve_, rtol=1e-12)
    assert on_cluster.n_features_in_ == in_memory.n_features_in_ == 3
    assert cluster_warnings == in_memory_warnings  # e.g. the same ConvergenceWarning
    if hasattr(in_memory, "classes_"):
        np.testing.assert_array_equal(on_cluster.classes_, in_memory.classes_)
    # nothing of the fit stays on the cluster
    _wait_until_empty(client)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_dask_fit_equals_in_memory_fit(client):
    X, y, _ = _data("3d")
    X = X.astype(np.float32)
    in_memory = AttentionClassifier(**_SMALL).fit(X, y)
    on_cluster = AttentionClassifier(**_SMALL).fit(_to_dask(X), y)
    # float32 products in other blocks: float32 rounding, not float64's
    assert _relative_difference(on_cluster, in_memory) <= 1e-4


def _held(client):
    """What the cluster holds: keys with data on a worker, and this client's futures.

    (The scheduler may remember a released key, without data or anyone
    wanting it, a while longer: dask's bookkeeping, not something held.)
    """
    in_memory = {key for key, workers in client.who_has().items() if workers}
    return in_memory | set(client.futures)


def _wait_until_empty(client, timeout=10.0):
    """The cluster releases cancelled futures asynchronously."""
    deadline = time.monotonic() + timeout
    while _held(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _held(client), "the fit left data on the cluster"


def _released(client):
    """Nothing left on the cluster once the finished computations are garbage.

    Futures of a computation can sit in reference cycles (a failed
    compute's exception holds them in traceback frames), which only the
    cyclic garbage collector frees.
    """
    gc.collect()
    _wait_until_empty(client)


# damage done to X in chunks of 30, 25 and 15 samples, and the error it must give
_BAD_SAMPLES = [
    ("3d", lambda X: X.__setitem__((41, 0, 2), np.nan), "sample 41 contains NaN"),
    ("3d", lambda X: X.__setitem__((57, 0, 1), np.inf), "sample 57 contains infinity"),
    ("3d", lambda X: X.__setitem__((33, slice(None)), np.nan), "sample 33 has no elements"),
    ("2d", lambda X: X.__setitem__((64, 1), -np.inf), "sample 64 contains infinity"),
    ("2d", lambda X: X.__setitem__((31, 0), np.nan), "sample 31 contains NaN"),
]


@pytest.mark.parametrize("form, damage, message", _BAD_SAMPLES)
def test_a_bad_partition_names_the_global_sample_index(client, form, damage, message):
    X, y, _ = _data(form)
    damage(X)
    estimator = AttentionClassifier(**_SMALL)
    with pytest.raises(ValueError, match=message):
        estimator.fit(_to_dask(X), y)
    assert not hasattr(estimator, "coefs_")
    _wait_until_empty(client)


def test_the_first_bad_sample_is_named_when_several_partitions_fail(client):
    X, y, _ = _data("2d")
    X[5, 0] = np.inf  # first partition
    X[50, 0] = np.inf  # third partition
    with pytest.raises(ValueError, match="sample 5 contains infinity"):
        AttentionClassifier(**_SMALL).fit(_to_dask(X), y)
    _wait_until_empty(client)


@pytest.mark.parametrize(
    "chunks, message",
    [
        ((35, 6, (2, 1)), "chunked along axis 2"),
        ((35, 3, 3), "chunked along axis 1"),
    ],
)
def test_dask_arrays_must_be_chunked_along_samples_only(client, chunks, message):
    X, y, _ = _data("3d")
    with pytest.raises(ValueError, match=message):
        AttentionClassifier(**_SMALL).fit(da.from_array(X, chunks=chunks), y)


def test_a_1d_dask_array_is_refused(client):
    with pytest.raises(ValueError, match="1D dask array"):
        AttentionClassifier().fit(da.zeros(10, chunks=5), np.arange(10) % 2)


def test_y_of_another_length_is_refused(client):
    X, y, _ = _data("2d")
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AttentionClassifier(**_SMALL).fit(_to_dask(X), y[:-1])
    _wait_until_empty(client)


def test_import_does_not_import_dask():
    code = (
        "import sys, sk_attention; "
        "sys.exit('dask' in sys.modules or 'distributed' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fitted_on_a_cluster_the_model_is_plain_numpy(client, tmp_path):
    X, y, _ = _data("3d")
    estimator = AttentionClassifier(**_SMALL).fit(_to_dask(X), y)
    for name, value in vars(estimator).items():
        for item in value.values() if isinstance(value, dict) else [value]:
            module = type(item).__module__
            assert not module.startswith(("dask", "distributed")), name
    expected = AttentionClassifier(**_SMALL).fit(X, y).predict_proba(X)
    path = tmp_path / "model.pkl"
    np.save(tmp_path / "X.npy", X)
    path.write_bytes(pickle.dumps(estimator))
    # a fresh interpreter, without dask: unpickle and predict on NumPy
    code = textwrap.dedent(
        f"""
        import pickle, sys
        import numpy as np
        estimator = pickle.loads(open({str(path)!r}, "rb").read())
        proba = estimator.predict_proba(np.load({str(tmp_path / "X.npy")!r}))
        np.save({str(tmp_path / "proba.npy")!r}, proba)
        sys.exit("dask" in sys.modules or "distributed" in sys.modules)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), expected, rtol=1e-8, atol=1e-12)


def test_without_a_client_dask_computes_the_array_for_the_in_memory_fit(tmp_path):
    # in a fresh interpreter: this module's cluster is the default client here
    code = textwrap.dedent(
        """
        import numpy as np
        import dask.array as da
        from sk_attention import AttentionRegressor
        rng = np.random.default_rng(0)
        X = rng.normal(size=(40, 4, 3))
        X[::2, 2:] = np.nan
        y = rng.normal(size=40)
        params = dict(n_heads=2, hidden_size=4, max_iter=5, random_state=0)
        a = AttentionRegressor(**params).fit(X, y)
        b = AttentionRegressor(**params).fit(da.from_array(X, chunks=(15, 4, 3)), y)
        for key in a.coefs_:
            np.testing.assert_array_equal(a.coefs_[key], b.coefs_[key])
        """
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_chunk_gives_the_in_memory_fit_to_the_bit(client):
    # one partition cut into the in-memory fit's blocks, its sums added in
    # the same order: not a bit differs
    X, _, y = _data("3d", n=300)
    in_memory = AttentionRegressor(**_SMALL).fit(X, y)
    on_cluster = AttentionRegressor(**_SMALL).fit(da.from_array(X, chunks=-1), y)
    for key in in_memory.coefs_:
        np.testing.assert_array_equal(on_cluster.coefs_[key], in_memory.coefs_[key])
    assert on_cluster.loss_curve_ == in_memory.loss_curve_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_chunks_matching_the_in_memory_blocks_give_its_fit_to_the_bit(client):
    from sk_attention._collections import check_collections
    from sk_attention._workspace import _cut_blocks

    X, _, y = _data("3d", n=3600)  # about 12,600 elements: 4 blocks of the in-memory fit
    offsets = check_collections(X, estimator=AttentionRegressor(), reset=True).offsets
    bounds = _cut_blocks(offsets, 4096)
    assert len(bounds) == 5
    chunks = tuple(int(size) for size in np.diff(bounds))
    in_memory = AttentionRegressor(**_SMALL).fit(X, y)
    on_cluster = AttentionRegressor(**_SMALL).fit(_to_dask(X, chunks=chunks), y)
    _assert_same_fit(on_cluster, in_memory)
    _released(client)


@pytest.mark.parametrize("chunks", [(100, 120, 80), (1,) * 13 + (287,), (299, 1)])
def test_any_partitioning_evaluates_the_in_memory_objective(client, chunks):
    """The loss and gradient at the same parameters, to float64 rounding.

    Whatever the chunks, only the grouping of the sums differs.  Over many
    L-BFGS iterations such differences grow as they do for an in-memory fit
    of the same samples in another order; the test above shows the paths
    agree to 1e-10 over the first ones.
    """
    from sk_attention._base import _InMemoryData
    from sk_attention._dask import training_data

    X, _, y = _data("3d", n=300)
    params = AttentionRegressor(**_SMALL).fit(X, y)._fitted_model()[0]
    targets = y[:, None]
    weights = np.random.default_rng(3).uniform(0.5, 2.0, size=len(y))
    args = (2, "additive", "squared_error", targets, weights, 1e-3)
    expected_value, expected = _InMemoryData(X, AttentionRegressor()).objective(*args)(params)
    data = training_data(_to_dask(X, chunks=chunks), AttentionRegressor())
    try:
        value, grads = data.objective(*args)(params)
    finally:
        data.close()
    assert value == pytest.approx(expected_value, rel=1e-14)
    assert grads.keys() == expected.keys()
    for name in grads:
        size = np.abs(expected[name]).max()
        np.testing.assert_allclose(grads[name], expected[name], rtol=0, atol=1e-13 * size)
    _released(client)


def test_empty_chunks_are_skipped(client):
    X, y, _ = _data("2d")
    in_memory = AttentionClassifier(**_SMALL).fit(X, y)
    dask_X = da.from_array(X, chunks=((0, 30, 0, 40), (3,)))
    assert _relative_difference(AttentionClassifier(**_SMALL).fit(dask_X, y), in_memory) <= 1e-10


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_continues_a_dask_fit_as_an_in_memory_one(client):
    X, y, _ = _data("3d")
    params = dict(_SMALL, max_iter=5, warm_start=True)
    in_memory = AttentionClassifier(**params).fit(X, y).fit(X, y)
    on_cluster = AttentionClassifier(**params).fit(_to_dask(X), y).fit(_to_dask(X), y)
    assert _relative_difference(on_cluster, in_memory) <= 1e-10
    with pytest.raises(ValueError, match="features per element"):
        on_cluster.fit(_to_dask(X[:, :, :2]), y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_partition_pickles_with_its_elements():
    # dask may spill a partition to disk or move it between workers
    from sk_attention._attention import data_terms
    from sk_attention._dask import _pack_chunk, _prepare
    from sk_attention._segments import Segments
    from sk_attention._workspace import Workspace

    X, _, y = _data("3d")
    packed = _pack_chunk(X[10:40], first_sample=10)
    partition = _prepare(packed, 2, y[10:40, None], np.full(30, 1 / 30))
    params = AttentionRegressor(**_SMALL).fit(X, y)._fitted_model()[0]
    copy = pickle.loads(pickle.dumps(partition))
    np.testing.assert_array_equal(copy.workspace.stored_elements(), packed.elements)
    args = ("additive", "squared_error")
    expected = data_terms(params, partition.workspace, *args, partition.targets, partition.scale)
    value, pieces = data_terms(params, copy.workspace, *args, copy.targets, copy.scale)
    assert value == expected[0]
    for name in pieces:
        np.testing.assert_array_equal(pieces[name], expected[1][name])
    # samples longer than a block are stored in pieces: given back whole too
    cut = Workspace(packed.elements, Segments(packed.offsets, 2), block_size=2)
    np.testing.assert_array_equal(cut.stored_elements(), packed.elements)


def test_dask_counts_the_bytes_a_partition_holds():
    # its default for an object is a few dozen bytes: the scheduler would
    # think a partition free to move, and a worker's memory empty
    from dask.sizeof import sizeof

    from sk_attention._dask import _pack_chunk, _prepare
    from sk_attention._workspace import Workspace

    X, _, y = _data("3d", n=400)
    packed = _pack_chunk(X, first_sample=0)
    n_elements, n_features = packed.elements.shape
    assert sizeof(packed) >= packed.elements.nbytes + packed.offsets.nbytes
    partition = _prepare(packed, 2, y[:, None], np.full(400, 1 / 400))
    stored = n_elements * (n_features + 1) * 8  # [x | 1].T, block by block
    assert stored + y.nbytes + 400 * 8 <= sizeof(partition) <= 1.1 * stored + 20_000
    for block_size in (3, 4096):  # samples longer than 3 are stored in pieces: counted too
        workspace = Workspace(packed.elements, partition.workspace.segments, block_size=block_size)
        assert workspace.nbytes == stored + packed.offsets.nbytes


# -- inference on dask arrays ---------------------------------------------------

_METHODS = {
    "classifier": [
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "attention_weights",
    ],
    "regressor": ["predict", "attention_weights"],
    "pooling": ["transform", "attention_weights"],
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("form", ["2d", "3d"])
@pytest.mark.parametrize("name", list(_ESTIMATORS))
def test_inference_on_a_dask_array_is_lazy_and_equals_numpy(client, name, form):
    X, y_class, y_value = _data(form)
    y = y_value if name == "regressor" else y_class
    if name == "regressor" and form == "3d":
        y = np.column_stack([y_value, 10 * y_value + 3])  # multi-output
    estimator = _ESTIMATORS[name](**_SMALL).fit(X, y)
    # an empty chunk among uneven ones
    dask_X = da.from_array(X, chunks=((30, 0, 25, 15),) + X.shape[1:])
    for method in _METHODS[name]:
        lazy = getattr(estimator, method)(dask_X)
        assert isinstance(lazy, da.Array), method
        expected = getattr(estimator, method)(X)
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype, method
        assert lazy.chunks[0] == dask_X.chunks[0], method
        # the estimator is one node of the graph, not embedded in every block's task
        assert len(lazy.__dask_graph__()) == 2 * dask_X.numblocks[0] + 1, method
        np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-12, atol=1e-15)
    _released(client)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_and_string_labels_keep_their_dtypes_on_dask(client):
    X, y, _ = _data("3d")
    X = X.astype(np.float32)
    labels = np.array(["no", "yes", "maybe"])[y + (X[:, 0, 1] > 1)]
    estimator = AttentionClassifier(**_SMALL).fit(X, labels)
    dask_X = _to_dask(X)
    for method in ["predict", "decision_function", "attention_weights", "predict_proba"]:
        lazy = getattr(estimator, method)(dask_X)
        expected = getattr(estimator, method)(X)
        assert lazy.dtype == expected.dtype, method
        result = lazy.compute()
        assert result.dtype == expected.dtype, method
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(result, expected)
    _released(client)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name, target", [("classifier", "class"), ("regressor", "value")])
def test_score_on_a_dask_array_equals_numpy(client, name, target):
    X, y_class, y_value = _data("3d")
    y = y_class if target == "class" else y_value
    weight = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    estimator = _ESTIMATORS[name](**_SMALL).fit(X, y)
    expected = estimator.score(X, y, sample_weight=weight)
    assert estimator.score(_to_dask(X), y, sample_weight=weight) == pytest.approx(expected)
    dask_y = da.from_array(y, chunks=30)
    assert estimator.score(_to_dask(X), dask_y, weight) == pytest.approx(expected)
    _released(client)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name, target", [("classifier", "class"), ("regressor", "value")])
def test_score_computes_the_predictions_once(name, target):
    # scikit-learn's mixin score would compute a lazy prediction three times
    # (its target checks, then the metric): ours computes it once.  Local
    # scheduler, so that dask's callbacks see every compute.
    from dask.callbacks import Callback

    X, y_class, y_value = _data("3d")
    y = y_class if target == "class" else y_value
    estimator = _ESTIMATORS[name](**_SMALL).fit(X, y)
    starts = []

    class Count(Callback):
        def _start(self, dsk):
            starts.append(dsk)

    with dask.config.set(scheduler="sync"), Count():
        score = estimator.score(_to_dask(X), y)
    assert len(starts) == 1
    assert score == pytest.approx(estimator.score(X, y))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("form, damage, message", _BAD_SAMPLES)
def test_a_bad_block_at_inference_names_the_global_sample_index(client, form, damage, message):
    X, y, _ = _data(form)
    estimator = AttentionClassifier(**_SMALL).fit(X, y)
    damage(X)
    lazy = estimator.predict_proba(_to_dask(X))  # lazy: nothing is checked yet
    with pytest.raises(ValueError, match=message):
        lazy.compute()
    _released(client)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_inference_on_dask_checks_the_width_at_once_and_ignores_a_later_fit(client):
    X, y, _ = _data("3d")
    estimator = AttentionClassifier(**_SMALL).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but AttentionClassifier"):
        estimator.predict(_to_dask(X[:, :, :2]))  # before any compute
    expected = estimator.predict_proba(X)
    lazy = estimator.predict_proba(_to_dask(X))
    estimator.set_params(random_state=1).fit(X, 1 - y)  # the lazy result is of the old model
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-12)
    # two calls on the same X have keys of their own: computed together, each is its model's
    old, new = dask.compute(lazy, estimator.predict_proba(_to_dask(X)))
    np.testing.assert_allclose(old, expected, rtol=1e-12)
    np.testing.assert_allclose(new, estimator.predict_proba(X), rtol=1e-12)
    _released(client)


# -- the collection transformers and a whole Pipeline on dask arrays ---------------


def _pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer, PositionalEncoding

    return make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        PositionalEncoding(),
        AttentionClassifier(**dict(_SMALL, max_iter=30)),
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("form", ["2d", "3d"])
def test_a_pipeline_fits_and_predicts_on_dask_as_on_numpy(client, form):
    X, y, _ = _data(form)
    X = 5 * X + 2  # unscaled: the scaler matters
    dask_X = _to_dask(X)
    in_memory = _pipeline().fit(X, y)
    on_cluster = _pipeline().fit(dask_X, y)
    transformed = on_cluster[:-1].transform(dask_X)
    assert isinstance(transformed, da.Array)
    assert transformed.chunks[0] == dask_X.chunks[0] and transformed.ndim == X.ndim
    proba = on_cluster.predict_proba(dask_X)
    predicted = on_cluster.predict(dask_X)
    assert isinstance(proba, da.Array) and isinstance(predicted, da.Array)
    np.testing.assert_allclose(proba.compute(), in_memory.predict_proba(X), rtol=0, atol=1e-8)
    np.testing.assert_array_equal(predicted.compute(), in_memory.predict(X))
    _released(client)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_attention_weights_of_a_pipeline_on_dask_equal_numpy(client):
    from sk_attention import attention_weights

    X, y, _ = _data("3d")
    model = _pipeline().fit(X, y)
    lazy = attention_weights(model, _to_dask(X))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), attention_weights(model, X), rtol=1e-12)
    _released(client)


def test_without_a_client_inference_on_dask_runs_on_the_default_scheduler():
    # in a fresh interpreter: this module's cluster is the default client here
    code = textwrap.dedent(
        """
        import numpy as np
        import dask.array as da
        from sk_attention import AttentionClassifier
        rng = np.random.default_rng(0)
        X = rng.normal(size=(40, 4, 3))
        X[::2, 2:] = np.nan
        y = np.arange(40) % 2
        model = AttentionClassifier(n_heads=2, hidden_size=4, max_iter=5).fit(X, y)
        lazy = model.predict_proba(da.from_array(X, chunks=(15, 4, 3)))
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), model.predict_proba(X))
        """
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("form", ["2d", "3d"])
def test_collection_transformers_on_dask_equal_numpy(client, form, dtype):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer, PositionalEncoding

    X, _, _ = _data(form)
    X = X.astype(dtype)
    dask_X = _to_dask(X)
    for transformer in [
        ElementwiseTransformer(StandardScaler()),
        ElementwiseTransformer(PCA(n_components=2)),
        PositionalEncoding(n_frequencies=1),
    ]:
        expected = transformer.fit_transform(X)
        lazy = transformer.fit_transform(dask_X)
        assert isinstance(lazy, da.Array)
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
        result = lazy.compute()
        assert result.dtype == expected.dtype
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(result, expected, rtol=rtol, atol=rtol)  # NaN padding too
    _released(client)


@pytest.mark.parametrize("form", ["2d", "3d"])
def test_a_scaler_is_fitted_partition_by_partition_without_gathering_x(client, form, monkeypatch):
    from sklearn.decomposition import IncrementalPCA
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from sk_attention import ElementwiseTransformer, _dask

    def refuse(*args, **kwargs):
        raise AssertionError("X was computed into the client")

    monkeypatch.setattr(_dask, "computed", refuse)
    X, y, _ = _data(form)
    dask_X = _to_dask(X)  # chunks of 30, 25 and 15 samples
    for transformer in [StandardScaler(), MinMaxScaler(), IncrementalPCA(n_components=2)]:
        fitted = ElementwiseTransformer(transformer).fit(dask_X, y).transformer_
        # recomputed here: partial_fit on each chunk's real elements in turn
        expected = clone(transformer)
        for lo, hi in [(0, 30), (30, 55), (55, 70)]:
            chunk = X[lo:hi].reshape(-1, 3)
            expected.partial_fit(chunk[~np.isnan(chunk).any(axis=1)])
        for name in ("mean_", "var_", "scale_", "min_", "data_min_", "components_"):
            if hasattr(expected, name):
                np.testing.assert_array_equal(getattr(fitted, name), getattr(expected, name))
    _released(client)


@pytest.mark.parametrize("make", ["array", "bag"])
def test_a_bad_sample_met_by_a_partial_fit_is_named_in_all_of_x(client, make):
    import dask.bag as db
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer

    if make == "array":
        X, _, _ = _data("3d")
        X[57, 0, 1] = np.inf
        X = _to_dask(X)
    else:
        samples, _, _ = _ragged()
        samples[57][0, 1] = np.inf
        X = db.from_sequence(samples, npartitions=4)
    with pytest.raises(ValueError, match="sample 57 contains infinity"):
        ElementwiseTransformer(StandardScaler()).fit(X)
    _released(client)


def _fail(block):
    raise RuntimeError("X was computed")


def test_positional_encoding_fit_reads_only_the_shape_of_a_dask_array(client):
    from sk_attention import PositionalEncoding

    X, _, _ = _data("3d")
    never = _to_dask(X).map_blocks(_fail, dtype=X.dtype)
    encoder = PositionalEncoding().fit(never)
    assert encoder.n_features_in_ == 3
    assert encoder.transform(never).shape == (70, 6, 8)  # lazy


def test_a_bad_block_of_an_elementwise_transform_names_the_global_sample(client):
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer

    X, _, _ = _data("3d")
    scaler = ElementwiseTransformer(StandardScaler()).fit(X)
    X[57, 0, 1] = np.inf
    with pytest.raises(ValueError, match="sample 57 contains infinity"):
        scaler.transform(_to_dask(X)).compute()
    _released(client)


# -- fitting on a dask.bag.Bag of 2D arrays (ragged samples) ------------------------


def _ragged(n=70, seed=0):
    """Ragged samples of 1 to 6 elements of 3 features, with class and value targets."""
    rng = np.random.default_rng(seed)
    samples = [rng.normal(size=(rng.integers(1, 7), 3)) for _ in range(n)]
    y_class = np.array([int(s[0, 0] + s[:, 1].max() > 0.5) for s in samples])
    y_value = np.array([s[0, 0] + 0.5 * s[:, 2].mean() for s in samples])
    return samples, y_class, y_value


@pytest.mark.parametrize(
    "name, target, dtypes",
    [
        ("classifier", "class", "float64"),
        ("regressor", "value", "mixed"),  # float32 and float64 items: a float64 fit
        ("pooling", "class", "float64"),
    ],
)
def test_a_bag_fit_equals_the_in_memory_fit_on_the_list(client, name, target, dtypes):
    samples, y_class, y_value = _ragged()
    if dtypes == "mixed":
        samples = [s.astype(np.float32) if i % 2 else s for i, s in enumerate(samples)]
    y = y_class if target == "class" else y_value
    weight = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    in_memory, in_memory_warnings = _fit_recording(
        _ESTIMATORS[name](**_SMALL), samples, y, sample_weight=weight
    )
    # uneven partitions, an empty one among them (a filter may leave one)
    bag = _bag_with_an_empty_partition(samples)
    assert bag.map_partitions(lambda part: [len(list(part))]).compute() == [15, 15, 0, 14, 14, 12]
    on_cluster, cluster_warnings = _fit_recording(
        _ESTIMATORS[name](**_SMALL), bag, y, sample_weight=weight
    )
    assert _relative_difference(on_cluster, in_memory) <= 1e-10
    assert on_cluster.n_iter_ == in_memory.n_iter_
    assert on_cluster.n_features_in_ == 3
    assert cluster_warnings == in_memory_warnings
    _released(client)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda s: s[50].__setitem__((0, 1), np.inf), "sample 50 contains infinity"),
        (lambda s: s.__setitem__(61, np.zeros((2, 4))), "sample 61 has 4 features, expected 3"),
        (lambda s: s.__setitem__(44, np.zeros(3)), "sample 44 has 1 dimensions"),
        (lambda s: s.__setitem__(23, np.zeros((0, 3))), "sample 23 has no elements"),
    ],
)
def test_a_bad_item_of_a_bag_names_the_global_sample_index(client, damage, message):
    import dask.bag as db

    samples, y, _ = _ragged()
    damage(samples)
    estimator = AttentionClassifier(**_SMALL)
    with pytest.raises(ValueError, match=message):
        estimator.fit(db.from_sequence(samples, npartitions=3), y)
    assert not hasattr(estimator, "coefs_")
    _released(client)


def test_y_of_another_length_than_a_bag_is_refused(client):
    import dask.bag as db

    samples, y, _ = _ragged()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AttentionClassifier(**_SMALL).fit(db.from_sequence(samples, npartitions=3), y[:-1])
    _released(client)


def _bag_with_an_empty_partition(samples):
    """Partitions of 15, 15, 0, 14, 14 and 12 samples, in the list's order."""
    import dask.bag as db

    return db.concat(
        [
            db.from_sequence(samples[:30], npartitions=2),
            db.from_sequence(samples[:5], npartitions=1).filter(lambda sample: False),
            db.from_sequence(samples[30:], npartitions=3),
        ]
    )


def _assert_samples_equal(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(_ESTIMATORS))
def test_inference_on_a_bag_is_lazy_and_equals_the_list(client, name):
    import dask.bag as db

    samples, y_class, y_value = _ragged()
    y = y_value if name == "regressor" else y_class
    estimator = _ESTIMATORS[name](**_SMALL).fit(samples, y)
    bag = _bag_with_an_empty_partition(samples)
    for method in _METHODS[name]:
        lazy = getattr(estimator, method)(bag)
        expected = getattr(estimator, method)(samples)
        if method == "attention_weights":  # one (n_elements_i, n_heads) array per sample
            assert isinstance(lazy, db.Bag) and lazy.npartitions == bag.npartitions
            _assert_samples_equal(lazy.compute(), expected)
            continue
        # one chunk per partition, of sizes known once computed
        assert isinstance(lazy, da.Array) and lazy.numblocks[0] == bag.npartitions
        assert np.isnan(lazy.shape[0]) and lazy.shape[1:] == expected.shape[1:]
        computed = lazy.compute()
        assert computed.dtype == lazy.dtype == expected.dtype
        np.testing.assert_array_equal(computed, expected)
    if hasattr(estimator, "score"):
        assert estimator.score(bag, y) == estimator.score(samples, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_float32_bag_gives_the_float32_results_in_float64(client):
    # a bag's dtype is known only once its items are loaded: declared float64
    samples, y, _ = _ragged()
    samples = [s.astype(np.float32) for s in samples]
    estimator = AttentionPooling(**_SMALL).fit(samples, y)
    bag = _bag_with_an_empty_partition(samples)
    lazy = estimator.transform(bag)
    expected = estimator.transform(samples)
    assert expected.dtype == np.float32 and lazy.dtype == np.float64
    np.testing.assert_array_equal(lazy.compute(), expected.astype(np.float64))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_pipeline_fits_and_predicts_on_a_bag_as_on_the_list(client):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer, PositionalEncoding

    def pipeline():
        return make_pipeline(
            ElementwiseTransformer(StandardScaler()),
            PositionalEncoding(n_frequencies=2),
            AttentionClassifier(**_SMALL),
        )

    samples, y, _ = _ragged()
    bag = _bag_with_an_empty_partition(samples)
    on_list = pipeline().fit(samples, y)
    on_bag = pipeline().fit(bag, y)
    assert _relative_difference(on_bag[-1], on_list[-1]) <= 1e-10
    # a bag of transformed samples, as the list's (the scaler's statistics
    # gathered partition by partition: equal to rounding)
    transformed = on_bag[:-1].transform(bag).compute()
    expected = on_list[:-1].transform(samples)
    assert len(transformed) == len(expected)
    for a, b in zip(transformed, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    proba = on_bag.predict_proba(bag).compute()
    np.testing.assert_allclose(proba, on_list.predict_proba(samples), rtol=1e-9, atol=1e-12)
    _released(client)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda s: s[50].__setitem__((0, 1), np.inf), r"partition 4 of the bag, sample 6 contains inf"),
        (lambda s: s.__setitem__(33, np.zeros((2, 4))), r"partition 3 of the bag, .*4 features"),
        (lambda s: s.__setitem__(3, np.zeros((0, 3))), r"partition 0 of the bag, sample 3 has no el"),
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_bad_item_at_inference_names_its_partition(client, damage, message):
    # lazily, a partition does not know how many samples come before it
    samples, y, _ = _ragged()
    estimator = AttentionClassifier(**_SMALL).fit(samples, y)
    damage(samples)
    lazy = estimator.predict(_bag_with_an_empty_partition(samples))
    with pytest.raises(ValueError, match=message):
        lazy.compute()


def test_a_collection_transformer_fitted_on_a_bag_reads_its_items(client):
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer, PositionalEncoding

    samples, _, _ = _ragged()
    bag = _bag_with_an_empty_partition(samples)
    scaler = ElementwiseTransformer(StandardScaler()).fit(bag)
    # partial_fit on each partition's elements in turn, recomputed here
    expected = StandardScaler()
    for lo, hi in [(0, 15), (15, 30), (30, 44), (44, 58), (58, 70)]:
        expected.partial_fit(np.concatenate(samples[lo:hi]))
    for name in ("mean_", "var_", "scale_", "n_samples_seen_"):
        np.testing.assert_array_equal(getattr(scaler.transformer_, name), getattr(expected, name))
    at_once = StandardScaler().fit(np.concatenate(samples))
    np.testing.assert_allclose(scaler.transformer_.mean_, at_once.mean_, rtol=1e-13)
    np.testing.assert_allclose(scaler.transformer_.scale_, at_once.scale_, rtol=1e-13)
    assert scaler.n_features_in_ == 3
    # the positional encoding reads the width of the first item only, even
    # when the first partitions are empty
    import dask.bag as db

    late = db.concat([bag.filter(lambda sample: False), bag])
    assert PositionalEncoding().fit(late).n_features_in_ == 3
    with pytest.raises(ValueError, match="0 samples"):
        PositionalEncoding().fit(bag.filter(lambda sample: False))


def test_without_a_client_a_bag_is_computed_for_the_in_memory_fit():
    # in a fresh interpreter: this module's cluster is the default client here
    code = textwrap.dedent(
        """
        import numpy as np
        import dask.bag as db
        from sk_attention import AttentionRegressor
        rng = np.random.default_rng(0)
        samples = [rng.normal(size=(rng.integers(1, 5), 3)) for _ in range(40)]
        y = rng.normal(size=40)
        params = dict(n_heads=2, hidden_size=4, max_iter=5, random_state=0)
        a = AttentionRegressor(**params).fit(samples, y)
        b = AttentionRegressor(**params).fit(db.from_sequence(samples, npartitions=3), y)
        for key in a.coefs_:
            np.testing.assert_array_equal(a.coefs_[key], b.coefs_[key])
        """
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)


# -- faults: a worker killed in the middle of a fit --------------------------------


@pytest.fixture
def own_client():
    """A cluster of its own: the test kills one of its workers (the nanny restarts it)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def _kill_a_worker_at(monkeypatch, client, evaluation):
    """SIGKILL the worker holding the first partition before the fit's ``evaluation``-th objective.

    Only the fit's own objective is wrapped, to choose the moment; the
    kill, the lost partitions and their recomputation are the real cluster's.
    Returns the list that receives the killed worker's (address, pid).
    """
    import signal

    from sk_attention import _dask

    original = _dask.DaskTrainingData.objective
    killed = []

    def objective(data, *args, **kwargs):
        evaluate = original(data, *args, **kwargs)
        calls = 0

        def evaluate_and_kill(params):
            nonlocal calls
            calls += 1
            if calls == evaluation:
                first = data._partitions[0]
                (worker,) = client.who_has([first])[first.key]
                pid = client.run(os.getpid, workers=[worker])[worker]
                os.kill(pid, signal.SIGKILL)
                killed.append((worker, pid))
            return evaluate(params)

        return evaluate_and_kill

    monkeypatch.setattr(_dask.DaskTrainingData, "objective", objective)
    return killed


@pytest.fixture
def deadline():
    """Fail, rather than hang, a test whose fit waits for a worker that is gone."""
    import signal

    def expire(signum, frame):
        raise TimeoutError("the fit did not finish within 120 s of the worker's death")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _assert_same_fit(a, b):
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    for name in ("coefs_", "intercepts_"):
        mine, theirs = getattr(a, name), getattr(b, name)
        assert mine.keys() == theirs.keys()
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_fit_survives_a_killed_worker_with_the_same_parameters(
    own_client, monkeypatch, deadline
):
    client = own_client
    X, y, _ = _data("3d", n=120)
    Xd = _to_dask(X, chunks=(40, 30, 30, 20))
    params = dict(_SMALL, max_iter=20)
    undisturbed = AttentionClassifier(**params).fit(Xd, y)
    in_memory = AttentionClassifier(**params).fit(X, y)
    killed = _kill_a_worker_at(monkeypatch, client, evaluation=5)
    disturbed = AttentionClassifier(**params).fit(Xd, y)
    assert len(killed) == 1
    ((_, pid),) = killed
    assert pid not in client.run(os.getpid).values()  # it really died
    _assert_same_fit(disturbed, undisturbed)
    assert disturbed.n_iter_ > 5  # the kill came in the middle of the fit
    assert _relative_difference(disturbed, in_memory) <= 1e-10
    _released(client)


def _load_leaving_a_mark(path):
    """np.load, leaving one empty file ``loads/<name>.<k>`` for the k-th load of ``path``."""
    folder, name = os.path.split(path)
    count = sum(mark.startswith(name + ".") for mark in os.listdir(os.path.join(folder, "loads")))
    open(os.path.join(folder, "loads", f"{name}.{count}"), "w").close()
    return np.load(path)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_bag_of_file_loads_reloads_the_files_of_a_killed_worker(
    own_client, monkeypatch, tmp_path, deadline
):
    import cloudpickle
    import dask.bag as db

    client = own_client
    samples, y, _ = _ragged(n=90)
    paths = [str(tmp_path / f"sample{i}.npy") for i in range(len(samples))]
    for path, sample in zip(paths, samples):
        np.save(path, sample)
    loads = tmp_path / "loads"
    loads.mkdir()
    # by value: the workers cannot import this test module
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        bag = db.from_sequence(paths, npartitions=4).map(_load_leaving_a_mark)
        params = dict(_SMALL, max_iter=20)
        undisturbed = AttentionClassifier(**params).fit(bag, y)
        assert sorted(os.listdir(loads)) == sorted(os.path.basename(p) + ".0" for p in paths)
        for mark in os.listdir(loads):
            os.remove(loads / mark)
        killed = _kill_a_worker_at(monkeypatch, client, evaluation=5)
        disturbed = AttentionClassifier(**params).fit(bag, y)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert len(killed) == 1
    _assert_same_fit(disturbed, undisturbed)
    assert disturbed.n_iter_ > 5
    in_memory = AttentionClassifier(**params).fit(samples, y)
    assert _relative_difference(disturbed, in_memory) <= 1e-10
    # every file loaded once, and those of the killed worker's partitions once more
    marks = sorted(os.listdir(loads))
    firsts = {mark[: -len(".0")] for mark in marks if mark.endswith(".0")}
    again = {mark[: -len(".1")] for mark in marks if mark.endswith(".1")}
    assert firsts == {os.path.basename(p) for p in paths}
    assert again and again < firsts
    assert len(marks) == len(firsts) + len(again)
    _released(client)


# -- grid search across the cluster ---------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_grid_search_runs_its_fits_on_the_workers(client):
    """joblib's dask backend: in-memory data, every fit of the search on a worker."""
    import joblib
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer

    samples, y, _ = _ragged(n=90)
    pipe = make_pipeline(ElementwiseTransformer(StandardScaler()), AttentionClassifier(**_SMALL))
    grid = {"attentionclassifier__hidden_size": [2, 4], "attentionclassifier__alpha": [0.1, 10]}
    local = GridSearchCV(pipe, grid, cv=3).fit(samples, y)

    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        searched = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(samples, y)
    # joblib sends batches of fits, keyed "..._fit_and_score_<n>_calls-<token>":
    # the 4 candidates x 3 folds all ran as tasks on the cluster's workers
    workers = set(client.scheduler_info()["workers"])
    batches = [task for task in stream.data if "_fit_and_score_" in str(task["key"])]
    calls = [int(re.search(r"_(\d+)_calls", str(task["key"]))[1]) for task in batches]
    assert sum(calls) == 4 * 3
    assert {task["worker"] for task in batches} <= workers
    np.testing.assert_array_equal(
        searched.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert searched.best_params_ == local.best_params_
    _released(client)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_evaluation_sends_the_parameters_once(client):
    """Per evaluation: one task holds the parameters and one per partition reads them
    (not a copy of the parameters in every partition's task)."""
    from distributed.utils import key_split

    X, y, _ = _data("3d")
    with distributed.get_task_stream(client) as stream:
        fitted = AttentionClassifier(**_SMALL).fit(_to_dask(X, chunks=(15,) * 4 + (10,)), y)
    counts = collections.Counter(key_split(task["key"]) for task in stream.data)
    evaluations = counts["parameters"]
    assert evaluations >= fitted.n_iter_
    assert counts["evaluate"] == 5 * evaluations
    # the partitions' sums are added here, in partition order
    assert "sum_in_order" not in counts


def test_the_sum_in_partition_order_leaves_the_partitions_sums_alone():
    from sk_attention._dask import _sum_in_order

    rng = np.random.default_rng(0)
    terms = [(float(rng.normal()), {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)})
             for _ in range(4)]
    kept = [(value, {k: a.copy() for k, a in part.items()}) for value, part in terms]
    value, pieces = _sum_in_order(*terms)
    expected = 0.0
    for term_value, _ in terms:
        expected += term_value
    assert value == expected
    for name in ("W", "b"):
        total = terms[0][1][name] + terms[1][1][name] + terms[2][1][name] + terms[3][1][name]
        np.testing.assert_array_equal(pieces[name], total)
    for (value, part), (kept_value, kept_part) in zip(terms, kept):
        for name in part:
            np.testing.assert_array_equal(part[name], kept_part[name])
