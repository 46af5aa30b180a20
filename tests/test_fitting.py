"""A fit that says when it failed, does not depend on units, and leaves one fitted state."""

import contextlib
import io
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    ElementwiseTransformer,
)


def _bags(seed=0, n=80, width=3):
    rng = np.random.RandomState(seed)
    bags = [rng.normal(size=(rng.randint(2, 8), width)) for _ in range(n)]
    y = np.arange(n) % 2
    for bag, label in zip(bags, y):
        bag[0, 0] += 3.0 * label
    target = np.array([bag[:, 0].max() + 0.5 * bag[:, 1].mean() for bag in bags])
    return bags, y, target


# -- units ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "transform", [lambda y: y * 1e8, lambda y: y * 1e-3 + 5000.0, lambda y: y * 1e-4 + 1e5]
)
def test_regressor_does_not_depend_on_the_units_of_y(transform, dtype):
    bags, _, target = _bags()
    test_bags, _, test_target = _bags(seed=1)
    bags, test_bags = [b.astype(dtype) for b in bags], [b.astype(dtype) for b in test_bags]
    reference = AttentionRegressor(random_state=0).fit(bags, target)
    r2 = reference.score(test_bags, test_target)
    assert r2 > 0.8
    rescaled = AttentionRegressor(random_state=0).fit(bags, transform(target))
    assert abs(rescaled.score(test_bags, transform(test_target)) - r2) < 0.01
    # the optimisation saw the same standardised problem
    assert rescaled.loss_ == pytest.approx(reference.loss_, rel=1e-3)
    assert rescaled.predict(test_bags).dtype == np.float64


# scikit-learn's check_array sums y to test it for NaN: that sum overflows
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_targets_too_wide_for_float64_are_rejected():
    bags, _, _ = _bags(n=20)
    y = np.tile([1.7e308, 1.7e308, 1.7e308, -1.7e308], 5)  # centred: -2.55e308
    model = AttentionRegressor(max_iter=20, random_state=0)
    with pytest.raises(ValueError, match="y spans a range too large"):
        model.fit(bags, y)
    with pytest.raises(NotFittedError):
        model.predict(bags)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_from_coefficients_set_by_hand():
    bags, y, _ = _bags()
    fitted = AttentionClassifier(max_iter=10, random_state=0).fit(bags, y)
    model = AttentionClassifier(max_iter=1, warm_start=True)
    model.coefs_, model.intercepts_ = fitted.coefs_, fitted.intercepts_
    model.fit(bags, y)  # continues from them
    assert model.loss_ <= fitted.loss_
    with pytest.raises(ValueError, match="X has 4 features per element, the previous fit had 3"):
        model.fit([np.hstack([b, b[:, :1]]) for b in bags], y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_multi_output_targets_of_different_units_are_fitted_alike():
    bags, _, target = _bags()
    Y = np.column_stack([target, 1e6 * target - 3e7])
    model = AttentionRegressor(random_state=0).fit(bags, Y)
    pred = model.predict(bags)
    assert r2_score(Y[:, 0], pred[:, 0]) == pytest.approx(r2_score(Y[:, 1], pred[:, 1]), abs=1e-3)


# -- sample and class weights -----------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("factor", [1e307, 1e-300, 1e3])
def test_extreme_sample_weights_give_the_model_the_formula_implies(factor):
    bags, y, _ = _bags(n=40)
    kwargs = dict(n_heads=2, max_iter=15, random_state=0)
    # alpha = 0: the objective depends on the weights' ratios only
    ones = AttentionClassifier(alpha=0.0, **kwargs).fit(bags, y)
    scaled = AttentionClassifier(alpha=0.0, **kwargs).fit(
        bags, y, sample_weight=np.full(len(y), factor)
    )
    assert np.isfinite(scaled.loss_) and scaled.n_iter_ == ones.n_iter_ > 0
    np.testing.assert_array_equal(scaled.predict_proba(bags), ones.predict_proba(bags))
    # alpha > 0: DESIGN divides the penalty by the weight sum, so weights
    # c * w with alpha are weights w with alpha / c (as in LogisticRegression)
    model = AttentionClassifier(alpha=0.3, **kwargs)
    if factor < 1e-6:  # a penalty 1e299 times the data: no float64 optimiser can
        with pytest.raises(ValueError, match="multiply them all by a constant, or lower alpha"):
            model.fit(bags, y, sample_weight=np.full(len(y), factor))
        return
    scaled = model.fit(bags, y, sample_weight=np.full(len(y), factor))
    same = AttentionClassifier(alpha=0.3 / factor, **kwargs).fit(bags, y)
    assert np.isfinite(scaled.loss_)
    np.testing.assert_array_equal(scaled.predict_proba(bags), same.predict_proba(bags))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_huge_sample_weights_times_class_weights_do_not_overflow():
    bags, y, _ = _bags(n=40)
    kwargs = dict(n_heads=2, max_iter=15, class_weight={0: 1.0, 1: 50.0}, random_state=0)
    huge = AttentionClassifier(alpha=0.3, **kwargs).fit(bags, y, sample_weight=np.full(40, 1e307))
    same = AttentionClassifier(alpha=0.3 / 1e307, **kwargs).fit(bags, y)
    assert np.isfinite(huge.loss_) and huge.n_iter_ > 0
    np.testing.assert_allclose(huge.predict_proba(bags), same.predict_proba(bags), rtol=1e-12)


@pytest.mark.parametrize(
    "class_weight", [{0: -1.0, 1: 5.0}, {0: np.nan, 1: 1.0}, {0: 1.0, 1: np.inf}]
)
def test_negative_or_non_finite_class_weights_are_rejected(class_weight):
    bags, y, _ = _bags(n=20)
    with pytest.raises(ValueError, match="class_weight must give every class a finite, non-negative"):
        AttentionClassifier(class_weight=class_weight).fit(bags, y)


@pytest.mark.parametrize(
    "sample_weight, class_weight",
    [
        (np.zeros(20), None),
        (np.r_[np.zeros(19), np.nan], None),
        (None, {0: 0.0, 1: 0.0}),
        (np.arange(20) % 2 == 0, {0: 0.0, 1: 1.0}),  # every weighted sample's class weighs 0
    ],
)
def test_weights_without_positive_finite_mass_are_rejected(sample_weight, class_weight):
    bags, y, _ = _bags(n=20)
    model = AttentionClassifier(class_weight=class_weight)
    with pytest.raises(ValueError, match="(non-zero|NaN|must be positive)"):
        model.fit(bags, y, sample_weight=sample_weight)


# -- stopping ------------------------------------------------------------------------------


def _fit_recording(model, X, y):
    """Fit; return the ConvergenceWarnings and the verbose stop line."""
    buffer = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(buffer):
        warnings.simplefilter("always")
        model.set_params(verbose=1).fit(X, y)
    stops = [line for line in buffer.getvalue().splitlines() if "stopped after" in line]
    assert len(stops) == 1  # verbose ends with one line that gives the reason
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)], stops[0]


@pytest.mark.parametrize(
    "Estimator, dtype, tol, max_iter",
    [
        (AttentionClassifier, np.float64, 1e-4, 500),  # converges
        (AttentionClassifier, np.float64, 1e-5, 3),  # status 1: max_iter
        (AttentionClassifier, np.float32, 0.0, 5000),  # float32 rounding: the line search fails
        (AttentionRegressor, np.float32, 0.0, 5000),
        (AttentionRegressor, np.float64, 1e-4, 500),
    ],
)
def test_every_stop_but_convergence_warns_with_scipys_reason(Estimator, dtype, tol, max_iter):
    bags, y, target = _bags(n=60)
    bags = [bag.astype(dtype) for bag in bags]
    model = Estimator(tol=tol, max_iter=max_iter, random_state=0)
    caught, stop = _fit_recording(model, bags, y if Estimator is AttentionClassifier else target)
    reason = stop.split(": ", 1)[1]
    converged = reason.startswith("CONVERGENCE")
    assert len(caught) == (0 if converged else 1)
    if not converged:
        message = str(caught[0].message)
        assert reason.strip() in message and f"stopped after {model.n_iter_} iterations" in message
        assert caught[0].filename == __file__  # stacklevel: the user's call
    if max_iter == 3:
        assert "ITERATIONS REACHED LIMIT" in reason and "increase max_iter" in message
    if tol == 0.0 and Estimator is AttentionClassifier:
        # on this data, in float32, the line search runs out of precision
        assert "ABNORMAL" in reason and "line search" in message


def test_convergence_warning_points_at_the_users_line_through_a_pipeline():
    bags, y, _ = _bags()
    pipe = make_pipeline(
        ElementwiseTransformer(StandardScaler()), AttentionClassifier(max_iter=2, random_state=0)
    )
    with pytest.warns(ConvergenceWarning) as caught:
        pipe.fit(bags, y)
    assert [w.filename for w in caught] == [__file__]
    with pytest.warns(ConvergenceWarning) as caught:  # through joblib too
        GridSearchCV(pipe, {"attentionclassifier__n_heads": [1, 2]}, cv=2).fit(bags, y)
    assert {w.filename for w in caught} == {__file__} and len(caught) == 5


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_unscaled_elements_get_the_documented_advice(scale):
    bags, y, _ = _bags()
    with pytest.warns(UserWarning, match=r"ElementwiseTransformer\(StandardScaler\(\)\)") as caught:
        AttentionClassifier(max_iter=400, random_state=0).fit([b * scale for b in bags], y)
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no advice once they are scaled
        scaled = make_pipeline(
            ElementwiseTransformer(StandardScaler()), AttentionClassifier(max_iter=400, random_state=0)
        )
        scaled.fit([b * scale for b in bags], y)
    assert scaled.score([b * scale for b in bags], y) > 0.9


@pytest.mark.parametrize("Estimator", [AttentionClassifier, AttentionRegressor])
def test_a_non_finite_loss_raises_and_says_what_to_do(Estimator):
    bags, y, target = _bags()
    huge = [bag * 1e155 for bag in bags]
    with pytest.warns(UserWarning, match="do not look standardised"):
        with pytest.raises(ValueError, match=r"not finite|non-finite") as error:
            Estimator(random_state=0).fit(huge, y if Estimator is AttentionClassifier else target)
    assert "ElementwiseTransformer(StandardScaler())" in str(error.value)


# -- one fitted state ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_failed_fit_leaves_no_model_behind():
    bags, y, _ = _bags()
    model = AttentionClassifier(max_iter=10, random_state=0).fit(bags, y)
    model.predict(bags)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="not finite|non-finite"):
        model.fit([bag * 1e155 for bag in bags], y)
    for method in ("predict", "predict_proba", "decision_function", "attention_weights"):
        with pytest.raises(NotFittedError):
            getattr(model, method)(bags)
    assert not hasattr(model, "n_features_in_") and not hasattr(model, "classes_")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_failed_warm_start_keeps_the_previous_fit():
    bags, y, _ = _bags()
    model = AttentionClassifier(max_iter=10, warm_start=True, random_state=0).fit(bags, y)
    before = model.predict_proba(bags)
    attributes = dict(vars(model))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="not finite|non-finite"):
        model.fit([bag * 1e155 for bag in bags], y)
    np.testing.assert_array_equal(model.predict_proba(bags), before)
    assert vars(model).keys() == attributes.keys()
    assert model.loss_curve_ is attributes["loss_curve_"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("copy", [lambda m: m, lambda m: pickle.loads(pickle.dumps(m))])
def test_inference_reads_the_documented_attributes(copy):
    bags, y, _ = _bags()
    model = copy(AttentionClassifier(n_heads=2, max_iter=20, random_state=0).fit(bags, y))
    before = model.decision_function(bags)
    model.coefs_["head"] *= 2.0  # in place
    np.testing.assert_allclose(
        model.decision_function(bags) - model.intercepts_["head"][0],
        2.0 * (before - model.intercepts_["head"][0]),
        rtol=1e-10,
    )
    model.intercepts_["b"][:] = 0.0
    model.coefs_["v"][:] = 0.0  # uniform attention: mean pooling
    weights = model.attention_weights(bags)
    for w, bag in zip(weights, bags):
        np.testing.assert_allclose(w, 1.0 / len(bag))


# -- warm start ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda bags, y: ([np.hstack([b, b[:, :1]]) for b in bags], y, {}), "X has 4 features per element, the previous fit had 3"),
        (lambda bags, y: (bags, np.array(["a", "b"])[y], {}), r"y has classes \['a' 'b'\], the previous fit had \[0 1\]"),
        (lambda bags, y: (bags, np.arange(len(y)) % 3, {}), r"y has classes \[0 1 2\]"),
        (lambda bags, y: (bags, y.astype(bool), {}), r"y has classes \[False  True\]"),
        (lambda bags, y: (bags, y, {"n_heads": 2}), "n_heads 4 -> 2"),
        (lambda bags, y: (bags, y, {"hidden_size": 3}), "hidden_size 16 -> 3"),
        (lambda bags, y: (bags, y, {"alignment": "gated"}), "alignment 'additive' -> 'gated'"),
    ],
    ids=["n_features", "labels", "n_classes", "booleans", "n_heads", "hidden_size", "alignment"],
)
def test_warm_start_refuses_another_problem(change, match):
    bags, y, _ = _bags()
    model = AttentionClassifier(max_iter=5, warm_start=True, random_state=0).fit(bags, y)
    before = model.predict_proba(bags)
    X, y2, params = change(bags, y)
    with pytest.raises(ValueError, match=match):
        model.set_params(**params).fit(X, y2)
    model.set_params(n_heads=4, hidden_size=16, alignment="additive")
    np.testing.assert_array_equal(model.predict_proba(bags), before)  # the previous fit stays
    model.set_params(warm_start=False, **params).fit(X, y2)  # from scratch: fine


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_refuses_another_objective_or_output_count():
    bags, y, target = _bags()
    pooling = AttentionPooling(max_iter=5, warm_start=True, random_state=0).fit(bags, y)
    with pytest.raises(ValueError, match="objective is 'regression'"):
        pooling.fit(bags, target)
    regressor = AttentionRegressor(max_iter=5, warm_start=True, random_state=0).fit(bags, target)
    with pytest.raises(ValueError, match="n_outputs 1 -> 2"):
        regressor.fit(bags, np.column_stack([target, target]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_regressor_continues_where_it_stopped():
    bags, _, target = _bags()
    y = 1e4 * target + 300.0
    model = AttentionRegressor(max_iter=20, warm_start=True, random_state=0).fit(bags, y)
    first = model.loss_
    predictions = model.predict(bags)
    model.set_params(max_iter=1).fit(bags, y)
    # the head went back to standardised units and on: one more iteration
    # starts at the previous loss and does not increase it
    assert model.loss_ <= first
    np.testing.assert_allclose(model.predict(bags), predictions, rtol=0.05)


# -- memory --------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_memory_does_not_depend_on_sample_lengths():
    # one sample of 100,000 elements is cut into pieces: a fit needs about
    # the same extra memory as for the same elements in 2,000 short samples
    rng = np.random.RandomState(0)
    elements = rng.normal(size=(100_000, 16))
    data_bytes = elements.nbytes
    long = [elements[:50_000], elements[50_000:]]
    short = np.split(elements, 2_000)
    peaks = []
    for bags in (long, short):
        y = np.arange(len(bags)) % 2
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        AttentionClassifier(max_iter=2, random_state=0).fit(bags, y)
        peaks.append(tracemalloc.get_traced_memory()[1] - before)
        tracemalloc.stop()
    # packed copy + the workspace's [P | 1].T, plus work arrays of one block
    assert peaks[0] < 2.4 * data_bytes and peaks[1] < 2.4 * data_bytes
    assert peaks[0] < 1.1 * peaks[1]
