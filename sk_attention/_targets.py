"""Targets as the losses expect them: pure functions, no estimator state.

The estimators call these in ``fit`` and keep what they need of the result
(``classes_``, whether y was 1D); :class:`AttentionPooling` picks one of
the two by its objective.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

__all__ = ["EncodedTargets", "encode_classes", "encode_continuous"]


@dataclass(frozen=True)
class EncodedTargets:
    """Targets ready for a loss of :data:`~._losses.LOSSES`.

    Attributes
    ----------
    values : ndarray
        Class codes (n,) or continuous targets (n, n_outputs).
    loss : str
        Key of :data:`~._losses.LOSSES`.
    n_outputs : int
        Columns of the head: 1 for two classes, the number of classes
        otherwise, the number of targets for regression.
    class_weights : ndarray of shape (n,) or None
        Per-sample class weights, to multiply into the sample weights.
    classes : ndarray or None
        The class labels (classification).
    one_dimensional : bool or None
        Whether y was 1D (regression), so predictions come back in its shape.
    """

    values: np.ndarray
    loss: str
    n_outputs: int
    class_weights: np.ndarray = None
    classes: np.ndarray = None
    one_dimensional: bool = None


def _check_length(y, n_samples):
    if y.shape[0] != n_samples:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: "
            f"[{n_samples}, {y.shape[0]}]"
        )


def encode_classes(y, n_samples, class_weight=None, estimator_name="The classifier"):
    """Labels -> integer codes, the loss and the class weights.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    n_samples : int
        Number of samples of X.
    class_weight : dict, "balanced" or None
        Weights of the classes; a dict's weights must be finite and
        non-negative.
    estimator_name : str
        Named in the error when y holds one class only.

    Returns
    -------
    targets : EncodedTargets
        Binary classification has one logit (``"binary_log_loss"``), more
        classes one per class (``"log_loss"``).

    Examples
    --------
    >>> from sk_attention._targets import encode_classes
    >>> targets = encode_classes(["b", "a", "b"], 3)
    >>> targets.values.tolist(), targets.loss, targets.classes.tolist()
    ([1, 0, 1], 'binary_log_loss', ['a', 'b'])
    """
    y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    _check_length(y, n_samples)
    encoder = LabelEncoder().fit(y)
    classes = encoder.classes_
    if len(classes) < 2:
        raise ValueError(
            f"{estimator_name} needs samples of at least 2 classes in the data, but the "
            f"data contain only one class: {classes[0]!r}."
        )
    if isinstance(class_weight, dict):
        values = np.array(list(class_weight.values()), dtype=np.float64)
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise ValueError(
                "class_weight must give every class a finite, non-negative weight, "
                f"got {class_weight!r}."
            )
    weights = None if class_weight is None else compute_sample_weight(class_weight, y)
    n_outputs = 1 if len(classes) == 2 else len(classes)
    loss = "binary_log_loss" if n_outputs == 1 else "log_loss"
    return EncodedTargets(encoder.transform(y), loss, n_outputs, weights, classes=classes)


def encode_continuous(y, n_samples):
    """Continuous targets as a float64 (n_samples, n_outputs) array.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    n_samples : int
        Number of samples of X.

    Returns
    -------
    targets : EncodedTargets
        With ``one_dimensional`` telling whether y was 1D.

    Examples
    --------
    >>> from sk_attention._targets import encode_continuous
    >>> targets = encode_continuous([0.5, 1.5], 2)
    >>> targets.values.shape, targets.loss, targets.one_dimensional
    ((2, 1), 'squared_error', True)
    """
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    if y.ndim > 2:
        raise ValueError(f"y must be 1D or 2D, got {y.ndim} dimensions.")
    _check_length(y, n_samples)
    Y = y.reshape(n_samples, -1)
    return EncodedTargets(Y, "squared_error", Y.shape[1], one_dimensional=y.ndim == 1)
