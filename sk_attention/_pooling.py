"""AttentionPooling: the learned pooled vectors as a supervised transformer."""

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils.multiclass import type_of_target

from ._base import BaseAttention
from ._collections import _is_dask_collection
from ._compat import StrOptions, check_feature_names_in
from ._targets import encode_classes, encode_continuous

__all__ = ["AttentionPooling"]


class AttentionPooling(TransformerMixin, BaseAttention):
    """Supervised transformer: one attention-pooled vector per sample.

    Fits the same model as :class:`AttentionClassifier` (or
    :class:`AttentionRegressor`) on ``y``, then ``transform`` returns the
    concatenated context vectors ``[c_1, ..., c_K]`` of every sample, so any
    downstream estimator can learn from them.

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
    objective : {"auto", "classification", "regression"}, default="auto"
        Head trained to fit the attention; "auto" picks regression for
        continuous ``y`` (``type_of_target``) and classification otherwise.

    Attributes
    ----------
    objective_ : str
        The objective used, "classification" or "regression".
    classes_ : ndarray of shape (n_classes,)
        Class labels (classification only).
    n_features_in_ : int
        Number of features of one element.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X (or its samples) had string column names.
    coefs_ : dict of str -> ndarray
        Penalised weights (see :class:`AttentionClassifier`).
    intercepts_ : dict of str -> ndarray
        Biases (see :class:`AttentionClassifier`).
    n_iter_ : int
        Number of L-BFGS-B iterations of the last fit.
    loss_ : float
        Final value of the training objective.
    loss_curve_ : list of float
        Objective after each iteration of the last fit.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention import AttentionPooling
    >>> rng = np.random.RandomState(0)
    >>> bags = [rng.normal(size=(4, 3)) for _ in range(20)]
    >>> y = np.arange(20) % 2
    >>> pooled = AttentionPooling(n_heads=2, random_state=0).fit_transform(bags, y)
    >>> pooled.shape
    (20, 6)
    """

    _parameter_constraints = {
        **BaseAttention._parameter_constraints,
        "objective": [StrOptions({"auto", "classification", "regression"})],
    }

    def __init__(
        self,
        *,
        n_heads=4,
        hidden_size=16,
        embedding_size=None,
        alignment="additive",
        alpha=0.1,
        max_iter=1000,
        tol=1e-5,
        random_state=None,
        warm_start=False,
        verbose=0,
        objective="auto",
    ):
        super().__init__(
            n_heads=n_heads,
            hidden_size=hidden_size,
            embedding_size=embedding_size,
            alignment=alignment,
            alpha=alpha,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
        )
        self.objective = objective

    def _encode_targets(self, y, n_samples):
        objective = self.objective
        if objective == "auto":
            continuous = type_of_target(y, input_name="y") in (
                "continuous",
                "continuous-multioutput",
            )
            objective = "regression" if continuous else "classification"
        self.objective_ = objective
        if objective == "regression":
            if hasattr(self, "classes_"):
                del self.classes_
            return encode_continuous(y, n_samples)
        targets = encode_classes(y, n_samples, None, type(self).__name__)
        self.classes_ = targets.classes
        return targets

    def fit(self, X, y=None, sample_weight=None):
        """Fit the attention on a supervised head.

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
            Labels or continuous targets that the attention learns to serve.
            Required: None raises a ValueError.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        self : AttentionPooling
            Fitted transformer.
        """
        return self._fit(X, y, sample_weight)

    def transform(self, X):
        """Pool every sample into ``n_heads`` context vectors, concatenated.

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
        pooled : ndarray of shape (n_samples, n_heads * (n_features_in_ + embedding_size))
            ``[c_1, ..., c_K]``, each ``c_k`` the weighted average of the
            elements (followed by their embeddings); in X's dtype when it is
            float32, else float64.
        """
        if _is_dask_collection(X):
            return self._lazy("transform", X)
        return self._forward(X, "pooled")[1]

    def get_feature_names_out(self, input_features=None):
        """Names ``head{k}__{feature}``, then ``head{k}__embedding{m}``, per head.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the element features; defaults to ``feature_names_in_``
            or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        params, _, n_heads = self._fitted_model()
        names = list(check_feature_names_in(self, input_features))
        if "E" in params:
            names += [f"embedding{m}" for m in range(params["E"].shape[1])]
        return np.asarray(
            [f"head{k}__{name}" for k in range(n_heads) for name in names],
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
