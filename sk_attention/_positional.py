"""PositionalEncoding: tell an order-free attention where each element sits."""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._compat import Interval, check_feature_names_in
from ._collection_transformer import CollectionTransformer
from ._collections import _is_dask_collection, check_collections, step_positions

__all__ = ["PositionalEncoding"]


def relative_positions(offsets):
    """Relative position of every packed element within its sample.

    Parameters
    ----------
    offsets : ndarray of shape (n_samples + 1,)
        Sample ``i`` owns packed elements ``offsets[i]:offsets[i + 1]``.

    Returns
    -------
    r : ndarray of shape (n_elements_total,), dtype float64
        ``t / (T_i - 1)`` for the ``t``-th real element (0-based) of a
        sample with ``T_i`` real elements; 0 when ``T_i == 1``.
    """
    t, lengths = step_positions(offsets)
    return t / np.maximum(lengths - 1, 1)


class PositionalEncoding(CollectionTransformer, auto_wrap_output_keys=("transform",)):
    """Append each element's relative position in its sequence.

    Attention pools a sample as a set: it does not know where an element
    sits.  For sequences (3D input or a ragged list, in time order) this step
    appends to every element its relative position among the sample's real
    elements, ``r = t / (T_i - 1)`` (0 for a sample of one element), followed
    by ``sin(pi j r)`` and ``cos(pi j r)`` for ``j = 1..n_frequencies``.
    Padding of 3D input (all-NaN elements, wherever they are) stays padding
    and does not count as a position.  The output keeps the input's form;
    2D input (one element per sample) gets ``r = 0``.

    Parameters
    ----------
    n_frequencies : int, default=2
        Number of sine/cosine pairs appended after the position; 0 appends
        the position only.

    Attributes
    ----------
    n_features_in_ : int
        Number of features of one input element.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X (or its samples) had string column names.

    See Also
    --------
    ElementwiseTransformer : Scale or reduce elements before this step.

    Notes
    -----
    NaN inside an element is passed through unchanged (the position features
    are still appended), so an imputer may follow this step.  Elements are
    never reordered: the position is the element's rank among the sample's
    real elements in the order given.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention import PositionalEncoding
    >>> series = [np.array([[5.0], [6.0], [7.0]]), np.array([[1.0]])]
    >>> encoder = PositionalEncoding(n_frequencies=1).fit(series)
    >>> encoder.get_feature_names_out().tolist()
    ['x0', 'position', 'position_sin1', 'position_cos1']
    >>> np.round(encoder.transform(series)[0], 3)
    array([[ 5. ,  0. ,  0. ,  1. ],
           [ 6. ,  0.5,  1. ,  0. ],
           [ 7. ,  1. ,  0. , -1. ]])
    >>> encoder.transform(series)[1]
    array([[1., 0., 0., 1.]])
    """

    _parameter_constraints = {"n_frequencies": [Interval(Integral, 0, None, closed="left")]}

    def __init__(self, n_frequencies=2):
        self.n_frequencies = n_frequencies

    def _allow_nan(self):
        return True

    def fit(self, X, y=None):
        """Record the element width (and feature names); nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Samples in any form of the data model.  A dask array (2D or 3D,
            chunked along samples) is not computed: only its width is read.
        y : None
            Ignored.

        Returns
        -------
        self : PositionalEncoding
            Fitted transformer.
        """
        self._validate_params()
        if _is_dask_collection(X):
            from ._dask import record_width  # dask only when the user brings it

            record_width(self, X)  # the elements are checked block by block in transform
            return self
        check_collections(X, estimator=self, reset=True, allow_nan=self._allow_nan())
        return self

    def _transform_elements(self, packed):
        elements = packed.elements
        r = relative_positions(packed.offsets)
        columns = [r]
        for j in range(1, self.n_frequencies + 1):
            angle = np.pi * j * r
            columns += [np.sin(angle), np.cos(angle)]
        encoding = np.column_stack(columns).astype(elements.dtype, copy=False)
        return np.hstack([elements, encoding])

    def get_feature_names_out(self, input_features=None):
        """Input feature names followed by the position features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the element features; defaults to ``feature_names_in_``
            or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The input names, then ``position``, ``position_sin1``,
            ``position_cos1``, ``position_sin2``, ...
        """
        check_is_fitted(self)
        names = list(check_feature_names_in(self, input_features))
        names.append("position")
        for j in range(1, self.n_frequencies + 1):
            names += [f"position_sin{j}", f"position_cos{j}"]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
