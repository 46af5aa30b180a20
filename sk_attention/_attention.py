"""The attention math on a workspace: one forward path, its backward, the loss.

Notation of the shape comments: ``N_b`` elements of a block, ``n`` its
samples, ``D`` features per element, ``M`` embedding units (0 without the
embedding), ``D' = D + M``, ``K`` heads, ``O`` outputs, ``C`` columns of
the alignment's projection (see :mod:`._alignments`).

What attention reads of element ``t`` is ``h'_t = [x_t, u_t]``: the element,
followed by its embedding ``u_t = relu(E.T x_t + e)`` when there is one.
A block holds ``H = [x; 1; u]`` (D' + 1, N_b), the elements as columns with
a row of ones that stands in for every bias, so that:

- forward (:func:`_block_forward`): ``H.T @ [matrix; bias]`` gives the
  alignment's pre-activations, and the narrow ``H.T @ [coef_1, .., coef_K]``
  the head's projection ``h'_t . coef_k`` of every element, so the logits
  follow without forming the pooled vectors: ``logits_i = sum_k sum_t a_tk
  (h'_t . coef_k)``;
- backward (:func:`_block_backward`): ``H @ R`` gives the gradients of the
  alignment matrix and its bias at once, and the narrow ``H @ (a_tk g_i)``
  those of the head.  ``d loss / d a_tk = (h'_t . coef_k) . g_i`` reuses the
  forward's projection.  The embedding's gradient needs ``d loss / d u_t``,
  two products more (``R`` and ``a g`` back through the u rows).

Training (:func:`loss_and_gradient`) and inference (:func:`attend`) run the
same :func:`_block_forward`; inference stops before the loss.  A sample
longer than a block is evaluated in pieces, in two passes: the pieces'
maxima and sums of exponentials make the sample's softmax.
"""

from dataclasses import dataclass

import numpy as np

from ._alignments import ALIGNMENTS, PENALISED_KINDS
from ._losses import LOSSES
from ._segments import segment_softmax
from ._workspace import _LongSample

__all__ = [
    "attend",
    "data_terms",
    "finish_objective",
    "loss_and_gradient",
    "objective_scaling",
]


@dataclass(frozen=True)
class _Projections:
    """The parameters in the block layout, rows ordered as ``H = [x; 1; u]``.

    alignment : (D' + 1, C)      the alignment's matrix, its bias in row D
    head : (D' + 1, K * O)       column k*O + o is coef_k[:, o]; row D is 0
    embedding : (D + 1, M)       ``[E; e]``, or None without the embedding
    backprop_u : (M, C)          u rows of matrix * column_scale: d Z -> d u
    head_u : (M, K * O)          u rows of ``head``
    """

    alignment: np.ndarray
    head: np.ndarray
    embedding: np.ndarray = None
    backprop_u: np.ndarray = None
    head_u: np.ndarray = None


def _projections(params, spec, n_features, n_heads, dtype):
    D, K = n_features, n_heads
    matrix, bias = spec.project(params)  # (D', C), (C,)
    D_read, C = matrix.shape
    alignment = np.empty((D_read + 1, C), dtype=dtype)
    alignment[:D], alignment[D + 1 :] = matrix[:D], matrix[D:]
    alignment[D] = 0.0 if bias is None else bias
    coef = params["coef"]  # (K * D', O)
    O = coef.shape[1]
    stacked = coef.reshape(K, D_read, O).transpose(1, 0, 2).reshape(D_read, K * O)
    head = np.zeros((D_read + 1, K * O), dtype=dtype)
    head[:D], head[D + 1 :] = stacked[:D], stacked[D:]
    if D_read == D:
        return _Projections(alignment, head)
    embedding = np.vstack([params["E"], params["e"][None, :]]).astype(dtype)
    backprop_u = (matrix[D:] * spec.column_scale(params)).astype(dtype)
    return _Projections(alignment, head, embedding, backprop_u, head[D + 1 :])


# --------------------------------------------------------------------------
# One block: forward, pooled head, loss, backward
# --------------------------------------------------------------------------


def _block_forward(params, spec, block, buffers, proj):
    """Everything a block's elements give before the softmax.

    Returns
    -------
    H : ndarray of shape (D' + 1, N_b)
        ``[x; 1; u]``: what attention reads, with the row of ones.
    Z : ndarray of shape (N_b, C)
        The alignment's activations (what its backward needs).
    scores : ndarray of shape (N_b, K)
    head_projection : ndarray of shape (N_b, K, O)
        ``h'_t . coef_k`` for every element and head.
    """
    X = block.elements_t(buffers)  # (D + 1, N_b): [x; 1]
    N = X.shape[1]
    if proj.embedding is None:
        H = X
    else:
        M = proj.embedding.shape[1]
        H = buffers.get("read", (X.shape[0] + M, N))  # (D' + 1, N_b)
        H[: X.shape[0]] = X
        U = H[X.shape[0] :]  # (M, N_b): u_t = relu(E.T x_t + e)
        np.matmul(proj.embedding.T, X, out=U)
        np.maximum(U, 0.0, out=U)
    C, KO = proj.alignment.shape[1], proj.head.shape[1]
    Z = np.matmul(H.T, proj.alignment, out=buffers.get("hidden", (N, C)))
    head_projection = np.matmul(H.T, proj.head, out=buffers.get("head", (N, KO)))
    scores = spec.scores(params, Z)  # (N_b, K); Z now holds the activations
    K = scores.shape[1]
    return H, Z, scores, head_projection.reshape(N, K, KO // K)


def _pooled_head(weights, head_projection, segments, buffers):
    """``c_ik . coef_k`` of every sample and head, shape (n, K, O)."""
    N, K, O = head_projection.shape
    terms = buffers.get("head_terms", (N, K * O))
    np.multiply(weights[:, :, None], head_projection, out=terms.reshape(N, K, O))
    return segments.sum(terms).reshape(segments.n_samples, K, O)


def _head_loss(head, intercept, loss, targets, scale):
    """Weighted loss (float64) and its gradient w.r.t. the logits, (n, O)."""
    logits = head.sum(axis=1) + intercept  # (n, O)
    per_sample, dlogits = LOSSES[loss](logits, targets)
    value = float(np.dot(per_sample.astype(np.float64), scale))
    dlogits *= scale.astype(dlogits.dtype, copy=False)[:, None]
    return value, dlogits


def _block_backward(params, spec, block, forward, weights, head, dlogits, proj, buffers):
    """Gradient sums of a block given its samples' pooled head and logit gradients.

    ``forward`` is what :func:`_block_forward` returned for the block (its
    Z and head projection are overwritten); ``weights`` (N_b, K) are the
    final softmax weights of its elements (for a piece of a long sample,
    normalised over the whole sample); ``head`` (n, K, O) and ``dlogits``
    (n, O) belong to its samples.

    Returns the unpenalised gradient pieces: ``"in"`` is ``H @ R`` (D' + 1,
    C), which the alignment's "finish" turns into matrix and bias
    gradients; ``"head"`` is ``H @ (a g)`` (D' + 1, K * O); ``"embedding"``
    (D + 1, M) with the embedding; plus what the alignment's backward
    returns.  The intercept's gradient is the caller's (once per sample).
    """
    H, Z, _, head_projection = forward
    segments = block.segments
    N, K, O = head_projection.shape
    g = segments.spread(dlogits)  # (N_b, O): d loss / d logits of each element's sample
    # d loss / d a_tk = (h'_t . coef_k) . g_i; the softmax Jacobian subtracts
    # sum_s a_sk (h'_s . coef_k) . g_i = (c_ik . coef_k) . g_i
    if O == 1:
        dweights = head_projection[:, :, 0] * g
        centre = head[:, :, 0] * dlogits
    else:
        dweights = np.einsum("tko,to->tk", head_projection, g)
        centre = np.einsum("nko,no->nk", head, dlogits)
    dweights -= segments.spread(centre)
    dscores = np.multiply(weights, dweights, out=dweights)  # (N_b, K)

    pieces = spec.backward(params, Z, dscores)  # Z now holds R (N_b, C)
    pieces["in"] = H @ Z  # (D' + 1, C)
    # d logits_i / d coef_k = sum_t a_tk h'_t: one product with a_tk g_i
    a_g = np.multiply(weights[:, :, None], g[:, None, :], out=head_projection)
    a_g = a_g.reshape(N, K * O)
    pieces["head"] = H @ a_g  # (D' + 1, K * O)
    if proj.embedding is not None:
        # d loss / d u_t: through the scores (R, scaled back to d Z) and
        # through the pooled head (a g), then through the relu
        M = proj.embedding.shape[1]
        X, U = H[:-M], H[-M:]  # (D + 1, N_b), (M, N_b)
        du = np.matmul(proj.backprop_u, Z.T, out=buffers.get("embedding_grad", (M, N)))
        du += proj.head_u @ a_g.T
        np.multiply(du, U > 0, out=du)
        pieces["embedding"] = X @ du.T  # (D + 1, M): E and e at once
    return pieces


def _block_term(params, spec, block, buffers, proj, loss, targets, scale):
    """A block of whole samples: its weighted loss and gradient pieces."""
    forward = _block_forward(params, spec, block, buffers, proj)
    scores, head_projection = forward[2], forward[3]
    weights = segment_softmax(scores, block.segments, out=buffers.get("weights", scores.shape))
    head = _pooled_head(weights, head_projection, block.segments, buffers)
    value, dlogits = _head_loss(head, params["intercept"], loss, targets, scale)
    pieces = _block_backward(params, spec, block, forward, weights, head, dlogits, proj, buffers)
    pieces["intercept"] = dlogits.sum(axis=0)
    return value, pieces


# --------------------------------------------------------------------------
# A sample in pieces: its softmax from the pieces' maxima and sums
# --------------------------------------------------------------------------


def _long_sample_softmax(params, spec, unit, buffers, proj):
    """Pass 1 over the pieces: the sample's maximum score and sum of exponentials.

    Returns ``shift`` and ``total`` (K,) such that the weight of element t
    is ``exp(score_t - shift) / total``, and each piece's pooled head
    ``sum_t a_tk (h'_t . coef_k)`` (K, O) summed: the sample's.
    """
    shifts, totals, heads = [], [], []
    for piece in unit.pieces:
        _, _, scores, head_projection = _block_forward(params, spec, piece, buffers, proj)
        shift = scores.max(axis=0)  # (K,)
        exps = np.subtract(scores, shift, out=buffers.get("weights", scores.shape))
        np.exp(exps, out=exps)
        shifts.append(shift.astype(np.float64))
        totals.append(exps.sum(axis=0, dtype=np.float64))  # (K,)
        heads.append(np.einsum("tk,tko->ko", exps, head_projection).astype(np.float64))
    shifts, totals, heads = np.array(shifts), np.array(totals), np.array(heads)
    shift = shifts.max(axis=0)
    rescale = np.exp(shifts - shift)  # (n_pieces, K)
    total = (totals * rescale).sum(axis=0)
    head = np.einsum("pk,pko->ko", rescale, heads) / total[:, None]
    return shift, total, head


def _piece_weights(scores, shift, total, buffers):
    """A piece's weights, normalised over its whole sample."""
    weights = np.subtract(scores, shift, out=buffers.get("weights", scores.shape))
    np.exp(weights, out=weights)
    weights /= total
    return weights


def _long_sample_term(params, spec, unit, buffers, proj, loss, targets, scale):
    """One sample in pieces: the same loss and gradient as one block would give."""
    shift, total, head = _long_sample_softmax(params, spec, unit, buffers, proj)
    dtype = buffers.dtype
    head = head[None].astype(dtype)  # (1, K, O)
    value, dlogits = _head_loss(head, params["intercept"], loss, targets, scale)
    shift, total = shift.astype(dtype), total.astype(dtype)
    pieces = None
    for piece in unit.pieces:  # pass 2: forward again, then backward
        forward = _block_forward(params, spec, piece, buffers, proj)
        weights = _piece_weights(forward[2], shift, total, buffers)
        part = _block_backward(params, spec, piece, forward, weights, head, dlogits, proj, buffers)
        if pieces is None:
            pieces = {name: array.astype(np.float64) for name, array in part.items()}
        else:
            for name, array in part.items():
                pieces[name] += array
    pieces["intercept"] = dlogits.sum(axis=0)
    return value, pieces


# --------------------------------------------------------------------------
# The training objective
# --------------------------------------------------------------------------


def loss_and_gradient(params, workspace, alignment, loss, targets, sample_weight, alpha):
    """The training objective and its exact gradient.

    ``sum_i w_i loss_i / sum_i w_i + alpha / 2 * ||weights||^2 / sum_i w_i``
    where "weights" are every penalised parameter (see
    :func:`~._alignments.param_layout`).  The sample weights are divided by
    their maximum first, so that no sum overflows or underflows whatever
    their scale.

    Parameters
    ----------
    params : dict of str -> ndarray
        All parameters, in the dtype of the workspace's elements.
    workspace : Workspace
        The elements, their blocks and work arrays (a fit makes one).
    alignment : str
        Key of :data:`~._alignments.ALIGNMENTS`.
    loss : str
        Key of :data:`~._losses.LOSSES`.
    targets : ndarray
        Encoded targets, as the loss expects them.
    sample_weight : ndarray of shape (n,)
        Non-negative, with a positive maximum.
    alpha : float

    Returns
    -------
    value : float
    grads : dict of str -> ndarray
        Same keys and shapes as ``params``; never views of the workspace.
    """
    scale, penalty = objective_scaling(sample_weight, alpha)
    value, pieces = data_terms(params, workspace, alignment, loss, targets, scale)
    return finish_objective(
        params, alignment, value, pieces, workspace.n_features, workspace.segments.n_heads, penalty
    )


def objective_scaling(sample_weight, alpha):
    """Each sample's factor ``w_i / sum_j w_j`` and the penalty ``alpha / sum_j w_j``.

    Computed once for all samples: the samples' terms may then be evaluated
    in any number of parts (blocks, partitions of a cluster) and added.

    Returns
    -------
    scale : ndarray of shape (n,), float64
    penalty : float
    """
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    relative = sample_weight / sample_weight.max()
    total_weight = float(np.sum(relative))  # in [1, n]: no overflow
    # alpha / sum_i w_i, without forming the sum of the raw weights
    return relative / total_weight, alpha / sample_weight.max() / total_weight


def data_terms(params, workspace, alignment, loss, targets, scale):
    """The data part of the objective over the samples of one workspace.

    Parameters
    ----------
    params, workspace, alignment, loss, targets
        As for :func:`loss_and_gradient`; ``targets`` belong to the
        workspace's samples.
    scale : ndarray of shape (n,)
        The workspace's samples' factors from :func:`objective_scaling`.

    Returns
    -------
    value : float
        The weighted loss of these samples (no penalty).
    pieces : dict of str -> ndarray
        Unpenalised gradient sums in the block layout, float64: the pieces
        of several workspaces are added, then :func:`finish_objective`
        turns the sum into gradients.
    """
    spec = ALIGNMENTS[alignment]
    D, K = workspace.n_features, workspace.segments.n_heads
    proj = _projections(params, spec, D, K, workspace.dtype)

    def term(unit, buffers):
        evaluate = _long_sample_term if isinstance(unit, _LongSample) else _block_term
        samples = unit.samples
        return evaluate(
            params, spec, unit, buffers, proj, loss, targets[samples], scale[samples]
        )

    value, pieces = 0.0, None
    for part_value, part in workspace.map(term):  # in unit order: no thread changes a bit
        value += part_value
        if pieces is None:
            pieces = {name: array.astype(np.float64) for name, array in part.items()}
        else:
            for name, array in part.items():
                pieces[name] += array
    return value, pieces


def finish_objective(params, alignment, value, pieces, n_features, n_heads, penalty):
    """Gradient sums of :func:`data_terms` -> the objective and its gradient.

    Adds the penalty (``penalty`` from :func:`objective_scaling`).

    Returns
    -------
    value : float
    grads : dict of str -> ndarray
        Same keys and shapes as ``params``; never views of ``pieces``.
    """
    spec = ALIGNMENTS[alignment]
    D, K = n_features, n_heads
    rows, head = pieces["in"], pieces["head"]  # rows [x; 1; u]
    grads = spec.finish(params, np.concatenate([rows[:D], rows[D + 1 :]]), rows[D])
    grads.update({name: pieces[name] for name, _ in spec.params if name in pieces})
    head = np.concatenate([head[:D], head[D + 1 :]])  # (D', K * O)
    D_read, O = head.shape[0], head.shape[1] // K
    grads["coef"] = head.reshape(D_read, K, O).transpose(1, 0, 2).reshape(K * D_read, O)
    grads["intercept"] = pieces["intercept"]
    if "E" in params:
        grads["E"], grads["e"] = pieces["embedding"][:D], pieces["embedding"][D]

    for name, kind in _kinds(params, alignment):
        if kind in PENALISED_KINDS:
            value += 0.5 * penalty * float(np.sum(params[name].astype(np.float64) ** 2))
            grads[name] = grads[name] + penalty * params[name]
        else:
            grads[name] = np.array(grads[name])  # own copy, never a workspace view
    return value, grads


def _kinds(params, alignment):
    yield from ALIGNMENTS[alignment].params
    if "E" in params:
        yield from (("E", "embedding"), ("e", "embedding_bias"))
    yield from (("coef", "coef"), ("intercept", "intercept"))


# --------------------------------------------------------------------------
# Inference: the same forward, no loss
# --------------------------------------------------------------------------


def attend(params, workspace, alignment, output):
    """Attention weights, pooled vectors or the head's output of every sample.

    The forward of :func:`loss_and_gradient`, block by block (in the
    workspace's threads), stopped before the loss.

    Parameters
    ----------
    params : dict of str -> ndarray
        All parameters, in the dtype of the workspace's elements.
    workspace : Workspace
    alignment : str
    output : {"weights", "pooled", "head"}

    Returns
    -------
    result : ndarray
        ``"weights"``: (N, K), each sample's weights summing to 1 per head;
        ``"pooled"``: (n, K * D'), ``[c_1, ..., c_K]`` per sample, each
        ``c_k`` the weighted average of ``h'_t = [x_t, u_t]``;
        ``"head"``: (n, O), ``sum_k c_k . coef_k`` without the intercept.
    """
    spec = ALIGNMENTS[alignment]
    D, K = workspace.n_features, workspace.segments.n_heads
    proj = _projections(params, spec, D, K, workspace.dtype)
    N, n = workspace.segments.n_elements, workspace.segments.n_samples
    width = {"weights": K, "pooled": K * (proj.alignment.shape[0] - 1), "head": proj.head.shape[1] // K}
    result = np.empty((N if output == "weights" else n, width[output]), dtype=workspace.dtype)

    def visit(unit, buffers):  # writes its own rows of result: no two threads share one
        if isinstance(unit, _LongSample):
            _attend_long_sample(params, spec, unit, buffers, proj, output, result, D)
            return
        forward = _block_forward(params, spec, unit, buffers, proj)
        H, scores, head_projection = forward[0], forward[2], forward[3]
        weights = segment_softmax(scores, unit.segments, out=buffers.get("weights", scores.shape))
        if output == "weights":
            result[unit.elements] = weights
        elif output == "pooled":
            # pooled over [x; 1; u]: the row of ones pools to 1 and is dropped
            context = unit.segments.pool(weights, H.T)  # (n, K, D' + 1)
            result[unit.samples] = _drop_ones(context, D).reshape(context.shape[0], -1)
        else:
            head = _pooled_head(weights, head_projection, unit.segments, buffers)
            result[unit.samples] = head.sum(axis=1)

    for _ in workspace.map(visit):
        pass
    return result


def _drop_ones(context, n_features):
    """(..., D' + 1) ordered [x, 1, u] -> (..., D') ordered [x, u]."""
    return np.delete(context, n_features, axis=-1)


def _attend_long_sample(params, spec, unit, buffers, proj, output, result, n_features):
    """:func:`attend` for one sample in pieces (two passes)."""
    shift, total, head = _long_sample_softmax(params, spec, unit, buffers, proj)
    if output == "head":
        result[unit.samples] = head.sum(axis=0)
        return
    dtype = buffers.dtype
    shift, total = shift.astype(dtype), total.astype(dtype)
    context = 0.0
    for piece in unit.pieces:
        H, _, scores, _ = _block_forward(params, spec, piece, buffers, proj)
        weights = _piece_weights(scores, shift, total, buffers)
        if output == "weights":
            result[piece.elements] = weights
        else:
            context = context + (H @ weights).T.astype(np.float64)  # (K, D' + 1)
    if output == "pooled":
        result[unit.samples] = _drop_ones(context, n_features).reshape(1, -1)
