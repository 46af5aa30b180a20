"""Reading a fitted model's attention: from a Pipeline and raw X."""

from sklearn.pipeline import Pipeline

__all__ = ["attention_weights"]


def _attention_step(model):
    """Index of the last step of a Pipeline that can give attention weights."""
    for index in range(len(model.steps) - 1, -1, -1):
        step = model.steps[index][1]
        if hasattr(step, "attention_weights") or (
            isinstance(step, Pipeline) and _attention_step(step) is not None
        ):
            return index
    return None


def attention_weights(model, X):
    """Attention weights of every element of ``X``, per head, from raw input.

    ``model`` is a fitted attention estimator (:class:`AttentionClassifier`,
    :class:`AttentionRegressor`, :class:`AttentionPooling`) or a fitted
    :class:`~sklearn.pipeline.Pipeline` that holds one: ``X`` goes through
    the steps before the (last) attention step, as in ``predict``, so the
    weights belong to what that step saw, whatever precedes it
    (``ElementwiseTransformer``, ``PositionalEncoding``, ...).

    Parameters
    ----------
    model : fitted estimator or Pipeline
    X : array-like of shape (n_samples, n_features), ndarray of shape \
            (n_samples, n_steps, n_features), or list of array-likes
        Raw samples, in any form of the data model.

    Returns
    -------
    weights : ndarray of shape (n_samples, n_steps, n_heads) or list
        As the attention step's ``attention_weights`` returns them: for a
        ragged collection a list of ``(n_elements_i, n_heads)`` arrays; for
        3D input padding gets weight 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sk_attention import AttentionClassifier, ElementwiseTransformer, attention_weights
    >>> rng = np.random.RandomState(0)
    >>> bags = [rng.normal(size=(4, 2)) for _ in range(20)]
    >>> y = np.arange(20) % 2
    >>> model = make_pipeline(ElementwiseTransformer(StandardScaler()),
    ...                       AttentionClassifier(n_heads=2, random_state=0)).fit(bags, y)
    >>> weights = attention_weights(model, bags[:3])
    >>> len(weights), weights[0].shape
    (3, (4, 2))
    """
    if isinstance(model, Pipeline):
        index = _attention_step(model)
        if index is None:
            raise TypeError(
                "The Pipeline has no step with attention_weights; it needs an "
                "AttentionClassifier, AttentionRegressor or AttentionPooling."
            )
        if index > 0:
            X = model[:index].transform(X)
        return attention_weights(model.steps[index][1], X)
    if not hasattr(model, "attention_weights"):
        raise TypeError(
            f"{type(model).__name__} has no attention_weights; pass an attention "
            "estimator or a Pipeline that holds one."
        )
    return model.attention_weights(X)


def attention_estimator(model):
    """The estimator whose weights :func:`attention_weights` returns."""
    while isinstance(model, Pipeline):
        index = _attention_step(model)
        if index is None:
            break
        model = model.steps[index][1]
    return model
