"""The general attention mechanism, as plain NumPy functions.

Attention as Bahdanau et al. (2014) wrote it for an encoder-decoder: the
encoder states ``h_1 .. h_T`` of one sequence are scored against a query
(the decoder state ``s``), the scores become softmax weights over the
sequence, and the weights average the states into a context vector::

    e_t = v . tanh(W h_t + U s + b)       alignment_scores(states, query, W, U, v, b)
    a   = softmax(e)                      softmax(scores)
    c   = sum_t a_t h_t                   context_vector(states, weights)

:func:`general_attention` does all three.  The gated form of Ilse et al.
(2018) and the scaled dot product follow the same pattern
(:func:`gated_alignment_scores`, :func:`scaled_dot_scores`).  Every function
takes one query ``(d_q,)`` or a batch of queries ``(Q, d_q)``: scores and
weights are then ``(T,)`` or ``(Q, T)``, contexts ``(D,)`` or ``(Q, D)``.

Without a query (``query=None`` and ``U=None``) the ``U s`` term drops out,
and these are exactly the heads of the package's estimators, whose learned
bias ``b`` (or, for "dot", learned query ``q``) plays the role of ``U s``.
Head ``k`` of a fitted estimator with ``hidden_size=H`` reads, in these
functions' names:

===========  ==================================  ===============================
alignment    scores                              from ``coefs_`` / ``intercepts_``
===========  ==================================  ===============================
"additive"   ``alignment_scores``                ``W = coefs_["W"][:, k*H:(k+1)*H]``,
                                                 ``v = coefs_["v"][k]``,
                                                 ``b = intercepts_["b"][k*H:(k+1)*H]``
"gated"      ``gated_alignment_scores``          as "additive", and
                                                 ``W_gate = coefs_["U"][:, k*H:(k+1)*H]``,
                                                 ``b_gate = intercepts_["c"][k*H:(k+1)*H]``
"dot"        ``scaled_dot_scores``               ``W = coefs_["W"][:, k*H:(k+1)*H]``,
                                                 ``q = coefs_["q"][k]``
===========  ==================================  ===============================

With ``embedding_size`` set, the heads read ``element_embedding(sample,
coefs_["embedding"], intercepts_["embedding"])`` instead of the sample.
The estimators' pooled vector of a sample is the concatenation of the heads'
context vectors, and their linear head computes
``pooled @ coefs_["head"] + intercepts_["head"]``.

These functions are a readable reference, written for clarity on one
sequence at a time; the estimators compute the same numbers on packed,
blocked arrays.
"""

import numpy as np
from scipy.special import expit

__all__ = [
    "element_embedding",
    "alignment_scores",
    "gated_alignment_scores",
    "scaled_dot_scores",
    "softmax",
    "context_vector",
    "general_attention",
]


def _check_states(states):
    states = np.asarray(states)
    if states.ndim != 2:
        raise ValueError(
            f"states must be a 2D array (n_steps, n_features), got {states.ndim} dimensions."
        )
    if states.shape[0] == 0:
        raise ValueError("states holds no step; at least one is required.")
    return states


def _query_term(query, U, n_hidden):
    """``U s`` as (H,) for one query, (Q, H) for a batch, or 0 without a query."""
    if query is None:
        if U is not None:
            raise ValueError("U is given but query is None: pass both or neither.")
        return 0.0
    if U is None:
        raise ValueError("query is given but U is None: pass both or neither.")
    query = np.asarray(query)
    if query.ndim not in (1, 2):
        raise ValueError(
            f"query must have shape (d_q,) or (n_queries, d_q), got {query.ndim} dimensions."
        )
    U = np.asarray(U)
    if U.shape[1] != n_hidden:
        raise ValueError(f"U has {U.shape[1]} columns, but W has {n_hidden}.")
    return query @ U


def _pre_activation(states, query, W, U, b):
    """``W h_t + U s + b`` for every step: (T, H), or (Q, T, H) for a batch of queries."""
    projected = states @ np.asarray(W)  # (T, H)
    shift = _query_term(query, U, projected.shape[1])
    if b is not None:
        shift = shift + np.asarray(b)
    shift = np.asarray(shift)
    if shift.ndim == 2:  # a batch of queries: (Q, 1, H) + (T, H)
        return shift[:, None, :] + projected
    return projected + shift


def alignment_scores(states, query, W, U, v, b=None):
    """Additive (Bahdanau) alignment scores of every step against a query.

    ``e_t = v . tanh(W h_t + U s + b)``

    Parameters
    ----------
    states : array-like of shape (n_steps, n_features)
        The encoder states ``h_1 .. h_T`` (the elements of one sample).
    query : array-like of shape (d_q,) or (n_queries, d_q), or None
        The decoder state ``s`` (or several); None drops the ``U s`` term.
    W : array-like of shape (n_features, hidden_size)
        Applied to the states.
    U : array-like of shape (d_q, hidden_size) or None
        Applied to the query; None exactly when ``query`` is None.
    v : array-like of shape (hidden_size,)
        The alignment MLP's output vector.
    b : array-like of shape (hidden_size,), default=None
        Bias of the hidden layer.

    Returns
    -------
    scores : ndarray of shape (n_steps,) or (n_queries, n_steps)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.functional import alignment_scores
    >>> states = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> W, U, v = np.eye(2), np.eye(2), np.array([1.0, -1.0])
    >>> alignment_scores(states, np.array([0.0, 0.0]), W, U, v).round(3)
    array([ 0.762, -0.762,  0.   ])
    >>> alignment_scores(states, np.zeros((4, 2)), W, U, v).shape
    (4, 3)
    """
    states = _check_states(states)
    return np.tanh(_pre_activation(states, query, W, U, b)) @ np.asarray(v)


def gated_alignment_scores(states, query, W, U, v, W_gate, U_gate, b=None, b_gate=None):
    """Gated alignment scores (Ilse, Tomczak & Welling, 2018).

    ``e_t = v . (tanh(W h_t + U s + b) * sigmoid(W_gate h_t + U_gate s + b_gate))``

    Parameters
    ----------
    states : array-like of shape (n_steps, n_features)
        The encoder states.
    query : array-like of shape (d_q,) or (n_queries, d_q), or None
        The decoder state(s); None drops both query terms.
    W : array-like of shape (n_features, hidden_size)
        Applied to the states, inside the tanh.
    U : array-like of shape (d_q, hidden_size) or None
        Applied to the query, inside the tanh.
    v : array-like of shape (hidden_size,)
        Output vector.
    W_gate : array-like of shape (n_features, hidden_size)
        Applied to the states, inside the sigmoid gate.
    U_gate : array-like of shape (d_q, hidden_size) or None
        Applied to the query, inside the gate.
    b : array-like of shape (hidden_size,), default=None
        Bias inside the tanh.
    b_gate : array-like of shape (hidden_size,), default=None
        Bias inside the gate.

    Returns
    -------
    scores : ndarray of shape (n_steps,) or (n_queries, n_steps)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.functional import gated_alignment_scores
    >>> states = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> gated_alignment_scores(states, None, np.eye(2), None, np.ones(2),
    ...                        np.zeros((2, 2)), None).round(3)
    array([0.381, 0.381])
    """
    states = _check_states(states)
    values = np.tanh(_pre_activation(states, query, W, U, b))
    gates = expit(_pre_activation(states, query, W_gate, U_gate, b_gate))
    return (values * gates) @ np.asarray(v)


def scaled_dot_scores(states, query, W, U, q=None):
    """Scaled dot-product scores of every step against a query.

    ``e_t = (U s + q) . (W h_t) / sqrt(hidden_size)``

    Parameters
    ----------
    states : array-like of shape (n_steps, n_features)
        The encoder states (keys ``W h_t``).
    query : array-like of shape (d_q,) or (n_queries, d_q), or None
        The decoder state(s), projected by ``U``; None drops that term.
    W : array-like of shape (n_features, hidden_size)
        Projects the states to keys.
    U : array-like of shape (d_q, hidden_size) or None
        Projects the query.
    q : array-like of shape (hidden_size,), default=None
        A learned query added to ``U s`` (the estimators' "dot" heads use
        ``q`` alone).

    Returns
    -------
    scores : ndarray of shape (n_steps,) or (n_queries, n_steps)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.functional import scaled_dot_scores
    >>> states = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> scaled_dot_scores(states, None, np.eye(2), None, q=np.array([2.0, 0.0])).round(3)
    array([1.414, 0.   ])
    """
    states = _check_states(states)
    keys = states @ np.asarray(W)  # (T, H)
    queries = _query_term(query, U, keys.shape[1])
    if q is not None:
        queries = queries + np.asarray(q)
    queries = np.asarray(queries)
    if queries.ndim == 0:
        raise ValueError("scaled_dot_scores needs a query, a learned q, or both.")
    return queries @ keys.T / np.sqrt(keys.shape[1])


def element_embedding(states, W_e, b_e=None):
    """Every state followed by its learned embedding: ``[h_t, relu(W_e h_t + b_e)]``.

    With ``embedding_size=M`` the estimators attend over these instead of
    the elements themselves (``W_e = coefs_["embedding"]``, ``b_e =
    intercepts_["embedding"]``): pass the result as ``states`` to the
    other functions.

    Parameters
    ----------
    states : array-like of shape (n_steps, n_features)
    W_e : array-like of shape (n_features, embedding_size)
    b_e : array-like of shape (embedding_size,), default=None

    Returns
    -------
    embedded : ndarray of shape (n_steps, n_features + embedding_size)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.functional import element_embedding
    >>> element_embedding(np.array([[1.0, -2.0]]), np.array([[1.0, 0.0], [0.0, -1.0]]))
    array([[ 1., -2.,  1.,  2.]])
    """
    states = _check_states(states)
    hidden = states @ np.asarray(W_e)
    if b_e is not None:
        hidden = hidden + np.asarray(b_e)
    return np.hstack([states, np.maximum(hidden, 0.0)])


def softmax(scores):
    """Attention weights: the softmax of the scores over the steps (last axis).

    Parameters
    ----------
    scores : array-like of shape (n_steps,) or (n_queries, n_steps)

    Returns
    -------
    weights : ndarray of the same shape
        Non-negative, summing to 1 over the steps.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.functional import softmax
    >>> softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    scores = np.asarray(scores, dtype=float)
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def context_vector(states, weights):
    """The context vector: the states averaged with the attention weights.

    ``c = sum_t a_t h_t``

    Parameters
    ----------
    states : array-like of shape (n_steps, n_features)
    weights : array-like of shape (n_steps,) or (n_queries, n_steps)

    Returns
    -------
    context : ndarray of shape (n_features,) or (n_queries, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.functional import context_vector
    >>> context_vector(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.25, 0.75]))
    array([0.25, 0.75])
    """
    states = _check_states(states)
    weights = np.asarray(weights)
    if weights.shape[-1] != states.shape[0]:
        raise ValueError(
            f"weights cover {weights.shape[-1]} steps, but states has {states.shape[0]}."
        )
    return weights @ states


def general_attention(states, query, W, U, v, b=None):
    """Additive attention of a query over a sequence: weights and context.

    ``softmax(alignment_scores(...))`` and :func:`context_vector` in one call.

    Parameters
    ----------
    states : array-like of shape (n_steps, n_features)
        The encoder states.
    query : array-like of shape (d_q,) or (n_queries, d_q), or None
        The decoder state(s); None gives one head of the estimators.
    W : array-like of shape (n_features, hidden_size)
    U : array-like of shape (d_q, hidden_size) or None
    v : array-like of shape (hidden_size,)
    b : array-like of shape (hidden_size,), default=None

    Returns
    -------
    weights : ndarray of shape (n_steps,) or (n_queries, n_steps)
    context : ndarray of shape (n_features,) or (n_queries, n_features)

    See Also
    --------
    alignment_scores, softmax, context_vector

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.functional import general_attention
    >>> states = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> weights, context = general_attention(
    ...     states, np.array([1.0]), np.eye(2), np.array([[1.0, -1.0]]), np.array([2.0, 0.0]))
    >>> weights.round(3), context.round(3)
    (array([0.6, 0.4]), array([0.6, 0.4]))
    """
    weights = softmax(alignment_scores(states, query, W, U, v, b))
    return weights, context_vector(states, weights)
