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
walks blocks of a few thousand elements (whole samples) one after another
(:class:`Workspace`): the block's ``(N_block, C)`` and ``(N_block, K * O)``
work arrays are allocated on first use and reused by every block and every
evaluation, overwritten in place from pre-activations to gradients, and
stay in the CPU cache between those passes, so the cost per element does
not grow with ``N``.  They are separate C-contiguous arrays: NumPy's
element-wise loops are much slower on column slices of one wider array.
"""

import math
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
    """Sample bounds of blocks of whole samples for :class:`Workspace`.

    Blocks hold about ``block_size`` elements (fewer than twice as many);
    a sample longer than ``block_size`` is a block of its own, so that it
    does not drag its neighbours into an even larger block.
    """
    n_blocks = max(1, -(-int(offsets[-1]) // block_size))
    long = np.flatnonzero(np.diff(offsets) > block_size)
    return np.unique(np.concatenate([_cut(offsets, n_blocks), long, long + 1]))


class _Block:
    """Consecutive whole samples and their slice of the workspace's elements."""

    def __init__(self, P, transposed, offsets, n_heads, samples):
        lo, hi = offsets[0], offsets[-1]
        D = P.shape[1]
        self.samples = samples  # slice of the samples it owns
        self.segments = Segments(offsets - lo, n_heads)
        # [P | 1].T, C-contiguous, copied block by block (one transposing
        # copy of all N elements strides through memory: ~3x slower)
        self.augmented_t = transposed[lo * (D + 1) : hi * (D + 1)].reshape(D + 1, hi - lo)
        self.augmented_t[:D] = P[lo:hi].T
        self.augmented_t[D] = 1.0
        # the forward products read it transposed (an F-ordered operand,
        # which BLAS takes as it is): the elements are held once
        self.augmented = self.augmented_t.T  # [P | 1], (N_block, D + 1)


class _Shard:
    """The blocks one thread evaluates, one after another, in its own buffers."""

    def __init__(self, blocks, dtype):
        self.blocks = blocks
        self.dtype = dtype
        self._buffers = {}

    def buffer(self, name, shape):
        """An uninitialised work array of ``shape``, reused on every call.

        Leading dimensions vary from block to block: the array is sized for
        the largest request so far and smaller requests get its first rows.
        """
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != tuple(shape[1:]):
            buf = np.empty(shape, dtype=self.dtype)
            self._buffers[name] = buf
        return buf[: shape[0]]


class Workspace:
    """Buffers of one fit, reused by every evaluation of the gradient.

    The workspace holds its own copy of the elements, once, with a column
    of ones appended (it stands in for the biases in both products), stored
    transposed and C-contiguous block by block: the weight-gradient product
    ``[P | 1].T @ R`` is faster on that layout, and the forward products
    take its transpose as it is.  The samples are cut into blocks of whole
    samples of about ``block_size`` elements: every evaluation walks them
    one after another, so the work arrays hold one block, stay in the CPU
    cache between the passes over them, and the time and memory of an
    evaluation grow linearly with the number of elements.  Blocks are grouped into
    ``n_parts`` shards with about as many elements each; shards are
    independent until their gradients are added, so
    :func:`loss_and_gradient` evaluates them in parallel threads (NumPy
    releases the GIL in its products and element-wise loops) with
    single-threaded BLAS in each: no thread hand-off inside any product.

    Parameters
    ----------
    P : ndarray of shape (N, D)
    segments : Segments
    n_parts : int, default=1
        Number of shards (threads); fewer when shards would hold fewer than
        ``min_part_size`` elements.
    min_part_size : int, default=10000
        Fewest elements worth a thread of their own.
    block_size : int, default=4096
        Elements per block, about (see :func:`_cut_blocks`).  At 4096 the
        work arrays of a block stay within a few MiB, and the Python
        overhead per block is a few per cent of its products.

    Attributes
    ----------
    shards : list of _Shard
        One per thread, each a list of ``_Block`` and its work arrays.
    dtype : dtype
        That of the elements (float32 or float64).
    n_features : int
    """

    def __init__(self, P, segments, n_parts=1, min_part_size=10_000, block_size=4096):
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}.")
        offsets, N = segments.offsets, segments.n_elements
        D = P.shape[1]
        self.dtype = P.dtype
        self.n_features = D
        transposed = np.empty(N * (D + 1), dtype=P.dtype)  # every block's [P | 1].T
        n_parts = max(1, min(int(n_parts), N // min_part_size, segments.n_samples))
        self.shards = []
        shard_bounds = _cut(offsets, n_parts)
        for start, stop in zip(shard_bounds[:-1], shard_bounds[1:]):
            local = offsets[start : stop + 1]
            block_bounds = start + _cut_blocks(local - local[0], int(block_size))
            blocks = [
                _Block(P, transposed, offsets[lo : hi + 1], segments.n_heads, slice(lo, hi))
                for lo, hi in zip(block_bounds[:-1], block_bounds[1:])
            ]
            self.shards.append(_Shard(blocks, P.dtype))


def _block_term(params, spec, block, buffers, loss, targets, scale, projections):
    """One block's summed loss and the sums its gradient adds.

    Returns the weighted loss (float64) and a dict of unpenalised gradient
    pieces: ``"in"`` is ``[P | 1].T @ R`` (the alignment's "finish" turns
    it into matrix and bias gradients), ``"head"`` is ``[P | 1].T @ (a g)``,
    ``"intercept"`` the sum of the logit gradients, plus what the
    alignment's backward returns.
    """
    from ._losses import LOSSES

    segments = block.segments
    projection, head_projection = projections  # (D + 1, C), (D + 1, K * O)
    N = block.augmented.shape[0]
    n, K = segments.n_samples, segments.n_heads
    C, O = projection.shape[1], head_projection.shape[1] // K

    # ---- forward: one product for the alignment, one for the head --------
    Z = np.matmul(block.augmented, projection, out=buffers.buffer("hidden", (N, C)))
    HP = np.matmul(block.augmented, head_projection, out=buffers.buffer("head", (N, K * O)))
    HP = HP.reshape(N, K, O)  # h_t . coef_k

    scores = spec.scores(params, Z)  # (N, K); Z now holds the activations
    weights = segment_softmax(scores, segments, out=buffers.buffer("weights", (N, K)))
    terms = buffers.buffer("head_terms", (N, K * O))
    np.multiply(weights[:, :, None], HP, out=terms.reshape(N, K, O))
    head = segments.sum(terms).reshape(n, K, O)  # c_ik . coef_k
    logits = head.sum(axis=1) + params["intercept"]  # (n, O)

    per_sample, dlogits = LOSSES[loss](logits, targets)
    value = float(np.dot(per_sample.astype(np.float64), scale))
    dlogits *= scale.astype(dlogits.dtype, copy=False)[:, None]

    # ---- backward ----------------------------------------------------------
    g = segments.spread(dlogits)  # (N, O): d loss / d logits of each element's sample
    # d loss / d a_tk = (h_t . coef_k) . g_i; the softmax Jacobian subtracts
    # sum_s a_sk (h_s . coef_k) . g_i = (c_ik . coef_k) . g_i
    if O == 1:
        dweights = HP[:, :, 0] * g
        centre = head[:, :, 0] * dlogits
    else:
        dweights = np.einsum("tko,to->tk", HP, g)
        centre = np.einsum("nko,no->nk", head, dlogits)
    dweights -= segments.spread(centre)
    dscores = np.multiply(weights, dweights, out=dweights)  # (N, K)

    pieces = spec.backward(params, Z, dscores)  # Z now holds R
    pieces["in"] = block.augmented_t @ Z
    # d logits_i / d coef_k = sum_t a_tk h_t: one product with a_tk g_i
    np.multiply(weights[:, :, None], g[:, None, :], out=HP)
    pieces["head"] = block.augmented_t @ HP.reshape(N, K * O)
    pieces["intercept"] = dlogits.sum(axis=0)
    return value, pieces


def _shard_term(params, spec, shard, loss, targets, scale, projections):
    """:func:`_block_term` summed over a shard's blocks, in block order."""
    value, total = 0.0, None
    for block in shard.blocks:
        part_value, pieces = _block_term(
            params, spec, block, shard, loss, targets[block.samples], scale[block.samples],
            projections,
        )
        value += part_value
        if total is None:
            # summed in float64: the float32 gradient then depends less on
            # how the samples were cut into blocks and threads
            total = {name: piece.astype(np.float64) for name, piece in pieces.items()}
        else:
            for name, piece in pieces.items():
                total[name] += piece
    return value, total


def loss_and_gradient(
    params, P, segments, alignment, loss, targets, sample_weight, alpha, workspace=None
):
    """The training objective and its exact gradient.

    ``sum_i w_i loss_i / sum_i w_i + alpha / 2 * ||weights||^2 / sum_i w_i``
    where "weights" are every penalised parameter (see :func:`param_layout`).

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
    alpha : float
    workspace : Workspace, optional
        Buffers for these elements and segments to reuse across calls (a fit
        makes one); without it, a temporary one-shard workspace is made.

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

    total_weight = float(np.sum(sample_weight, dtype=np.float64))
    scale = np.asarray(sample_weight, dtype=np.float64) / total_weight

    def term(shard):
        return _shard_term(params, spec, shard, loss, targets, scale, (projection, head_projection))

    if len(workspace.shards) == 1:
        results = [term(workspace.shards[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(workspace.shards)) as executor:
            results = list(executor.map(term, workspace.shards))
    # added in shard order, so a fit is deterministic for a given thread count
    value, pieces = results[0]
    for part_value, part_pieces in results[1:]:
        value += part_value
        for name, piece in part_pieces.items():
            pieces[name] += piece

    grads = spec.finish(params, pieces["in"][:D], pieces["in"][D])
    grads.update({name: pieces[name] for name, _ in spec.params if name in pieces})
    head = pieces["head"][:D]
    grads["coef"] = head.reshape(D, K, O).transpose(1, 0, 2).reshape(K * D, O)
    grads["intercept"] = pieces["intercept"]

    penalty = alpha / total_weight
    for name, kind in _kinds(alignment):
        if kind in PENALISED_KINDS:
            value += 0.5 * penalty * float(np.sum(params[name].astype(np.float64) ** 2))
            grads[name] = grads[name] + penalty * params[name]
        else:
            grads[name] = np.array(grads[name])  # own copy, never a workspace view
    return value, grads


def _kinds(alignment):
    yield from ALIGNMENTS[alignment].params
    yield ("coef", "coef")
    yield ("intercept", "intercept")
