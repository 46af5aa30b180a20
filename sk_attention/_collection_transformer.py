"""Base of the transformers whose output keeps the form of their input.

2D input gives 2D output, which ``set_output`` may turn into a DataFrame;
3D and ragged input give 3D (padding kept) and ragged output, which no
DataFrame can hold, so sklearn's automatic output wrapping is switched off
here and applied by hand to 2D output only.
"""

from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._collections import check_collections
from ._compat import wrap_data_with_container


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
        X_out : ndarray, DataFrame or list of ndarray
            2D input gives ``(n_samples, n_features_out)`` (a DataFrame under
            ``set_output(transform="pandas")``), 3D input gives
            ``(n_samples, n_steps, n_features_out)`` with padding kept as
            all-NaN elements, a ragged list gives a list.
        """
        check_is_fitted(self)
        packed = check_collections(X, estimator=self, reset=False, allow_nan=self._allow_nan())
        out = self._transform_elements(packed)
        if packed.form == "2d":
            return wrap_data_with_container("transform", out, X, self)
        if sparse.issparse(out):
            out = out.toarray()
        if out.dtype.kind != "f":
            out = out.astype(float)
        return packed.unpack(out)

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
