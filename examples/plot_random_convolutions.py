"""
Finding a short motif in long series
====================================

Each series below is 150 to 250 steps of noise with one short motif (30
steps of a sine wave) at a random place; the *period* of the wave sets the
class: 6 steps (class 0) or 15 steps (class 1).  Both waves take the same
values, only in another order, so no single step, and no average over the
series, says which class a series is.

Attention pools the steps of a series.  On a univariate series a step is one
number, which says nothing here.  :class:`~sk_attention.RandomConvolutions`
gives every step what random dilated kernels (those of ROCKET) see around
it, so that a step describes its neighbourhood.  Attention then pools those
descriptions, and its weights show *where* in the series the answer was.
"""

# %%
# The series
# ----------

import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import (
    AttentionClassifier,
    ElementwiseTransformer,
    PositionalEncoding,
    RandomConvolutions,
    attention_weights,
)
from sk_attention.plotting import AttentionDisplay

MOTIF = 30


def make_series(n_series, rng):
    """Noise with one motif per series; returns series, labels, motif starts."""
    X, y, starts = [], np.arange(n_series) % 2, []
    steps = np.arange(MOTIF)
    shapes = [np.sin(2 * np.pi * steps / 6), np.sin(2 * np.pi * steps / 15)]
    for label in y:
        length = rng.randint(150, 251)
        series = rng.normal(scale=0.5, size=length)
        start = rng.randint(0, length - MOTIF + 1)
        series[start : start + MOTIF] += 2.5 * shapes[label]
        X.append(((series - series.mean()) / series.std())[:, None])
        starts.append(start)
    return X, y, np.array(starts)


rng = np.random.RandomState(0)
X_train, y_train, _ = make_series(200, rng)
X_test, y_test, starts_test = make_series(200, rng)

fig, axes = plt.subplots(2, 1, figsize=(8, 3.5), sharex=True)
for ax, i in zip(axes, [0, 1]):
    ax.plot(X_test[i][:, 0], lw=0.8)
    ax.axvspan(starts_test[i], starts_test[i] + MOTIF, color="C1", alpha=0.3, label="motif")
    ax.set_ylabel(f"class {y_test[i]}")
axes[0].legend(loc="upper right")
axes[-1].set_xlabel("step")
fig.tight_layout()

# %%
# Attention over the steps, with and without random convolutions
# ----------------------------------------------------------------

def attention(*first_steps, tol=1e-5):
    return make_pipeline(
        *first_steps,
        ElementwiseTransformer(StandardScaler()),
        PositionalEncoding(),
        AttentionClassifier(tol=tol, random_state=0),
    )


# On the raw steps a step's own value says almost nothing: at the uniform
# start (mean pooling) the gradient is tiny, and the fit either stops there
# (``tol=1e-3``, as here) or grinds on for thousands of iterations without
# getting far (0.61 after 5,000 at the default ``tol``).
plain = attention(tol=1e-3).fit(X_train, y_train)
wide = attention(RandomConvolutions(random_state=0)).fit(X_train, y_train)
print(f"attention over the raw steps:                  {plain.score(X_test, y_test):.3f}")
print(f"attention over random convolutions:            {wide.score(X_test, y_test):.3f}")
print("features of one step:", wide[0].get_feature_names_out()[:4].tolist(), "...")

# %%
# Wide windows summarise, narrow windows localise
# ------------------------------------------------
# For each kernel, a step gets the share of positive responses in a window
# around it.  By default (``window=16``) the window is 16 times the
# kernel's half-span: for most kernels it covers much of the series, close
# to ROCKET's whole-series share, and attention hardly needs to look
# anywhere.  With ``window=1`` a step describes only what its kernels
# cover; attention then has to find the motif, and its weights say where
# it is.
narrow = attention(RandomConvolutions(window=1, random_state=0)).fit(X_train, y_train)
print(f"attention over random convolutions, window=1: {narrow.score(X_test, y_test):.3f}")

fig, axes = plt.subplots(3, 1, figsize=(8, 6.5))
for ax, i in zip(axes, [0, 1, 2]):
    start = starts_test[i]
    AttentionDisplay.from_estimator(narrow, X_test, sample=i, kind="heatmap", ax=ax)
    for edge in (start - 0.5, start + MOTIF - 0.5):
        ax.axvline(edge, color="C1", lw=2)
    ticks = np.arange(0, len(X_test[i]), 25)
    ax.set_xticks(ticks, labels=ticks)
    ax.set_xlabel("step")
    ax.set_title(
        f"window=1, test series {i} (class {y_test[i]}); orange lines: the motif",
        fontsize=10,
    )
fig.tight_layout()

# %%
# Over all test series: how much weight falls on the motif?
# ---------------------------------------------------------
# For each test series, the share of each head's attention that falls on
# the motif's steps (averaged over the heads), against the motif's share of
# the steps, which is what uniform attention (mean pooling) would give.
uniform = np.array([MOTIF / len(series) for series in X_test])
fig, ax = plt.subplots(figsize=(5.5, 4))
for model, name, colour in [(wide, "window=16 (default)", "C0"), (narrow, "window=1", "C3")]:
    weights = attention_weights(model, X_test)  # through the pipeline's steps
    on_motif = np.array(
        [w[start : start + MOTIF].sum(axis=0).mean() for w, start in zip(weights, starts_test)]
    )
    print(f"{name}: median weight on the motif {np.median(on_motif):.2f} "
          f"(uniform attention: {np.median(uniform):.2f})")
    ax.scatter(uniform, on_motif, s=8, color=colour, label=name)
ax.plot([0, 0.25], [0, 0.25], "k--", lw=0.8, label="mean pooling")
ax.set_xlim(0.1, 0.21)
ax.set_ylim(0, 1)
ax.set_xlabel("motif's share of the steps")
ax.set_ylabel("attention on the motif (mean over heads)")
ax.legend(loc="upper left")
fig.tight_layout()
plt.show()
