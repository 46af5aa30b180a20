"""``python -m sk_attention``: attention pooling on bags of real digit images.

The multiple-instance "MNIST bags" protocol of Ilse, Tomczak & Welling
(2018), on scikit-learn's bundled 8x8 digits (no download): a bag holds
5-15 random digit images and is positive iff it contains at least one 9.
The model only ever sees bag labels; the demo then checks whether the
attention weights point at the 9s.
"""

import argparse
import os
import sys
import time

import numpy as np

__all__ = ["main", "make_digit_bags", "run_demo"]

TARGET_DIGIT = 9


def make_digit_bags(n_bags=400, *, min_size=5, max_size=15, test_size=0.3, random_state=0):
    """Digit bags with a train / test split that shares no image.

    The 1797 digit images are first split into a training and a test pool
    (stratified by digit), then every bag draws 5-15 distinct images from
    one pool, so no test image was ever seen in training.

    Returns
    -------
    data : dict
        ``X_train``, ``X_test`` (lists of (n_elements_i, 64) arrays),
        ``y_train``, ``y_test`` (1 iff the bag holds a 9),
        ``digits_train``, ``digits_test`` (the digit of every image).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    rng = np.random.RandomState(random_state)
    index = np.arange(len(digits.target))
    pool_train, pool_test = train_test_split(
        index, test_size=test_size, random_state=rng, stratify=digits.target
    )
    n_test = max(2, int(round(n_bags * test_size)))
    data = {}
    for name, pool, n in (("train", pool_train, n_bags - n_test), ("test", pool_test, n_test)):
        bags, labels = [], []
        for _ in range(n):
            chosen = rng.choice(pool, size=rng.randint(min_size, max_size + 1), replace=False)
            bags.append(digits.data[chosen])
            labels.append(digits.target[chosen])
        data[f"X_{name}"] = bags
        data[f"digits_{name}"] = labels
        data[f"y_{name}"] = np.array([int((d == TARGET_DIGIT).any()) for d in labels])
    return data


def localisation_auc(weights, digits):
    """Does attention rank the 9s above the other digits of their bag?

    Instance-level ROC AUC (9 vs. any other digit) over all images of the
    bags that contain a 9.  An image's score is its attention weight
    averaged over the heads, times its bag size: 1 is the weight mean
    pooling would give it, so bags of different sizes are comparable.  The
    mean over heads needs no instance labels (picking "the best head" would
    use the very labels multiple-instance learning assumes unknown).

    Returns ``(auc_of_mean_over_heads, [auc_of_head_k, ...])``.
    """
    from sklearn.metrics import roc_auc_score

    positive = [i for i, d in enumerate(digits) if (d == TARGET_DIGIT).any()]
    is_target = np.concatenate([digits[i] == TARGET_DIGIT for i in positive])
    scaled = np.concatenate([weights[i] * len(weights[i]) for i in positive])
    mean_auc = roc_auc_score(is_target, scaled.mean(axis=1))
    per_head = [roc_auc_score(is_target, scaled[:, k]) for k in range(scaled.shape[1])]
    return float(mean_auc), [float(a) for a in per_head]


def _mean_pool(bags):
    return np.array([bag.mean(axis=0) for bag in bags])


def run_demo(
    *, n_bags=400, random_state=0, output="sk_attention_demo.png", plot=True,
    n_heads=2, max_iter=1000, file=None,
):
    """Fit, evaluate, print and (optionally) plot; returns the numbers as a dict."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from . import AttentionClassifier, ElementwiseTransformer

    def say(*args):
        print(*args, file=file or sys.stdout)

    start = time.perf_counter()
    data = make_digit_bags(n_bags, random_state=random_state)
    X_train, X_test, y_train, y_test = (data[k] for k in ("X_train", "X_test", "y_train", "y_test"))
    say(
        f"Digit bags from sklearn's load_digits: {len(X_train)} training and "
        f"{len(X_test)} test bags of 5-15 8x8 images;\na bag is positive iff it "
        f"holds a {TARGET_DIGIT} ({y_train.mean():.0%} of the training bags). "
        "The model only sees bag labels."
    )

    model = make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        AttentionClassifier(n_heads=n_heads, max_iter=max_iter, random_state=random_state),
    )
    tic = time.perf_counter()
    model.fit(X_train, y_train)
    fit_time = time.perf_counter() - tic
    proba = model.predict_proba(X_test)[:, 1]

    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    tic = time.perf_counter()
    baseline.fit(_mean_pool(X_train), y_train)
    base_fit_time = time.perf_counter() - tic
    base_proba = baseline.predict_proba(_mean_pool(X_test))[:, 1]

    weights = model[-1].attention_weights(model[0].transform(X_test))
    loc_auc, head_aucs = localisation_auc(weights, data["digits_test"])
    fit_seconds = time.perf_counter() - start

    results = {
        "accuracy": float(accuracy_score(y_test, proba > 0.5)),
        "roc_auc": float(roc_auc_score(y_test, proba)),
        "baseline_accuracy": float(accuracy_score(y_test, base_proba > 0.5)),
        "baseline_roc_auc": float(roc_auc_score(y_test, base_proba)),
        "localisation_auc": loc_auc,
        "localisation_auc_per_head": head_aucs,
        "fit_seconds": fit_time,
        "baseline_fit_seconds": base_fit_time,
        "n_train": len(X_train),
        "n_test": len(X_test),
    }
    say(f"\n{'test set':<44}{'accuracy':>9}{'ROC AUC':>9}{'fit time':>10}")
    say(f"{'attention pooling (AttentionClassifier)':<44}"
        f"{results['accuracy']:>9.3f}{results['roc_auc']:>9.3f}{fit_time:>9.2f}s")
    say(f"{'mean pooling + LogisticRegression':<44}"
        f"{results['baseline_accuracy']:>9.3f}{results['baseline_roc_auc']:>9.3f}"
        f"{base_fit_time:>9.2f}s")
    say(
        f"\nLocalisation: do the attention weights rank the {TARGET_DIGIT}s above the other "
        f"digits\nof their bag? instance ROC AUC {loc_auc:.3f} (mean over {n_heads} heads; "
        f"per head {', '.join(f'{a:.3f}' for a in head_aucs)};\n0.5 = no better than "
        "chance, 1.0 = every 9 outranks every other digit)."
    )
    say(f"Data, fits and evaluation took {fit_seconds:.1f} s.")

    results["plot"] = None
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            say(
                "\nPlotting skipped: matplotlib is not installed. "
                'Install the plot extra: pip install "sk_attention[plot]"'
            )
        else:
            path = _plot_bags(model, data, proba, output)
            results["plot"] = path
            say(f"\nWrote the attention picture of {min(4, len(X_test))} test bags to {path}")
    results["seconds"] = time.perf_counter() - start
    return results


def _pick_bags(data, n=4):
    """Half the bags with a 9, then half without, preferring mid-sized ones."""
    y, X = data["y_test"], data["X_test"]
    chosen = []
    for label, count in ((1, n - n // 2), (0, n // 2)):
        mid = [i for i in np.flatnonzero(y == label) if 6 <= len(X[i]) <= 13]
        pool = mid or list(np.flatnonzero(y == label))
        chosen += pool[:count]
    if len(chosen) < n:  # too few of one kind: fill with any others
        chosen += [i for i in range(len(y)) if i not in chosen][: n - len(chosen)]
    return chosen[:n]


def _plot_bags(model, data, proba, output):
    import matplotlib

    if "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import AttentionDisplay

    chosen = _pick_bags(data)
    fig, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.9 * len(chosen)))
    axes = np.atleast_1d(axes)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.89, bottom=0.1, hspace=0.95)
    for ax, i in zip(axes, chosen):
        digits = data["digits_test"][i]
        is_nine = digits == TARGET_DIGIT
        AttentionDisplay.from_estimator(
            model, data["X_test"], sample=i, images=True, image_shape=(8, 8),
            highlight=is_nine, highlight_label=f"a {TARGET_DIGIT}", ax=ax,
        )
        truth = f"holds {is_nine.sum()} nine(s)" if is_nine.any() else "holds no 9"
        ax.set_title(
            f"test bag {i}: {len(digits)} images, {truth}; "
            f"model: P(contains a 9) = {proba[i]:.2f}",
            fontsize=10, loc="left",
        )
    fig.suptitle(
        "Attention pooling on digit bags: which images did the model look at?\n"
        "Bars: attention weight of each image (mean over heads); 9s in orange. Bags "
        "without a 9 (the bottom two)\nhave none to find: their weights go to the "
        "images most like one, and the low P(contains a 9) says no.",
        fontsize=10.5,
    )
    output = os.path.abspath(output)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def main(argv=None):
    """Command-line entry point of ``python -m sk_attention``."""
    parser = argparse.ArgumentParser(
        prog="python -m sk_attention",
        description=(
            "Attention pooling on 'digit bags' built from scikit-learn's bundled "
            "digits: a bag of 5-15 images is positive iff it holds a 9. Prints "
            "test accuracy and ROC AUC beside a mean-pooling baseline, how well "
            "the attention weights find the 9s, and draws a picture."
        ),
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--n-bags", type=int, default=400,
                        help="number of bags, 30%% of them held out for testing (default: 400)")
    parser.add_argument("--n-heads", type=int, default=2, help="attention heads (default: 2)")
    parser.add_argument("--max-iter", type=int, default=1000,
                        help="L-BFGS iterations at most (default: 1000, the estimator's)")
    parser.add_argument("--output", default="sk_attention_demo.png",
                        help="where to write the PNG (default: ./sk_attention_demo.png)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the picture")
    args = parser.parse_args(argv)
    if args.n_bags < 10:
        parser.error("--n-bags must be at least 10")
    run_demo(
        n_bags=args.n_bags, random_state=args.seed, output=args.output,
        plot=not args.no_plot, n_heads=args.n_heads, max_iter=args.max_iter,
    )
    return 0
