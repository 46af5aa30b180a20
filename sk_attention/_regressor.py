"""AttentionRegressor: attention pooling with a linear regression head."""

import numpy as np
from sklearn.base import RegressorMixin

from ._base import BaseAttention, _DaskAwareScore
from ._collections import _is_dask_collection
from ._targets import encode_continuous

__all__ = ["AttentionRegressor"]


class AttentionRegressor(_DaskAwareScore, RegressorMixin, BaseAttention):
    """Regressor that attends over the elements of each sample.

    The same attention pooling as :class:`AttentionClassifier`, with a
    linear head trained on half the squared error (averaged over outputs,
    as in MLPRegressor).  Multi-output targets are supported.  The targets
    are standardised internally (each output centred and divided by its
    weighted standard deviation) and the head is mapped back to their
    units, so the model does not depend on the units of y.

    Parameters
    ----------
    n_heads : int, default=4
        Number of independent attention heads.
    hidden_size : int, default=16
        Width of the alignment MLP of each head.
    embedding_size : int or None, default=None
        Units of the element embedding ``u_t = relu(W_e x_t + b_e)``, one
        layer shared by all heads: attention then scores and pools
        ``[x_t, u_t]``, so the head sees weighted means of nonlinear
        features of the elements.  None attends over the elements themselves.
    alignment : {"additive", "gated", "dot"}, default="additive"
        Scoring function (see :class:`AttentionClassifier`).
    alpha : float, default=0.1
        L2 penalty on weights (not biases), divided by the total sample weight.
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    tol : float, default=1e-5
        Stop when the largest component of the projected gradient is below
        ``tol`` (scipy's ``gtol``) or an iteration decreases the loss by less
        than a relative ``tol ** 2`` (scipy's ``ftol``).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights; fits are reproducible given it.
    warm_start : bool, default=False
        Start from the previous solution.  Only the same problem can be
        continued: another element width, other classes or another parameter
        layout raise a ValueError.
    verbose : int, default=0
        Print one line per iteration when positive, and the reason the fit
        stopped.

    Attributes
    ----------
    n_features_in_ : int
        Number of features of one element.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X (or its samples) had string column names.
    coefs_ : dict of str -> ndarray
        Penalised weights (see :class:`AttentionClassifier`); ``"head"`` is
        in the units of y.
    intercepts_ : dict of str -> ndarray
        Biases (see :class:`AttentionClassifier`); ``"head"`` is in the
        units of y.
    n_iter_ : int
        Number of L-BFGS-B iterations of the last fit.
    loss_ : float
        Final value of the training objective, on the standardised targets.
    loss_curve_ : list of float
        Objective after each iteration of the last fit, on the standardised
        targets.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention import AttentionRegressor
    >>> rng = np.random.RandomState(0)
    >>> sets = [rng.normal(size=(rng.randint(2, 6), 3)) for _ in range(80)]
    >>> y = np.array([s[:, 0].max() for s in sets])  # depends on one element
    >>> reg = AttentionRegressor(max_iter=500, random_state=0).fit(sets, y)
    >>> bool(reg.score(sets, y) > 0.8)
    True
    """

    # predictions in float64 whatever X's dtype: the intercept carries y's
    # mean, and y's units are the user's, not float32's
    _head_dtype = np.float64

    def _encode_targets(self, y, n_samples):
        targets = encode_continuous(y, n_samples)
        self._y_1d = targets.one_dimensional
        return targets

    def fit(self, X, y, sample_weight=None):
        """Fit the attention and the head jointly.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Training samples in any form of the data model.
            A 2D or 3D dask array chunked along samples, or a
            ``dask.bag.Bag`` of 2D arrays (y then in the bag's order), is
            validated and packed on the workers of the current
            ``distributed.Client`` and stays there for the whole fit
            (without a client, dask computes it and the fit is in memory).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        self : AttentionRegressor
            Fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like, 3D ndarray or list of array-likes
            Samples in any form of the data model.  A 2D array is that many
            samples of one element each: to predict one bag, pass ``[bag]``.
            A 2D or 3D dask array chunked along samples gives a lazy dask
            array, computed block by block; a ``dask.bag.Bag`` of 2D arrays
            one with a chunk per partition (sizes known once computed).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The shape of the y given to fit; float64 (the attention runs in
            float32 for float32 X, the intercept is added in float64).
        """
        if _is_dask_collection(X):
            return self._lazy("predict", X)
        output = self._head_output(X)
        return output[:, 0] if self._y_1d else output


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
