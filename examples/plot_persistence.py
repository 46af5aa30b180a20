"""
Saving and reloading a fitted pipeline
======================================

Fitted estimators of ``sk_attention`` are plain Python objects holding NumPy
arrays, so :mod:`pickle` and :mod:`joblib` store them like any scikit-learn
estimator.  A reloaded pipeline predicts exactly what the original did.
"""

# %%
import pickle
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import AttentionClassifier, ElementwiseTransformer

# %%
# Fit a small model on digit bags (a bag is positive when it holds a 9)
digits = load_digits()
rng = np.random.RandomState(0)
index = [rng.choice(len(digits.target), size=rng.randint(5, 16), replace=False)
         for _ in range(150)]
bags = [digits.data[i] for i in index]
y = np.array([int((digits.target[i] == 9).any()) for i in index])

model = make_pipeline(
    ElementwiseTransformer(StandardScaler()),
    AttentionClassifier(n_heads=2, random_state=0),
)
model.fit(bags[:100], y[:100])
new_bags = bags[100:]

# %%
# Round trip through pickle and through joblib
# --------------------------------------------
directory = Path(tempfile.mkdtemp())
with open(directory / "model.pkl", "wb") as f:
    pickle.dump(model, f)
with open(directory / "model.pkl", "rb") as f:
    from_pickle = pickle.load(f)

joblib.dump(model, directory / "model.joblib")
from_joblib = joblib.load(directory / "model.joblib")

# %%
# The reloaded pipelines give identical probabilities and attention weights
reference = model.predict_proba(new_bags)
for name, loaded in [("pickle", from_pickle), ("joblib", from_joblib)]:
    assert np.array_equal(loaded.predict_proba(new_bags), reference)
    w_loaded = loaded[-1].attention_weights(loaded[0].transform(new_bags))
    w_reference = model[-1].attention_weights(model[0].transform(new_bags))
    assert all(np.array_equal(a, b) for a, b in zip(w_loaded, w_reference))
    print(f"{name}: identical predictions on {len(new_bags)} new bags "
          f"({(directory / ('model.pkl' if name == 'pickle' else 'model.joblib')).stat().st_size} bytes)")

# %%
# As with every scikit-learn estimator, load pickles only from sources you
# trust, and with the same versions of ``sk_attention`` and scikit-learn
# that saved them.
