"""The fitted model is the one DESIGN.md writes down.

Every output of a fitted estimator is recomputed here from its documented
``coefs_`` / ``intercepts_`` with :mod:`sk_attention.functional`, one sample
and one head at a time; ``loss_`` from the loss formula; and on 2D input
with one head the estimators are held against LogisticRegression and Ridge,
which solve the same problem.
"""

import numpy as np
import pytest
from scipy.special import expit, log_softmax
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.class_weight import compute_sample_weight

import sk_attention._base as base_module
from sk_attention import AttentionClassifier, AttentionPooling, AttentionRegressor
from sk_attention import functional as F

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_FEATURES = 3


# -- the reference model, from the documented attributes ------------------------


def _head_parameters(model, k):
    """Head k's parameters in the functional module's names (its docstring's table)."""
    coefs, intercepts = model.coefs_, model.intercepts_
    n_heads = coefs["q" if model.alignment == "dot" else "v"].shape[0]
    H = coefs["W"].shape[1] // n_heads
    cols = slice(k * H, (k + 1) * H)
    head = {"W": coefs["W"][:, cols]}
    if model.alignment == "dot":
        head["q"] = coefs["q"][k]
        return head
    head.update(v=coefs["v"][k], b=intercepts["b"][cols])
    if model.alignment == "gated":
        head.update(W_gate=coefs["U"][:, cols], b_gate=intercepts["c"][cols])
    return head


def _scores(alignment, states, p):
    if alignment == "additive":
        return F.alignment_scores(states, None, p["W"], None, p["v"], p["b"])
    if alignment == "gated":
        return F.gated_alignment_scores(
            states, None, p["W"], None, p["v"], p["W_gate"], None, p["b"], p["b_gate"]
        )
    return F.scaled_dot_scores(states, None, p["W"], None, q=p["q"])


def reference(model, samples):
    """Per-sample weights (T_i, K), pooled vectors (n, K * D') and head output (n, O)."""
    n_heads = model.coefs_["q" if model.alignment == "dot" else "v"].shape[0]
    weights, pooled = [], []
    for states in samples:
        states = np.asarray(states, dtype=np.float64)
        if "embedding" in model.coefs_:  # attention reads [x_t, relu(W_e x_t + b_e)]
            states = F.element_embedding(
                states, model.coefs_["embedding"], model.intercepts_["embedding"]
            )
        per_head, contexts = [], []
        for k in range(n_heads):
            a = F.softmax(_scores(model.alignment, states, _head_parameters(model, k)))
            per_head.append(a)
            contexts.append(F.context_vector(states, a))
        weights.append(np.column_stack(per_head))
        pooled.append(np.concatenate(contexts))  # [c_1, ..., c_K]
    pooled = np.array(pooled)
    head = pooled @ model.coefs_["head"] + model.intercepts_["head"]
    return weights, pooled, head


# -- data in every form -----------------------------------------------------------


def _data(dtype, seed=0, n=24):
    rng = np.random.RandomState(seed)
    bags = [rng.normal(size=(rng.randint(1, 7), N_FEATURES)).astype(dtype) for _ in range(n)]
    padded = np.full((n, 8, N_FEATURES), np.nan, dtype=dtype)
    for i, bag in enumerate(bags):
        padded[i, 8 - len(bag) :] = bag
    flat = rng.normal(size=(n, N_FEATURES)).astype(dtype)
    score = np.array([bag[:, 0].max() + bag[:, 1].mean() for bag in bags])
    return {"ragged": bags, "3d": padded, "2d": flat}, score


def _samples(X):
    """The samples of any form, as a list of 2D arrays (padding removed)."""
    if isinstance(X, list):
        return X
    if X.ndim == 2:
        return [row[None, :] for row in X]
    return [sample[~np.isnan(sample).all(axis=1)] for sample in X]


TASKS = {
    "binary": (AttentionClassifier, lambda s: np.where(s > np.median(s), "yes", "no")),
    "multiclass": (AttentionClassifier, lambda s: np.digitize(s, np.quantile(s, [1 / 3, 2 / 3]))),
    "regression": (AttentionRegressor, lambda s: np.column_stack([s, 100.0 * s**2 - 7.0])),
    "pooling": (AttentionPooling, lambda s: (s > np.median(s)).astype(int)),
}

def _fitted(task, alignment, n_heads, dtype, embedding_size=None):
    Estimator, make_y = TASKS[task]
    forms, score = _data(dtype)
    model = Estimator(
        n_heads=n_heads, hidden_size=4, embedding_size=embedding_size, alignment=alignment,
        max_iter=15, random_state=0,
    )
    return model.fit(forms["ragged"], make_y(score)), forms


def _perturbed(model, seed):
    """The model with every coefficient and intercept moved: nothing may be zero."""
    rng = np.random.RandomState(seed)
    model.coefs_ = {k: v + rng.normal(scale=0.5, size=v.shape) for k, v in model.coefs_.items()}
    model.intercepts_ = {
        k: v + rng.normal(scale=0.5, size=v.shape) for k, v in model.intercepts_.items()
    }
    return model


def _assert_outputs_match_reference(model, forms, dtype):
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (2e-4, 2e-5)
    for form, X in forms.items():
        weights, pooled, head = reference(model, _samples(X))
        got = model.attention_weights(X)
        if form == "ragged":
            got = list(got)
        elif form == "3d":
            real = ~np.isnan(X).all(axis=2)
            assert np.all(got[~real] == 0)
            got = [g[r] for g, r in zip(got, real)]
        else:
            got = list(got)
        for g, w in zip(got, weights, strict=True):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=form)
        if isinstance(model, AttentionPooling):
            out = model.transform(X)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, pooled, rtol=rtol, atol=atol, err_msg=form)
        elif isinstance(model, AttentionRegressor):
            out = model.predict(X)
            assert out.dtype == np.float64  # y's units, whatever X's dtype
            np.testing.assert_allclose(out, head, rtol=rtol, atol=atol * 100, err_msg=form)
        else:
            decision = model.decision_function(X)
            assert decision.dtype == dtype
            if head.shape[1] == 1:
                np.testing.assert_allclose(decision, head[:, 0], rtol=rtol, atol=atol)
                proba = np.column_stack([expit(-head[:, 0]), expit(head[:, 0])])
            else:
                np.testing.assert_allclose(decision, head, rtol=rtol, atol=atol)
                proba = np.exp(log_softmax(head, axis=1))
            np.testing.assert_allclose(model.predict_proba(X), proba, rtol=rtol * 10, atol=atol)
            clear = np.abs(head[:, -1] if head.shape[1] == 1 else np.diff(np.sort(head)[:, -2:])[:, 0]) > 1e-3
            np.testing.assert_array_equal(
                model.predict(X)[clear], model.classes_[np.argmax(proba, axis=1)][clear]
            )


@pytest.mark.parametrize("embedding_size", [None, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_heads", [1, 3])
@pytest.mark.parametrize("alignment", ["additive", "gated", "dot"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_outputs_are_recomputed_from_coefs_and_intercepts(
    task, alignment, n_heads, dtype, embedding_size
):
    model, forms = _fitted(task, alignment, n_heads, dtype, embedding_size)
    _assert_outputs_match_reference(model, forms, dtype)
    # inference reads coefs_ / intercepts_ and nothing else: move them all
    _assert_outputs_match_reference(_perturbed(model, seed=1), forms, dtype)


# -- the loss ---------------------------------------------------------------------------


def _penalty(coefs):
    """||weights||^2: every coefficient matrix and vector (W_e too), never an intercept."""
    return sum(float(np.sum(value.astype(np.float64) ** 2)) for value in coefs.values())


@pytest.mark.parametrize("embedding_size", [None, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alignment", ["additive", "gated", "dot"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "balanced"])
def test_classifier_loss_is_the_documented_formula(task, alignment, dtype, embedding_size):
    forms, score = _data(dtype, seed=2, n=40)
    y = TASKS["multiclass" if task == "multiclass" else "binary"][1](score)
    if task == "balanced":
        y = np.where(score > np.quantile(score, 0.8), "yes", "no")  # 8 against 32
    sample_weight = np.random.RandomState(3).uniform(0.2, 3.0, size=len(y))
    alpha = 0.7
    model = AttentionClassifier(
        n_heads=2, hidden_size=4, embedding_size=embedding_size, alignment=alignment,
        alpha=alpha, max_iter=12, class_weight="balanced" if task == "balanced" else None,
        random_state=0,
    ).fit(forms["ragged"], y, sample_weight=sample_weight)

    _, _, logits = reference(model, forms["ragged"])
    codes = np.searchsorted(model.classes_, y)
    if logits.shape[1] == 1:  # one logit, the second class's
        z = logits[:, 0]
        per_sample = np.logaddexp(0.0, np.where(codes == 1, -z, z))
    else:
        per_sample = -log_softmax(logits, axis=1)[np.arange(len(y)), codes]
    w = sample_weight
    if task == "balanced":  # n_samples / (n_classes * count of the class)
        counts = np.bincount(codes)
        w = w * len(y) / (2 * counts[codes])
    expected = w @ per_sample / w.sum() + alpha / 2 * _penalty(model.coefs_) / w.sum()
    rtol = 1e-9 if dtype == np.float64 else 2e-5
    assert model.loss_ == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize("embedding_size", [None, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alignment", ["additive", "gated", "dot"])
def test_regressor_loss_is_the_documented_formula(alignment, dtype, embedding_size):
    forms, score = _data(dtype, seed=4, n=40)
    Y = TASKS["regression"][1](score)
    sample_weight = np.random.RandomState(5).uniform(0.2, 3.0, size=len(Y))
    alpha = 0.7
    model = AttentionRegressor(
        n_heads=2, hidden_size=4, embedding_size=embedding_size, alignment=alignment,
        alpha=alpha, max_iter=12, random_state=0,
    ).fit(forms["ragged"], Y, sample_weight=sample_weight)

    # DESIGN: loss_ is measured on the targets standardised with the
    # weighted mean and standard deviation of each output
    w = sample_weight
    mean = w @ Y / w.sum()
    std = np.sqrt(w @ (Y - mean) ** 2 / w.sum())
    _, _, predictions = reference(model, forms["ragged"])
    residual = (predictions - mean) / std - (Y - mean) / std
    per_sample = 0.5 * np.mean(residual**2, axis=1)  # averaged over the outputs
    coefs = dict(model.coefs_, head=model.coefs_["head"] / std)  # the head in standardised units
    expected = w @ per_sample / w.sum() + alpha / 2 * _penalty(coefs) / w.sum()
    rtol = 1e-9 if dtype == np.float64 else 2e-5
    assert model.loss_ == pytest.approx(expected, rel=rtol)


# -- equivalent scikit-learn estimators ---------------------------------------------------


def _flat_problem(n_classes, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(80, 4))
    logits = X @ rng.normal(size=(4, n_classes)) * 1.5
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    return X, y, rng.uniform(0.3, 3.0, size=80)


@pytest.mark.parametrize("alignment", ["additive", "gated", "dot"])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("alpha", [0.3, 2.0])
def test_classifier_on_one_element_samples_is_logistic_regression(alpha, n_classes, alignment):
    # with one element per sample every attention weight is 1: the pooled
    # vector is the element, the alignment's weights only pay their penalty
    # (their optimum is 0), and the objective is LogisticRegression's with
    # C = 1 / alpha (DESIGN, "Loss")
    X, y, sample_weight = _flat_problem(n_classes)
    model = AttentionClassifier(
        n_heads=1, alignment=alignment, alpha=alpha, tol=1e-10, max_iter=2000, random_state=0
    ).fit(X, y, sample_weight=sample_weight)
    lr = LogisticRegression(C=1.0 / alpha, tol=1e-12, max_iter=10_000)
    lr.fit(X, y, sample_weight=sample_weight)
    np.testing.assert_allclose(model.predict_proba(X), lr.predict_proba(X), rtol=1e-5, atol=1e-7)
    coef = model.coefs_["head"].T  # (n_outputs, n_features)
    np.testing.assert_allclose(coef, lr.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.intercepts_["head"], lr.intercept_, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("alignment", ["additive", "dot"])
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("alpha", [0.3, 5.0])
def test_regressor_on_one_element_samples_is_ridge(alpha, n_outputs, alignment):
    # DESIGN's objective with standardised targets z = (y - m) / s and the
    # head (beta_z, c): sum_i w_i / (2 O) sum_o (z_io - x_i beta_zo - c_o)^2
    # / W + alpha / 2 sum_o ||beta_zo||^2 / W  (+ the alignment's weights,
    # whose optimum is 0).  Times 2 O W s_o^2, output o is
    # sum_i w_i (y_io - x_i beta_o - b_o)^2 + O alpha ||beta_o||^2 with
    # beta_o = s_o beta_zo, b_o = m_o + s_o c_o: Ridge with alpha * O, in
    # y's own units.
    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 5))
    Y = X @ rng.normal(size=(5, n_outputs)) * [1.0, 1e3, 1e-2][:n_outputs] + rng.normal(
        size=(60, n_outputs)
    ) + 50.0
    sample_weight = rng.uniform(0.3, 3.0, size=60)
    y = Y[:, 0] if n_outputs == 1 else Y
    model = AttentionRegressor(
        n_heads=1, alignment=alignment, alpha=alpha, tol=1e-10, max_iter=2000, random_state=0
    ).fit(X, y, sample_weight=sample_weight)
    ridge = Ridge(alpha=alpha * n_outputs).fit(X, y, sample_weight=sample_weight)
    np.testing.assert_allclose(model.predict(X), ridge.predict(X), rtol=1e-7, atol=1e-9)
    coef = model.coefs_["head"] if n_outputs > 1 else model.coefs_["head"][:, 0]
    np.testing.assert_allclose(coef, ridge.coef_.T, rtol=1e-5, atol=1e-8)


# -- class weights and dtypes ---------------------------------------------------------


def test_balanced_class_weight_equals_balanced_sample_weight():
    forms, score = _data(np.float64, seed=6, n=40)
    y = (score > np.quantile(score, 0.75)).astype(int)  # 10 against 30
    sample_weight = np.random.RandomState(7).uniform(0.5, 2.0, size=40)
    kwargs = dict(n_heads=2, hidden_size=4, max_iter=15, random_state=0)
    balanced = AttentionClassifier(class_weight="balanced", **kwargs)
    balanced.fit(forms["ragged"], y, sample_weight=sample_weight)
    by_hand = AttentionClassifier(**kwargs).fit(
        forms["ragged"], y, sample_weight=sample_weight * compute_sample_weight("balanced", y)
    )
    np.testing.assert_allclose(balanced.loss_curve_, by_hand.loss_curve_, rtol=1e-10)
    for name, value in by_hand.coefs_.items():
        np.testing.assert_allclose(balanced.coefs_[name], value, rtol=1e-7, atol=1e-10)
    # and the weights matter here: without them the model is another
    plain = AttentionClassifier(**kwargs).fit(forms["ragged"], y, sample_weight=sample_weight)
    assert not np.allclose(plain.coefs_["head"], balanced.coefs_["head"], rtol=1e-2)


@pytest.mark.parametrize(
    "Estimator, method", [(AttentionClassifier, "decision_function"), (AttentionPooling, "transform")]
)
def test_float32_input_is_fitted_and_predicted_in_float32(Estimator, method, monkeypatch):
    forms, score = _data(np.float32, seed=8)
    y = (score > np.median(score)).astype(int)
    seen = []
    original = base_module.Workspace

    def recording(P, *args, **kwargs):
        if kwargs.get("store", True):  # the fit's workspace, not a prediction's
            seen.append(P.dtype)
        return original(P, *args, **kwargs)

    monkeypatch.setattr(base_module, "Workspace", recording)
    model32 = Estimator(n_heads=2, max_iter=10, random_state=0).fit(forms["ragged"], y)
    assert seen == [np.float32]
    assert getattr(model32, method)(forms["ragged"]).dtype == np.float32
    # float32 arithmetic is visible in the loss: the same values in float64
    # give a loss curve equal only to float32 precision
    bags64 = [bag.astype(np.float64) for bag in forms["ragged"]]
    model64 = Estimator(n_heads=2, max_iter=10, random_state=0).fit(bags64, y)
    assert seen == [np.float32, np.float64]
    np.testing.assert_allclose(model32.loss_curve_[:3], model64.loss_curve_[:3], rtol=1e-4)
    assert model32.loss_curve_[:3] != model64.loss_curve_[:3]
    for name, value in model32.coefs_.items():
        assert value.dtype == np.float64  # the fitted parameters are float64 either way


def test_pooled_columns_and_their_names_with_the_embedding():
    forms, score = _data(np.float64, seed=9)
    y = (score > np.median(score)).astype(int)
    pooling = AttentionPooling(n_heads=2, embedding_size=3, max_iter=10, random_state=0)
    pooled = pooling.fit_transform(forms["ragged"], y)
    assert pooled.shape == (len(y), 2 * (N_FEATURES + 3))
    assert pooling.coefs_["embedding"].shape == (N_FEATURES, 3)
    assert pooling.intercepts_["embedding"].shape == (3,)
    names = pooling.get_feature_names_out(["a", "b", "c"]).tolist()
    assert names == [f"head{k}__{f}" for k in range(2) for f in ["a", "b", "c", "embedding0", "embedding1", "embedding2"]]
    _, reference_pooled, _ = reference(pooling, forms["ragged"])
    np.testing.assert_allclose(pooled, reference_pooled, rtol=1e-10)
