"""Shared plumbing of the three attention estimators.

:class:`BaseAttention` validates parameters and input, initialises and packs
the parameters, runs L-BFGS-B and records the history.  Subclasses only say
how targets are encoded (:meth:`BaseAttention._encode_targets`), which loss
they train and how the head's output becomes a prediction.

The fitted model is ``coefs_`` and ``intercepts_`` and nothing else:
inference reads them (so editing them changes predictions, before and after
pickling alike), and the architecture (alignment, heads, hidden size) is
read off their keys and shapes.
"""

import os
import sys
import time
import warnings
from numbers import Integral, Real

import joblib
import numpy as np
import sklearn
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController

from ._alignments import ALIGNMENTS, param_layout
from ._attention import attend, loss_and_gradient
from ._collections import _computed_if_dask, _is_dask_collection, check_collections
from ._compat import Interval, StrOptions, check_sample_weight
from ._segments import Segments
from ._workspace import Workspace

__all__ = ["BaseAttention"]

_NO_WEIGHT = "The sum of sample weights (times class weights) must be positive."
_WIDE_Y = (
    "y spans a range too large for float64 arithmetic (values near +-1e308): "
    "divide it by a constant."
)
_SCALE_ADVICE = "put ElementwiseTransformer(StandardScaler()) before the estimator"

# L-BFGS-B's history (scipy's maxcor); see _run_lbfgs
_HISTORY = 20

# attributes a fit sets that do not end with "_" (see _restore_after_failure)
_PRIVATE_FITTED = ("_y_1d",)


def _init_params(layout, n_heads, rng, dtype=np.float64):
    """Glorot-uniform matrices, zero biases, zero output vectors.

    Zero ``v`` / ``q`` make every score 0, so the untrained model is mean
    pooling and training leaves it only where the data pay for it.
    """
    params = {}
    for name, shape, kind in layout:
        if kind in ("in", "embedding"):
            # an "in" matrix holds one (D', H) block per head side by side
            fan_in, fan_out = shape[0], shape[1] // (n_heads if kind == "in" else 1)
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
    return np.concatenate([np.ravel(params[name]) for name, _, _ in layout])


def _unpack(theta, layout, dtype):
    """Views of ``theta`` (copies when ``dtype`` differs), one per parameter."""
    params, start = {}, 0
    for name, shape, _ in layout:
        size = int(np.prod(shape))
        params[name] = theta[start : start + size].reshape(shape).astype(dtype, copy=False)
        start += size
    return params


# -- the fitted attributes ------------------------------------------------------

# parameter name -> key in coefs_ / intercepts_ where they differ
_COEF_KEYS = {"E": "embedding", "coef": "head"}
_INTERCEPT_KEYS = {"b": "b", "c": "c", "e": "embedding", "intercept": "head"}


def _to_attributes(params):
    """Parameters -> ``(coefs_, intercepts_)`` as documented, own copies."""
    coefs = {
        _COEF_KEYS.get(name, name): np.array(value)
        for name, value in params.items()
        if name not in _INTERCEPT_KEYS
    }
    intercepts = {
        key: np.array(params[name]) for name, key in _INTERCEPT_KEYS.items() if name in params
    }
    return coefs, intercepts


def _from_attributes(coefs, intercepts, dtype=np.float64):
    """``(coefs_, intercepts_)`` -> the parameters of :mod:`._attention`."""
    names = {key: name for name, key in _COEF_KEYS.items()}
    params = {names.get(key, key): np.asarray(value, dtype=dtype) for key, value in coefs.items()}
    names = {key: name for name, key in _INTERCEPT_KEYS.items()}
    params.update(
        {names[key]: np.asarray(value, dtype=dtype) for key, value in intercepts.items()}
    )
    return params


def _architecture(params):
    """Alignment, heads, sizes, features and outputs, read off the parameters."""
    alignment = "dot" if "q" in params else "gated" if "U" in params else "additive"
    n_heads, hidden_size = params["q" if alignment == "dot" else "v"].shape
    embedding_size = params["E"].shape[1] if "E" in params else None
    return {
        "alignment": alignment,
        "n_heads": n_heads,
        "hidden_size": hidden_size,
        "embedding_size": embedding_size,
        "n_features": params["W"].shape[0] - (embedding_size or 0),
        "n_outputs": params["coef"].shape[1],
    }


def _same_labels(a, b):
    """Whether two ``classes_`` arrays hold the same labels.

    Numbers never equal strings, nor booleans numbers (``{0, 1}`` and
    ``{False, True}`` are other labels, as they are to a user).
    """

    def kind(array):
        return "text" if array.dtype.kind in "OUS" else "bool" if array.dtype.kind == "b" else "number"

    return a.shape == b.shape and kind(a) == kind(b) and bool(np.all(a == b))


def _restore_after_failure(estimator, before, keep_previous_fit):
    """Put back the attributes of ``before``; drop the fitted ones unless kept."""
    for name in list(vars(estimator)):
        if name not in before:
            delattr(estimator, name)
    vars(estimator).update(before)
    if not keep_previous_fit:
        for name in list(vars(estimator)):
            if (name.endswith("_") and not name.startswith("__")) or name in _PRIVATE_FITTED:
                delattr(estimator, name)


# -- what the optimisation sees ---------------------------------------------------


def _combine_weights(alpha, sample_weight, class_weights):
    """Sample times class weights, scaled to a maximum of 1, and alpha to match.

    The objective depends on the weights only through ``w_i / sum_j w_j``
    and ``alpha / sum_j w_j``: dividing the weights by a constant and alpha
    by the same constant changes nothing, and keeps every sum finite however
    large or small the weights are (1e307 or 1e-300).
    """
    factors = [sample_weight] if class_weights is None else [sample_weight, class_weights]
    weights = np.ones_like(sample_weight)
    for factor in factors:
        # each factor divided by its maximum first: the product cannot overflow
        top = factor.max()
        if not top > 0:  # all zero: so is the product
            raise ValueError(_NO_WEIGHT)
        weights, alpha = weights * (factor / top), alpha / top
    top = weights.max()  # below 1 when no sample is heaviest under both factors
    if not top > 0:
        raise ValueError(_NO_WEIGHT)
    weights, alpha = weights / top, alpha / top
    if not np.isfinite(alpha):
        raise ValueError(
            "alpha divided by the sum of the sample weights is too large to represent: "
            "sample weights are absolute, as in LogisticRegression; multiply them all "
            "by a constant, or lower alpha."
        )
    return weights, alpha


def _standardise(Y, weights):
    """Each output centred and divided by its (weighted) standard deviation.

    Returns the standardised targets and ``(mean, scale)`` such that
    ``Y = standardised * scale + mean``; a constant output keeps scale 1.
    """
    total = weights.sum()
    top = np.abs(Y).max(axis=0)
    top[top == 0] = 1.0
    mean = top * (weights @ (Y / top) / total)  # no sum overflows
    with np.errstate(over="ignore", invalid="ignore"):
        centred = Y - mean
    if not np.isfinite(centred).all():
        raise ValueError(_WIDE_Y)
    # divide by the largest deviation first: no square overflows
    top = np.abs(centred).max(axis=0)
    top[top == 0] = 1.0
    scale = top * np.sqrt(weights @ (centred / top) ** 2 / total)
    scale[~(scale > np.finfo(np.float64).tiny * 1e3)] = 1.0
    return centred / scale, (mean, scale)


def _advice_stride(n_elements):
    """Every how many elements :func:`_scale_advice` reads one: about 10,000 in all."""
    return max(1, int(n_elements) // 10_000)


def _scale_advice(rows):
    """Advice to standardise the elements, or "" if they look standardised.

    ``rows`` are every :func:`_advice_stride`-th element (a strided sample
    suffices), however the elements are stored.

    With elements far from unit scale the alignment MLP saturates (large
    values) or the penalty pins the model to mean pooling (tiny values):
    flagged when a feature's standard deviation exceeds 10, its mean 10
    standard deviations, or when every feature's deviation is below 0.1.
    One rare binary feature among standardised ones is fine.
    """
    top = np.abs(rows).max(axis=0).astype(np.float64)
    top[top == 0] = 1.0
    rows = rows / top  # no square overflows
    mean = np.abs(rows.mean(axis=0, dtype=np.float64)) * top
    std = rows.std(axis=0, dtype=np.float64) * top
    if np.all(std <= 10) and std.max() >= 0.1 and np.all(mean <= 10 * np.maximum(std, 1)):
        return ""
    return (
        f"The elements do not look standardised (feature means up to {mean.max():.3g}, "
        f"standard deviations from {std.min():.3g} to {std.max():.3g}): the alignment "
        f"MLP trains best on standardised elements; {_SCALE_ADVICE}."
    )


def _failure_advice(scale_advice, penalty):
    """What to do when the loss or the parameters of a fit become non-finite."""
    if penalty > 1e6:
        return (
            f"alpha divided by the sum of the sample weights is {penalty:.3g}: the penalty "
            "outweighs the data beyond what float64 can optimise.  Sample weights are "
            "absolute, as in LogisticRegression (weights c * w with alpha give the model "
            "of weights w with alpha / c): multiply them all by a constant, or lower alpha."
        )
    return scale_advice or f"Scale the elements: {_SCALE_ADVICE}."


def _n_threads():
    """BLAS threads the caller allows (threadpoolctl limits are respected)."""
    blas = ThreadpoolController().select(user_api="blas")
    return max([info["num_threads"] for info in blas.info()] or [1])


_LIBRARY_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (sys.modules[__name__.split(".")[0]], sklearn, joblib)
)


def _user_stacklevel():
    """``stacklevel`` for a warning raised by the caller, pointing at user code.

    Skips the frames of this package, of scikit-learn and of joblib (a
    Pipeline, a grid search), so the warning names the line that called
    ``fit``.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    return level


class _InMemoryData:
    """Training data packed in this process: the fit's default source of the objective.

    The interface that :meth:`BaseAttention._fit_from` expects of training
    data (see also :class:`~._dask.DaskTrainingData`): ``n_samples``,
    ``n_features``, ``dtype``, :meth:`advice_rows`, :meth:`objective` and
    :meth:`close`.
    """

    def __init__(self, X, estimator):
        self._packed = check_collections(X, estimator=estimator, reset=True)
        self.n_samples = self._packed.n_samples
        self.n_features = self._packed.elements.shape[1]
        self.dtype = self._packed.elements.dtype

    def advice_rows(self):
        """The elements that :func:`_scale_advice` reads."""
        elements = self._packed.elements
        return elements[:: _advice_stride(elements.shape[0])]

    def objective(self, n_heads, alignment, loss, targets, weights, alpha):
        """``params -> (value, grads)`` of :func:`~._attention.loss_and_gradient`.

        The workspace holds its own copy of the elements, cut into blocks
        that do not depend on the thread count (the same model on any
        machine); threads evaluate blocks in parallel.  The packed input is
        released.
        """
        packed, self._packed = self._packed, None
        segments = Segments(packed.offsets, n_heads)
        workspace = Workspace(packed.elements, segments, n_threads=_n_threads())
        del packed

        def evaluate(params):
            return loss_and_gradient(params, workspace, alignment, loss, targets, weights, alpha)

        return evaluate

    def close(self):
        """Nothing to release: the workspace goes with the objective."""


class _DaskAwareScore:
    """``score`` of the classifier and regressor mixins, also for a dask array X.

    Listed before ``ClassifierMixin`` / ``RegressorMixin``: NumPy input goes to
    their ``score``; for dask X the predictions are computed on the workers,
    block by block, and only they come back (:func:`._dask.score`).
    """

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifier) or R^2 (regressor) of :meth:`predict` on ``X``.

        Parameters
        ----------
        X : array-like, 3D ndarray, list of array-likes, dask array or Bag
            Samples in any form of the data model.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True labels or targets (a dask array is computed).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        score : float
        """
        if _is_dask_collection(X):
            from ._dask import score  # dask only when the user brings it

            return score(self, X, y, sample_weight)
        return super().score(X, y, sample_weight)


class BaseAttention(BaseEstimator):
    """Attention pooling followed by a linear head, trained by L-BFGS-B.

    Not meant to be used directly: see :class:`AttentionClassifier`,
    :class:`AttentionRegressor` and :class:`AttentionPooling`.
    """

    # dtype of the head's output; None: that of X (float32 stays float32)
    _head_dtype = None

    _parameter_constraints = {
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "embedding_size": [Interval(Integral, 1, None, closed="left"), None],
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
        embedding_size=None,
        alignment="additive",
        alpha=0.1,
        max_iter=1000,
        tol=1e-5,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.n_heads = n_heads
        self.hidden_size = hidden_size
        self.embedding_size = embedding_size
        self.alignment = alignment
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    # -- hooks for subclasses ----------------------------------------------

    def _encode_targets(self, y, n_samples):
        """Validate y, set the fitted target attributes, return an ``EncodedTargets``."""
        raise NotImplementedError

    # -- fitting -------------------------------------------------------------

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coefs_") and hasattr(self, "intercepts_")

    def _fit(self, X, y, sample_weight=None):
        self._validate_params()
        before = dict(vars(self))
        previous = before if self.warm_start and self.__sklearn_is_fitted__() else None
        try:
            self._fit_from(previous, X, y, sample_weight)
        except BaseException:
            # a failed fit leaves no half-fitted model behind
            _restore_after_failure(self, before, keep_previous_fit=previous is not None)
            raise
        return self

    def _fit_from(self, previous, X, y, sample_weight):
        """Fit, starting from the attributes ``previous`` (warm start) if given."""
        data = self._training_data(X)
        try:
            self._fit_data(previous, data, y, sample_weight)
        finally:
            data.close()

    def _training_data(self, X):
        """X validated and packed: in this process, or on the workers of a dask cluster."""
        if _is_dask_collection(X):
            from ._dask import training_data  # dask only when the user brings it

            return training_data(X, self)
        return _InMemoryData(X, self)

    def _fit_data(self, previous, data, y, sample_weight):
        """Fit on ``data`` (see :class:`_InMemoryData`), whatever holds the elements."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        encoded = self._encode_targets(_computed_if_dask(y), data.n_samples)
        targets, loss = encoded.values, encoded.loss
        if previous is not None:
            self._check_same_problem(previous)
        sample_weight = check_sample_weight(
            _computed_if_dask(sample_weight),
            np.arange(data.n_samples),
            dtype=np.float64,
            ensure_non_negative=True,
        )
        weights, alpha = _combine_weights(self.alpha, sample_weight, encoded.class_weights)
        target_scaling = None
        if loss == "squared_error":
            # units of y do not matter: the optimisation sees standardised
            # targets, the fitted head is mapped back to y's units
            targets, target_scaling = _standardise(targets, weights)

        dtype = data.dtype
        layout = param_layout(
            self.alignment,
            data.n_features,
            self.n_heads,
            self.hidden_size,
            encoded.n_outputs,
            self.embedding_size,
        )
        theta0 = self._initial_theta(layout, previous, target_scaling)
        advice = _scale_advice(data.advice_rows())
        if advice:
            warnings.warn(advice, UserWarning, stacklevel=_user_stacklevel())
        advice = _failure_advice(advice, alpha / weights.sum())
        targets = targets.astype(dtype, copy=False) if targets.dtype.kind == "f" else targets
        evaluate = data.objective(self.n_heads, self.alignment, loss, targets, weights, alpha)

        def objective(theta):
            value, grads = evaluate(_unpack(theta, layout, dtype))
            return value, _pack(grads, layout).astype(np.float64)

        # the threads over blocks are the parallelism: BLAS runs on one
        # thread throughout, in every block's products and in scipy's
        # bookkeeping on tiny vectors, where a thread hand-off costs more
        # than it saves
        # trial points of a line search may overflow: the line search backs
        # off from them, and _run_lbfgs checks that the result is finite
        with ThreadpoolController().select(user_api="blas").limit(limits=1), np.errstate(
            over="ignore", invalid="ignore", divide="ignore", under="ignore"
        ):
            theta = self._run_lbfgs(objective, theta0, advice)
        params = _unpack(theta, layout, np.float64)
        if target_scaling is not None:
            mean, scale = target_scaling
            with np.errstate(over="ignore", invalid="ignore"):
                params["coef"] = params["coef"] * scale
                params["intercept"] = params["intercept"] * scale + mean
            if not (np.isfinite(params["coef"]).all() and np.isfinite(params["intercept"]).all()):
                raise ValueError(_WIDE_Y)
        self.coefs_, self.intercepts_ = _to_attributes(params)

    def _check_same_problem(self, previous):
        """warm_start continues only the problem of the previous fit."""
        changes = []
        old_width = _architecture(
            _from_attributes(previous["coefs_"], previous["intercepts_"])
        )["n_features"]
        if old_width != self.n_features_in_:
            changes.append(
                f"X has {self.n_features_in_} features per element, the previous fit "
                f"had {old_width}"
            )
        if getattr(self, "objective_", None) != previous.get("objective_"):
            changes.append(
                f"the objective is {self.objective_!r}, the previous fit's was "
                f"{previous.get('objective_')!r}"
            )
        old_classes = previous.get("classes_")
        new_classes = getattr(self, "classes_", None)
        # (coefficients set by hand come without classes_: nothing to compare)
        if old_classes is not None and (
            new_classes is None or not _same_labels(old_classes, new_classes)
        ):
            changes.append(f"y has classes {new_classes}, the previous fit had {old_classes}")
        if changes:
            raise ValueError(
                "warm_start=True continues the previous fit only on the same problem, but "
                + "; ".join(changes)
                + ". Set warm_start=False to fit from scratch."
            )

    def _initial_theta(self, layout, previous, target_scaling):
        if previous is None:
            rng = check_random_state(self.random_state)
            return _pack(_init_params(layout, self.n_heads, rng), layout)
        params = _from_attributes(previous["coefs_"], previous["intercepts_"])
        old = _architecture(params)
        new = dict(
            alignment=self.alignment,
            n_heads=self.n_heads,
            hidden_size=self.hidden_size,
            embedding_size=self.embedding_size,
            n_outputs=dict((name, shape) for name, shape, _ in layout)["coef"][1],
        )
        changes = [f"{key} {old[key]!r} -> {value!r}" for key, value in new.items() if old[key] != value]
        if changes:
            raise ValueError(
                "warm_start=True continues the previous fit only with the same parameter "
                f"layout, but it changed: {', '.join(changes)}. Set warm_start=False to "
                "fit from scratch."
            )
        if target_scaling is not None:
            mean, scale = target_scaling
            params["coef"] = params["coef"] / scale
            params["intercept"] = (params["intercept"] - mean) / scale
        return _pack(params, layout)

    def _run_lbfgs(self, objective, theta0, advice):
        """The one place that talks to scipy.optimize.

        ``advice`` says what to do should the loss or the parameters become
        non-finite.
        """
        state = {"evaluations": 0}

        def fun(theta):
            value, grad = objective(theta)
            state["evaluations"] += 1
            if state["evaluations"] == 1 and not (np.isfinite(value) and np.isfinite(grad).all()):
                raise ValueError(
                    f"The training loss is not finite at the initial parameters (loss = "
                    f"{value}): the elements hold values too large for the arithmetic. "
                    f"{advice}"
                )
            state["grad_norm"] = float(np.linalg.norm(grad))
            return value, grad

        self.loss_curve_ = []
        start = time.perf_counter()

        def callback(intermediate_result):
            self.loss_curve_.append(float(intermediate_result.fun))
            if self.verbose:
                print(
                    f"Iteration {len(self.loss_curve_)}, loss = {intermediate_result.fun:.8f}, "
                    f"gradient norm = {state['grad_norm']:.3e}, "
                    f"time = {time.perf_counter() - start:.2f}s"
                )

        result = minimize(
            fun,
            theta0,
            method="L-BFGS-B",
            jac=True,
            callback=callback,
            options={
                "maxiter": self.max_iter,
                "gtol": self.tol,
                # scipy's default ftol would stop at a relative decrease of
                # 2.2e-9 whatever tol says; near an optimum a step decreases
                # the loss by about (gradient norm)^2, so tol^2 matches gtol
                "ftol": self.tol**2,
                "maxfun": 15000,
                # a longer history than scipy's 10 converges in fewer
                # iterations and more tightly on these ill-conditioned
                # objectives (flat directions penalised only by alpha)
                "maxcor": _HISTORY,
            },
        )
        if not (np.isfinite(result.fun) and np.isfinite(result.x).all()):
            raise ValueError(
                f"L-BFGS-B produced non-finite parameters or loss ({result.message}). {advice}"
            )
        self.n_iter_ = int(result.nit)
        self.loss_ = float(result.fun)
        if self.verbose:
            print(
                f"L-BFGS-B stopped after {self.n_iter_} iterations and {result.nfev} "
                f"evaluations: {result.message}"
            )
        if result.status != 0:
            if result.status == 1:
                what = "increase max_iter"
            else:  # the line search found no lower loss along the search direction
                what = (
                    "the line search found no lower loss: the gradient is as small as "
                    "rounding lets it be, or the problem is badly scaled"
                )
            warnings.warn(
                f"L-BFGS-B stopped after {self.n_iter_} iterations without reaching "
                f"tol={self.tol} (status {result.status}: {result.message}); {what}.",
                ConvergenceWarning,
                stacklevel=_user_stacklevel(),
            )
        return result.x

    # -- inference -----------------------------------------------------------

    def _fitted_model(self, dtype=np.float64):
        """``(params, alignment, n_heads)`` read off ``coefs_`` / ``intercepts_``."""
        check_is_fitted(self)
        params = _from_attributes(self.coefs_, self.intercepts_, dtype)
        architecture = _architecture(params)
        return params, architecture["alignment"], architecture["n_heads"]

    def _forward(self, X, output):
        """Validated packing and one of the per-sample or per-element outputs.

        The forward of the fit (:func:`~._attention.attend`), block by block
        on the BLAS threads the caller allows, with single-threaded BLAS in
        each: besides the validated copy of X, inference needs the work
        arrays of one block per thread, however many samples X holds.

        Parameters
        ----------
        X : any form of the data model
        output : {"weights", "pooled", "head"}
            Attention weights (N, K), pooled vectors (n, K * D') in X's
            float dtype, or the linear head's output (n, n_outputs) in
            ``_head_dtype`` (X's float dtype when None).

        Returns
        -------
        packed : PackedCollections
        result : ndarray
        """
        check_is_fitted(self)
        packed = check_collections(X, estimator=self, reset=False)
        params, alignment, n_heads = self._fitted_model(packed.elements.dtype)
        workspace = Workspace(
            packed.elements, Segments(packed.offsets, n_heads), n_threads=_n_threads(), store=False
        )
        with ThreadpoolController().select(user_api="blas").limit(limits=1):
            result = attend(params, workspace, alignment, output)
        if output == "head":
            # added in the head's dtype: a regressor's intercept carries the
            # mean of y, which float32 cannot hold to the precision of y's spread
            dtype = self._head_dtype or result.dtype
            result = result.astype(dtype) + np.asarray(self.intercepts_["head"], dtype=dtype)
        return packed, result

    def _lazy(self, method, X):
        """``method(X)`` for a dask array or bag X: lazy, computed partition by partition."""
        from ._dask import map_samples  # dask only when the user brings it

        return map_samples(self, method, X)

    def _head_output(self, X):
        """The linear head's output (n, n_outputs), in ``_head_dtype`` or X's float dtype."""
        return self._forward(X, "head")[1]

    def attention_weights(self, X):
        """Attention weight of every element, per head.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Samples in any form of the data model, a 2D / 3D dask array
            chunked along samples, or a ``dask.bag.Bag`` of 2D arrays.  A 2D
            array is that many samples of one element each: for one bag,
            pass ``[bag]``.

        Returns
        -------
        weights : ndarray of shape (n_samples, n_steps, n_heads), list, dask array or Bag
            For 2D input ``n_steps`` is 1 (every weight is 1); for 3D input
            padding gets weight 0; for a ragged list, a list of
            ``(n_elements_i, n_heads)`` arrays.  Each sample's weights sum to
            1 per head.  For a dask array, a lazy dask array of the 2D/3D
            shape, chunked along samples as X; for a bag, a lazy bag of the
            ``(n_elements_i, n_heads)`` arrays, partitioned as X.
        """
        if _is_dask_collection(X):
            return self._lazy("attention_weights", X)
        packed, weights = self._forward(X, "weights")
        if packed.form == "2d":
            return weights[:, None, :]
        return packed.unpack(weights, fill=0.0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
