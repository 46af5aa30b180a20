"""
Fitting and predicting on a Dask cluster
========================================

When the samples do not fit in one machine's memory, the estimators fit on
a dask array whose chunks are held by the workers of a Dask cluster: every
chunk is validated and packed where it is computed and stays there for the
whole fit, scipy's L-BFGS-B runs in this process, and each evaluation of the
loss is one task per chunk.  Predictions on a dask array are lazy.

This example starts a small cluster inside this process, fits the digit-bag
Pipeline of :ref:`sphx_glr_auto_examples_plot_digit_bags.py` on it, compares
the model with the in-memory fit, and predicts lazily.  It needs
``pip install "sk_attention[dask]"``; :doc:`/scaling_out` explains when a
cluster pays and what crosses the network.
"""

# %%
# Digit bags as a NaN-padded 3D array
# -----------------------------------
# A bag holds 5-15 images of :func:`~sklearn.datasets.load_digits` and is
# positive when one of them is a 9.  A dask array cannot be ragged, so the
# bags are padded to 15 images with all-NaN rows, which every estimator
# ignores.  (Ragged samples stored one file each go in a ``dask.bag.Bag``
# instead; see :doc:`/scaling_out`.)

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import AttentionClassifier, ElementwiseTransformer, attention_weights
from sk_attention.plotting import AttentionDisplay

digits = load_digits()
rng = np.random.RandomState(0)
pool_train, pool_test = train_test_split(
    np.arange(len(digits.target)), test_size=0.3, random_state=0, stratify=digits.target
)


def make_bags(pool, n_bags, max_size=15):
    """NaN-padded bags, the digit of every image (-1 at padding), and the bag labels."""
    X = np.full((n_bags, max_size, 64), np.nan)
    labels = np.full((n_bags, max_size), -1)
    for bag in range(n_bags):
        chosen = rng.choice(pool, size=rng.randint(5, max_size + 1), replace=False)
        X[bag, : len(chosen)] = digits.data[chosen]
        labels[bag, : len(chosen)] = digits.target[chosen]
    return X, labels, (labels == 9).any(axis=1).astype(int)


X_train, digits_train, y_train = make_bags(pool_train, 280)
X_test, digits_test, y_test = make_bags(pool_test, 120)
print(f"X_train: {X_train.shape}, {y_train.mean():.0%} of the bags hold a 9")


def make_model():
    return make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        AttentionClassifier(n_heads=2, random_state=0),
    )


# %%
# The in-memory fit, for reference:
in_memory = make_model().fit(X_train, y_train)

# %%
# The fit on a cluster
# --------------------
# :class:`distributed.LocalCluster` starts a scheduler and two workers of one
# thread each.  ``processes=False`` keeps them in this process, as threads
# (the gallery runs examples inside the documentation build); on a real
# cluster, connect to its scheduler instead: ``Client("tcp://host:8786")``.
# ``dashboard_address=":0"`` puts dask's web server on any free port, so the
# example does not compete for the default one with another cluster.
#
# While the client is open, every fit on a dask array runs on its workers.
# The array is chunked along samples only, 70 bags per chunk: each chunk
# holds whole bags.  ``ElementwiseTransformer.fit`` fits the scaler chunk
# by chunk with its ``partial_fit``, each step on the worker that holds the
# chunk (the scaler moves, X does not); its ``transform`` is lazy, so the
# attention step's fit computes the scaled chunks on the workers and keeps
# them there.  Predictions and
# attention weights on a dask array are lazy dask arrays, chunked as X;
# ``compute`` runs them on the workers.  With X in a single chunk, the fit
# cuts the samples exactly as the in-memory fit does; that fit is the third
# one below.

import dask
import dask.array as da
from distributed import Client, LocalCluster

show = np.flatnonzero(y_test)[:3]  # three test bags that hold a 9

with LocalCluster(
    n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
) as cluster, Client(cluster) as client:
    X_train_dask = da.from_array(X_train, chunks=(70, -1, -1))
    X_test_dask = da.from_array(X_test, chunks=(40, -1, -1))
    print(X_train_dask)

    on_cluster = make_model().fit(X_train_dask, y_train)

    predicted = on_cluster.predict(X_test_dask)  # nothing is computed yet
    weights = attention_weights(on_cluster, X_test_dask[show])
    print(predicted)
    print(weights)
    predicted, weights = dask.compute(predicted, weights)

    one_chunk = make_model().fit(da.from_array(X_train, chunks=-1), y_train)

print(f"test accuracy: {accuracy_score(y_test, predicted):.3f} on the cluster, "
      f"{in_memory.score(X_test, y_test):.3f} in memory")

# %%
# The same model
# --------------
# The fitted Pipeline holds NumPy arrays only: it pickles, and predicts
# without dask.  How close are its parameters to the in-memory fit's?  With
# one chunk, not a bit differs.  With four, every evaluation of the loss
# adds the same numbers in another order, which changes the last bits of
# the gradient.  L-BFGS-B carries such differences forward and they grow:
# after 15 iterations the parameters agree to 1e-10 (what the tests check);
# after the ~200 of this fit, the two fits stop at nearby points of nearly
# equal loss.  An in-memory fit on the same bags in another order moves by
# the same kind of amount: the cluster adds no error of its own.


def relative_difference(a, b):
    """Largest difference of any parameter, relative to the largest parameter."""
    pairs = [(a.coefs_, b.coefs_), (a.intercepts_, b.intercepts_)]
    difference = max(np.abs(x[key] - y[key]).max() for x, y in pairs for key in x)
    return difference / max(np.abs(x[key]).max() for x, _ in pairs for key in x)


order = rng.permutation(len(y_train))
shuffled = make_model().fit(X_train[order], y_train[order])
reference = in_memory[-1]
print("largest relative difference of the parameters to the in-memory fit's:")
print(f"  on the cluster, X in one chunk:  {relative_difference(one_chunk[-1], reference):.1e}")
print(f"  on the cluster, X in 4 chunks:   {relative_difference(on_cluster[-1], reference):.1e}")
print(f"  in memory, the bags shuffled:    {relative_difference(shuffled[-1], reference):.1e}")
print(f"training loss: {on_cluster[-1].loss_:.6f} on the cluster, {reference.loss_:.6f} in memory")
print(f"test predictions that agree: {np.mean(predicted == in_memory.predict(X_test)):.0%}")

# %%
# Attention weights computed on the cluster
# -----------------------------------------
# The weights of three test bags holding a 9 came back from the workers as
# one ``(3, 15, 2)`` array, 0 at padding.  The real images of each bag are
# drawn as thumbnails, the 9s highlighted; the dashed line is the weight of
# mean pooling.
fig, axes = plt.subplots(3, 1, figsize=(9, 8.5))
fig.subplots_adjust(hspace=0.9, bottom=0.1, top=0.95)
for ax, bag, bag_weights in zip(axes, show, weights):
    real = digits_test[bag] >= 0
    AttentionDisplay(
        bag_weights[real], images=X_test[bag, real].reshape(-1, 8, 8),
        highlight=digits_test[bag, real] == 9, highlight_label="a 9",
    ).plot(ax=ax)
    ax.set_title(f"test bag {bag}: attention weights computed on the cluster",
                 loc="left", fontsize=10)
plt.show()
