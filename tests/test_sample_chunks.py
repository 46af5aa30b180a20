"""gen_sample_chunks: slices of whole samples within a memory budget."""

import numpy as np
import sklearn

from sk_attention._collections import gen_sample_chunks


def test_gen_sample_chunks_respects_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, size=500)
    lengths[7] = 5000  # one sample larger than the budget
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    element_bytes, sample_bytes, working_memory = 64, 256, 0.1
    budget = working_memory * 2**20
    chunks = list(gen_sample_chunks(offsets, element_bytes, sample_bytes, working_memory))
    # consecutive, covering every sample once, in order
    assert chunks[0].start == 0 and chunks[-1].stop == len(lengths)
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
    for chunk in chunks:
        n_el = offsets[chunk.stop] - offsets[chunk.start]
        cost = n_el * element_bytes + (chunk.stop - chunk.start) * sample_bytes
        # within budget, unless the chunk is one sample too large by itself
        assert cost <= budget or chunk.stop - chunk.start == 1
        # as long as the budget allows: one more sample would not fit
        if chunk.stop < len(lengths):
            more = cost + lengths[chunk.stop] * element_bytes + sample_bytes
            assert more > budget


def test_gen_sample_chunks_follows_sklearn_working_memory():
    offsets = np.arange(0, 1001, 10)  # 100 samples of 10 elements
    with sklearn.config_context(working_memory=1):
        chunks = list(gen_sample_chunks(offsets, element_bytes=2**20 // 50))
    # 1 MiB holds 50 elements: 5 samples per chunk
    assert [c.stop - c.start for c in chunks] == [5] * 20
