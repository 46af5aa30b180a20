"""ElementwiseTransformer: any 2D transformer applied to every element."""

import numpy as np
from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from ._compat import HasMethods, check_feature_names_in
from ._collection_transformer import CollectionTransformer
from ._collections import _is_dask_collection, check_collections

__all__ = ["ElementwiseTransformer"]


class ElementwiseTransformer(CollectionTransformer, auto_wrap_output_keys=("transform",)):
    """Apply a scikit-learn transformer to every element of every sample.

    The wrapped transformer is fitted on all elements of all samples stacked
    (padding excluded) and then transforms each element; the output keeps
    the form of the input: 2D stays 2D, 3D keeps its padding as padding, a
    ragged list stays a list.  Use it to scale or reduce elements before
    attention in a Pipeline.

    Parameters
    ----------
    transformer : estimator object
        A transformer with ``fit`` and ``transform`` (StandardScaler, PCA,
        SimpleImputer, ...). It decides whether NaN may appear inside
        elements.

    Attributes
    ----------
    transformer_ : estimator object
        The fitted clone of ``transformer``.
    n_features_in_ : int
        Number of features of one element.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X (or its samples) had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sk_attention import ElementwiseTransformer
    >>> bags = [np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[4.0, 5.0]])]
    >>> scaled = ElementwiseTransformer(StandardScaler()).fit_transform(bags)
    >>> [bag.shape for bag in scaled]
    [(2, 2), (1, 2)]
    >>> np.round(scaled[1], 2)
    array([[1.22, 1.22]])
    """

    _parameter_constraints = {"transformer": [HasMethods(["fit", "transform"])]}

    def __init__(self, transformer):
        self.transformer = transformer

    def _allow_nan(self):
        return get_tags(self.transformer).input_tags.allow_nan

    def _dask_output_dtype(self, dtype):
        """The input's float dtype if the wrapped transformer preserves it, else float64."""
        tags = get_tags(self.transformer_).transformer_tags
        preserved = tags.preserves_dtype if tags is not None else []
        return dtype if dtype.name in preserved else np.dtype(np.float64)

    def fit(self, X, y=None, **fit_params):
        """Fit the wrapped transformer on all elements stacked.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Samples in any form of the data model, a 2D or 3D dask array
            chunked along samples, or a ``dask.bag.Bag`` of 2D arrays.  On
            dask input a transformer with ``partial_fit`` (StandardScaler,
            MinMaxScaler, IncrementalPCA, ...) is fitted partition by
            partition, each on the worker that holds it, so X never leaves
            the workers (its statistics then agree with a one-shot ``fit``
            to rounding); any other is fitted on X computed into this
            process.  ``transform`` stays lazy, partition by partition.
        y : array-like of shape (n_samples,), default=None
            Per-sample targets; repeated for every element of the sample
            when given.
        **fit_params : dict
            Passed to the wrapped transformer's ``fit``.

        Returns
        -------
        self : ElementwiseTransformer
            Fitted transformer.
        """
        self._validate_params()
        if _is_dask_collection(X):
            # dask only when the user brings it
            from ._dask import computed, fit_partition_by_partition, record_width

            if not hasattr(self.transformer, "partial_fit"):
                X, y = computed(X, y)
            else:
                self.transformer_, width = fit_partition_by_partition(
                    clone(self.transformer), X, y, self._allow_nan(), fit_params
                )
                record_width(self, X, width)
                return self
        packed = check_collections(X, estimator=self, reset=True, allow_nan=self._allow_nan())
        if y is not None:
            y = np.repeat(np.asarray(y), packed.lengths, axis=0)
        self.transformer_ = clone(self.transformer).fit(packed.elements, y, **fit_params)
        return self

    def _transform_elements(self, packed):
        return self.transformer_.transform(packed.elements)

    def get_feature_names_out(self, input_features=None):
        """Output feature names of the wrapped transformer.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the element features; defaults to ``feature_names_in_``
            or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        names = check_feature_names_in(self, input_features)
        return self.transformer_.get_feature_names_out(names)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.transformer)
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.transformer_tags.preserves_dtype = list(inner.transformer_tags.preserves_dtype)
        tags.target_tags.required = inner.target_tags.required
        return tags
