"""The elements of a fit or a prediction, cut into cache-sized blocks.

Every step of the attention math but the final gradient sums is local to a
sample, so an evaluation walks blocks of a few thousand elements one after
another: the block's work arrays stay in the CPU cache between the passes
over them, the cost per element does not grow with the number of elements,
and no work array holds more than one block whatever the sample lengths.

Notation of the shape comments: ``N_b`` elements of a block, ``D``
features per element.
"""

import queue
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._segments import Segments

__all__ = ["Workspace"]


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
    """Consecutive elements: whole samples, or one piece of a longer sample.

    ``elements_t`` gives the block's ``[x | 1].T``, C-contiguous: the
    weight-gradient products ``[x | 1].T @ R`` are faster on that layout
    and the forward products read its transpose as it is (an F-ordered
    operand, which BLAS takes as it is).  A fit stores it once for every
    evaluation; a prediction builds it when the block is visited.
    """

    def __init__(self, P, offsets, n_heads, samples, storage=None):
        lo, hi = int(offsets[0]), int(offsets[-1])
        self.samples = samples  # slice of the samples it owns (or is a piece of)
        self.elements = slice(lo, hi)  # its elements in the packed array
        self.segments = Segments(offsets - lo, n_heads)
        self._P = P
        self._stored = None
        if storage is not None:
            D = P.shape[1]
            # copied block by block: one transposing copy of all N elements
            # strides through memory (~3x slower)
            stored = storage[lo * (D + 1) : hi * (D + 1)].reshape(D + 1, hi - lo)
            self._fill(stored)
            self._stored, self._P = stored, None  # the elements are held once

    def _fill(self, out):
        D = out.shape[0] - 1
        out[:D] = self._P[self.elements].T
        out[D] = 1.0  # stands in for the biases in both products

    def elements_t(self, buffers):
        """``[x | 1].T`` of the block, shape (D + 1, N_b)."""
        if self._stored is not None:
            return self._stored
        out = buffers.get("elements_t", (self._P.shape[1] + 1, self.elements.stop - self.elements.start))
        self._fill(out)
        return out


class _LongSample:
    """One sample longer than a block, as pieces of at most ``block_size`` elements.

    Its softmax needs the sample's maximum score and sum of exponentials,
    which the pieces give one after another; a second pass then recomputes
    each piece, so no work array ever holds more than one piece.
    """

    def __init__(self, P, start, stop, n_heads, sample, block_size, storage=None):
        n_pieces = -(-(stop - start) // block_size)
        bounds = np.linspace(start, stop, n_pieces + 1).round().astype(np.int64)
        self.samples = slice(sample, sample + 1)
        self.pieces = [
            _Block(P, np.array([lo, hi]), n_heads, self.samples, storage)
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]


class _Buffers:
    """Work arrays of one thread, reused by every block and every evaluation."""

    def __init__(self, dtype):
        self.dtype = dtype
        self._flat = {}

    def get(self, name, shape):
        """An uninitialised, C-contiguous work array of ``shape``.

        Shapes vary from block to block: each name keeps one flat array,
        grown to the largest request so far, and hands out its beginning.
        """
        size = int(np.prod(shape))
        flat = self._flat.get(name)
        if flat is None or flat.size < size:
            flat = np.empty(size, dtype=self.dtype)
            self._flat[name] = flat
        return flat[:size].reshape(shape)


class Workspace:
    """Packed elements cut into blocks, and the work arrays of the threads.

    The samples are cut into *units* of about ``block_size`` elements:
    runs of whole samples, and every sample longer than ``block_size`` on
    its own, in pieces of at most ``block_size`` elements.  Units are
    independent: ``n_threads`` threads evaluate them in parallel (NumPy
    releases the GIL in its products and element-wise loops), each with its
    own work arrays, and :meth:`map` gives their results in unit order.
    How the samples are cut depends on the offsets and ``block_size`` only,
    so a fit that adds the unit results in that order gives the same
    parameters with any number of threads.

    Parameters
    ----------
    P : ndarray of shape (N, D)
        Packed elements.
    segments : Segments
    n_threads : int, default=1
        Threads that evaluate units in parallel (at most one per unit).
    block_size : int, default=4096
        Elements per unit, about (see :func:`_cut_blocks`).  At 4096 the
        work arrays of a block stay within a few MiB, and the Python
        overhead per block is a few per cent of its products.
    store : bool, default=True
        Keep a copy of the elements, block by block as ``[x | 1].T``, for
        many evaluations (a fit).  Without it (a prediction, one pass) each
        block is copied into a work array when it is visited.

    Attributes
    ----------
    units : list of _Block or _LongSample
        In sample order.
    segments : Segments
    n_threads : int
    dtype : dtype
        That of the elements (float32 or float64).
    n_features : int
    """

    def __init__(self, P, segments, n_threads=1, block_size=4096, store=True):
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}.")
        offsets, K = segments.offsets, segments.n_heads
        N, D = P.shape
        self.segments = segments
        self.dtype = P.dtype
        self.n_features = D
        storage = np.empty(N * (D + 1), dtype=P.dtype) if store else None
        self.units = []
        bounds = _cut_blocks(offsets, int(block_size))
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi - lo == 1 and offsets[hi] - offsets[lo] > block_size:
                unit = _LongSample(P, offsets[lo], offsets[hi], K, lo, block_size, storage)
            else:
                unit = _Block(P, offsets[lo : hi + 1], K, slice(lo, hi), storage)
            self.units.append(unit)
        self.n_threads = max(1, min(int(n_threads), len(self.units)))
        self._idle_buffers = queue.SimpleQueue()
        for _ in range(self.n_threads):
            self._idle_buffers.put(_Buffers(P.dtype))

    @property
    def nbytes(self):
        """Bytes of its stored elements and offsets (work arrays, a few MiB, aside).

        What dask's memory accounting reads (through ``__sizeof__``) for a
        workspace held on a worker.
        """
        blocks = [piece for unit in self.units for piece in getattr(unit, "pieces", [unit])]
        stored = sum(block._stored.nbytes for block in blocks if block._stored is not None)
        return stored + self.segments.offsets.nbytes

    def stored_elements(self):
        """The packed elements (N, D), rebuilt from the stored blocks.

        A workspace built with ``store=True`` keeps its elements only as
        ``[x | 1].T`` block by block; this gives them back in packed order
        (for pickling a workspace without holding its elements twice).
        """
        blocks = [piece for unit in self.units for piece in getattr(unit, "pieces", [unit])]
        if any(block._stored is None for block in blocks):
            raise ValueError("Only a workspace built with store=True holds its elements.")
        D = self.n_features
        elements = np.empty((self.segments.n_elements, D), dtype=self.dtype)
        for block in blocks:
            elements[block.elements] = block._stored[:D].T
        return elements

    def map(self, function):
        """``function(unit, buffers)`` for every unit, the results in unit order.

        Whichever thread finishes first, the results come in the order of
        the units: a sum over them does not depend on the thread count.
        """

        def run(unit):
            buffers = self._idle_buffers.get()
            try:
                return function(unit, buffers)
            finally:
                self._idle_buffers.put(buffers)

        if self.n_threads == 1:
            yield from map(run, self.units)
            return
        with ThreadPoolExecutor(max_workers=self.n_threads) as executor:
            yield from executor.map(run, self.units)
