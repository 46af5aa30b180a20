"""Estimator behaviour: training options, outputs, and the sklearn toolbox."""

import contextlib
import io
import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    ElementwiseTransformer,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _bags(seed=0, n=40, width=3, n_classes=2):
    rng = np.random.RandomState(seed)
    bags = [rng.normal(size=(rng.randint(2, 8), width)) for _ in range(n)]
    y = np.arange(n) % n_classes
    for bag, label in zip(bags, y):
        bag[0, label % width] += 3.0
    return bags, y


# -- outputs -----------------------------------------------------------------


def test_binary_and_multiclass_output_shapes():
    bags, y = _bags()
    clf = AttentionClassifier(n_heads=2, max_iter=30, random_state=0).fit(bags, y)
    assert clf.decision_function(bags).shape == (40,)
    assert clf.coefs_["head"].shape == (2 * 3, 1)
    proba = clf.predict_proba(bags)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(clf.predict_log_proba(bags), np.log(proba))
    np.testing.assert_array_equal(clf.predict(bags), clf.classes_[(clf.decision_function(bags) > 0).astype(int)])

    bags3, y3 = _bags(n_classes=3)
    labels = np.array(["a", "b", "c"])[y3]
    clf3 = AttentionClassifier(n_heads=2, max_iter=50, random_state=0).fit(bags3, labels)
    assert clf3.decision_function(bags3).shape == (40, 3)
    assert clf3.predict_proba(bags3).shape == (40, 3)
    assert set(clf3.predict(bags3)) <= {"a", "b", "c"}
    assert clf3.score(bags3, labels) > 0.8


@pytest.mark.parametrize("form", ["2d", "3d", "ragged"])
def test_attention_weights_shape_and_sum(form):
    bags, y = _bags()
    clf = AttentionClassifier(n_heads=3, max_iter=20, random_state=0).fit(bags, y)
    if form == "ragged":
        weights = clf.attention_weights(bags)
        assert isinstance(weights, list)
        for w, bag in zip(weights, bags):
            assert w.shape == (len(bag), 3)
            np.testing.assert_allclose(w.sum(axis=0), 1)
    elif form == "3d":
        padded = np.full((40, 10, 3), np.nan)
        for i, bag in enumerate(bags):
            padded[i, 10 - len(bag) :] = bag
        weights = clf.attention_weights(padded)
        assert weights.shape == (40, 10, 3)
        np.testing.assert_allclose(weights.sum(axis=1), 1)
        assert np.all(weights[np.isnan(padded).all(axis=2)] == 0)
    else:
        weights = clf.attention_weights(np.vstack([b[0] for b in bags]))
        np.testing.assert_array_equal(weights, np.ones((40, 1, 3)))


def test_multi_output_regression():
    bags, _ = _bags()
    Y = np.column_stack([[b[:, 0].max() for b in bags], [b[:, 1].min() for b in bags]])
    reg = AttentionRegressor(max_iter=100, random_state=0).fit(bags, Y)
    assert reg.predict(bags).shape == (40, 2)
    assert reg.score(bags, Y) > 0.5
    assert reg.predict(bags[:1]).shape == (1, 2)
    reg1 = AttentionRegressor(max_iter=20, random_state=0).fit(bags, Y[:, 0])
    assert reg1.predict(bags).shape == (40,)
    reg2 = AttentionRegressor(max_iter=20, random_state=0).fit(bags, Y[:, :1])
    assert reg2.predict(bags).shape == (40, 1)


def test_pooling_chooses_its_objective():
    bags, y = _bags()
    pooling = AttentionPooling(n_heads=2, max_iter=20, random_state=0)
    assert pooling.fit(bags, y).objective_ == "classification"
    np.testing.assert_array_equal(pooling.classes_, [0, 1])
    continuous = np.array([b[:, 0].max() for b in bags])
    assert pooling.fit(bags, continuous).objective_ == "regression"
    assert not hasattr(pooling, "classes_")
    forced = AttentionPooling(n_heads=2, max_iter=5, objective="regression", random_state=0)
    assert forced.fit(bags, y).objective_ == "regression"
    out = pooling.transform(bags)
    assert out.shape == (40, 2 * 3)
    names = pooling.get_feature_names_out()
    assert names.tolist() == [f"head{k}__x{j}" for k in range(2) for j in range(3)]
    assert pooling.get_feature_names_out(["a", "b", "c"])[3] == "head1__a"


def test_pooling_set_output_pandas():
    pd = pytest.importorskip("pandas")
    bags, y = _bags()
    frames = [pd.DataFrame(b, columns=["u", "v", "w"]) for b in bags]
    pooling = AttentionPooling(n_heads=2, max_iter=10, random_state=0).set_output(transform="pandas")
    out = pooling.fit_transform(frames, y)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist()[:3] == ["head0__u", "head0__v", "head0__w"]
    assert out.shape == (40, 6)


def test_elementwise_keeps_form_and_set_output():
    pd = pytest.importorskip("pandas")
    bags, _ = _bags()
    padded = np.full((40, 9, 3), np.nan)
    for i, bag in enumerate(bags):
        padded[i, 1 : 1 + len(bag)] = bag
    scaler = ElementwiseTransformer(StandardScaler())
    ragged_out = scaler.fit_transform(bags)
    stacked = np.vstack(bags)
    expected = (stacked - stacked.mean(axis=0)) / stacked.std(axis=0)
    np.testing.assert_allclose(np.vstack(ragged_out), expected)
    padded_out = scaler.fit_transform(padded)
    assert padded_out.shape == padded.shape
    np.testing.assert_array_equal(np.isnan(padded_out), np.isnan(padded))
    np.testing.assert_allclose(padded_out[~np.isnan(padded).all(axis=2)], expected)
    scaler.set_output(transform="pandas")
    assert isinstance(scaler.fit_transform(bags), list)  # ragged stays ragged
    flat = scaler.fit_transform(stacked)
    assert isinstance(flat, pd.DataFrame)
    assert flat.columns.tolist() == ["x0", "x1", "x2"]


def test_elementwise_imputes_partially_missing_elements():
    bags, _ = _bags()
    padded = np.full((40, 9, 3), np.nan)
    for i, bag in enumerate(bags):
        padded[i, : len(bag)] = bag
    padded[0, 0, 1] = np.nan  # a partially missing element
    imputed = ElementwiseTransformer(SimpleImputer()).fit_transform(padded)
    real = ~np.isnan(padded).all(axis=2)
    assert not np.isnan(imputed[real]).any()
    assert np.isnan(imputed[~real]).all()  # padding stays padding
    with pytest.raises(ValueError, match="sample 0 contains NaN in a partially filled element"):
        AttentionClassifier().fit(padded, np.arange(40) % 2)
    AttentionClassifier(max_iter=5).fit(imputed, np.arange(40) % 2)


# -- training options ----------------------------------------------------------


def test_fit_is_deterministic_given_random_state():
    bags, y = _bags()
    a = AttentionClassifier(max_iter=20, random_state=3).fit(bags, y)
    b = AttentionClassifier(max_iter=20, random_state=3).fit(bags, y)
    c = AttentionClassifier(max_iter=20, random_state=4).fit(bags, y)
    np.testing.assert_array_equal(a.predict_proba(bags), b.predict_proba(bags))
    assert not np.allclose(a.coefs_["W"], c.coefs_["W"])


def test_max_iter_warns_and_history_is_recorded():
    bags, y = _bags()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        clf = AttentionClassifier(max_iter=3, random_state=0).fit(bags, y)
    assert clf.n_iter_ == 3
    assert len(clf.loss_curve_) == 3
    assert clf.loss_ == pytest.approx(clf.loss_curve_[-1])
    assert clf.loss_curve_[0] >= clf.loss_curve_[-1]


def test_warm_start_continues_from_previous_solution():
    bags, y = _bags()
    cold = AttentionClassifier(max_iter=40, random_state=0).fit(bags, y)
    warm = AttentionClassifier(max_iter=20, random_state=0, warm_start=True)
    warm.fit(bags, y)
    first_loss = warm.loss_
    warm.fit(bags, y)
    assert warm.loss_ <= first_loss
    assert warm.loss_curve_[0] <= first_loss  # starts where it stopped
    assert len(warm.loss_curve_) == warm.n_iter_  # the last call only
    # without warm_start the second fit starts over
    cold_again = clone(cold).set_params(max_iter=20).fit(bags, y)
    assert cold_again.loss_curve_[0] > first_loss


def test_verbose_prints_one_line_per_iteration():
    bags, y = _bags()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        clf = AttentionClassifier(max_iter=5, verbose=1, random_state=0).fit(bags, y)
    lines = buffer.getvalue().strip().splitlines()
    assert len(lines) == clf.n_iter_ + 1
    assert "loss" in lines[0] and "gradient norm" in lines[0] and "time" in lines[0]
    # the last line says why it stopped, in scipy's words
    assert lines[-1].startswith(f"L-BFGS-B stopped after {clf.n_iter_} iterations")
    assert "ITERATIONS REACHED LIMIT" in lines[-1]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        converged = AttentionClassifier(max_iter=500, tol=1e-3, verbose=1, random_state=0)
        converged.fit(bags, y)
    last = buffer.getvalue().strip().splitlines()[-1]
    assert "CONVERGENCE" in last and converged.n_iter_ < 500


def test_sample_weight_equals_repetition():
    bags, y = _bags(n=20)
    weights = np.arange(20) % 3  # 0, 1 or 2
    repeated = [b for b, w in zip(bags, weights) for _ in range(w)]
    y_repeated = np.repeat(y, weights)
    kwargs = dict(max_iter=30, random_state=0)
    weighted = AttentionClassifier(**kwargs).fit(bags, y, sample_weight=weights)
    duplicated = AttentionClassifier(**kwargs).fit(repeated, y_repeated)
    np.testing.assert_allclose(weighted.loss_curve_, duplicated.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(
        weighted.predict_proba(bags), duplicated.predict_proba(bags), rtol=1e-5
    )


def test_class_weight_multiplies_sample_weight():
    bags, y = _bags()
    kwargs = dict(max_iter=15, random_state=0)
    by_class = AttentionClassifier(class_weight={0: 1.0, 1: 3.0}, **kwargs).fit(bags, y)
    by_sample = AttentionClassifier(**kwargs).fit(bags, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_allclose(by_class.loss_curve_, by_sample.loss_curve_)
    unweighted = AttentionClassifier(**kwargs).fit(bags, y)
    assert not np.allclose(unweighted.loss_curve_, by_class.loss_curve_, rtol=1e-3)


def test_all_zero_weights_are_rejected():
    bags, y = _bags()
    with pytest.raises(ValueError, match="weight"):
        AttentionClassifier().fit(bags, y, sample_weight=np.zeros(len(bags)))


@pytest.mark.parametrize("params, match", [({"n_heads": 0}, "n_heads"), ({"alignment": "cosine"}, "alignment"), ({"alpha": -1.0}, "alpha")])
def test_parameters_are_validated(params, match):
    bags, y = _bags()
    with pytest.raises(ValueError, match=match):
        AttentionClassifier(**params).fit(bags, y)


def test_inference_uses_fitted_configuration():
    bags, y = _bags()
    clf = AttentionClassifier(n_heads=2, max_iter=10, random_state=0).fit(bags, y)
    before = clf.predict_proba(bags)
    clf.set_params(n_heads=5, alignment="dot")
    np.testing.assert_array_equal(clf.predict_proba(bags), before)


# -- the sklearn toolbox -------------------------------------------------------


def test_pipeline_grid_search_over_hidden_size():
    bags, y = _bags(n=60)
    pipe = make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        AttentionClassifier(n_heads=2, max_iter=30, random_state=0),
    )
    sizes = [1, 8]
    cv = StratifiedKFold(3)
    search = GridSearchCV(pipe, {"attentionclassifier__hidden_size": sizes}, cv=cv)
    search.fit(bags, y)
    # the search's scores, recomputed fold by fold by hand
    by_hand = []
    for size in sizes:
        model = clone(pipe).set_params(attentionclassifier__hidden_size=size)
        scores = [
            clone(model)
            .fit([bags[i] for i in train], y[train])
            .score([bags[i] for i in test], y[test])
            for train, test in cv.split(bags, y)
        ]
        by_hand.append(np.mean(scores))
        np.testing.assert_array_equal(cross_val_score(model, bags, y, cv=cv), scores)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], by_hand)
    best = sizes[int(np.argmax(by_hand))]  # the first of equal scores, as sklearn
    assert search.best_params_["attentionclassifier__hidden_size"] == best
    assert search.best_estimator_[-1].coefs_["W"].shape[1] == 2 * best
    refit = clone(pipe).set_params(attentionclassifier__hidden_size=best).fit(bags, y)
    np.testing.assert_array_equal(search.predict_proba(bags), refit.predict_proba(bags))
    assert search.score(bags, y) > 0.8


def test_pooling_feeds_another_estimator():
    bags, y = _bags(n=60)
    pipe = make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        AttentionPooling(n_heads=2, max_iter=30, random_state=0),
        LogisticRegression(),
    )
    assert pipe.fit(bags, y).score(bags, y) > 0.8


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(ElementwiseTransformer(StandardScaler()), AttentionClassifier(max_iter=20, random_state=0)),
        lambda: AttentionRegressor(max_iter=20, random_state=0),
        lambda: AttentionPooling(max_iter=20, random_state=0),
    ],
    ids=["pipeline", "regressor", "pooling"],
)
def test_clone_pickle_and_joblib_round_trips(make, tmp_path):
    bags, y = _bags()
    model = make().fit(bags, y)
    output = model.transform if hasattr(model, "transform") and not hasattr(model, "predict") else model.predict
    expected = output(bags)
    restored = pickle.loads(pickle.dumps(model))
    restored_output = getattr(restored, output.__name__)
    np.testing.assert_array_equal(restored_output(bags), expected)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(getattr(loaded, output.__name__)(bags), expected)
    refit = clone(model).fit(bags, y)
    np.testing.assert_array_equal(getattr(refit, output.__name__)(bags), expected)
