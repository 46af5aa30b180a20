"""Finite-difference check of ``loss_and_gradient`` (float64).

Every alignment, 1 and 3 heads, every loss, ragged bags; central differences
on every parameter.  Prints the worst relative error per case and exits
non-zero if any exceeds 1e-6.  Also checks that a workspace cut into three
shards (the threads of a fit) of blocks of two elements or one longer
sample gives the one-block loss and gradient.

    python benchmarks/gradcheck.py
"""

import sys

import numpy as np

from sk_attention._attention import (
    ALIGNMENTS,
    Segments,
    Workspace,
    loss_and_gradient,
    param_layout,
)


def _case(alignment, n_heads, loss, rng):
    D, H, n = 5, 4, 7
    lengths = rng.integers(1, 6, size=n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    P = rng.standard_normal((offsets[-1], D))
    if loss == "binary_log_loss":
        O, targets = 1, rng.integers(0, 2, size=n).astype(np.float64)
    elif loss == "log_loss":
        O, targets = 3, rng.integers(0, 3, size=n)
    else:
        O, targets = 2, rng.standard_normal((n, 2))
    layout = param_layout(alignment, D, n_heads, H, O)
    params = {name: rng.standard_normal(shape) * 0.7 for name, shape, _ in layout}
    sample_weight = rng.uniform(0.5, 2.0, size=n)
    segments = Segments(offsets, n_heads)

    def f(p):
        return loss_and_gradient(p, P, segments, alignment, loss, targets, sample_weight, 0.3)

    value, grads = f(params)
    sharded = Workspace(P, segments, n_parts=3, min_part_size=1, block_size=2)
    value3, grads3 = loss_and_gradient(
        params, None, segments, alignment, loss, targets, sample_weight, 0.3, workspace=sharded
    )
    worst = abs(value3 - value) / abs(value)
    for name in grads:
        worst = max(worst, np.abs(grads3[name] - grads[name]).max() / np.abs(grads[name]).max())
    for name, shape, _ in layout:
        numeric = np.zeros(shape)
        for idx in np.ndindex(*shape):
            eps = 1e-6
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (f(plus)[0] - f(minus)[0]) / (2 * eps)
        err = np.linalg.norm(grads[name] - numeric) / max(np.linalg.norm(numeric), 1e-12)
        worst = max(worst, err)
    return worst


def main():
    rng = np.random.default_rng(0)
    failed = False
    for alignment in ALIGNMENTS:
        for n_heads in (1, 3):
            for loss in ("binary_log_loss", "log_loss", "squared_error"):
                err = _case(alignment, n_heads, loss, rng)
                ok = err < 1e-6
                failed |= not ok
                print(f"{alignment:9s} heads={n_heads} {loss:16s} rel.err={err:.2e} {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
