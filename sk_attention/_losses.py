"""Losses of the linear head, one entry per name in :data:`LOSSES`.

Each takes ``logits`` (n, O) and encoded ``targets`` and returns the
unweighted loss of every sample (n,) and its gradient w.r.t. the logits
(n, O).  Weighting and normalisation happen in the caller.
"""

import numpy as np
from scipy.special import expit, log_softmax

__all__ = ["LOSSES"]


def _binary_log_loss(logits, targets):
    # targets: (n,) in {0, 1}; one logit per sample (the positive class).
    z = logits[:, 0]
    per_sample = np.logaddexp(0.0, np.where(targets == 1, -z, z))
    grad = (expit(z) - targets)[:, None].astype(logits.dtype, copy=False)
    return per_sample, grad


def _multinomial_log_loss(logits, targets):
    # targets: (n,) integer class codes.
    log_proba = log_softmax(logits, axis=1)
    rows = np.arange(logits.shape[0])
    per_sample = -log_proba[rows, targets]
    grad = np.exp(log_proba)
    grad[rows, targets] -= 1.0
    return per_sample, grad


def _half_squared_error(logits, targets):
    # As MLPRegressor: half the squared error, averaged over the outputs.
    residual = logits - targets
    per_sample = 0.5 * np.mean(residual * residual, axis=1)
    return per_sample, residual / logits.shape[1]


LOSSES = {
    "binary_log_loss": _binary_log_loss,
    "log_loss": _multinomial_log_loss,
    "squared_error": _half_squared_error,
}
