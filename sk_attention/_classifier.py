"""AttentionClassifier: attention pooling with a logistic / softmax head."""

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin

from ._base import BaseAttention, _DaskAwareScore
from ._collections import _is_dask_collection
from ._compat import StrOptions
from ._targets import encode_classes

__all__ = ["AttentionClassifier"]


class AttentionClassifier(_DaskAwareScore, ClassifierMixin, BaseAttention):
    """Classifier that attends over the elements of each sample.

    Every sample is a collection of elements (a bag, a set, a sequence).
    Each of ``n_heads`` heads scores every element with a small alignment
    MLP, turns the scores into weights with a softmax over the sample's
    elements and pools the elements into a context vector; a linear softmax
    head classifies the concatenated context vectors.  Attention and head are
    trained jointly by L-BFGS-B on the exact gradient.

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
        Scoring function: ``v . tanh(W h + b)`` (Bahdanau), the gated
        variant ``v . (tanh(W h + b) * sigmoid(U h + c))`` (Ilse et al.) or
        the scaled dot product ``q . (W h) / sqrt(hidden_size)``.
    alpha : float, default=0.1
        L2 penalty on weights (not biases), divided by the total sample
        weight; ``alpha=1.0`` matches LogisticRegression's ``C=1.0``.
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
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features of one element.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X (or its samples) had string column names.
    coefs_ : dict of str -> ndarray
        Penalised weights, with ``D' = n_features_in_ + embedding_size``
        (``n_features_in_`` without the embedding): the alignment's ``"W"``
        (D', n_heads * hidden_size; columns ``k*hidden_size:(k+1)*hidden_size``
        belong to head k), ``"U"`` (gated), ``"v"`` or ``"q"`` (n_heads,
        hidden_size), the embedding's ``"embedding"`` (n_features_in_,
        embedding_size) and the head's ``"head"`` (n_heads * D', n_outputs).
    intercepts_ : dict of str -> ndarray
        Biases: ``"b"`` (and ``"c"``, gated) of shape (n_heads *
        hidden_size,), the embedding's ``"embedding"`` (embedding_size,) and
        the head's ``"head"`` (n_outputs,).  Together with
        ``coefs_`` this is the whole fitted model: every prediction is
        computed from them (:mod:`sk_attention.functional` recomputes them).
    n_iter_ : int
        Number of L-BFGS-B iterations of the last fit.
    loss_ : float
        Final value of the training objective.
    loss_curve_ : list of float
        Objective after each iteration of the last fit.

    See Also
    --------
    AttentionRegressor : The same model with a linear regression head.
    AttentionPooling : The pooled vectors as a supervised transformer.
    sk_attention.functional.general_attention : One head, in plain NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention import AttentionClassifier
    >>> rng = np.random.RandomState(0)
    >>> bags = [rng.normal(size=(rng.randint(3, 8), 2)) for _ in range(60)]
    >>> y = np.arange(60) % 2
    >>> for bag, label in zip(bags, y):
    ...     bag[0] += 4 * label  # positive bags hold one shifted element
    >>> clf = AttentionClassifier(random_state=0).fit(bags, y)
    >>> clf.predict(bags[:4])
    array([0, 1, 0, 1])
    >>> clf.attention_weights(bags[:1])[0].shape
    (7, 4)
    """

    _parameter_constraints = {
        **BaseAttention._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
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
        class_weight=None,
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
        self.class_weight = class_weight

    def _encode_targets(self, y, n_samples):
        targets = encode_classes(y, n_samples, self.class_weight, type(self).__name__)
        self.classes_ = targets.classes
        return targets

    def fit(self, X, y, sample_weight=None):
        """Fit the attention and the head jointly.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Training samples: one element per row (2D), NaN-padded
            sequences (3D) or a ragged list of ``(n_elements_i, n_features)``.
            A 2D or 3D dask array chunked along samples, or a
            ``dask.bag.Bag`` of 2D arrays (y then in the bag's order), is
            validated and packed on the workers of the current
            ``distributed.Client`` and stays there for the whole fit
            (without a client, dask computes it and the fit is in memory).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        self : AttentionClassifier
            Fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    def decision_function(self, X):
        """Logits: shape (n_samples,) for two classes, else (n_samples, n_classes).

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
        scores : ndarray
            Positive values favour ``classes_[1]`` in the binary case.
        """
        if _is_dask_collection(X):
            return self._lazy("decision_function", X)
        logits = self._head_output(X)
        return logits[:, 0] if logits.shape[1] == 1 else logits

    def predict_proba(self, X):
        """Class probabilities.

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
        proba : ndarray of shape (n_samples, n_classes)
        """
        if _is_dask_collection(X):
            return self._lazy("predict_proba", X)
        # float64 so that tiny probabilities do not underflow to 0
        logits = self._head_output(X).astype(np.float64)
        if logits.shape[1] == 1:
            return np.column_stack([expit(-logits[:, 0]), expit(logits[:, 0])])
        return softmax(logits, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

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
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        if _is_dask_collection(X):
            return self._lazy("predict_log_proba", X)
        logits = self._head_output(X).astype(np.float64)
        if logits.shape[1] == 1:
            return np.column_stack([log_expit(-logits[:, 0]), log_expit(logits[:, 0])])
        return log_softmax(logits, axis=1)

    def predict(self, X):
        """Most probable class of every sample.

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
        y_pred : ndarray of shape (n_samples,)
        """
        if _is_dask_collection(X):
            return self._lazy("predict", X)
        logits = self._head_output(X)
        if logits.shape[1] == 1:
            return self.classes_[(logits[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(logits, axis=1)]
