"""
The general attention mechanism: aligning two recordings
========================================================

Attention was introduced to *align* sequences: in the encoder-decoder of
Bahdanau, Cho & Bengio (2014) every decoder state ``s`` scores every encoder
state ``h_t`` with a small alignment MLP, ``e_t = v . tanh(W h_t + U s + b)``,
the scores become softmax weights over the encoder steps, and the weighted
average of the encoder states is the context the decoder reads.  Their
famous picture is the heatmap of those weights: one row per decoder step,
one column per encoder step.

:mod:`sk_attention.functional` is that mechanism in plain NumPy.  Here it
learns to align two recordings of the same pen stroke (a spiral) traced at
different, varying speeds: the encoder sees one recording, each decoder
state is a point of the other, and the right alignment, the encoder step
at the same place on the stroke, is known.  The estimators of the package
are the same functions without a query (see the end).
"""

# %%
# Two recordings of one stroke
# ----------------------------
# A point of the stroke is its position ``(x, y)`` on a spiral.  The
# encoder's recording samples it at 16 evenly spaced times; the decoder's
# at 12 times that run faster or slower (``u ** gamma``).  The right
# encoder step for a decoder point is the one nearest along the stroke.
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize

from sk_attention.functional import (
    alignment_scores,
    context_vector,
    general_attention,
    softmax,
)


def stroke(progress):
    """Points of a spiral, ``progress`` in [0, 1] along it."""
    angle = 3 * np.pi * progress
    radius = 0.3 + progress
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def recording_pair(rng, n_encoder=16, n_decoder=12):
    encoder_times = np.linspace(0, 1, n_encoder)
    gamma = np.exp(rng.uniform(-0.8, 0.8))  # the second recording's speed profile
    decoder_times = np.linspace(0, 1, n_decoder) ** gamma
    right = np.abs(decoder_times[:, None] - encoder_times[None, :]).argmin(axis=1)
    return stroke(encoder_times), stroke(decoder_times), right


rng = np.random.RandomState(0)
train = [recording_pair(rng) for _ in range(8)]

# %%
# Learning the alignment MLP
# --------------------------
# ``W`` reads an encoder state, ``U`` the decoder state, ``v`` turns the
# ``hidden_size`` tanh units into a score.  They are fitted by maximising
# the weight every decoder state gives its right encoder step (a
# cross-entropy), with scipy's L-BFGS-B; :func:`general_attention` takes the
# whole batch of a pair's decoder states at once.
hidden_size = 6
shapes = {"W": (2, hidden_size), "U": (2, hidden_size), "v": (hidden_size,), "b": (hidden_size,)}


def unpack(theta):
    params, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        params[name] = theta[start : start + size].reshape(shape)
        start += size
    return params


def loss(theta):
    p = unpack(theta)
    total = 0.0
    for encoder, decoder, right in train:
        weights, _ = general_attention(encoder, decoder, p["W"], p["U"], p["v"], p["b"])
        total -= np.log(weights[np.arange(len(right)), right]).mean()
    return total / len(train) + 1e-3 * theta @ theta


theta0 = rng.normal(scale=0.5, size=sum(int(np.prod(s)) for s in shapes.values()))
result = minimize(loss, theta0, method="L-BFGS-B", options={"maxiter": 200})
params = unpack(result.x)
print(f"cross-entropy after {result.nit} iterations: {result.fun:.3f}")

# %%
# The alignment picture
# ---------------------
# On a new pair of recordings, every decoder state's weights over the
# encoder states: the bright path is the learned alignment, the dots the
# right one.  It bends where the second recording runs faster or slower.
encoder, decoder, right = recording_pair(np.random.RandomState(42))
weights, contexts = general_attention(
    encoder, decoder, params["W"], params["U"], params["v"], params["b"]
)
print(f"decoder steps aligned to the right encoder step: {np.mean(weights.argmax(axis=1) == right):.0%}")

fig, (ax_strokes, ax_heat) = plt.subplots(1, 2, figsize=(10, 4.2))
ax_strokes.plot(*encoder.T, "o-", color="tab:blue", label="encoder recording (16 steps)")
ax_strokes.plot(*decoder.T, "s", color="tab:orange", label="decoder recording (12 steps)")
ax_strokes.plot(*contexts.T, "x", color="black", label="context vectors")
ax_strokes.set_aspect("equal")
ax_strokes.set_title("one stroke, recorded twice")
ax_strokes.legend(loc="lower left", fontsize=8)
image = ax_heat.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
ax_heat.plot(right, np.arange(len(right)), "o", mfc="none", mec="white", ms=8)
ax_heat.set_xlabel("encoder step t")
ax_heat.set_ylabel("decoder step")
ax_heat.set_title("attention weights a_t of each decoder state")
fig.colorbar(image, ax=ax_heat)
fig.tight_layout()
plt.show()

# %%
# The context vector is the decoder's reading of the encoder: the encoder's
# recording interpolated at the matching place (the crosses above, on top
# of the decoder's own points).  :func:`context_vector` computes it from
# any weights, e.g. from the scores and :func:`softmax` step by step:
scores = alignment_scores(encoder, decoder, params["W"], params["U"], params["v"], params["b"])
np.testing.assert_allclose(context_vector(encoder, softmax(scores)), contexts)
print(f"mean distance of a context vector to its decoder point: "
      f"{np.linalg.norm(contexts - decoder, axis=1).mean():.3f}")

# %%
# The estimators' heads
# ---------------------
# :class:`~sk_attention.AttentionClassifier` and its siblings have no decoder:
# with ``query=None`` (and ``U=None``) the ``U s`` term drops out and a
# learned bias ``b`` takes its place.  Head ``k`` of a fitted estimator is
# ``general_attention(sample, None, coefs_["W"][:, k*H:(k+1)*H], None,
# coefs_["v"][k], intercepts_["b"][k*H:(k+1)*H])`` for every sample, and the
# package's tests recompute every estimator's output that way.
