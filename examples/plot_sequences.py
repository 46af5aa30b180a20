"""
Classifying ragged multivariate sequences
=========================================

Each 8x8 digit image of :func:`~sklearn.datasets.load_digits` is read row by
row as a *sequence* of 8-pixel rows.  To make the sequences ragged, every
image is cropped to a random run of 5 to 8 consecutive rows.  The task is
to name the digit (10 classes) from its rows.

Attention pools the rows of a sequence, one weighting per head; mean
pooling would average them.  Attention itself ignores order: the rows form
a set, and the model learns which kinds of rows matter.
:class:`~sk_attention.PositionalEncoding` tells it where each row sits.
"""

# %%

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import AttentionClassifier, ElementwiseTransformer, PositionalEncoding
from sk_attention.plotting import AttentionDisplay

digits = load_digits()
rng = np.random.RandomState(0)
sequences, first_rows = [], []
for image in digits.images:
    length = rng.randint(5, 9)
    start = rng.randint(0, 9 - length)
    sequences.append(image[start : start + length])  # (length, 8): one row per step
    first_rows.append(start)

X_train, X_test, y_train, y_test, first_train, first_test = train_test_split(
    sequences, digits.target, first_rows, test_size=0.3, random_state=0,
    stratify=digits.target,
)
print("lengths of the first sequences:", [len(s) for s in X_train[:8]])

# %%
# Fit and compare with mean pooling
# ---------------------------------
# Ten classes from a few short rows: ``alpha=3.0`` (a stronger penalty than
# the default 0.1) keeps the model from fitting the training rows too
# closely, and ``tol=1e-4`` lets the fit stop there, within ``max_iter``.

model = make_pipeline(
    ElementwiseTransformer(StandardScaler()),
    AttentionClassifier(n_heads=4, alpha=3.0, tol=1e-4, random_state=0),
)
model.fit(X_train, y_train)


def mean_pool(sequences):
    return np.array([s.mean(axis=0) for s in sequences])


baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
baseline.fit(mean_pool(X_train), y_train)
print(f"attention pooling accuracy: {model.score(X_test, y_test):.3f}")
print(f"mean pooling accuracy:      {baseline.score(mean_pool(X_test), y_test):.3f}")

# %%
# Telling attention where a row sits
# ----------------------------------
# :class:`~sk_attention.PositionalEncoding` appends each row's relative
# position in its sequence (0 for the first row, 1 for the last) and
# sin/cos features of it, so a head can weigh a row by what it shows *and*
# by where it comes in the sequence.
positional = make_pipeline(
    ElementwiseTransformer(StandardScaler()),
    PositionalEncoding(),
    AttentionClassifier(n_heads=4, alpha=3.0, tol=1e-4, random_state=0),
)
positional.fit(X_train, y_train)
print(f"with PositionalEncoding:    {positional.score(X_test, y_test):.3f}")
print("features of one step:", list(positional[:2].get_feature_names_out())[-5:])

# %%
# Ragged list or NaN-padded array: the same model
# -----------------------------------------------
# The same sequences as one 3D array, padded with all-NaN rows, give the
# same predictions: padding is ignored.
padded = np.full((len(X_test), 8, 8), np.nan)
for i, sequence in enumerate(X_test):
    padded[i, : len(sequence)] = sequence
assert np.array_equal(model.predict(padded), model.predict(X_test))

# %%
# Where do the heads look?
# ------------------------
# The heatmap shows every head's weight on every row of a test sequence
# (columns are the rows of the cropped image, labelled by their row number in
# the full 8x8 image).  Different heads specialise on different rows.
fig, axes = plt.subplots(
    3, 2, figsize=(8, 7.5), gridspec_kw={"width_ratios": [1, 4]}
)
for (ax_image, ax_heat), i in zip(axes, [0, 1, 2]):
    sequence, start = X_test[i], first_test[i]
    rows = np.arange(start, start + len(sequence))
    ax_image.imshow(sequence, cmap="gray_r", extent=(-0.5, 7.5, rows[-1] + 0.5, rows[0] - 0.5))
    ax_image.set_yticks(rows)
    ax_image.set_xticks([])
    ax_image.set_ylabel("row")
    ax_image.set_title(f"digit {y_test[i]}", fontsize=10)
    AttentionDisplay.from_estimator(
        model, X_test, sample=i, kind="heatmap", element_labels=rows, ax=ax_heat
    )
    ax_heat.set_xlabel("row of the image (one step of the sequence)")
    predicted = model.predict(X_test[i : i + 1])[0]
    ax_heat.set_title(f"attention per head, predicted {predicted}", fontsize=10)
fig.tight_layout()
plt.show()
