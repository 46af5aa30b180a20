"""
Attention-pooled features for any downstream estimator
======================================================

:class:`~sk_attention.AttentionPooling` learns the attention on a supervised
head and then *transforms* every bag into one vector: the concatenated
context vectors of its heads.  Any scikit-learn estimator can learn from
those vectors; here a
:class:`~sklearn.ensemble.HistGradientBoostingClassifier`.

The data are digit bags from :func:`~sklearn.datasets.load_digits`: 5-15
images per bag, positive when the bag holds at least one 9.
"""

# %%

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sk_attention import AttentionClassifier, AttentionPooling, ElementwiseTransformer

digits = load_digits()
rng = np.random.RandomState(0)
pool_train, pool_test = train_test_split(
    np.arange(len(digits.target)), test_size=0.3, random_state=0, stratify=digits.target
)


def make_bags(pool, n_bags):
    index = [rng.choice(pool, size=rng.randint(5, 16), replace=False) for _ in range(n_bags)]
    return [digits.data[i] for i in index], np.array([int((digits.target[i] == 9).any()) for i in index])


X_train, y_train = make_bags(pool_train, 280)
X_test, y_test = make_bags(pool_test, 120)

# %%
# Three pipelines
# ---------------
# * mean pooling (a :class:`~sklearn.preprocessing.FunctionTransformer`) then
#   gradient boosting;
# * attention pooling then gradient boosting: the pooled vectors have
#   ``n_heads * 64`` columns, named ``head0__x0``, ...;
# * the attention model with its own linear head, for reference.

mean_pool = FunctionTransformer(lambda bags: np.array([bag.mean(axis=0) for bag in bags]))
models = {
    "mean pooling\n+ gradient boosting": make_pipeline(
        mean_pool, HistGradientBoostingClassifier(random_state=0)
    ),
    "AttentionPooling\n+ gradient boosting": make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        AttentionPooling(n_heads=2, random_state=0),
        HistGradientBoostingClassifier(random_state=0),
    ),
    "AttentionClassifier\n(linear head)": make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        AttentionClassifier(n_heads=2, random_state=0),
    ),
}
scores = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    scores[name] = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    print(f"{name.replace(chr(10), ' '):<45} test ROC AUC {scores[name]:.3f}")

pooling = models["AttentionPooling\n+ gradient boosting"][1]
print("pooled features:", pooling.get_feature_names_out()[:3], "...")

# %%
# The attention is fitted on the training labels before the boosting sees
# the pooled vectors, like any supervised feature transformer: on small
# data, evaluate the whole pipeline on held-out bags (as here) or with
# cross-validation, never on the bags it was fitted on.
fig, ax = plt.subplots(figsize=(7, 3.5))
bars = ax.barh(list(scores), list(scores.values()), color=["0.6", "tab:blue", "tab:green"])
ax.bar_label(bars, fmt="%.3f", padding=3)
ax.set_xlim(0.5, 1.0)
ax.set_xlabel("test ROC AUC (bags holding a 9)")
ax.set_title("Pooling first, then any estimator")
fig.tight_layout()
plt.show()
