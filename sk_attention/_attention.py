"""The attention math as pure functions on packed elements.

Notation used in the shape comments:

- ``N`` elements in total (all samples stacked), ``D`` features per element,
- ``n`` samples, ``K`` heads, ``H`` hidden units per head, ``O`` outputs,
- ``C`` columns of the alignment's input projection (``K * H`` for
  "additive", ``2 * K * H`` for "gated", ``K`` for "dot").

Heads are stacked side by side: the alignment weights of all heads form one
``(D, K * H)`` matrix whose columns ``k * H:(k + 1) * H`` belong to head ``k``,
so one matmul scores every head at once.

An alignment is one entry of :data:`ALIGNMENTS`: the names and shapes of its
parameters and four small functions (project, scores, backward, finish).

How one evaluation of :func:`loss_and_gradient` touches the ``(N, D)``
elements (the only large operand):

- forward: ``[P | 1] @ [[M], [bias]]`` gives the alignment's
  pre-activations, and the narrow ``P @ [coef_1, .., coef_K]`` gives the
  head's projection ``h_t . coef_k`` of every element, so the logits follow
  without forming the pooled vectors: ``logits_i = sum_k sum_t a_tk (h_t .
  coef_k)``.
- backward: ``[P | 1].T @ R`` gives the gradients of the alignment matrix
  and its bias at once, and the narrow ``P.T @ (a_tk g_i)`` those of the
  head.  ``d loss / d a_tk = (h_t . coef_k) . g_i`` reuses the forward's
  projection, so no ``(N, D)`` gather of the context gradient is needed.

Every step but the gradient sums is local to a sample, so an evaluation
walks blocks of a few thousand elements (whole samples, or pieces of a
longer sample, whose softmax needs only its maximum and sum) one after
another (:class:`Workspace`): the block's ``(N_block, C)`` and ``(N_block, K * O)``
work arrays are allocated on first use and reused by every block and every
evaluation, overwritten in place from pre-activations to gradients, and
stay in the CPU cache between those passes, so the cost per element does
not grow with ``N``.  They are separate C-contiguous arrays: NumPy's
element-wise loops are much slower on column slices of one wider array.
"""

import math
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import sparse
from scipy.special import expit

__all__ = [
    "ALIGNMENTS",
    "Segments",
    "Workspace",
    "segment_softmax",
    "attention",
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
        self.lengths = np.diff(self.offsets)
        self._ids = None
        self._sum_matrices = {}
        self._pool_matrices = {}

    @property
    def ids(self):
        """Index of the sample that owns each element, shape (N,)."""
        if self._ids is None:
            self._ids = np.repeat(np.arange(self.n_samples), self.lengths)
        return self._ids

    def sum(self, values):
        """Per-sample sums of per-element ``values`` (N, m) -> (n, m)."""
        matrix = self._sum_matrices.get(values.dtype)
        if matrix is None:
            matrix = sparse.csr_matrix(
                (
                    np.ones(self.n_elements, dtype=values.dtype),
                    np.arange(self.n_elements, dtype=np.int64),
                    self.offsets,
                ),
                shape=(self.n_samples, self.n_elements),
            )
            self._sum_matrices[values.dtype] = matrix
        return matrix @ values

    def max(self, values):
        """Per-sample maxima of per-element ``values`` (N, m) -> (n, m)."""
        return np.maximum.reduceat(values, self.starts, axis=0)

    def spread(self, values):
        """Per-sample ``values`` (n, m) repeated for every element -> (N, m)."""
        return np.repeat(values, self.lengths, axis=0)

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
        n, K, N = self.n_samples, self.n_heads, self.n_elements
        matrix = self._pool_matrices.get(weights.dtype)
        if matrix is None:
            # block-diagonal: K copies of the (n, N) segment pattern; row
            # k * n + i holds head k's weights of sample i.  The structure is
            # fixed, only the data change.
            indices = np.tile(np.arange(N, dtype=np.int64), K)
            indptr = np.concatenate(
                [np.zeros(1, dtype=np.int64)] + [self.offsets[1:] + k * N for k in range(K)]
            )
            matrix = sparse.csr_matrix(
                (np.empty(K * N, dtype=weights.dtype), indices, indptr), shape=(K * n, N)
            )
            self._pool_matrices[weights.dtype] = matrix
        matrix.data.reshape(K, N)[...] = weights.T
        context = matrix @ elements  # (K * n, D)
        return context.reshape(K, n, -1).transpose(1, 0, 2)


def segment_softmax(scores, segments, out=None):
    """Softmax of ``scores`` over the elements of each sample separately.

    Subtracting each sample's own maximum keeps it finite for any finite
    scores (e.g. +-1e4), where one global shift would underflow whole samples.

    Parameters
    ----------
    scores : ndarray of shape (N, K)
    segments : Segments
    out : ndarray of shape (N, K), optional
        Where to write the result (may be ``scores`` itself).

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
    out = np.subtract(scores, segments.spread(segments.max(scores)), out=out)
    np.exp(out, out=out)
    out /= segments.spread(segments.sum(out))
    return out


# --------------------------------------------------------------------------
# Alignment functions: scores e (N, K) from pre-activations Z = P @ M + bias
# --------------------------------------------------------------------------
#
# project(params) -> (M (D, C), bias (C,) or None)
# scores(params, Z) -> e (N, K); overwrites Z (N, C) with what backward needs
# backward(params, Z, dscores) -> grads of the "out" vectors; overwrites Z
#     with R (N, C) such that the input matrix and bias gradients are
#     functions of P.T @ R and R.sum(axis=0) alone
# finish(params, PtR (D, C), sumR (C,)) -> grads of the "in" and "bias" params


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


def _additive_finish(params, PtR, sumR):
    v = params["v"].ravel()
    return {"W": PtR * v, "b": sumR * v}


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


def _gated_finish(params, PtR, sumR):
    KH = params["W"].shape[1]
    v2 = np.tile(params["v"].ravel(), 2)
    dWU, dbc = PtR * v2, sumR * v2
    return {"W": dWU[:, :KH], "b": dbc[:KH], "U": dWU[:, KH:], "c": dbc[KH:]}


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


def _dot_finish(params, PtR, sumR):
    q = params["q"]
    K, H = q.shape
    scale = 1.0 / math.sqrt(H)
    return {
        "W": PtR @ _dot_query(params).T,
        "q": _diag_blocks(params["W"].T @ PtR, K) * scale,
    }


@dataclass(frozen=True)
class Alignment:
    """One alignment function: its parameters and the four steps above.

    ``params`` lists ``(name, kind)`` pairs in packing order, ``kind`` being
    ``"in"`` for a ``(D, K * H)`` input matrix, ``"bias"`` for a ``(K * H,)``
    bias and ``"out"`` for a ``(K, H)`` output vector per head (which starts
    at zero so that attention starts uniform).
    """

    params: tuple
    project: Callable
    scores: Callable
    backward: Callable
    finish: Callable


ALIGNMENTS = {
    "additive": Alignment(
        (("W", "in"), ("b", "bias"), ("v", "out")),
        _additive_project,
        _additive_scores,
        _additive_backward,
        _additive_finish,
    ),
    "gated": Alignment(
        (("W", "in"), ("b", "bias"), ("U", "in"), ("c", "bias"), ("v", "out")),
        _gated_project,
        _gated_scores,
        _gated_backward,
        _gated_finish,
    ),
    "dot": Alignment(
        (("W", "in"), ("q", "out")), _dot_project, _dot_scores, _dot_backward, _dot_finish
    ),
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
# Inference: weights and pooled vectors
# --------------------------------------------------------------------------


def attention(params, P, segments, alignment):
    """Attention weights of every element, per head: (N, K)."""
    spec = ALIGNMENTS[alignment]
    matrix, bias = spec.project(params)
    Z = P @ matrix  # (N, C)
    if bias is not None:
        Z += bias
    scores = spec.scores(params, Z)  # (N, K)
    return segment_softmax(scores, segments, out=scores)


def forward(params, P, segments, alignment):
    """Attention weights and pooled vectors of every sample.

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
    context : ndarray of shape (n, K, D)
        The same numbers as ``pooled``, one row per head.
    """
    weights = attention(params, P, segments, alignment)
    context = segments.pool(weights, P)  # (n, K, D)
    return weights, context.reshape(context.shape[0], -1), context


# --------------------------------------------------------------------------
# Training objective
# --------------------------------------------------------------------------


def _cut(offsets, n_parts):
    """Sample bounds of ``n_parts`` runs of whole samples with about as many elements each."""
    n_samples, N = offsets.shape[0] - 1, offsets[-1]
    cuts = np.searchsorted(offsets, np.arange(1, n_parts) * N / n_parts)
    return np.unique(np.concatenate([[0], cuts, [n_samples]]))


def _cut_blocks(offsets, block_size):
    """Sample bounds of the work units of :class:`Workspace`.

    Runs of whole samples hold about ``block_size`` elements (fewer than
    twice as many); a sample longer than ``block_size`` is a unit of its own
    (which :class:`Workspace` cuts into pieces), so that it does not drag its
    neighbours into an even larger block.  The bounds depend on the offsets
    and ``block_size`` only, never on the number of threads.
    """
    n_blocks = max(1, -(-int(offsets[-1]) // block_size))
    long = np.flatnonzero(np.diff(offsets) > block_size)
    return np.unique(np.concatenate([_cut(offsets, n_blocks), long, long + 1]))


class _Block:
    """Consecutive elements, their slice of the workspace's ``[P | 1].T``.

    Either whole samples or one piece of a sample longer than a block.
    """

    def __init__(self, P, transposed, offsets, n_heads, samples):
        lo, hi = offsets[0], offsets[-1]
        D = P.shape[1]
        self.samples = samples  # slice of the samples it owns (or is a piece of)
        self.segments = Segments(offsets - lo, n_heads)
        # [P | 1].T, C-contiguous, copied block by block (one transposing
        # copy of all N elements strides through memory: ~3x slower)
        self.augmented_t = transposed[lo * (D + 1) : hi * (D + 1)].reshape(D + 1, hi - lo)
        self.augmented_t[:D] = P[lo:hi].T
        self.augmented_t[D] = 1.0
        # the forward products read it transposed (an F-ordered operand,
        # which BLAS takes as it is): the elements are held once
        self.augmented = self.augmented_t.T  # [P | 1], (N_block, D + 1)


class _LongSample:
    """One sample longer than a block, as pieces of at most ``block_size`` elements.

    Its softmax needs the sample's maximum score and sum of exponentials,
    which the pieces give one after another; the backward pass then
    recomputes each piece's forward, so no work array ever holds more than
    one piece.
    """

    def __init__(self, P, transposed, start, stop, n_heads, sample, block_size):
        n_pieces = -(-(stop - start) // block_size)
        bounds = np.linspace(start, stop, n_pieces + 1).round().astype(np.int64)
        samples = slice(sample, sample + 1)
        self.samples = samples
        self.pieces = [
            _Block(P, transposed, np.array([lo, hi]), n_heads, samples)
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]


class _Buffers:
    """Work arrays of one thread, reused by every block and every evaluation."""

    def __init__(self, dtype):
        self.dtype = dtype
        self._arrays = {}

    def get(self, name, shape):
        """An uninitialised work array of ``shape``.

        Leading dimensions vary from block to block: the array is sized for
        the largest request so far and smaller requests get its first rows.
        """
        buf = self._arrays.get(name)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != tuple(shape[1:]):
            buf = np.empty(shape, dtype=self.dtype)
            self._arrays[name] = buf
        return buf[: shape[0]]


class Workspace:
    """The elements of one fit, cut into blocks, and the work arrays.

    The workspace holds its own copy of the elements, once, with a column
    of ones appended (it stands in for the biases in both products), stored
    transposed and C-contiguous block by block: the weight-gradient product
    ``[P | 1].T @ R`` is faster on that layout, and the forward products
    take its transpose as it is.

    The samples are cut into *units* of about ``block_size`` elements:
    runs of whole samples, and every sample longer than ``block_size`` on
    its own, in pieces of at most ``block_size`` elements.  An evaluation
    of :func:`loss_and_gradient` walks the units, so the work arrays hold
    one block, stay in the CPU cache between the passes over it, and the
    time and memory of an evaluation grow linearly with the number of
    elements whatever the sample lengths.  Units are independent until
    their gradients are added: ``n_threads`` threads evaluate them in
    parallel (NumPy releases the GIL in its products and element-wise
    loops), each with its own work arrays and single-threaded BLAS, and the
    unit results are added in unit order.  How the samples are cut and the
    order of the additions depend on the offsets and ``block_size`` only,
    so a fit gives the same parameters with any number of threads.

    Parameters
    ----------
    P : ndarray of shape (N, D)
    segments : Segments
    n_threads : int, default=1
        Threads that evaluate units in parallel (at most one per unit).
    block_size : int, default=4096
        Elements per unit, about (see :func:`_cut_blocks`).  At 4096 the
        work arrays of a block stay within a few MiB, and the Python
        overhead per block is a few per cent of its products.

    Attributes
    ----------
    units : list of _Block or _LongSample
        In sample order.
    n_threads : int
    dtype : dtype
        That of the elements (float32 or float64).
    n_features : int
    """

    def __init__(self, P, segments, n_threads=1, block_size=4096):
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}.")
        offsets, N, K = segments.offsets, segments.n_elements, segments.n_heads
        D = P.shape[1]
        self.dtype = P.dtype
        self.n_features = D
        transposed = np.empty(N * (D + 1), dtype=P.dtype)  # every block's [P | 1].T
        self.units = []
        bounds = _cut_blocks(offsets, int(block_size))
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi - lo == 1 and offsets[hi] - offsets[lo] > block_size:
                unit = _LongSample(P, transposed, offsets[lo], offsets[hi], K, lo, block_size)
            else:
                unit = _Block(P, transposed, offsets[lo : hi + 1], K, slice(lo, hi))
            self.units.append(unit)
        self.n_threads = max(1, min(int(n_threads), len(self.units)))
        self._idle_buffers = queue.SimpleQueue()
        for _ in range(self.n_threads):
            self._idle_buffers.put(_Buffers(P.dtype))


def _block_forward(params, spec, block, buffers, projections):
    """Alignment activations, scores and head projections of a block's elements.

    Returns
    -------
    Z : ndarray of shape (N_b, C)
        What the alignment's backward needs (its activations).
    scores : ndarray of shape (N_b, K)
    head_projection : ndarray of shape (N_b, K, O)
        ``h_t . coef_k`` for every element and head.
    """
    projection, head_projection = projections  # (D + 1, C), (D + 1, K * O)
    N, K = block.augmented.shape[0], block.segments.n_heads
    C, KO = projection.shape[1], head_projection.shape[1]
    Z = np.matmul(block.augmented, projection, out=buffers.get("hidden", (N, C)))
    HP = np.matmul(block.augmented, head_projection, out=buffers.get("head", (N, KO)))
    scores = spec.scores(params, Z)  # (N_b, K); Z now holds the activations
    return Z, scores, HP.reshape(N, K, KO // K)


def _pooled_head(weights, head_projection, segments, buffers):
    """``c_ik . coef_k`` of every sample and head, shape (n, K, O)."""
    N, K, O = head_projection.shape
    terms = buffers.get("head_terms", (N, K * O))
    np.multiply(weights[:, :, None], head_projection, out=terms.reshape(N, K, O))
    return segments.sum(terms).reshape(segments.n_samples, K, O)


def _head_loss(head, intercept, loss, targets, scale):
    """Weighted loss (float64) and its gradient w.r.t. the logits, (n, O)."""
    from ._losses import LOSSES

    logits = head.sum(axis=1) + intercept  # (n, O)
    per_sample, dlogits = LOSSES[loss](logits, targets)
    value = float(np.dot(per_sample.astype(np.float64), scale))
    dlogits *= scale.astype(dlogits.dtype, copy=False)[:, None]
    return value, dlogits


def _block_backward(params, spec, block, Z, head_projection, weights, head, dlogits):
    """Gradient sums of a block given its samples' pooled head and logit gradients.

    ``weights`` are the final softmax weights of the block's elements (for
    a piece of a long sample, normalised over the whole sample), ``head``
    (n, K, O) and ``dlogits`` (n, O) belong to the block's samples.  Z and
    ``head_projection`` are overwritten.

    Returns the unpenalised gradient pieces: ``"in"`` is ``[P | 1].T @ R``
    (the alignment's "finish" turns it into matrix and bias gradients),
    ``"head"`` is ``[P | 1].T @ (a g)``, plus what the alignment's backward
    returns.  The intercept's gradient is the caller's (once per sample).
    """
    segments = block.segments
    N, K, O = head_projection.shape
    g = segments.spread(dlogits)  # (N, O): d loss / d logits of each element's sample
    # d loss / d a_tk = (h_t . coef_k) . g_i; the softmax Jacobian subtracts
    # sum_s a_sk (h_s . coef_k) . g_i = (c_ik . coef_k) . g_i
    if O == 1:
        dweights = head_projection[:, :, 0] * g
        centre = head[:, :, 0] * dlogits
    else:
        dweights = np.einsum("tko,to->tk", head_projection, g)
        centre = np.einsum("nko,no->nk", head, dlogits)
    dweights -= segments.spread(centre)
    dscores = np.multiply(weights, dweights, out=dweights)  # (N, K)

    pieces = spec.backward(params, Z, dscores)  # Z now holds R
    pieces["in"] = block.augmented_t @ Z
    # d logits_i / d coef_k = sum_t a_tk h_t: one product with a_tk g_i
    a_g = np.multiply(weights[:, :, None], g[:, None, :], out=head_projection)
    pieces["head"] = block.augmented_t @ a_g.reshape(N, K * O)
    return pieces


def _block_term(params, spec, block, buffers, loss, targets, scale, projections):
    """A block of whole samples: its weighted loss and gradient pieces."""
    Z, scores, HP = _block_forward(params, spec, block, buffers, projections)
    weights = segment_softmax(scores, block.segments, out=buffers.get("weights", scores.shape))
    head = _pooled_head(weights, HP, block.segments, buffers)
    value, dlogits = _head_loss(head, params["intercept"], loss, targets, scale)
    pieces = _block_backward(params, spec, block, Z, HP, weights, head, dlogits)
    pieces["intercept"] = dlogits.sum(axis=0)
    return value, pieces


def _long_sample_term(params, spec, unit, buffers, loss, targets, scale, projections):
    """One sample in pieces: the same loss and gradient as one block would give.

    Pass 1 runs each piece's forward with the piece's own softmax and keeps
    its maximum score, its sum of exponentials and its pooled head; their
    log-sum-exp combination is the sample's softmax.  Pass 2 runs each
    piece's forward again, normalises with the sample's maximum and sum,
    and backpropagates.
    """
    shifts, totals, heads = [], [], []
    for piece in unit.pieces:
        _, scores, HP = _block_forward(params, spec, piece, buffers, projections)
        shift = scores.max(axis=0)  # (K,)
        weights = np.subtract(scores, shift, out=buffers.get("weights", scores.shape))
        np.exp(weights, out=weights)
        shifts.append(shift.astype(np.float64))
        totals.append(weights.sum(axis=0, dtype=np.float64))  # (K,)
        heads.append(np.einsum("tk,tko->ko", weights, HP).astype(np.float64))  # (K, O)
    shifts, totals, heads = np.array(shifts), np.array(totals), np.array(heads)
    shift = shifts.max(axis=0)  # the sample's maximum score, per head
    rescaled = totals * np.exp(shifts - shift)  # (n_pieces, K)
    total = rescaled.sum(axis=0)  # the sample's sum of exp(score - shift)
    head = np.einsum("pk,pko->ko", np.exp(shifts - shift), heads) / total[:, None]
    dtype = buffers.dtype
    head = head[None].astype(dtype)  # (1, K, O)
    value, dlogits = _head_loss(head, params["intercept"], loss, targets, scale)

    shift, total = shift.astype(dtype), total.astype(dtype)
    pieces = None
    for piece in unit.pieces:
        Z, scores, HP = _block_forward(params, spec, piece, buffers, projections)
        weights = np.subtract(scores, shift, out=buffers.get("weights", scores.shape))
        np.exp(weights, out=weights)
        weights /= total
        part = _block_backward(params, spec, piece, Z, HP, weights, head, dlogits)
        if pieces is None:
            pieces = {name: array.astype(np.float64) for name, array in part.items()}
        else:
            for name, array in part.items():
                pieces[name] += array
    pieces["intercept"] = dlogits.sum(axis=0)
    return value, pieces


def _unit_term(params, spec, unit, buffers, loss, targets, scale, projections):
    """:func:`_block_term` or :func:`_long_sample_term`, whichever the unit is."""
    term = _long_sample_term if isinstance(unit, _LongSample) else _block_term
    samples = unit.samples
    return term(params, spec, unit, buffers, loss, targets[samples], scale[samples], projections)


def loss_and_gradient(
    params, P, segments, alignment, loss, targets, sample_weight, alpha, workspace=None
):
    """The training objective and its exact gradient.

    ``sum_i w_i loss_i / sum_i w_i + alpha / 2 * ||weights||^2 / sum_i w_i``
    where "weights" are every penalised parameter (see :func:`param_layout`).
    The sample weights are divided by their maximum first, so that no sum
    overflows or underflows whatever their scale.

    Parameters
    ----------
    params : dict of str -> ndarray
        All parameters, alignment and head, in the dtype of ``P``.
    P : ndarray of shape (N, D) or None
        The packed elements; unused (may be None) when ``workspace`` is given.
    segments : Segments
    alignment : str
    loss : str
        Key of :data:`sk_attention._losses.LOSSES`.
    targets : ndarray
        Encoded targets, as the loss expects them.
    sample_weight : ndarray of shape (n,)
        Non-negative, with a positive maximum.
    alpha : float
    workspace : Workspace, optional
        Buffers for these elements and segments to reuse across calls (a fit
        makes one); without it, a temporary one-thread workspace is made.

    Returns
    -------
    value : float
    grads : dict of str -> ndarray
        Same keys and shapes as ``params``; never views of the workspace.
    """
    if workspace is None:
        workspace = Workspace(P, segments)
    spec = ALIGNMENTS[alignment]
    D, K = workspace.n_features, segments.n_heads
    coef = params["coef"]  # (K*D, O)
    O = coef.shape[1]

    matrix, bias = spec.project(params)  # (D, C), (C,)
    projection = np.empty((D + 1, matrix.shape[1]), dtype=workspace.dtype)
    projection[:D] = matrix
    projection[D] = 0.0 if bias is None else bias
    # column k*O + o is coef_k[:, o], so [P | 1] @ it gives h_t . coef_k[:, o]
    head_projection = np.zeros((D + 1, K * O), dtype=workspace.dtype)
    head_projection[:D] = coef.reshape(K, D, O).transpose(1, 0, 2).reshape(D, K * O)

    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    relative = sample_weight / sample_weight.max()
    total_weight = float(np.sum(relative))  # in [1, n]: no overflow
    scale = relative / total_weight
    # alpha / sum_i w_i, without forming the sum of the raw weights
    penalty = alpha / sample_weight.max() / total_weight

    def term(unit):
        buffers = workspace._idle_buffers.get()
        try:
            return _unit_term(
                params, spec, unit, buffers, loss, targets, scale, (projection, head_projection)
            )
        finally:
            workspace._idle_buffers.put(buffers)

    if workspace.n_threads == 1:
        value, pieces = _sum_in_order(map(term, workspace.units))
    else:
        with ThreadPoolExecutor(max_workers=workspace.n_threads) as executor:
            # map yields in unit order whichever thread finishes first
            value, pieces = _sum_in_order(executor.map(term, workspace.units))

    grads = spec.finish(params, pieces["in"][:D], pieces["in"][D])
    grads.update({name: pieces[name] for name, _ in spec.params if name in pieces})
    head = pieces["head"][:D]
    grads["coef"] = head.reshape(D, K, O).transpose(1, 0, 2).reshape(K * D, O)
    grads["intercept"] = pieces["intercept"]

    for name, kind in _kinds(alignment):
        if kind in PENALISED_KINDS:
            value += 0.5 * penalty * float(np.sum(params[name].astype(np.float64) ** 2))
            grads[name] = grads[name] + penalty * params[name]
        else:
            grads[name] = np.array(grads[name])  # own copy, never a workspace view
    return value, grads


def _sum_in_order(results):
    """Add ``(value, pieces)`` results one after another, in float64.

    The order is that of the units, whatever thread computed them: the sum
    (and so a fit) does not depend on the number of threads.
    """
    value, total = 0.0, None
    for part_value, pieces in results:
        value += part_value
        if total is None:
            total = {name: piece.astype(np.float64) for name, piece in pieces.items()}
        else:
            for name, piece in pieces.items():
                total[name] += piece
    return value, total


def _kinds(alignment):
    yield from ALIGNMENTS[alignment].params
    yield ("coef", "coef")
    yield ("intercept", "intercept")
