"""The input model: every accepted form of X becomes one packed array.

A *collection* is one sample made of elements (vectors of ``n_features``
numbers).  Users pass collections in three forms:

- a 2D array-like ``(n_samples, n_features)``: one element per sample;
- a 3D ndarray ``(n_samples, n_steps, n_features)`` in which an element whose
  features are all NaN is padding;
- a list or tuple of 2D array-likes ``(n_elements_i, n_features)`` (ragged),
  or the same items in a 1D object ndarray or a pandas Series.

:func:`check_collections` validates any of them and returns a
:class:`PackedCollections`: all real elements stacked in sample order plus the
offsets where each sample starts.  Nothing past this module knows which form
the data came in, except :meth:`PackedCollections.unpack`, which puts
per-element results back into the form the user gave.
"""

import sys
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.utils.validation import validate_data

from ._compat import check_feature_names

__all__ = [
    "FeatureNamedArray",
    "PackedCollections",
    "check_collections",
    "gen_sample_chunks",
    "step_positions",
]


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


def _is_dask_collection(X):
    """Whether X is a dask collection, without importing dask.

    No dask collection can exist unless the user imported dask.
    """
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


def _computed_if_dask(array):
    """``array`` in this process: a dask collection computed, anything else as it is."""
    return array.compute() if _is_dask_collection(array) else array


def _float_dtype(dtype):
    """float32 stays float32; every other dtype is computed in float64."""
    return np.float32 if dtype == np.float32 else np.float64


_FORMS = (
    "a 2D array (n_samples, n_features) of one element per sample, a 3D array "
    "(n_samples, n_steps, n_features) padded with all-NaN elements, or a list of "
    "2D arrays (n_elements_i, n_features)"
)


def _ndim(item):
    """Dimensions of an array-like, or None for what is not one (a scalar)."""
    if sparse.issparse(item):
        return 2
    ndim = getattr(item, "ndim", None)
    if ndim is None and hasattr(item, "shape") and hasattr(item, "columns"):
        ndim = len(item.shape)  # a polars DataFrame
    if ndim is not None:
        return ndim
    if isinstance(item, (list, tuple)):
        if len(item) == 0:
            return 1
        inner = {_ndim(row) for row in item}
        return 1 + max(inner) if None not in inner else 1
    return None


def _sample_list(X):
    """The samples of a ragged collection as a list, or None if X is not one.

    A list or tuple, a 1D object ndarray or a pandas Series whose items are
    2D array-likes is ragged (even when all lengths are equal); a list of
    numbers or of rows is a 2D array-like.
    """
    if isinstance(X, (list, tuple)):
        items = list(X)
    elif isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype == object:
        items = list(X)
    elif hasattr(X, "iloc") and getattr(X, "ndim", None) == 1:  # a pandas Series
        items = list(X.to_numpy())
    else:
        return None
    if len(items) == 0:
        raise ValueError(f"X holds no samples; pass at least one, as {_FORMS}.")
    dims = [_ndim(item) for item in items]
    if all(d is None or d < 2 for d in dims):
        return None  # numbers or rows: a 2D array-like
    for i, d in enumerate(dims):
        if d != 2:
            what = "a scalar" if d is None else f"{d}D"
            raise ValueError(
                f"X is a list of 2D samples, but sample {i} is not 2D (it is {what}): "
                "every sample of a ragged collection must have shape "
                "(n_elements, n_features)."
            )
    return items


def _kind(dtype):
    """NumPy's kind letter of a NumPy, pandas or polars dtype ("O" when unknown)."""
    kind = getattr(dtype, "kind", None)
    if kind is None:  # a polars dtype
        is_numeric = getattr(dtype, "is_numeric", None)
        return "f" if is_numeric is not None and is_numeric() else "O"
    return kind


def _reject_text_and_masks(X, where):
    """Strings, bytes and masked arrays are refused, not parsed or unmasked."""
    if np.ma.isMaskedArray(X):
        raise ValueError(
            f"{where} is a masked array, whose masked values would be read as data; "
            "fill them with NaN and impute them (ElementwiseTransformer(SimpleImputer())), "
            "or drop them."
        )
    if sparse.issparse(X):
        return
    dtypes = [X.dtype] if hasattr(X, "dtype") else list(getattr(X, "dtypes", []))
    if not dtypes:  # a list of rows
        X = np.asarray(X)
        dtypes = [X.dtype]
    kinds = {_kind(dtype) for dtype in dtypes}
    text = bool(kinds & set("US"))
    if not text and "O" in kinds:  # objects: numbers are fine, strings are not
        text = any(isinstance(v, (str, bytes)) for v in np.asarray(X, dtype=object).ravel())
    if text:
        raise ValueError(
            f"{where} holds strings; attention needs numbers: convert or encode "
            "them first (e.g. OneHotEncoder on the elements)."
        )


def _reject_nonnumeric(arr, where):
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {where} is complex.")
    if kind == "O":
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


_IMPUTE_ADVICE = (
    "missing values can be imputed per element with "
    "ElementwiseTransformer(SimpleImputer()); all-NaN elements are padding only in 3D arrays"
)


def _check_finite_elements(elements, offsets, allow_nan, form, first_sample=0):
    """Raise naming the first sample (and its element) with inf, or NaN when not allowed.

    ``first_sample`` is the index of the first of these samples in the whole
    data (a partition of a dask array is validated on its own).
    """
    infinite = np.isinf(elements).any(axis=1)
    bad = infinite if allow_nan else infinite | np.isnan(elements).any(axis=1)
    if not bad.any():
        return
    first = np.flatnonzero(bad)[0]
    sample = np.searchsorted(offsets, first, side="right") - 1
    element = first - offsets[sample]
    sample += first_sample
    if infinite[first]:
        raise ValueError(f"sample {sample} contains infinity in element {element}.")
    if form == "3d":  # DESIGN's wording: an all-NaN element would have been padding
        raise ValueError(f"sample {sample} contains NaN in a partially filled element.")
    raise ValueError(f"sample {sample} contains NaN in element {element}; {_IMPUTE_ADVICE}.")


def _pack_3d(X, allow_nan, first_sample=0):
    _reject_text_and_masks(X, "X")
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
            f"sample {first_sample + np.flatnonzero(empty)[0]} has no elements (only padding); "
            "every sample needs at least one."
        )
    elements = np.ascontiguousarray(X[mask])
    offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
    _check_finite_elements(elements, offsets, allow_nan, "3d", first_sample)
    return PackedCollections(elements, offsets, "3d", mask)


def _pack_ragged(X, allow_nan, first_sample=0):
    samples = []
    for i, item in enumerate(X, start=first_sample):
        where = f"sample {i}"
        if sparse.issparse(item):
            raise TypeError(
                f"{where} is a sparse matrix, but dense data is required; "
                "use .toarray() to convert it."
            )
        _reject_text_and_masks(item, where)
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
    _check_finite_elements(elements, offsets, allow_nan, "ragged", first_sample)
    return PackedCollections(np.ascontiguousarray(elements), offsets, "ragged")


class FeatureNamedArray(np.ndarray):
    """A 3D collection array that carries the names of its features.

    Under pandas or polars output a 3D array cannot become a DataFrame; this
    view of it keeps ``columns``, the names of the last axis, as a
    DataFrame's columns do, so the next step of a Pipeline (and
    scikit-learn's feature-name checks) see them.
    """

    def __new__(cls, array, columns):
        named = np.asarray(array).view(cls)
        named.columns = list(columns)
        return named

    def __array_finalize__(self, obj):
        self.columns = getattr(obj, "columns", None)


def _column_names(X):
    """A sample's column names as a tuple, or None without (string) names."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = tuple(columns)
    return names if names and all(isinstance(name, str) for name in names) else None


def _check_width(estimator, n_features, reset):
    """Set, or check against, n_features_in_."""
    if reset:
        estimator.n_features_in_ = n_features
        return
    expected = estimator.n_features_in_
    if n_features != expected:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is "
            f"expecting {expected} features as input."
        )


def _check_3d_names(estimator, names, reset):
    """scikit-learn's feature-name check, for a 3D array named or not.

    A 3D array has names only as a :class:`FeatureNamedArray`, which
    scikit-learn's own check does not read; the warnings and errors are
    worded as scikit-learn words them for 2D input.
    """
    if reset:
        if names is not None:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    name = type(estimator).__name__
    if fitted is None and names is not None:
        warnings.warn(f"X has feature names, but {name} was fitted without feature names")
    elif fitted is not None and names is None:
        warnings.warn(
            f"X does not have valid feature names, but {name} was fitted with feature names"
        )
    elif fitted is not None and list(fitted) != list(names):
        message = "The feature names should match those that were passed during fit.\n"
        unseen = [n for n in names if n not in set(fitted)]
        missing = [n for n in fitted if n not in set(names)]
        for title, group in (
            ("Feature names unseen at fit time", unseen),
            ("Feature names seen at fit time, yet now missing", missing),
        ):
            if group:
                message += f"{title}:\n" + "".join(f"- {n}\n" for n in group)
        if not unseen and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)


def check_collections(X, *, estimator, reset, allow_nan=False):
    """Validate a collection input of any form and pack it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), ndarray of shape \
            (n_samples, n_steps, n_features), or list of array-likes
        The samples, in one of the forms of the package's data model.
    estimator : estimator instance
        Receives ``n_features_in_`` (and ``feature_names_in_``) when
        ``reset`` is True; otherwise the element width and the feature names
        are checked against them, as scikit-learn checks 2D input.
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
    samples = _sample_list(X)
    if samples is not None:
        names = _column_names(samples[0])
        for i, item in enumerate(samples):
            if _column_names(item) != names:
                raise ValueError(
                    f"sample {i} has other feature names than sample 0; all "
                    "samples must have the same columns."
                )
        packed = _pack_ragged(samples, allow_nan)
        _check_width(estimator, packed.elements.shape[1], reset)
        # sklearn's own check of the names, on one sample: the same warnings
        # and errors as for 2D input
        check_feature_names(estimator, samples[0], reset=reset)
        return packed
    ndim = getattr(X, "ndim", None)
    if ndim is not None and ndim > 3 and not sparse.issparse(X):
        raise ValueError(f"X has {ndim} dimensions; pass {_FORMS}.")
    if ndim == 3 and not sparse.issparse(X):
        packed = _pack_3d(X, allow_nan)
        _check_width(estimator, packed.elements.shape[1], reset)
        _check_3d_names(estimator, _column_names(X), reset)
        return packed
    _reject_text_and_masks(X, "X")
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
