"""The input model: every accepted form of X becomes one packed array.

A *collection* is one sample made of elements (vectors of ``n_features``
numbers).  Users pass collections in three forms:

- a 2D array-like ``(n_samples, n_features)``: one element per sample;
- a 3D ndarray ``(n_samples, n_steps, n_features)`` in which an element whose
  features are all NaN is padding;
- a list or tuple of 2D array-likes ``(n_elements_i, n_features)`` (ragged).

:func:`check_collections` validates any of them and returns a
:class:`PackedCollections`: all real elements stacked in sample order plus the
offsets where each sample starts.  Nothing past this module knows which form
the data came in, except :meth:`PackedCollections.unpack`, which puts
per-element results back into the form the user gave.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.utils.validation import validate_data

__all__ = ["PackedCollections", "check_collections", "gen_sample_chunks", "step_positions"]


@dataclass(frozen=True)
class PackedCollections:
    """All elements of all samples, stacked, plus where each sample starts.

    Attributes
    ----------
    elements : ndarray of shape (n_elements_total, n_features)
        Real elements (no padding) in sample order, C-contiguous.
    offsets : ndarray of shape (n_samples + 1,), dtype int64
        Sample ``i`` owns ``elements[offsets[i]:offsets[i + 1]]``.
    form : {"2d", "3d", "ragged"}
        The form the user passed, used to give results back in that form.
    mask : ndarray of shape (n_samples, n_steps) of bool or None
        For 3D input, which steps are real elements (False at padding).
    """

    elements: np.ndarray
    offsets: np.ndarray
    form: str
    mask: np.ndarray = None

    @property
    def n_samples(self):
        return self.offsets.shape[0] - 1

    @property
    def lengths(self):
        """Number of elements of every sample, shape (n_samples,)."""
        return np.diff(self.offsets)

    def unpack(self, values, fill=np.nan):
        """Give per-element ``values`` back in the user's form.

        Parameters
        ----------
        values : ndarray of shape (n_elements_total, n_columns)
            One row per packed element.
        fill : float, default=nan
            Value written at padding positions of 3D output.

        Returns
        -------
        unpacked : ndarray or list of ndarray
            ``(n_samples, n_columns)`` for 2D input, ``(n_samples, n_steps,
            n_columns)`` for 3D input, a list of ``(n_elements_i, n_columns)``
            arrays for ragged input.
        """
        if self.form == "2d":
            return values
        if self.form == "3d":
            out = np.full(self.mask.shape + values.shape[1:], fill, dtype=values.dtype)
            out[self.mask] = values
            return out
        return np.split(values, self.offsets[1:-1])


def _float_dtype(dtype):
    """float32 stays float32; every other dtype is computed in float64."""
    return np.float32 if dtype == np.float32 else np.float64


def _is_2d_like(item):
    """Whether one item of a list can be a sample of a ragged collection."""
    if sparse.issparse(item):
        return True  # rejected later with a message that names the sample
    ndim = getattr(item, "ndim", None)
    if ndim is not None:
        return ndim == 2
    if isinstance(item, (list, tuple)):
        return len(item) > 0 and all(
            isinstance(row, (list, tuple)) or getattr(row, "ndim", 0) == 1
            for row in item
        )
    return False


def _is_ragged(X):
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    flags = [_is_2d_like(item) for item in X]
    if not any(flags):
        return False
    if not all(flags):
        bad = flags.index(False)
        raise ValueError(
            f"X is a list of 2D samples, but sample {bad} is not 2D: every "
            "sample of a ragged collection must have shape "
            "(n_elements, n_features)."
        )
    return True


def _reject_nonnumeric(arr, where):
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {where} is complex.")
    if kind in "OUSV":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{where} contains non-numeric values; convert it to numbers "
                f"first ({exc})."
            ) from None
    if kind not in "biuf":
        raise ValueError(f"{where} has unsupported dtype {arr.dtype}.")
    return arr


def _check_finite_elements(elements, offsets, allow_nan, partial_nan_message):
    """Raise naming the first sample with inf (or NaN when not allowed)."""
    bad_inf = np.isinf(elements).any(axis=1)
    problems = [(bad_inf, "contains infinity")]
    if not allow_nan:
        problems.append((np.isnan(elements).any(axis=1), partial_nan_message))
    for bad, what in problems:
        if bad.any():
            sample = np.searchsorted(offsets, np.flatnonzero(bad)[0], side="right") - 1
            raise ValueError(f"sample {sample} {what}.")


def _pack_3d(X, allow_nan):
    X = _reject_nonnumeric(np.asarray(X), "X")
    X = X.astype(_float_dtype(X.dtype), copy=False)
    n_samples, n_steps, n_features = X.shape
    if n_samples == 0:
        raise ValueError("X has 0 samples; at least 1 is required.")
    if n_features == 0:
        raise ValueError("X has 0 feature(s) per element; at least 1 is required.")
    if n_steps == 0:
        raise ValueError("sample 0 has no elements; every sample needs at least one.")
    nan = np.isnan(X)
    mask = ~nan.all(axis=2)
    empty = ~mask.any(axis=1)
    if empty.any():
        raise ValueError(
            f"sample {np.flatnonzero(empty)[0]} has no elements (only padding); "
            "every sample needs at least one."
        )
    elements = np.ascontiguousarray(X[mask])
    offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
    _check_finite_elements(
        elements, offsets, allow_nan, "contains NaN in a partially filled element"
    )
    return PackedCollections(elements, offsets, "3d", mask)


def _pack_ragged(X, allow_nan):
    samples = []
    for i, item in enumerate(X):
        where = f"sample {i}"
        if sparse.issparse(item):
            raise TypeError(
                f"{where} is a sparse matrix, but dense data is required; "
                "use .toarray() to convert it."
            )
        try:
            arr = np.asarray(item)
        except ValueError as exc:
            raise ValueError(f"{where} is not a 2D array ({exc}).") from None
        if arr.ndim != 2:
            raise ValueError(f"{where} has {arr.ndim} dimensions, expected 2.")
        arr = _reject_nonnumeric(arr, where)
        if arr.shape[0] == 0:
            raise ValueError(f"{where} has no elements; every sample needs at least one.")
        width = samples[0].shape[1] if samples else arr.shape[1]
        if arr.shape[1] != width:
            raise ValueError(f"{where} has {arr.shape[1]} features, expected {width}.")
        samples.append(arr)
    if samples[0].shape[1] == 0:
        raise ValueError("X has 0 feature(s) per element; at least 1 is required.")
    dtype = np.float32 if all(s.dtype == np.float32 for s in samples) else np.float64
    elements = np.concatenate(samples).astype(dtype, copy=False)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in samples])]).astype(np.int64)
    _check_finite_elements(elements, offsets, allow_nan, "contains NaN")
    return PackedCollections(np.ascontiguousarray(elements), offsets, "ragged")


def _feature_names(X):
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(columns, dtype=object)
    if len(names) and all(isinstance(name, str) for name in names):
        return names
    return None


def _check_width(estimator, n_features, feature_names, reset):
    """Set, or check against, n_features_in_ and feature_names_in_."""
    if reset:
        estimator.n_features_in_ = n_features
        if feature_names is not None:
            estimator.feature_names_in_ = feature_names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    expected = estimator.n_features_in_
    if n_features != expected:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is "
            f"expecting {expected} features as input."
        )
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if (
        fitted_names is not None
        and feature_names is not None
        and not np.array_equal(fitted_names, feature_names)
    ):
        raise ValueError(
            "The feature names should match those that were passed during fit."
        )


def check_collections(X, *, estimator, reset, allow_nan=False):
    """Validate a collection input of any form and pack it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), ndarray of shape \
            (n_samples, n_steps, n_features), or list of array-likes
        The samples, in one of the three forms of the package's data model.
    estimator : estimator instance
        Receives ``n_features_in_`` (and ``feature_names_in_``) when
        ``reset`` is True; otherwise the element width is checked against it.
    reset : bool
        True in ``fit``, False in ``predict``/``transform``.
    allow_nan : bool, default=False
        Whether NaN may appear inside real elements (for wrapped transformers
        that handle missing values). All-NaN elements of 3D input are padding
        either way.

    Returns
    -------
    packed : PackedCollections
        The validated elements, never a view of the user's array.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from sk_attention._collections import check_collections
    >>> bags = [np.ones((2, 3)), np.zeros((1, 3))]
    >>> packed = check_collections(bags, estimator=BaseEstimator(), reset=True)
    >>> packed.elements.shape, packed.offsets.tolist()
    ((3, 3), [0, 2, 3])
    """
    if _is_ragged(X):
        names = _feature_names(X[0])
        for i, item in enumerate(X):
            item_names = _feature_names(item)
            if (item_names is None) != (names is None) or (
                names is not None and not np.array_equal(item_names, names)
            ):
                raise ValueError(
                    f"sample {i} has other feature names than sample 0; all "
                    "samples must have the same columns."
                )
        packed = _pack_ragged(X, allow_nan)
        _check_width(estimator, packed.elements.shape[1], names, reset)
        return packed
    if getattr(X, "ndim", None) == 3 and not sparse.issparse(X):
        packed = _pack_3d(X, allow_nan)
        _check_width(estimator, packed.elements.shape[1], None, reset)
        return packed
    elements = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan" if allow_nan else True,
        order="C",
        copy=False,
    )
    offsets = np.arange(elements.shape[0] + 1, dtype=np.int64)
    return PackedCollections(elements, offsets, "2d")


def gen_sample_chunks(offsets, element_bytes, sample_bytes=0, working_memory=None):
    """Slices of whole samples whose temporaries fit in ``working_memory``.

    The ragged counterpart of scikit-learn's ``get_chunk_n_rows`` +
    ``gen_batches`` (as in ``pairwise_distances_chunked``): a chunk of samples
    ``start:stop`` costs ``element_bytes`` per element it owns plus
    ``sample_bytes`` per sample, and chunks are as long as that cost stays
    within ``working_memory`` MiB.  A sample is never split: one whose cost
    alone exceeds the budget is a chunk by itself.

    Parameters
    ----------
    offsets : ndarray of shape (n_samples + 1,)
        Sample ``i`` owns elements ``offsets[i]:offsets[i + 1]``.
    element_bytes : int
        Temporary memory per element.
    sample_bytes : int, default=0
        Temporary memory per sample.
    working_memory : float, default=None
        In MiB; ``sklearn.get_config()["working_memory"]`` when None.

    Yields
    ------
    chunk : slice
        Consecutive samples ``chunk.start:chunk.stop``, covering all samples
        in order.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention._collections import gen_sample_chunks
    >>> offsets = np.array([0, 3, 4, 9, 10])
    >>> [(c.start, c.stop) for c in gen_sample_chunks(offsets, 2**20 // 4, working_memory=1)]
    [(0, 2), (2, 3), (3, 4)]
    """
    if working_memory is None:
        working_memory = get_config()["working_memory"]
    offsets = np.asarray(offsets, dtype=np.int64)
    n_samples = offsets.shape[0] - 1
    # cumulative cost at every sample boundary
    cost = offsets * int(element_bytes) + np.arange(n_samples + 1) * int(sample_bytes)
    budget = int(working_memory * 2**20)
    start = 0
    while start < n_samples:
        stop = int(np.searchsorted(cost, cost[start] + budget, side="right")) - 1
        stop = min(max(stop, start + 1), n_samples)
        yield slice(start, stop)
        start = stop


def step_positions(offsets):
    """Index of every packed element within its sample, and that sample's length.

    Parameters
    ----------
    offsets : ndarray of shape (n_samples + 1,)
        Sample ``i`` owns packed elements ``offsets[i]:offsets[i + 1]``.

    Returns
    -------
    t : ndarray of shape (n_elements_total,), dtype int64
        0 for the first element of every sample, 1 for the second, ...
    lengths : ndarray of shape (n_elements_total,), dtype int64
        The number of elements of the sample each element belongs to.

    Examples
    --------
    >>> from sk_attention._collections import step_positions
    >>> t, lengths = step_positions([0, 3, 4])
    >>> t.tolist(), lengths.tolist()
    ([0, 1, 2, 0], [3, 3, 3, 1])
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    t = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    return t, np.repeat(lengths, lengths)
