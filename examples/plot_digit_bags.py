"""
Attention over bags of digit images
===================================

A *bag* is a set of 5-15 images of handwritten digits, drawn from
scikit-learn's bundled :func:`~sklearn.datasets.load_digits`.  A bag is
positive when it contains at least one 9; the model is never told which
image is the 9 (the multiple-instance "MNIST-bags" protocol of Ilse, Tomczak
& Welling, 2018).

Mean pooling averages the images of a bag, so a single 9 is blurred into the
rest.  Attention pooling learns to weight the images before averaging; if it
works, the weights point at the 9s.
"""

# %%
# Build the bags
# --------------
# The images are first split into a training and a test pool, so no test
# image is ever seen in training.  Every bag is a ``(n_images, 64)`` array;
# a list of them is a valid ``X`` for every estimator of the package.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import AttentionClassifier, ElementwiseTransformer
from sk_attention.plotting import AttentionDisplay

digits = load_digits()
rng = np.random.RandomState(0)
pool_train, pool_test = train_test_split(
    np.arange(len(digits.target)), test_size=0.3, random_state=0, stratify=digits.target
)


def make_bags(pool, n_bags):
    index = [rng.choice(pool, size=rng.randint(5, 16), replace=False) for _ in range(n_bags)]
    bags = [digits.data[i] for i in index]
    labels = [digits.target[i] for i in index]
    y = np.array([int((label == 9).any()) for label in labels])
    return bags, labels, y


X_train, digits_train, y_train = make_bags(pool_train, 280)
X_test, digits_test, y_test = make_bags(pool_test, 120)
print(f"{len(X_train)} training bags, {y_train.mean():.0%} of them hold a 9")

# %%
# Attention pooling against mean pooling
# --------------------------------------
# :class:`~sk_attention.ElementwiseTransformer` scales every image with a
# :class:`~sklearn.preprocessing.StandardScaler` fitted on all images, then
# :class:`~sk_attention.AttentionClassifier` learns the weights and the
# classifier jointly.

model = make_pipeline(
    ElementwiseTransformer(StandardScaler()),
    AttentionClassifier(n_heads=2, random_state=0),
)
model.fit(X_train, y_train)


def mean_pool(bags):
    return np.array([bag.mean(axis=0) for bag in bags])


baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
baseline.fit(mean_pool(X_train), y_train)

print(f"attention pooling: accuracy {model.score(X_test, y_test):.3f}, "
      f"ROC AUC {roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]):.3f}")
print(f"mean pooling:      accuracy {baseline.score(mean_pool(X_test), y_test):.3f}, "
      f"ROC AUC {roc_auc_score(y_test, baseline.predict_proba(mean_pool(X_test))[:, 1]):.3f}")

# %%
# Which images did the model look at?
# -----------------------------------
# :class:`~sk_attention.plotting.AttentionDisplay` takes the whole Pipeline:
# it transforms the bag through the scaler and asks the last step for its
# ``attention_weights``.  The thumbnails are the raw images; the 9s are
# highlighted in orange.  The dashed line is the weight every image would
# get under mean pooling.
# Two bags with a 9, and one without a 9 that the model gets right.
predicted = model.predict(X_test)
positive = [i for i in np.flatnonzero(y_test) if len(X_test[i]) <= 12][:2]
negative = list(np.flatnonzero((y_test == 0) & (predicted == 0)))[:1]
fig, axes = plt.subplots(3, 1, figsize=(9, 8.5))
fig.subplots_adjust(hspace=0.9, bottom=0.1, top=0.95)
for ax, i in zip(axes, positive + negative):
    AttentionDisplay.from_estimator(
        model, X_test, sample=i, images=True, image_shape=(8, 8),
        highlight=digits_test[i] == 9, highlight_label="a 9", ax=ax,
    )
    truth = "holds a 9" if y_test[i] else "holds no 9"
    proba = model.predict_proba(X_test[i : i + 1])[0, 1]
    ax.set_title(f"test bag {i} {truth}; model: P(contains a 9) = {proba:.2f}",
                 loc="left", fontsize=10)
plt.show()

# %%
# How often are the 9s ranked first?
# ----------------------------------
# Across all test bags that hold a 9, compare the weight of every image with
# the uniform weight ``1 / n_images`` (averaged over the two heads).  An
# instance-level ROC AUC near 1 means the attention found the 9s without
# ever being told where they are.
weights = model[-1].attention_weights(model[0].transform(X_test))
scores = np.concatenate([w.mean(axis=1) * len(w) for w, y in zip(weights, y_test) if y])
is_nine = np.concatenate([d == 9 for d, y in zip(digits_test, y_test) if y])
print(f"localisation ROC AUC: {roc_auc_score(is_nine, scores):.3f}")
