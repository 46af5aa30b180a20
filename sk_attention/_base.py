"""Shared plumbing of the three attention estimators.

:class:`BaseAttention` validates parameters and input, initialises and packs
the parameters, runs L-BFGS-B and records the history.  Subclasses only say
how targets are encoded (:meth:`BaseAttention._encode_targets`), which loss
they train and how the head's output becomes a prediction.
"""

import time
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from threadpoolctl import ThreadpoolController

from ._attention import (
    ALIGNMENTS,
    Segments,
    Workspace,
    attention,
    forward,
    loss_and_gradient,
    param_layout,
)
from ._collections import check_collections, gen_sample_chunks

__all__ = ["BaseAttention"]


def _init_params(layout, n_heads, rng, dtype=np.float64):
    """Glorot-uniform matrices, zero biases, zero output vectors.

    Zero ``v`` / ``q`` make every score 0, so the untrained model is mean
    pooling and training leaves it only where the data pay for it.
    """
    params = {}
    for name, shape, kind in layout:
        if kind == "in":
            fan_in, fan_out = shape[0], shape[1] // n_heads
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            params[name] = rng.uniform(-bound, bound, size=shape)
        elif kind == "coef":
            # the factor 2 suits a sigmoid / softmax output, as in MLPClassifier
            bound = np.sqrt(2.0 / (shape[0] + shape[1]))
            params[name] = rng.uniform(-bound, bound, size=shape)
        else:
            params[name] = np.zeros(shape)
    return {name: value.astype(dtype) for name, value in params.items()}


def _pack(params, layout):
    return np.concatenate([params[name].ravel() for name, _, _ in layout])


def _unpack(theta, layout, dtype):
    params, start = {}, 0
    for name, shape, _ in layout:
        size = int(np.prod(shape))
        params[name] = theta[start : start + size].reshape(shape).astype(dtype, copy=False)
        start += size
    return params


class BaseAttention(BaseEstimator):
    """Attention pooling followed by a linear head, trained by L-BFGS-B.

    Not meant to be used directly: see :class:`AttentionClassifier`,
    :class:`AttentionRegressor` and :class:`AttentionPooling`.
    """

    _parameter_constraints = {
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "alignment": [StrOptions(set(ALIGNMENTS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_heads=4,
        hidden_size=16,
        alignment="additive",
        alpha=0.1,
        max_iter=200,
        tol=1e-5,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.n_heads = n_heads
        self.hidden_size = hidden_size
        self.alignment = alignment
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    # -- hooks for subclasses ----------------------------------------------

    def _encode_targets(self, y, n_samples):
        """Validate y; set fitted target attributes.

        Returns ``(targets, loss_name, n_outputs, class_sample_weight)`` where
        the last item is None or per-sample weights to multiply in.
        """
        raise NotImplementedError

    # -- fitting -------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None):
        self._validate_params()
        packed = check_collections(X, estimator=self, reset=True)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        targets, loss, n_outputs, extra_weight = self._encode_targets(y, packed.n_samples)
        sample_weight = _check_sample_weight(
            sample_weight, packed.offsets[:-1], dtype=np.float64, ensure_non_negative=True
        )
        if extra_weight is not None:
            sample_weight = sample_weight * extra_weight
        if not np.sum(sample_weight) > 0:
            raise ValueError("The sum of sample weights (times class weights) must be positive.")

        dtype = packed.elements.dtype
        layout = param_layout(
            self.alignment, packed.elements.shape[1], self.n_heads, self.hidden_size, n_outputs
        )
        theta0 = self._initial_theta(layout)
        segments = Segments(packed.offsets, self.n_heads)
        # work buffers allocated once, reused by every gradient evaluation;
        # the workspace holds its own copy of the elements, cut into blocks
        # and into one shard of blocks per BLAS thread the caller allows
        # (threadpoolctl limits are respected)
        blas = ThreadpoolController().select(user_api="blas")
        n_threads = max([info["num_threads"] for info in blas.info()] or [1])
        workspace = Workspace(packed.elements, segments, n_parts=n_threads)
        del packed
        targets = targets.astype(dtype, copy=False) if targets.dtype.kind == "f" else targets

        def objective(theta):
            params = _unpack(theta, layout, dtype)
            value, grads = loss_and_gradient(
                params, None, segments, self.alignment, loss,
                targets, sample_weight, self.alpha, workspace=workspace,
            )
            return value, _pack(grads, layout).astype(np.float64)

        # the shards are the parallelism: BLAS runs on one thread throughout,
        # in the products of every shard and in scipy's bookkeeping on tiny
        # vectors, where a thread hand-off costs more than it saves
        with blas.limit(limits=1):
            theta = self._run_lbfgs(objective, theta0)
        self._layout = layout
        self._theta = theta
        # inference uses what was fitted, even if set_params changes these
        self._fitted_alignment, self._fitted_heads = self.alignment, self.n_heads
        self._set_fitted_params(_unpack(theta, layout, np.float64))
        return self

    def _initial_theta(self, layout):
        if self.warm_start and getattr(self, "_layout", None) == layout:
            return self._theta.copy()
        rng = check_random_state(self.random_state)
        return _pack(_init_params(layout, self.n_heads, rng), layout)

    def _run_lbfgs(self, objective, theta0):
        """The one place that talks to scipy.optimize."""
        last = {}

        def fun(theta):
            value, grad = objective(theta)
            last["grad_norm"] = float(np.linalg.norm(grad))
            return value, grad

        self.loss_curve_ = []
        start = time.perf_counter()

        def callback(intermediate_result):
            self.loss_curve_.append(float(intermediate_result.fun))
            if self.verbose:
                print(
                    f"Iteration {len(self.loss_curve_)}, loss = {intermediate_result.fun:.8f}, "
                    f"gradient norm = {last['grad_norm']:.3e}, "
                    f"time = {time.perf_counter() - start:.2f}s"
                )

        result = minimize(
            fun,
            theta0,
            method="L-BFGS-B",
            jac=True,
            callback=callback,
            options={"maxiter": self.max_iter, "gtol": self.tol, "maxfun": 15000},
        )
        self.n_iter_ = int(result.nit)
        self.loss_ = float(result.fun)
        if result.status == 1:  # maxiter or maxfun reached
            warnings.warn(
                f"L-BFGS-B stopped after {self.n_iter_} iterations without reaching "
                f"tol={self.tol} ({result.message}); increase max_iter or scale the data.",
                ConvergenceWarning,
            )
        return result.x

    def _set_fitted_params(self, params):
        alignment_names = [name for name, _ in ALIGNMENTS[self._fitted_alignment].params]
        self.coefs_ = {name: params[name] for name in alignment_names if name not in ("b", "c")}
        self.coefs_["head"] = params["coef"]
        self.intercepts_ = {name: params[name] for name in ("b", "c") if name in params}
        self.intercepts_["head"] = params["intercept"]

    # -- inference -----------------------------------------------------------

    def _params_for(self, dtype):
        return _unpack(self._theta, self._layout, dtype)

    def _forward(self, X, output):
        """Validated packing and one of the per-sample or per-element outputs.

        Works on chunks of whole samples whose temporaries fit in
        scikit-learn's ``working_memory`` (see :func:`gen_sample_chunks`), so
        the extra memory of inference stays bounded however many samples
        ``X`` holds.

        Parameters
        ----------
        X : any form of the data model
        output : {"weights", "pooled", "head"}
            Attention weights (N, K), pooled vectors (n, K * D) or the
            linear head's output (n, n_outputs), in X's float dtype.

        Returns
        -------
        packed : PackedCollections
        result : ndarray
        """
        check_is_fitted(self)
        packed = check_collections(X, estimator=self, reset=False)
        P, offsets = packed.elements, packed.offsets
        params = self._params_for(P.dtype)
        K, D, itemsize = self._fitted_heads, P.shape[1], P.itemsize
        n_outputs = params["coef"].shape[1]
        n_columns = ALIGNMENTS[self._fitted_alignment].project(params)[0].shape[1]
        # per element: alignment activations, scores and softmax temporaries,
        # the sample index and, to pool, the sparse matrix's data and indices
        element_bytes = itemsize * (n_columns + 4 * K) + 8 + K * (itemsize + 8)
        if output == "weights":
            result = np.empty((P.shape[0], K), dtype=P.dtype)
            sample_bytes = 0
        else:
            width = K * D if output == "pooled" else n_outputs
            result = np.empty((packed.n_samples, width), dtype=P.dtype)
            sample_bytes = itemsize * 2 * K * D + 8
        for chunk in gen_sample_chunks(offsets, element_bytes, sample_bytes):
            lo, hi = offsets[chunk.start], offsets[chunk.stop]
            segments = Segments(offsets[chunk.start : chunk.stop + 1] - lo, K)
            if output == "weights":
                result[lo:hi] = attention(params, P[lo:hi], segments, self._fitted_alignment)
                continue
            _, pooled, _ = forward(params, P[lo:hi], segments, self._fitted_alignment)
            if output == "pooled":
                result[chunk] = pooled
            else:
                np.matmul(pooled, params["coef"], out=result[chunk])
                result[chunk] += params["intercept"]
        return packed, result

    def _head_output(self, X):
        """The linear head's output (n, n_outputs) in X's float dtype."""
        return self._forward(X, "head")[1]

    def attention_weights(self, X):
        """Attention weight of every element, per head.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Samples in any form of the data model.

        Returns
        -------
        weights : ndarray of shape (n_samples, n_steps, n_heads) or list
            For 2D input ``n_steps`` is 1 (every weight is 1); for 3D input
            padding gets weight 0; for a ragged list, a list of
            ``(n_elements_i, n_heads)`` arrays.  Each sample's weights sum to
            1 per head.
        """
        packed, weights = self._forward(X, "weights")
        if packed.form == "2d":
            return weights[:, None, :]
        return packed.unpack(weights, fill=0.0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
