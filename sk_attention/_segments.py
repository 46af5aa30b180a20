"""Samples as segments of the packed element array, and the softmax over each.

Notation of the shape comments: ``N`` elements (all samples stacked),
``n`` samples, ``K`` heads, ``m`` any number of columns.
"""

import numpy as np
from scipy import sparse

__all__ = ["Segments", "segment_softmax"]


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
        self._sum_matrices = {}
        self._pool_matrices = {}

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
        elements : ndarray of shape (N, m)

        Returns
        -------
        context : ndarray of shape (n, K, m)
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
        context = matrix @ elements  # (K * n, m)
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
    >>> from sk_attention._segments import Segments, segment_softmax
    >>> seg = Segments([0, 2, 3], n_heads=1)
    >>> segment_softmax(np.array([[0.0], [np.log(3.0)], [5.0]]), seg).ravel()
    array([0.25, 0.75, 1.  ])
    """
    out = np.subtract(scores, segments.spread(segments.max(scores)), out=out)
    np.exp(out, out=out)
    out /= segments.spread(segments.sum(out))
    return out
