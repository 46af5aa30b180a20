"""Accuracy of the default attention pipeline against mean pooling.

Usage (from the project root)::

    python benchmarks/accuracy.py [DATA_DIR] [--tune] [--n-jobs 2] [--only NAME ...]
                                  [--columns COLUMN ...]

``DATA_DIR`` holds musk1.npz, elephant.npz, japanese_vowels.npz,
arrowhead.npz, osuleaf.npz and acsf1.npz (default: ``../shared/data``
relative to the project root).  Without it the bundled rows (built from
``sklearn.datasets.load_digits``) still run.

Rows and protocols
------------------
- MUSK1, ELEPHANT: multiple-instance bags, stratified 10-fold x 5
  (``RepeatedStratifiedKFold(random_state=0)``); accuracy.
- JapaneseVowels: the given train/test split, 5 seeds of the model; test
  accuracy.  Sequences: the attention pipeline adds ``PositionalEncoding``
  (an extra "order-free" row shows it without, another one puts
  ``RandomConvolutions`` first).
- ArrowHead, OSULeaf, ACSF1: long univariate series (UCR archive), the
  given train/test split, 5 seeds of the model (and of the kernels);
  test accuracy, without and with ``RandomConvolutions`` first.  The
  "ROCKET" column is the accuracy Dempster, Petitjean & Webb (2020)
  report on the same splits.
- digit bags: bags of 5-15 digit images (64 pixels each); a bag is positive
  iff it holds a 9.  5 seeds; each draws a new split of the images into a
  train and a test pool, builds 300 train and 300 test bags from them and
  seeds the model.  Accuracy and ROC AUC.
- digit series: each 8x8 image z-normalised on its own and read as a
  64-step univariate series (n, 64, 1); 10 classes; stratified 5-fold.
  Shown with ``PositionalEncoding``, order-free, and with
  ``RandomConvolutions`` first.

Columns
-------
- attention: ``ElementwiseTransformer(StandardScaler())`` (then
  ``PositionalEncoding()`` on sequences) then ``AttentionClassifier()``
  with its defaults; on the "+ RandomConvolutions" rows,
  ``RandomConvolutions(random_state=seed)`` comes first.
- embedding: the same with ``embedding_size=32``.
- squares: the defaults after an element view that appends the squares of
  the standardised features and standardises again (a Pipeline step).
- mean-pool + LR: each sample's mean element, ``StandardScaler``,
  ``LogisticRegression()``: the baseline.
- summary + LR: each sample's mean, standard deviation and maximum of
  every feature, ``StandardScaler``, ``LogisticRegression()``: a
  non-learned summary, no attention.
- tuned (``--tune``): the attention pipeline inside a ``GridSearchCV``
  over ``embedding_size`` in {None, 32}, ``alpha`` in {0.1, 1, 10, 100}
  and the element view, none or the squares (inner stratified 3-fold), so
  the figure is a nested, honest estimate.  It costs 49 fits per outer split,
  so ``--tune-splits K`` runs it on the first K outer splits of each row
  only (default: all of them; 10 is one full 10-fold repeat of the bag
  sets), and it does not run on the
  order-free, "+ RandomConvolutions" and long-series rows nor on the digit
  series (one of its fits takes about a minute).

Every cell is mean +- std over the folds / seeds; "time x" is the mean fit
time divided by the baseline's.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sk_attention import (
    AttentionClassifier,
    ElementwiseTransformer,
    PositionalEncoding,
    RandomConvolutions,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"

EMBEDDING_SIZE = 32


def _with_squares(X):
    """Every element followed by the squares of its (standardised) features."""
    return np.hstack([X, X**2])


def squares_view():
    """Append the squares, then standardise again: squares of standardised
    features have heavy tails (standard deviations up to ~15 on MUSK1), which
    cost 5 points of accuracy unscaled."""
    return make_pipeline(
        ElementwiseTransformer(FunctionTransformer(_with_squares)),
        ElementwiseTransformer(StandardScaler()),
    )


# the nested search: the embedding, an element view a Pipeline already
# expresses (the squares), and the penalty
TUNE_GRID = {
    "view": ["passthrough", squares_view()],
    "attentionclassifier__embedding_size": [None, EMBEDDING_SIZE],
    "attentionclassifier__alpha": [0.1, 1.0, 10.0, 100.0],
}


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def _split(elements, lengths):
    return np.split(elements, np.cumsum(lengths)[:-1])


def load_bags(data_dir, name):
    data = np.load(Path(data_dir) / f"{name}.npz")
    return _split(data["elements"], data["lengths"]), data["y"]


def load_sequences(data_dir, name):
    """The given train and test split of a sequence set, as ragged lists."""
    data = np.load(Path(data_dir) / f"{name}.npz")
    train = _split(data["train_elements"], data["train_lengths"]), data["train_y"]
    test = _split(data["test_elements"], data["test_lengths"]), data["test_y"]
    return train, test


# test accuracy reported by Dempster, Petitjean & Webb (2020), original splits
ROCKET = {"arrowhead": 0.814, "osuleaf": 0.941, "acsf1": 0.886}
LONG_SERIES = {"arrowhead": "ArrowHead", "osuleaf": "OSULeaf", "acsf1": "ACSF1"}


def make_digit_bags(seed, n_bags=300, min_size=5, max_size=15):
    """Train and test bags of digit images; positive iff the bag holds a 9.

    The images are split in two pools first, so no test image is seen in
    training.  Half of the bags are positive: they hold 1 to 3 nines among
    other digits; negative bags hold no 9.
    """
    digits = load_digits()
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(digits.target))
    pools = np.array_split(order, 2)

    def bags_from(pool):
        nines = pool[digits.target[pool] == 9]
        others = pool[digits.target[pool] != 9]
        bags, labels = [], []
        for i in range(n_bags):
            size = rng.randint(min_size, max_size + 1)
            label = i % 2
            n_nines = rng.randint(1, 4) if label else 0
            members = np.concatenate(
                [rng.choice(nines, n_nines), rng.choice(others, size - n_nines)]
            )
            rng.shuffle(members)
            bags.append(digits.data[members])
            labels.append(label)
        return bags, np.asarray(labels)

    return bags_from(pools[0]), bags_from(pools[1])


def make_digit_series():
    """Digits as z-normalised 64-step univariate series, shape (n, 64, 1)."""
    digits = load_digits()
    X = digits.data.astype(np.float64)
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    return X[:, :, None], digits.target


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


class MeanPool(TransformerMixin, BaseEstimator):
    """Each sample's mean element (the baseline's pooling)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        if isinstance(X, np.ndarray) and X.ndim == 3:
            return np.nanmean(X, axis=1)
        return np.vstack([np.asarray(x).mean(axis=0) for x in X])


class SummaryPool(TransformerMixin, BaseEstimator):
    """Each sample's mean, standard deviation and maximum of every feature."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        if isinstance(X, np.ndarray) and X.ndim == 3:
            return np.hstack([np.nanmean(X, axis=1), np.nanstd(X, axis=1), np.nanmax(X, axis=1)])
        return np.vstack(
            [np.concatenate([x.mean(axis=0), x.std(axis=0), x.max(axis=0)]) for x in map(np.asarray, X)]
        )


def attention_pipeline(sequence, positional=True, convolutions=False, **params):
    steps = [("scale", ElementwiseTransformer(StandardScaler())), ("view", "passthrough")]
    if convolutions:
        steps.insert(0, ("convolutions", RandomConvolutions(random_state=params.get("random_state"))))
    if sequence and positional:
        steps.append(("positionalencoding", PositionalEncoding()))
    steps.append(("attentionclassifier", AttentionClassifier(**params)))
    return Pipeline(steps)


def baseline_pipeline():
    return make_pipeline(MeanPool(), StandardScaler(), LogisticRegression(max_iter=2000))


def summary_pipeline():
    return make_pipeline(SummaryPool(), StandardScaler(), LogisticRegression(max_iter=2000))


def tuned_pipeline(sequence, positional=True, random_state=None):
    return GridSearchCV(
        attention_pipeline(sequence, positional, random_state=random_state),
        TUNE_GRID,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


def _take(X, index):
    if isinstance(X, np.ndarray):
        return X[index]
    return [X[i] for i in index]


def _score(model, X_train, y_train, X_test, y_test, auc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
    scores = {"acc": accuracy_score(y_test, model.predict(X_test)), "time": fit_time}
    if auc:
        scores["auc"] = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    return scores


def _task(label, splits, sequence=True, positional=True, convolutions=False, auc=False,
          published=None):
    return dict(label=label, splits=splits, sequence=sequence, positional=positional,
                convolutions=convolutions, auc=auc, published=published)


def _tasks(name, data_dir):
    """Rows of one data set: dicts of label, splits (X_tr, y_tr, X_te, y_te, seed) and pipeline flags."""
    if name in ("musk1", "elephant"):
        X, y = load_bags(data_dir, name)
        cv = RepeatedStratifiedKFold(n_splits=10, n_repeats=5, random_state=0)
        splits = [
            (_take(X, tr), y[tr], _take(X, te), y[te], k)
            for k, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y))
        ]
        label = {"musk1": "MUSK1 (10-fold x 5)", "elephant": "ELEPHANT (10-fold x 5)"}[name]
        return [_task(label, splits, sequence=False)]
    if name == "japanese_vowels":
        (X_tr, y_tr), (X_te, y_te) = load_sequences(data_dir, name)
        splits = [(X_tr, y_tr, X_te, y_te, seed) for seed in range(5)]
        return [
            _task("JapaneseVowels (test, 5 seeds)", splits),
            _task("JapaneseVowels, order-free", splits, positional=False),
            _task("JapaneseVowels + RandomConvolutions", splits, convolutions=True),
        ]
    if name in LONG_SERIES:
        (X_tr, y_tr), (X_te, y_te) = load_sequences(data_dir, name)
        splits = [(X_tr, y_tr, X_te, y_te, seed) for seed in range(5)]
        label = LONG_SERIES[name]
        return [
            _task(f"{label} (test, 5 seeds)", splits, published=ROCKET[name]),
            _task(f"{label} + RandomConvolutions", splits, convolutions=True,
                  published=ROCKET[name]),
        ]
    if name == "digit_bags":
        splits = []
        for seed in range(5):
            (X_tr, y_tr), (X_te, y_te) = make_digit_bags(seed)
            splits.append((X_tr, y_tr, X_te, y_te, seed))
        return [_task("digit bags (5 seeds)", splits, sequence=False, auc=True)]
    if name == "digit_series":
        X, y = make_digit_series()
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        splits = [
            (X[tr], y[tr], X[te], y[te], k) for k, (tr, te) in enumerate(cv.split(X, y))
        ]
        return [
            _task("digit series (5-fold)", splits),
            _task("digit series, order-free", splits, positional=False),
            _task("digit series + RandomConvolutions", splits, convolutions=True),
        ]
    raise ValueError(name)


COLUMNS = ("attention", "embedding", "squares", "mean-pool + LR", "summary + LR", "tuned")
BASELINES = ("mean-pool + LR", "summary + LR")  # order-free, fast: no time ratio


def _model(column, task, seed):
    if column == "attention":
        return attention_pipeline(
            task["sequence"], task["positional"], task["convolutions"], random_state=seed
        )
    if column == "embedding":
        return attention_pipeline(
            task["sequence"], task["positional"], task["convolutions"],
            embedding_size=EMBEDDING_SIZE, random_state=seed,
        )
    if column == "squares":
        return attention_pipeline(
            task["sequence"], task["positional"], task["convolutions"], random_state=seed
        ).set_params(view=squares_view())
    if column == "mean-pool + LR":
        return baseline_pipeline()
    if column == "summary + LR":
        return summary_pipeline()
    return tuned_pipeline(task["sequence"], task["positional"], random_state=seed)


def run(names, data_dir, tune, n_jobs, tune_splits, columns=None):
    columns = [c for c in COLUMNS if (columns is None or c in columns) and (tune or c != "tuned")]
    if "mean-pool + LR" not in columns:
        columns.insert(0, "mean-pool + LR")  # every row needs it: "time x" is relative to it
    rows = []
    for name in names:
        for task in _tasks(name, data_dir):
            label, splits, auc = task["label"], task["splits"], task["auc"]
            variant = not task["positional"] or task["convolutions"]
            row = {"label": label, "auc": auc, "published": task["published"]}
            for column in columns:
                if column in BASELINES and variant:
                    row[column] = rows[-1][column]  # the same baselines as the row above
                    continue
                these = splits
                if column == "tuned":
                    if variant or name in ("digit_series", *LONG_SERIES):
                        continue  # see the module docstring: too slow for its value
                    these = splits[:tune_splits]
                start = time.perf_counter()
                scores = Parallel(n_jobs=n_jobs)(
                    delayed(_score)(_model(column, task, seed), *split[:4], auc)
                    for *split, seed in these
                )
                row[column] = {
                    key: np.array([s[key] for s in scores]) for key in scores[0]
                }
                print(
                    f"  {label:32s} {column:16s} "
                    f"{row[column]['acc'].mean():.3f} +- {row[column]['acc'].std():.3f} "
                    f"n={len(these)} ({time.perf_counter() - start:.0f}s)",
                    file=sys.stderr,
                    flush=True,
                )
            rows.append(row)
    return rows, columns


def format_table(rows, columns):
    published = any(row["published"] for row in rows)
    header = ["data set (metric)"]
    for column in columns:
        header.append(column)
        if column not in BASELINES:
            header.append("time x")
    if published:
        header.append("ROCKET (published)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        metrics = ["acc", "auc"] if row["auc"] else ["acc"]
        for metric in metrics:
            cells = [f"{row['label']} ({'ROC AUC' if metric == 'auc' else 'accuracy'})"]
            base_time = row["mean-pool + LR"]["time"].mean()
            for column in columns:
                if column not in row:
                    cells += ["—"] if column in BASELINES else ["—", "—"]
                    continue
                values = row[column][metric]
                note = ""
                if len(values) < len(row["attention"][metric]):
                    # a subset of the outer splits: the default on the same ones
                    n = len(values)
                    default = row["attention"][metric][:n].mean()
                    base = row["mean-pool + LR"][metric][:n].mean()
                    note = f" (n={n}; same splits: default {default:.3f}, mean-pool {base:.3f})"
                # the standard error of the mean over the folds / seeds
                se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
                cells.append(f"{values.mean():.3f} ± {values.std():.3f} (se {se:.3f}){note}")
                if column not in BASELINES:
                    ratio = row[column]["time"].mean() / base_time
                    cells.append(f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}")
            if published:
                cells.append(f"{row['published']:.3f}" if row["published"] else "—")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "data_dir", nargs="?", default=str(DEFAULT_DATA),
        help="folder with musk1.npz, elephant.npz, japanese_vowels.npz, arrowhead.npz, "
        "osuleaf.npz, acsf1.npz (default: ../shared/data from the project root)",
    )
    parser.add_argument("--tune", action="store_true", help="add the nested GridSearchCV column (slow)")
    parser.add_argument(
        "--tune-splits", type=int, default=None,
        help="outer splits (folds / seeds) of each row for the tuned column (default: all)",
    )
    parser.add_argument("--n-jobs", type=int, default=2, help="folds fitted in parallel")
    every = ["musk1", "elephant", "japanese_vowels", *LONG_SERIES, "digit_bags", "digit_series"]
    parser.add_argument("--only", nargs="+", choices=every, help="run these rows only")
    parser.add_argument(
        "--columns", nargs="+", choices=[c for c in COLUMNS if c != "tuned"], metavar="COLUMN",
        help=f"run these columns only (and the baseline), of: {', '.join(repr(c) for c in COLUMNS[:-1])}",
    )
    args = parser.parse_args(argv)

    names = args.only or every
    real = {"musk1", "elephant", "japanese_vowels", *LONG_SERIES}
    data_dir = Path(args.data_dir)
    missing = [n for n in names if n in real and not (data_dir / f"{n}.npz").is_file()]
    if missing:
        print(
            f"Data folder {data_dir} lacks {', '.join(m + '.npz' for m in missing)}; "
            "skipping those rows (pass the folder holding them as the first argument; "
            "see ../shared/data/README.md).",
            file=sys.stderr,
        )
        names = [n for n in names if n not in missing]

    columns = None if args.columns is None else [*args.columns, "tuned"]
    rows, columns = run(names, data_dir, args.tune, args.n_jobs, args.tune_splits, columns)
    print(format_table(rows, columns))


if __name__ == "__main__":
    main()
