"""Base of the transformers whose output keeps the form of their input.

2D input gives 2D output, which ``set_output`` (or the global
``transform_output``) may turn into a DataFrame; 3D input gives a 3D array
(padding kept), which no DataFrame can hold; ragged input gives a list, of
DataFrames under pandas or polars output, so the feature names travel to
the next step of a Pipeline.  sklearn's automatic output wrapping is
switched off here and applied by hand.

A dask array (2D or 3D, chunked along samples) is transformed lazily, block
by block, into a dask array of the same form (see :func:`~._dask.map_samples`);
``set_output`` does not apply to it.
"""

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._collections import (
    FeatureNamedArray,
    _is_dask_collection,
    _sample_list,
    check_collections,
)
from ._compat import get_output_config, wrap_data_with_container


def _dense(out):
    """A transformer's output as a NumPy array, whatever container it came in."""
    if sparse.issparse(out):
        return out.toarray()
    if hasattr(out, "to_numpy"):  # a pandas or polars DataFrame
        return out.to_numpy()
    return np.asarray(out)


def _check_no_new_padding(out, packed, estimator):
    """A real element of 3D input must not come out all-NaN, which reads as padding."""
    gone = np.isnan(out).all(axis=1)
    if not gone.any():
        return
    first = np.flatnonzero(gone)[0]
    sample = np.searchsorted(packed.offsets, first, side="right") - 1
    step = np.flatnonzero(packed.mask[sample])[first - packed.offsets[sample]]
    what = getattr(estimator, "transformer_", estimator)  # the one that did it
    raise ValueError(
        f"{type(what).__name__} turned step {step} of sample {sample}, a real "
        "element, into all NaN, which a 3D array can only read as padding; make the "
        "transformation finite on the data (or impute afterwards)."
    )


class CollectionTransformer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Transform every element; give the result back in the input's form.

    Subclasses implement ``fit``, ``_transform_elements(packed)`` returning
    an ``(n_elements_total, n_features_out)`` array and ``_allow_nan()``.
    They must not define ``transform`` or ``fit_transform`` themselves, and
    they declare the default ``auto_wrap_output_keys`` so that
    ``set_output`` exists.
    """

    def _allow_nan(self):
        return False

    def _dask_output_dtype(self, dtype):
        """dtype of the output for input of float ``dtype``, known before computing it."""
        return dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def transform(self, X):
        """Transform every element of every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Samples in any form of the data model.

        Returns
        -------
        X_out : ndarray, DataFrame or list
            2D input gives ``(n_samples, n_features_out)`` (a DataFrame under
            pandas or polars output), 3D input gives ``(n_samples, n_steps,
            n_features_out)`` with padding kept as all-NaN elements (under
            pandas or polars output, an ndarray whose ``columns`` attribute
            names the features), a ragged collection gives a list of
            ``(n_elements_i, n_features_out)`` arrays (DataFrames under pandas
            or polars output).  A 2D or 3D dask array chunked along samples
            gives a lazy dask array of the same form, transformed block by
            block.
        """
        if _is_dask_collection(X):
            from ._dask import map_samples  # dask only when the user brings it

            return map_samples(self, "transform", X, allow_nan=self._allow_nan())
        check_is_fitted(self)
        packed = check_collections(X, estimator=self, reset=False, allow_nan=self._allow_nan())
        out = _dense(self._transform_elements(packed))
        if packed.form == "2d":
            return wrap_data_with_container("transform", out, X, self)
        if out.dtype.kind != "f":
            out = out.astype(float)
        named = get_output_config("transform", self)["dense"] != "default"
        if packed.form == "3d":
            _check_no_new_padding(out, packed, self)
            out = packed.unpack(out)
            # no DataFrame holds 3D: the array carries the names instead
            return FeatureNamedArray(out, self.get_feature_names_out()) if named else out
        samples = packed.unpack(out)
        if not named:
            return samples
        return [
            wrap_data_with_container("transform", sample, original, self)
            for sample, original in zip(samples, _sample_list(X))
        ]

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then transform ``X``; see :meth:`transform`.

        Parameters
        ----------
        X : array-like, 3D ndarray or list of array-likes
            Samples in any form of the data model.
        y : array-like of shape (n_samples,), default=None
            Targets, if the transformer uses them.
        **fit_params : dict
            Passed to ``fit``.

        Returns
        -------
        X_out : ndarray, DataFrame or list of ndarray
            As :meth:`transform` returns it.
        """
        return self.fit(X, y, **fit_params).transform(X)
