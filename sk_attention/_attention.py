"""The attention math as pure functions on packed elements.

Notation used in the shape comments:

- ``N`` elements in total (all samples stacked), ``D`` features per element,
- ``n`` samples, ``K`` heads, ``H`` hidden units per head, ``O`` outputs.

Heads are stacked side by side: the alignment weights of all heads form one
``(D, K * H)`` matrix whose columns ``k * H:(k + 1) * H`` belong to head ``k``,
so one matmul scores every head at once.

An alignment is one entry of :data:`ALIGNMENTS`: the names and shapes of its
parameters, a ``scores`` function (forward) and a ``backward`` function.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import sparse
from scipy.special import expit

__all__ = [
    "ALIGNMENTS",
    "Segments",
    "segment_softmax",
    "forward",
    "loss_and_gradient",
    "param_layout",
]


# --------------------------------------------------------------------------
# Samples as segments of the packed element array
# --------------------------------------------------------------------------


class Segments:
    """Which sample owns which packed element, with the sparse helpers.

    Per-sample sums are products with a sparse ``(n, N)`` matrix: BLAS-like
    speed without a Python loop over samples.

    Parameters
    ----------
    offsets : ndarray of shape (n_samples + 1,)
        Sample ``i`` owns elements ``offsets[i]:offsets[i + 1]``.
    n_heads : int
        Number of heads whose weights will be pooled at once.
    """

    def __init__(self, offsets, n_heads):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n_samples = self.offsets.shape[0] - 1
        self.n_elements = int(self.offsets[-1])
        self.n_heads = n_heads
        self.starts = self.offsets[:-1]
        self.ids = np.repeat(np.arange(self.n_samples), np.diff(self.offsets))
        # Pooling matrix for all heads: block-diagonal with K copies of the
        # (n, N) segment pattern; row k * n + i holds head k's weights of
        # sample i.  Its structure is fixed, only the data change.
        N = self.n_elements
        self._indices = np.tile(np.arange(N, dtype=np.int64), n_heads)
        self._indptr = np.concatenate(
            [np.zeros(1, dtype=np.int64)]
            + [self.offsets[1:] + k * N for k in range(n_heads)]
        )
        self._sum_matrices = {}

    def sum(self, values):
        """Per-sample sums of per-element ``values`` (N, m) -> (n, m)."""
        matrix = self._sum_matrices.get(values.dtype)
        if matrix is None:
            matrix = sparse.csr_matrix(
                (np.ones(self.n_elements, dtype=values.dtype), self._indices[: self.n_elements], self.offsets),
                shape=(self.n_samples, self.n_elements),
            )
            self._sum_matrices[values.dtype] = matrix
        return matrix @ values

    def max(self, values):
        """Per-sample maxima of per-element ``values`` (N, m) -> (n, m)."""
        return np.maximum.reduceat(values, self.starts, axis=0)

    def pool(self, weights, elements):
        """Context vectors of every head.

        Parameters
        ----------
        weights : ndarray of shape (N, K)
            Attention weights (each sample's weights sum to 1 per head).
        elements : ndarray of shape (N, D)

        Returns
        -------
        context : ndarray of shape (n, K, D)
        """
        n, K = self.n_samples, self.n_heads
        matrix = sparse.csr_matrix(
            (np.ascontiguousarray(weights.T).ravel(), self._indices, self._indptr),
            shape=(K * n, self.n_elements),
        )
        context = matrix @ elements  # (K * n, D)
        return context.reshape(K, n, -1).transpose(1, 0, 2)


def segment_softmax(scores, segments):
    """Softmax of ``scores`` over the elements of each sample separately.

    Subtracting each sample's own maximum keeps it finite for any finite
    scores (e.g. +-1e4), where one global shift would underflow whole samples.

    Parameters
    ----------
    scores : ndarray of shape (N, K)
    segments : Segments

    Returns
    -------
    weights : ndarray of shape (N, K)
        Non-negative, summing to 1 over each sample's elements, per column.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention._attention import Segments, segment_softmax
    >>> seg = Segments([0, 2, 3], n_heads=1)
    >>> segment_softmax(np.array([[0.0], [np.log(3.0)], [5.0]]), seg).ravel()
    array([0.25, 0.75, 1.  ])
    """
    shifted = scores - segments.max(scores)[segments.ids]
    np.exp(shifted, out=shifted)
    shifted /= segments.sum(shifted)[segments.ids]
    return shifted


# --------------------------------------------------------------------------
# Alignment functions: scores e (N, K) from elements P (N, D)
# --------------------------------------------------------------------------


def _per_head(matrix, n_heads):
    """(N, K * H) -> (N, K, H) view."""
    return matrix.reshape(matrix.shape[0], n_heads, -1)


def _additive_scores(params, P):
    # Z: (N, K*H), A = tanh(Z), e_k = A_k . v_k
    v = params["v"]  # (K, H)
    A = np.tanh(P @ params["W"] + params["b"])
    scores = np.einsum("nkh,kh->nk", _per_head(A, v.shape[0]), v)
    return scores, {"A": A}


def _additive_backward(params, P, cache, dscores):
    v = params["v"]
    K = v.shape[0]
    A3 = _per_head(cache["A"], K)
    dv = np.einsum("nk,nkh->kh", dscores, A3)
    dZ = dscores[:, :, None] * v  # (N, K, H)
    dZ *= 1.0 - A3 * A3
    dZ = dZ.reshape(P.shape[0], -1)
    return {"W": P.T @ dZ, "b": dZ.sum(axis=0), "v": dv}


def _gated_scores(params, P):
    v = params["v"]
    KH = params["W"].shape[1]
    Z = P @ np.hstack([params["W"], params["U"]]) + np.concatenate(
        [params["b"], params["c"]]
    )
    A = np.tanh(Z[:, :KH])
    G = expit(Z[:, KH:])
    scores = np.einsum("nkh,kh->nk", _per_head(A * G, v.shape[0]), v)
    return scores, {"A": A, "G": G}


def _gated_backward(params, P, cache, dscores):
    v = params["v"]
    K = v.shape[0]
    A3, G3 = _per_head(cache["A"], K), _per_head(cache["G"], K)
    dv = np.einsum("nk,nkh->kh", dscores, A3 * G3)
    dAG = dscores[:, :, None] * v  # (N, K, H): d loss / d (A * G)
    dZa = (dAG * G3 * (1.0 - A3 * A3)).reshape(P.shape[0], -1)
    dZg = (dAG * A3 * G3 * (1.0 - G3)).reshape(P.shape[0], -1)
    dWU = P.T @ np.hstack([dZa, dZg])
    KH = dZa.shape[1]
    return {
        "W": dWU[:, :KH],
        "b": dZa.sum(axis=0),
        "U": dWU[:, KH:],
        "c": dZg.sum(axis=0),
        "v": dv,
    }


def _dot_scores(params, P):
    q = params["q"]  # (K, H)
    scale = 1.0 / np.sqrt(q.shape[1])
    Z = P @ params["W"]
    scores = np.einsum("nkh,kh->nk", _per_head(Z, q.shape[0]), q) * scale
    return scores, {"Z": Z}


def _dot_backward(params, P, cache, dscores):
    q = params["q"]
    K, H = q.shape
    scale = 1.0 / np.sqrt(H)
    dq = np.einsum("nk,nkh->kh", dscores, _per_head(cache["Z"], K)) * scale
    dZ = (dscores[:, :, None] * (q * scale)).reshape(P.shape[0], -1)
    return {"W": P.T @ dZ, "q": dq}


@dataclass(frozen=True)
class Alignment:
    """One alignment function: its parameters, forward and backward.

    ``params`` lists ``(name, kind)`` pairs in packing order, ``kind`` being
    ``"in"`` for a ``(D, K * H)`` input matrix, ``"bias"`` for a ``(K * H,)``
    bias and ``"out"`` for a ``(K, H)`` output vector per head (which starts
    at zero so that attention starts uniform).
    """

    params: tuple
    scores: Callable
    backward: Callable


ALIGNMENTS = {
    "additive": Alignment(
        (("W", "in"), ("b", "bias"), ("v", "out")),
        _additive_scores,
        _additive_backward,
    ),
    "gated": Alignment(
        (("W", "in"), ("b", "bias"), ("U", "in"), ("c", "bias"), ("v", "out")),
        _gated_scores,
        _gated_backward,
    ),
    "dot": Alignment((("W", "in"), ("q", "out")), _dot_scores, _dot_backward),
}


def param_layout(alignment, n_features, n_heads, hidden_size, n_outputs):
    """Names, shapes and roles of every parameter, in packing order.

    Returns
    -------
    layout : list of (name, shape, kind)
        ``kind`` is one of ``"in"``, ``"bias"``, ``"out"`` (alignment, see
        :class:`Alignment`), ``"coef"`` (the head's ``(K * D, O)`` matrix) or
        ``"intercept"`` (the head's ``(O,)`` bias).  Every kind but
        ``"bias"`` and ``"intercept"`` is penalised by ``alpha``.
    """
    D, K, H = n_features, n_heads, hidden_size
    shapes = {"in": (D, K * H), "bias": (K * H,), "out": (K, H)}
    layout = [(name, shapes[kind], kind) for name, kind in ALIGNMENTS[alignment].params]
    layout.append(("coef", (K * D, n_outputs), "coef"))
    layout.append(("intercept", (n_outputs,), "intercept"))
    return layout


PENALISED_KINDS = ("in", "out", "coef")


# --------------------------------------------------------------------------
# Forward and backward through attention, pooling and the linear head
# --------------------------------------------------------------------------


def forward(params, P, segments, alignment):
    """Scores, attention weights and pooled vectors of every sample.

    Parameters
    ----------
    params : dict of str -> ndarray
        Alignment parameters (the head's may be present and are ignored).
    P : ndarray of shape (N, D)
        Packed elements.
    segments : Segments
    alignment : str
        Key of :data:`ALIGNMENTS`.

    Returns
    -------
    weights : ndarray of shape (N, K)
    pooled : ndarray of shape (n, K * D)
        ``[c_1, ..., c_K]`` per sample.
    cache : dict
        What :func:`loss_and_gradient` reuses for the backward pass.
    """
    scores, cache = ALIGNMENTS[alignment].scores(params, P)
    weights = segment_softmax(scores, segments)
    context = segments.pool(weights, P)  # (n, K, D)
    cache["context"] = context
    return weights, context.reshape(context.shape[0], -1), cache


def _attention_backward(params, P, segments, alignment, weights, cache, dpooled):
    """Gradients of the alignment parameters given d loss / d pooled."""
    K = segments.n_heads
    n, D = segments.n_samples, P.shape[1]
    dcontext = dpooled.reshape(n, K, D)
    # d loss / d a_tk = h_t . dc_ik; the softmax Jacobian subtracts
    # sum_s a_sk (h_s . dc_ik) = c_ik . dc_ik, so no segment sum is needed.
    dweights = np.empty_like(weights)
    for k in range(K):
        dweights[:, k] = np.einsum("td,td->t", P, dcontext[:, k][segments.ids])
    centre = np.einsum("nkd,nkd->nk", cache["context"], dcontext)
    dscores = weights * (dweights - centre[segments.ids])
    return ALIGNMENTS[alignment].backward(params, P, cache, dscores)


def loss_and_gradient(params, P, segments, alignment, loss, targets, sample_weight, alpha):
    """The training objective and its exact gradient.

    ``sum_i w_i loss_i / sum_i w_i + alpha / 2 * ||weights||^2 / sum_i w_i``
    where "weights" are every penalised parameter (see :func:`param_layout`).

    Parameters
    ----------
    params : dict of str -> ndarray
        All parameters, alignment and head, in the dtype of ``P``.
    P : ndarray of shape (N, D)
    segments : Segments
    alignment : str
    loss : str
        Key of :data:`sk_attention._losses.LOSSES`.
    targets : ndarray
        Encoded targets, as the loss expects them.
    sample_weight : ndarray of shape (n,)
    alpha : float

    Returns
    -------
    value : float
    grads : dict of str -> ndarray
        Same keys and shapes as ``params``.
    """
    from ._losses import LOSSES

    weights, pooled, cache = forward(params, P, segments, alignment)
    logits = pooled @ params["coef"] + params["intercept"]  # (n, O)
    per_sample, dlogits = LOSSES[loss](logits, targets)
    total_weight = float(np.sum(sample_weight, dtype=np.float64))
    scale = (sample_weight / total_weight).astype(P.dtype, copy=False)
    value = float(np.dot(per_sample.astype(np.float64), sample_weight)) / total_weight
    dlogits *= scale[:, None]

    grads = _attention_backward(
        params, P, segments, alignment, weights, cache, dlogits @ params["coef"].T
    )
    grads["coef"] = pooled.T @ dlogits
    grads["intercept"] = dlogits.sum(axis=0)

    penalty = alpha / total_weight
    kinds = dict((name, kind) for name, kind in _kinds(alignment))
    for name, kind in kinds.items():
        if kind in PENALISED_KINDS:
            value += 0.5 * penalty * float(np.sum(params[name].astype(np.float64) ** 2))
            grads[name] = grads[name] + penalty * params[name]
    return value, grads


def _kinds(alignment):
    yield from ALIGNMENTS[alignment].params
    yield ("coef", "coef")
    yield ("intercept", "intercept")
