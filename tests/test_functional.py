"""sk_attention.functional: the general attention mechanism, checked against its formulas."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sk_attention import functional as F

finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64)


def _problem(seed, T=5, D=3, H=4, d_q=2):
    rng = np.random.RandomState(seed)
    return dict(
        states=rng.normal(size=(T, D)),
        W=rng.normal(size=(D, H)),
        U=rng.normal(size=(d_q, H)),
        v=rng.normal(size=H),
        b=rng.normal(size=H),
        W_gate=rng.normal(size=(D, H)),
        U_gate=rng.normal(size=(d_q, H)),
        b_gate=rng.normal(size=H),
        q=rng.normal(size=H),
        queries=rng.normal(size=(3, d_q)),
    )


def test_additive_scores_follow_the_formula_step_by_step():
    p = _problem(0)
    s = p["queries"][0]
    expected = [p["v"] @ np.tanh(p["W"].T @ h + p["U"].T @ s + p["b"]) for h in p["states"]]
    np.testing.assert_allclose(
        F.alignment_scores(p["states"], s, p["W"], p["U"], p["v"], p["b"]), expected, rtol=1e-12
    )


def test_gated_and_dot_scores_follow_their_formulas():
    p = _problem(1)
    s = p["queries"][1]
    gate = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    expected = [
        p["v"]
        @ (
            np.tanh(p["W"].T @ h + p["U"].T @ s + p["b"])
            * gate(p["W_gate"].T @ h + p["U_gate"].T @ s + p["b_gate"])
        )
        for h in p["states"]
    ]
    got = F.gated_alignment_scores(
        p["states"], s, p["W"], p["U"], p["v"], p["W_gate"], p["U_gate"], p["b"], p["b_gate"]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    H = p["W"].shape[1]
    expected = [(p["U"].T @ s + p["q"]) @ (p["W"].T @ h) / np.sqrt(H) for h in p["states"]]
    got = F.scaled_dot_scores(p["states"], s, p["W"], p["U"], q=p["q"])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_a_batch_of_queries_is_each_query_on_its_own():
    p = _problem(2)
    batch = [
        F.alignment_scores(p["states"], p["queries"], p["W"], p["U"], p["v"], p["b"]),
        F.gated_alignment_scores(
            p["states"], p["queries"], p["W"], p["U"], p["v"], p["W_gate"], p["U_gate"], p["b"]
        ),
        F.scaled_dot_scores(p["states"], p["queries"], p["W"], p["U"]),
    ]
    for j, s in enumerate(p["queries"]):
        single = [
            F.alignment_scores(p["states"], s, p["W"], p["U"], p["v"], p["b"]),
            F.gated_alignment_scores(
                p["states"], s, p["W"], p["U"], p["v"], p["W_gate"], p["U_gate"], p["b"]
            ),
            F.scaled_dot_scores(p["states"], s, p["W"], p["U"]),
        ]
        for scores, one in zip(batch, single):
            assert scores.shape == (3, 5)
            np.testing.assert_allclose(scores[j], one, rtol=1e-12)
    weights, context = F.general_attention(p["states"], p["queries"], p["W"], p["U"], p["v"], p["b"])
    assert weights.shape == (3, 5) and context.shape == (3, 3)
    for j, s in enumerate(p["queries"]):
        w, c = F.general_attention(p["states"], s, p["W"], p["U"], p["v"], p["b"])
        np.testing.assert_allclose(weights[j], w, rtol=1e-12)
        np.testing.assert_allclose(context[j], c, rtol=1e-12)


def test_without_a_query_the_bias_plays_the_role_of_U_s():
    # DESIGN: query=None drops the U s term; the estimators' b stands in for it
    p = _problem(3)
    s = p["queries"][0]
    shift = p["U"].T @ s
    np.testing.assert_allclose(
        F.alignment_scores(p["states"], None, p["W"], None, p["v"], p["b"] + shift),
        F.alignment_scores(p["states"], s, p["W"], p["U"], p["v"], p["b"]),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        F.gated_alignment_scores(
            p["states"], None, p["W"], None, p["v"], p["W_gate"], None,
            p["b"] + shift, p["b_gate"] + p["U_gate"].T @ s,
        ),
        F.gated_alignment_scores(
            p["states"], s, p["W"], p["U"], p["v"], p["W_gate"], p["U_gate"], p["b"], p["b_gate"]
        ),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        F.scaled_dot_scores(p["states"], None, p["W"], None, q=p["q"] + shift),
        F.scaled_dot_scores(p["states"], s, p["W"], p["U"], q=p["q"]),
        rtol=1e-12,
    )


def test_general_attention_is_softmax_then_context():
    p = _problem(4)
    s = p["queries"][2]
    scores = F.alignment_scores(p["states"], s, p["W"], p["U"], p["v"], p["b"])
    weights, context = F.general_attention(p["states"], s, p["W"], p["U"], p["v"], p["b"])
    expected = np.exp(scores) / np.exp(scores).sum()
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    np.testing.assert_allclose(context, (expected[:, None] * p["states"]).sum(axis=0), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    scores=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)), elements=finite),
    shift=st.floats(-1e3, 1e3),
)
def test_softmax_sums_to_one_and_ignores_a_shift(scores, shift):
    weights = F.softmax(scores * 100)  # scores up to +-300: no overflow
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(F.softmax(scores + shift), F.softmax(scores), rtol=1e-9, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(1, 8))
def test_permuting_the_states_permutes_the_weights_only(seed, T):
    p = _problem(seed % 1000, T=T)
    order = np.random.RandomState(seed).permutation(T)
    args = (p["W"], p["U"], p["v"], p["b"])
    weights, context = F.general_attention(p["states"], p["queries"], *args)
    weights_p, context_p = F.general_attention(p["states"][order], p["queries"], *args)
    np.testing.assert_allclose(weights_p, weights[:, order], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(context_p, context, rtol=1e-10, atol=1e-12)


def test_context_of_one_hot_weights_is_that_state():
    states = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(F.context_vector(states, np.eye(4)), states)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: F.alignment_scores(p["states"], None, p["W"], p["U"], p["v"]), "U is given but query is None"),
        (lambda p: F.alignment_scores(p["states"], p["queries"], p["W"], None, p["v"]), "query is given but U is None"),
        (lambda p: F.alignment_scores(p["states"][0], None, p["W"], None, p["v"]), "states must be a 2D array"),
        (lambda p: F.alignment_scores(p["states"][:0], None, p["W"], None, p["v"]), "no step"),
        (lambda p: F.alignment_scores(p["states"], p["queries"][None], p["W"], p["U"], p["v"]), "query must have shape"),
        (lambda p: F.alignment_scores(p["states"], p["queries"], p["W"], p["U"][:, :2], p["v"]), "U has 2 columns, but W has 4"),
        (lambda p: F.scaled_dot_scores(p["states"], None, p["W"], None), "needs a query"),
        (lambda p: F.context_vector(p["states"], np.ones(4) / 4), "weights cover 4 steps, but states has 5"),
    ],
)
def test_mistakes_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(_problem(5))
