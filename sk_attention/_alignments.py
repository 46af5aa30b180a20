"""Alignment functions, and the layout of every parameter of the model.

Notation of the shape comments: ``N`` elements, ``D`` features per element,
``M`` embedding units (0 without the embedding), ``D' = D + M`` the width of
what attention reads (the element followed by its embedding), ``K`` heads,
``H`` hidden units per head, ``O`` outputs, ``C`` columns of the
alignment's input projection (``K * H`` for "additive", ``2 * K * H`` for
"gated", ``K`` for "dot").

Heads are stacked side by side: the alignment weights of all heads form one
``(D', K * H)`` matrix whose columns ``k * H:(k + 1) * H`` belong to head
``k``, so one matmul scores every head at once.  An alignment is one entry
of :data:`ALIGNMENTS`, as an activation is one entry of scikit-learn's
``ACTIVATIONS``: the names and shapes of its parameters and five small
functions.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import expit

__all__ = ["ALIGNMENTS", "PENALISED_KINDS", "param_layout"]


# An alignment turns pre-activations Z = h' @ M + bias into scores e (N, K):
#
# project(params) -> (M (D', C), bias (C,) or None)
# scores(params, Z) -> e (N, K); overwrites Z (N, C) with what backward needs
# backward(params, Z, dscores) -> grads of the "out" vectors; overwrites Z
#     with R (N, C) such that the input matrix and bias gradients are
#     functions of h'.T @ R and R.sum(axis=0) alone
# finish(params, HtR (D', C), sumR (C,)) -> grads of the "in" and "bias" params
# column_scale(params) -> s (C,): d loss / d Z = R * s, so that the gradient
#     reaching the elements themselves is R @ (M * s).T


def _block_diag(vectors):
    """(K, H) -> (K * H, K) matrix with vector k in rows k*H:(k+1)*H of column k."""
    K, H = vectors.shape
    out = np.zeros((K, H, K), dtype=vectors.dtype)
    out[np.arange(K), :, np.arange(K)] = vectors
    return out.reshape(K * H, K)


def _diag_blocks(matrix, n_heads):
    """(K * H, K) -> (K, H): rows k*H:(k+1)*H of column k, for every k."""
    KH = matrix.shape[0]
    blocks = matrix.reshape(n_heads, KH // n_heads, n_heads)
    return np.ascontiguousarray(blocks[np.arange(n_heads), :, np.arange(n_heads)])


def _per_head(matrix, n_heads):
    """(N, K * H) -> (N, K, H) view."""
    return matrix.reshape(matrix.shape[0], n_heads, -1)


def _additive_project(params):
    return params["W"], params["b"]


def _additive_scores(params, Z):
    # A = tanh(Z) (N, K*H), e_k = A_k . v_k
    v = params["v"]
    np.tanh(Z, out=Z)
    # einsum beats a (K*H, K) block-diagonal matmul: BLAS is slow on so
    # narrow an output
    return np.einsum("nkh,kh->nk", _per_head(Z, v.shape[0]), v)


def _additive_backward(params, Z, dscores):
    K = dscores.shape[1]
    dv = np.einsum("nk,nkh->kh", dscores, _per_head(Z, K))  # sum_t dscores_tk A_tkh
    np.multiply(Z, Z, out=Z)
    np.subtract(1.0, Z, out=Z)  # 1 - A^2
    _per_head(Z, K)[...] *= dscores[:, :, None]  # dZ / v
    return {"v": dv}


def _additive_finish(params, HtR, sumR):
    v = params["v"].ravel()
    return {"W": HtR * v, "b": sumR * v}


def _additive_column_scale(params):
    return params["v"].ravel()


def _gated_project(params):
    return np.hstack([params["W"], params["U"]]), np.concatenate([params["b"], params["c"]])


def _gated_scores(params, Z):
    KH = params["W"].shape[1]
    A, G = Z[:, :KH], Z[:, KH:]
    v = params["v"]
    np.tanh(A, out=A)
    expit(G, out=G)
    return np.einsum("nkh,kh->nk", _per_head(A * G, v.shape[0]), v)


def _gated_backward(params, Z, dscores):
    K = dscores.shape[1]
    KH = params["W"].shape[1]
    A, G = Z[:, :KH], Z[:, KH:]
    AG = A * G  # (N, K*H)
    dv = np.einsum("nk,nkh->kh", dscores, _per_head(AG, K))
    np.multiply(A, A, out=A)
    np.subtract(1.0, A, out=A)
    A *= G  # d(A G)/dZa = G (1 - A^2)
    np.subtract(1.0, G, out=G)
    G *= AG  # d(A G)/dZg = A G (1 - G)
    Z.reshape(Z.shape[0], 2, K, -1)[...] *= dscores[:, None, :, None]  # dZ / [v, v]
    return {"v": dv}


def _gated_finish(params, HtR, sumR):
    KH = params["W"].shape[1]
    v2 = _gated_column_scale(params)
    dWU, dbc = HtR * v2, sumR * v2
    return {"W": dWU[:, :KH], "b": dbc[:KH], "U": dWU[:, KH:], "c": dbc[KH:]}


def _gated_column_scale(params):
    return np.tile(params["v"].ravel(), 2)


def _dot_query(params):
    q = params["q"]  # (K, H)
    return _block_diag(q * (1.0 / math.sqrt(q.shape[1])))  # (K*H, K)


def _dot_project(params):
    # "dot" is linear in h: e_k = h . (W_k q_k) / sqrt(H), one column per head
    return params["W"] @ _dot_query(params), None


def _dot_scores(params, Z):
    return Z


def _dot_backward(params, Z, dscores):
    Z[...] = dscores
    return {}


def _dot_finish(params, HtR, sumR):
    q = params["q"]
    K, H = q.shape
    scale = 1.0 / math.sqrt(H)
    return {
        "W": HtR @ _dot_query(params).T,
        "q": _diag_blocks(params["W"].T @ HtR, K) * scale,
    }


def _dot_column_scale(params):
    return np.ones(params["q"].shape[0], dtype=params["q"].dtype)


@dataclass(frozen=True)
class Alignment:
    """One alignment function: its parameters and the five steps above.

    ``params`` lists ``(name, kind)`` pairs in packing order, ``kind`` being
    ``"in"`` for a ``(D', K * H)`` input matrix, ``"bias"`` for a ``(K * H,)``
    bias and ``"out"`` for a ``(K, H)`` output vector per head (which starts
    at zero so that attention starts uniform).
    """

    params: tuple
    project: Callable
    scores: Callable
    backward: Callable
    finish: Callable
    column_scale: Callable


ALIGNMENTS = {
    "additive": Alignment(
        (("W", "in"), ("b", "bias"), ("v", "out")),
        _additive_project,
        _additive_scores,
        _additive_backward,
        _additive_finish,
        _additive_column_scale,
    ),
    "gated": Alignment(
        (("W", "in"), ("b", "bias"), ("U", "in"), ("c", "bias"), ("v", "out")),
        _gated_project,
        _gated_scores,
        _gated_backward,
        _gated_finish,
        _gated_column_scale,
    ),
    "dot": Alignment(
        (("W", "in"), ("q", "out")),
        _dot_project,
        _dot_scores,
        _dot_backward,
        _dot_finish,
        _dot_column_scale,
    ),
}


def param_layout(alignment, n_features, n_heads, hidden_size, n_outputs, embedding_size=None):
    """Names, shapes and roles of every parameter, in packing order.

    Returns
    -------
    layout : list of (name, shape, kind)
        ``kind`` is one of ``"in"``, ``"bias"``, ``"out"`` (alignment, see
        :class:`Alignment`), ``"embedding"`` (the element embedding's
        ``(D, M)`` matrix ``E``), ``"embedding_bias"`` (its ``(M,)`` bias
        ``e``), ``"coef"`` (the head's ``(K * D', O)`` matrix) or
        ``"intercept"`` (the head's ``(O,)`` bias).  The kinds of
        :data:`PENALISED_KINDS` are penalised by ``alpha``, the biases not.
    """
    D, K, H, M = n_features, n_heads, hidden_size, embedding_size or 0
    shapes = {"in": (D + M, K * H), "bias": (K * H,), "out": (K, H)}
    layout = [(name, shapes[kind], kind) for name, kind in ALIGNMENTS[alignment].params]
    if M:
        layout += [("E", (D, M), "embedding"), ("e", (M,), "embedding_bias")]
    layout.append(("coef", (K * (D + M), n_outputs), "coef"))
    layout.append(("intercept", (n_outputs,), "intercept"))
    return layout


PENALISED_KINDS = ("in", "out", "embedding", "coef")
