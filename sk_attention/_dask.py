"""Fitting and inference on dask arrays and bags: the elements stay on the workers.

Imported only when the user passes a dask collection (``import
sk_attention`` never imports dask).  :func:`training_data` gives the fit of
:class:`~._base.BaseAttention` the same interface as the in-memory
:class:`~._base._InMemoryData`, so target encoding, weights, initialisation,
warm start and L-BFGS-B are the same code whichever holds the elements.

With a ``distributed.Client``:

1. every chunk of X is validated and packed by a task on the worker that
   computes it (errors name the sample's index in the whole of X); a
   ``dask.bag.Bag`` of 2D arrays (ragged samples) is computed partition by
   partition on the workers first, so that each partition's length, and
   hence the index of its first sample, is known before it is packed there;
2. each packed partition, with its samples' targets and loss factors,
   becomes a :class:`_Partition` (a :class:`~._workspace.Workspace` of its
   own) that stays in that worker's memory, held by a future, for the whole
   fit;
3. every evaluation of the objective is one task per partition, on the
   worker holding it: the parameters go out (once, as the result of a
   task that the partitions' tasks read), the partition's loss and
   unpenalised gradient sums (:func:`~._attention.data_terms`) come back,
   and the client adds them in partition order (:func:`_sum_in_order`)
   before the penalty (:func:`~._attention.finish_objective`).

Should a worker die, dask recomputes its partitions from their graph (X's
chunks, or the bag's items, then the packing) on another worker, and the
fit goes on: the tasks are placed on a partition's worker by a loose
restriction, never a strict one.  The sums are the same, so are the
parameters.

Where the partitions hold the same samples as the in-memory fit's blocks
(X in one chunk, or chunks cut where the in-memory fit cuts its blocks),
every sum is the same and so are the parameters, to the bit.  Other
partitions group the sums differently: each evaluation agrees with the
in-memory one to float64 rounding, and the L-BFGS paths agree closely
over the first iterations; over a long fit such rounding differences grow,
as they do between two in-memory fits of the same samples in another
order.

Without a client, dask's default scheduler computes X here and the fit is
the in-memory one.

Inference (:func:`map_samples`) is lazy, as dask-ml's ``ParallelPostFit``:
one task per chunk of X (or partition of a bag) calls the NumPy method on
it.  A dask array gives a dask array chunked along samples as X is; a bag
gives a bag of per-sample arrays (attention weights, a collection
transformer's output) or a dask array with one chunk per partition.

A collection transformer with ``partial_fit`` is fitted on dask input by a
chain of tasks, one per partition, on the worker that holds it
(:func:`fit_partition_by_partition`): the transformer moves, X does not.

dask is imported inside the functions, not at the top: the module can be
imported (by doctest collection, say) where dask is not installed.
"""

import sys

import numpy as np

from ._attention import data_terms, finish_objective, objective_scaling
from ._base import _advice_stride, _InMemoryData
from ._collections import (
    _check_3d_names,
    _check_finite_elements,
    _check_width,
    _computed_if_dask,
    _float_dtype,
    _pack_3d,
    _pack_ragged,
    _reject_nonnumeric,
)
from ._segments import Segments
from ._workspace import Workspace

__all__ = [
    "DaskTrainingData",
    "computed",
    "map_samples",
    "record_width",
    "score",
    "training_data",
]


def _current_client():
    """The current ``distributed.Client``, or None (then dask's default scheduler)."""
    distributed = sys.modules.get("distributed")  # no client exists unless it was imported
    if distributed is None:
        return None
    try:
        return distributed.get_client()
    except ValueError:  # no client
        return None


def _is_bag(X):
    bag = sys.modules.get("dask.bag")
    return bag is not None and isinstance(X, bag.Bag)


def _check_dask_array(X, bags=False):
    """Shape, dtype and chunks a fit on a dask array needs; raise a clear ValueError.

    ``bags``: whether a ``dask.bag.Bag`` is accepted too (then not checked here).
    """
    if bags and _is_bag(X):
        return
    if not hasattr(X, "chunks") or not hasattr(X, "to_delayed"):
        also = ", or a dask.bag.Bag of 2D arrays (n_elements_i, n_features)" if bags else ""
        raise ValueError(
            f"X is a dask collection of type {type(X).__name__}; pass a dask array, "
            f"2D (n_samples, n_features) or 3D (n_samples, n_steps, n_features){also}."
        )
    if X.ndim not in (2, 3):
        raise ValueError(
            f"X is a {X.ndim}D dask array; pass a 2D (n_samples, n_features) or 3D "
            "NaN-padded (n_samples, n_steps, n_features) dask array."
        )
    if any(np.isnan(size) for sizes in X.chunks for size in sizes):
        raise ValueError(
            "X is a dask array of unknown chunk sizes; call X.compute_chunk_sizes() first."
        )
    split = [axis for axis in range(1, X.ndim) if len(X.chunks[axis]) > 1]
    if split:
        whole = ", ".join(f"{axis}: -1" for axis in range(1, X.ndim))
        raise ValueError(
            f"X is chunked along axis {split[0]}, but a dask array must be chunked along "
            f"samples (axis 0) only, each chunk holding whole samples: "
            f"X.rechunk({{{whole}}})."
        )
    if X.dtype.kind in "USc":
        what = "complex numbers" if X.dtype.kind == "c" else "strings"
        raise ValueError(f"X holds {what} (dtype {X.dtype}); attention needs real numbers.")
    if X.shape[0] == 0:
        raise ValueError("X has 0 samples; at least 1 is required.")
    if X.shape[-1] == 0:
        raise ValueError("X has 0 feature(s) per element; at least 1 is required.")
    if X.ndim == 3 and X.shape[1] == 0:
        raise ValueError("sample 0 has no elements; every sample needs at least one.")


def training_data(X, estimator):
    """The training data of a fit on the dask array or bag ``X``.

    Sets ``n_features_in_`` (and removes ``feature_names_in_``: dask
    collections bring no names) on ``estimator``, as the in-memory
    validation does.

    Returns
    -------
    data : DaskTrainingData or _InMemoryData
        On the current ``distributed.Client``'s workers if there is one;
        otherwise X computed by dask's default scheduler, in memory.
    """
    _check_dask_array(X, bags=True)
    client = _current_client()
    if client is None:
        # a bag computes to the list of its items: a ragged collection
        return _InMemoryData(X.compute(), estimator)
    if _is_bag(X):
        data = _bag_training_data(X, client)
    else:
        data = _array_training_data(X, client)
    _check_width(estimator, data.n_features, reset=True)
    _check_3d_names(estimator, None, reset=True)
    return data


# -- on the workers ----------------------------------------------------------


class _Packed:
    """A validated chunk: its real elements (N_p, D) and sample offsets."""

    def __init__(self, elements, offsets):
        self.elements = elements
        self.offsets = offsets

    def __sizeof__(self):
        # dask's memory accounting and transfer-cost estimates read this
        # (its default for an object is sys.getsizeof, a few dozen bytes)
        return object.__sizeof__(self) + self.elements.nbytes + self.offsets.nbytes


def _pack_chunk(chunk, first_sample, allow_nan=False):
    """Validate and pack one chunk; errors name samples by their index in all of X."""
    if chunk.ndim == 3:
        packed = _pack_3d(chunk, allow_nan=allow_nan, first_sample=first_sample)
        return _Packed(packed.elements, packed.offsets)
    chunk = _reject_nonnumeric(np.asarray(chunk), "X")
    # an own copy: the chunk (or the array it is a view of) is released
    elements = np.array(chunk, dtype=_float_dtype(chunk.dtype), order="C")
    offsets = np.arange(elements.shape[0] + 1, dtype=np.int64)
    _check_finite_elements(elements, offsets, allow_nan, "2d", first_sample)
    return _Packed(elements, offsets)


def _pack_items(items, first_sample):
    """Validate and pack a bag partition's 2D arrays; errors name samples in all of X."""
    packed = _pack_ragged(list(items), allow_nan=False, first_sample=first_sample)
    return _Packed(packed.elements, packed.offsets)


def _describe(packed):
    """Element width and whether float32: what partitions of a bag must agree on."""
    return packed.elements.shape[1], packed.elements.dtype == np.float32


def _n_elements(packed):
    return int(packed.offsets[-1])


def _strided_rows(packed, start, stride):
    """The partition's share of every ``stride``-th element of all of X."""
    return packed.elements[(-start) % stride :: stride].copy()


class _Partition:
    """What one worker holds for a whole fit: a workspace, its targets and factors.

    Pickles (should dask move or spill it) as its packed elements, and
    rebuilds the workspace when loaded.
    """

    def __init__(self, workspace, targets, scale):
        self.workspace = workspace
        self.targets = targets
        self.scale = scale

    def __sizeof__(self):
        # as _Packed: so that dask counts it in the worker's memory, and
        # never judges it cheap to move to another worker
        arrays = self.workspace.nbytes + np.asarray(self.targets).nbytes
        return object.__sizeof__(self) + arrays + np.asarray(self.scale).nbytes

    def __reduce__(self):
        workspace = self.workspace
        state = (
            workspace.stored_elements(),
            workspace.segments.offsets,
            workspace.segments.n_heads,
            self.targets,
            self.scale,
        )
        return _partition, state


def _partition(elements, offsets, n_heads, targets, scale):
    """A :class:`_Partition` of packed elements (the workspace keeps its own copy)."""
    # one thread per task: the worker's threads are dask's parallelism
    workspace = Workspace(elements, Segments(offsets, n_heads), n_threads=1)
    return _Partition(workspace, targets, scale)


def _prepare(packed, n_heads, targets, scale, dtype=None):
    """The partition of a fit; ``dtype``: the fit's (a bag's float32 items may need float64)."""
    elements = packed.elements if dtype is None else packed.elements.astype(dtype, copy=False)
    return _partition(elements, packed.offsets, n_heads, targets, scale)


def _evaluate(partition, params, alignment, loss):
    """The partition's loss and unpenalised gradient sums at ``params``."""
    # as on the client: a line search's trial point may overflow
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return data_terms(
            params, partition.workspace, alignment, loss, partition.targets, partition.scale
        )


def _parameters(params):
    """The parameters of an evaluation, as a task's result every partition reads."""
    return params


def _sum_in_order(*terms):
    """The partitions' ``(value, pieces)`` added in partition order, whatever their place.

    The order is fixed, so the sum does not depend on which worker holds
    which partition, nor on which finished first.
    """
    value, pieces = 0.0, None
    for part_value, part in terms:
        value += part_value
        if pieces is None:  # a copy: the terms are left as they were
            pieces = {name: array.copy() for name, array in part.items()}
        else:
            for name, array in part.items():
                pieces[name] += array
    return value, pieces


# -- on the client -------------------------------------------------------------


def _raise_first_error(futures):
    """Wait for ``futures``; re-raise the exception of the first (in order) that failed."""
    from distributed import wait

    wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()  # raises the task's exception


def _holders(client, futures):
    """For each future, the workers that hold its result now."""
    holders = client.who_has(futures)
    return [list(holders[future.key]) for future in futures]


def _submit_local(client, function, future, where, *args):
    """``function(result, *args)``, restricted to the workers ``where`` while they live.

    The restriction is loose: should they all die, dask recomputes the
    lost result from its graph on another worker, and runs the task there
    (a strict one would wait for the dead worker for ever).  While they
    live, it keeps the task with the data: dask neither moves a partition
    for a small task nor lets another worker steal it.
    """
    return client.submit(
        function, future, *args, workers=where, allow_other_workers=True, pure=False
    )


def _map_local(client, function, futures, *arguments):
    """``function(result, *args)`` for each future, on a worker holding that result."""
    return [
        _submit_local(client, function, future, where, *args)
        for future, where, *args in zip(futures, _holders(client, futures), *arguments)
    ]


def _array_training_data(X, client):
    """Every non-empty chunk of the dask array X validated and packed on a worker."""
    import dask

    sizes = X.chunks[0]
    firsts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    chunks = X.to_delayed().ravel()
    tasks = [
        dask.delayed(_pack_chunk)(chunk, int(first))
        for chunk, first, size in zip(chunks, firsts, sizes)
        if size > 0
    ]
    packs = client.compute(tasks)
    try:
        _raise_first_error(packs)
    except BaseException:
        client.cancel(packs)
        raise
    sizes = [int(size) for size in sizes if size > 0]
    return DaskTrainingData(client, packs, sizes, int(X.shape[-1]), _float_dtype(X.dtype))


def _bag_training_data(bag, client):
    """Every non-empty partition of a bag of 2D arrays validated and packed on a worker.

    The partitions' lengths are known only once computed: each is computed
    (and held) on a worker first, its length comes back, and then it is
    packed there with the index of its first sample in the whole bag.
    """
    # one list of items per partition (a partition may be a lazy iterator)
    parts = client.compute(bag.map_partitions(list).to_delayed())
    held = list(parts)
    try:
        _raise_first_error(parts)  # e.g. a file that does not load: the user's error
        sizes = client.gather(_map_local(client, len, parts))
        firsts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if firsts[-1] == 0:
            raise ValueError("X has 0 samples; at least 1 is required.")
        keep = [i for i, size in enumerate(sizes) if size > 0]
        packs = _map_local(
            client, _pack_items, [parts[i] for i in keep], [int(firsts[i]) for i in keep]
        )
        held += packs
        _raise_first_error(packs)
        described = client.gather(_map_local(client, _describe, packs))
        width = described[0][0]
        for i, (other, _) in zip(keep, described):
            if other != width:  # every sample of a partition has the partition's width
                raise ValueError(f"sample {firsts[i]} has {other} features, expected {width}.")
    except BaseException:
        client.cancel(held)
        raise
    # the packed copies are what the fit keeps: dropping the last references
    # releases the items (cancelling them would cancel the packs, their dependents)
    del parts, held
    # float32 only if every item is, as for an in-memory ragged list
    dtype = np.float32 if all(is_float32 for _, is_float32 in described) else np.float64
    return DaskTrainingData(client, packs, [sizes[i] for i in keep], width, dtype)


class DaskTrainingData:
    """The elements of a fit packed on the workers of a ``distributed.Client``.

    The interface of :class:`~._base._InMemoryData`.  Built by
    :func:`_array_training_data` or :func:`_bag_training_data`, which
    validate and pack every partition (a ValueError names the first bad
    sample of X; nothing stays on the cluster after it).

    Parameters
    ----------
    client : distributed.Client
    packs : list of Future
        One validated :class:`_Packed` partition per future, in sample order,
        none empty.
    sizes : list of int
        Number of samples of each partition.
    n_features : int
        Element width.
    dtype : dtype
        float32 or float64: the dtype of the fit.
    """

    def __init__(self, client, packs, sizes, n_features, dtype):
        self._client = client
        self._packs = packs
        self._partitions = []
        self.n_samples = int(sum(sizes))
        self.n_features = int(n_features)
        self.dtype = np.dtype(dtype)
        firsts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # sample bounds of the partitions
        self._bounds = [(int(lo), int(hi)) for lo, hi in zip(firsts[:-1], firsts[1:])]
        try:
            counts = client.gather(_map_local(client, _n_elements, self._packs))
        except BaseException:
            self.close()
            raise
        self._element_starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def advice_rows(self):
        """Every :func:`~._base._advice_stride`-th element of X, as the in-memory fit reads."""
        stride = _advice_stride(self._element_starts[-1])
        starts = [int(start) for start in self._element_starts[:-1]]
        strides = [stride] * len(starts)
        futures = _map_local(self._client, _strided_rows, self._packs, starts, strides)
        return np.concatenate(self._client.gather(futures))

    def objective(self, n_heads, alignment, loss, targets, weights, alpha):
        """``params -> (value, grads)``: one task per partition, summed in partition order."""
        client = self._client
        scale, penalty = objective_scaling(weights, alpha)
        n = len(self._packs)
        self._partitions = _map_local(
            client,
            _prepare,
            self._packs,
            [n_heads] * n,
            [targets[lo:hi] for lo, hi in self._bounds],
            [scale[lo:hi] for lo, hi in self._bounds],
            [self.dtype] * n,
        )
        # each workspace holds its own copy: dask releases a packed chunk as
        # soon as its partition is built, not once all are (which kept a
        # worker at twice its share), and keeps its recipe should a lost
        # partition need it again
        self._packs = []
        _raise_first_error(self._partitions)
        workers = _holders(client, self._partitions)

        def evaluate(params):
            # the parameters go out once, as a task's result that the workers
            # fetch (not scattered: a task's result is recomputed should its
            # worker die, scattered data are lost)
            sent = client.submit(_parameters, params, pure=False)
            terms = [
                _submit_local(client, _evaluate, partition, where, sent, alignment, loss)
                for partition, where in zip(self._partitions, workers)
            ]
            # added here, in partition order
            value, pieces = _sum_in_order(*client.gather(terms))
            return finish_objective(
                params, alignment, value, pieces, self.n_features, n_heads, penalty
            )

        return evaluate

    def close(self):
        """Release everything this fit holds on the cluster."""
        held = list(self._packs) + list(self._partitions)
        self._packs, self._partitions = [], []
        if held:
            self._client.cancel(held)


# -- inference: lazy, partition by partition ------------------------------------


def _check_fitted_width(estimator, X):
    """A dask array fit for ``estimator``'s inference: checked here, before any task."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    _check_dask_array(X)
    _check_width(estimator, int(X.shape[-1]), reset=False)
    # a dask array has no feature names: sklearn's warning if fitted with some
    _check_3d_names(estimator, None, reset=False)


def _output_spec(estimator, method, X):
    """dtype and per-sample shape of ``estimator.method(X)``, known without computing."""
    from sklearn.base import is_classifier

    dtype = np.dtype(_float_dtype(X.dtype))
    if method == "transform" and hasattr(estimator, "_transform_elements"):
        # a CollectionTransformer: X's form, with the transformer's width
        return estimator._dask_output_dtype(dtype), X.shape[1:-1] + (
            len(estimator.get_feature_names_out()),
        )
    head = estimator.coefs_["head"]  # (n_heads * D', n_outputs)
    n_outputs = head.shape[1]
    if method == "attention_weights":
        n_heads = estimator._fitted_model()[2]
        return dtype, (X.shape[1] if X.ndim == 3 else 1, n_heads)
    if method == "transform":
        return dtype, (head.shape[0],)
    if method in ("predict_proba", "predict_log_proba"):
        return np.dtype(np.float64), (len(estimator.classes_),)
    logits_shape = () if n_outputs == 1 else (n_outputs,)
    if method == "decision_function":
        return np.dtype(estimator._head_dtype or dtype), logits_shape
    if is_classifier(estimator):  # predict
        return estimator.classes_.dtype, ()
    return np.dtype(np.float64), () if estimator._y_1d else (n_outputs,)


def _apply_block(block, estimator, method, dtype, tail, allow_nan, block_info=None):
    """``estimator.method`` on one NumPy block of samples (on a worker).

    A ValueError that the block's validation explains is raised again with
    the sample's index in the whole of X (the block knows only its own).
    """
    if block.shape[0] == 0:  # an empty chunk: the method refuses 0 samples
        return np.empty((0,) + tail, dtype=dtype)
    try:
        out = getattr(estimator, method)(block)
    except ValueError:
        first = block_info[0]["array-location"][0][0] if block_info else 0
        _pack_chunk(block, first, allow_nan=allow_nan)  # raises the global wording
        raise
    return _as_output(out, dtype)


def _as_output(out, dtype):
    """A method's result as an ndarray of the dtype declared for the lazy output."""
    if hasattr(out, "to_numpy"):  # set_output's DataFrame
        out = out.to_numpy()
    return np.asarray(out).astype(dtype, copy=False)


def map_samples(estimator, method, X, allow_nan=False):
    """``estimator.method(X)`` for a dask array or bag X, lazily.

    One task per chunk of X (as dask-ml's ``ParallelPostFit``), each calling
    the NumPy method on its block; the output is chunked along samples as
    X is.  The estimator (a copy, so that a later fit does not change this
    result) is one node of the graph: sent to the workers once per call,
    not once per block.

    Parameters
    ----------
    estimator : fitted estimator
    method : str
        "predict", "predict_proba", "predict_log_proba",
        "decision_function", "transform" or "attention_weights".
    X : dask array of shape (n_samples, n_features) or (n_samples, n_steps, n_features)
        Chunked along samples only; or a ``dask.bag.Bag`` of 2D arrays
        (see :func:`_map_bag` for what it gives).
    allow_nan : bool, default=False
        Whether NaN inside an element is valid input (for the error of a
        bad block).

    Returns
    -------
    result : dask array or Bag
        For a dask array X: shape ``(n_samples,) + per-sample shape``,
        chunks ``X.chunks[0]`` along samples.
    """
    import copy

    import dask

    if _is_bag(X):
        return _map_bag(estimator, method, X, allow_nan)
    _check_fitted_width(estimator, X)
    dtype, tail = _output_spec(estimator, method, X)
    model = dask.delayed(copy.deepcopy(estimator), pure=False)
    out_ndim = 1 + len(tail)
    axes = {}
    if out_ndim < X.ndim:
        axes["drop_axis"] = list(range(out_ndim, X.ndim))
    elif out_ndim > X.ndim:
        axes["new_axis"] = list(range(X.ndim, out_ndim))
    return X.map_blocks(
        _apply_block,
        model,
        method,
        dtype,
        tuple(int(size) for size in tail),
        allow_nan,
        chunks=(X.chunks[0],) + tuple((int(size),) for size in tail),
        dtype=dtype,
        meta=np.empty((0,) * out_ndim, dtype=dtype),
        # a prefix: the keys are unique to this call (``name`` would not be)
        token=f"{type(estimator).__name__.lower()}-{method.replace('_', '-')}",
        **axes,
    )


def _ragged_output(estimator, method):
    """Whether ``estimator.method`` gives one array per sample for ragged input."""
    return method == "attention_weights" or (
        method == "transform" and hasattr(estimator, "_transform_elements")
    )


class _BagStandIn:
    """What :func:`_output_spec` reads of X, for a bag (its items are not loaded yet).

    A bag's dtype is known only once its items are: outputs whose dtype
    follows X's are declared (and given) as float64.
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, n_features):
        self.shape = (0, n_features)


def _apply_items(items, estimator, method, partition, allow_nan, dtype=None, tail=None):
    """``estimator.method`` on one bag partition's items (on a worker).

    ``dtype`` and ``tail`` (given for an array output) shape an empty
    partition's result and the dtype of the others.  A ValueError that the
    items' validation explains is raised again naming the partition: the
    index of its first sample in the whole bag is not known before the
    partitions before it are loaded.
    """
    items = list(items)
    if not items:  # the method refuses 0 samples
        return [] if dtype is None else np.empty((0,) + tail, dtype=dtype)
    try:
        out = getattr(estimator, method)(items)
    except ValueError as error:
        try:
            _pack_ragged(items, allow_nan=allow_nan)
        except (ValueError, TypeError) as explained:
            raise ValueError(f"in partition {partition} of the bag, {explained}") from error
        raise
    return list(out) if dtype is None else _as_output(out, dtype)


def _map_bag(estimator, method, bag, allow_nan):
    """``estimator.method`` for a bag of 2D arrays: lazy, one task per partition.

    Per-sample arrays (attention weights, a collection transformer's
    output) come as a bag partitioned as X; everything else as a dask
    array with one chunk per partition, of sizes unknown until computed.
    """
    import copy

    import dask
    import dask.array as da
    import dask.bag as db
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    model = dask.delayed(copy.deepcopy(estimator), pure=False)
    parts = bag.to_delayed()
    apply = dask.delayed(_apply_items, pure=True)
    if _ragged_output(estimator, method):
        return db.from_delayed(
            [apply(part, model, method, p, allow_nan) for p, part in enumerate(parts)]
        )
    dtype, tail = _output_spec(estimator, method, _BagStandIn(estimator.n_features_in_))
    tail = tuple(int(size) for size in tail)
    meta = np.empty((0,) * (1 + len(tail)), dtype=dtype)
    blocks = [
        da.from_delayed(
            apply(part, model, method, p, allow_nan, dtype, tail),
            shape=(np.nan,) + tail,
            dtype=dtype,
            meta=meta,
        )
        for p, part in enumerate(parts)
    ]
    return da.concatenate(blocks, axis=0)


def score(estimator, X, y, sample_weight=None):
    """``estimator.score`` for dask X: the predictions are computed, then scored here.

    Only the predictions (one value per sample) come to the client, never X.
    """
    from sklearn.base import is_classifier
    from sklearn.metrics import accuracy_score, r2_score

    y_pred = map_samples(estimator, "predict", X).compute()
    metric = accuracy_score if is_classifier(estimator) else r2_score
    return float(
        metric(_computed_if_dask(y), y_pred, sample_weight=_computed_if_dask(sample_weight))
    )


# -- fitting the collection transformers -------------------------------------------


def _partial_fit_partition(state, part, y, allow_nan, fit_params):
    """One link of the chain: ``state``'s transformer partial-fitted on one partition.

    ``state`` is ``(transformer, width, n_seen)``: the transformer so far,
    the element width of the partitions before (None before the first) and
    how many samples they held, which is the index in all of X of this
    partition's first sample.  Runs on the worker holding the partition:
    only the transformer travels from link to link.
    """
    transformer, width, n_seen = state
    if not isinstance(part, np.ndarray):  # the items of a bag's partition
        part = list(part)
    if len(part) == 0:
        return state
    if isinstance(part, list):
        packed = _pack_ragged(part, allow_nan=allow_nan, first_sample=n_seen)
    else:  # a chunk of a dask array
        packed = _pack_chunk(part, n_seen, allow_nan=allow_nan)
    elements = packed.elements
    if width is not None and elements.shape[1] != width:
        raise ValueError(f"sample {n_seen} has {elements.shape[1]} features, expected {width}.")
    targets = None
    if y is not None:
        per_sample = np.asarray(y[n_seen : n_seen + len(part)])
        targets = np.repeat(per_sample, np.diff(packed.offsets), axis=0)
    transformer.partial_fit(elements, targets, **fit_params)
    return transformer, elements.shape[1], n_seen + len(part)


def fit_partition_by_partition(transformer, X, y, allow_nan, fit_params):
    """``transformer.partial_fit`` on the elements of every partition of X, in order.

    For a transformer with ``partial_fit`` (StandardScaler, MinMaxScaler,
    IncrementalPCA, ...) and a dask array or bag X: a chain of tasks, each
    on the worker holding its partition, so that X stays on the workers
    and only the transformer moves.  Errors name samples by their index in
    all of X.

    Returns
    -------
    transformer : the fitted transformer
    width : int
        The elements' width.
    """
    import dask

    _check_dask_array(X, bags=True)
    y = None if y is None else np.asarray(_computed_if_dask(y))
    # one node: sent once to each worker
    y_node = None if y is None else dask.delayed(y, pure=True)
    link = dask.delayed(_partial_fit_partition, pure=True)
    state = (transformer, None, 0)
    for part in np.ravel(X.to_delayed()):
        state = link(state, part, y_node, allow_nan, fit_params)
    transformer, width, n_samples = dask.compute(state)[0]
    if n_samples == 0:
        raise ValueError("X has 0 samples; at least 1 is required.")
    if y is not None and n_samples != len(y):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{n_samples}, {len(y)}]"
        )
    return transformer, width


def computed(X, y=None):
    """The dask array X (checked) and y (if a dask array), computed into this process.

    A bag of 2D arrays computes to the list of its items.
    """
    from dask import compute, is_dask_collection

    _check_dask_array(X, bags=True)
    if y is not None and is_dask_collection(y):
        return compute(X, y)
    return X.compute(), y


def record_width(estimator, X, width=None):
    """What a fit learns from X's shape alone: ``n_features_in_`` (and no names).

    A bag's width is ``width`` if known, else that of its first item
    (loaded for it); the others are checked when they are transformed.
    """
    _check_dask_array(X, bags=True)
    if width is None and _is_bag(X):
        import warnings

        with warnings.catch_warnings():  # dask warns when a bag is shorter than asked
            warnings.simplefilter("ignore", UserWarning)
            first = X.take(1, npartitions=-1, compute=True)
        if not first:
            raise ValueError("X has 0 samples; at least 1 is required.")
        packed = _pack_ragged(first, allow_nan=True)
        width = packed.elements.shape[1]
    elif width is None:
        width = int(X.shape[-1])
    _check_width(estimator, width, reset=True)
    _check_3d_names(estimator, None, reset=True)
