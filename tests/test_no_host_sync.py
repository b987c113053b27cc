"""The per-step paths that used to copy to the host: the embedding cache records on the device and
copies once when read; text ids are computed where the tokens are (meta tensors have no data, so any
host copy there raises)."""

from __future__ import annotations

import numpy as np
import torch

from bscl.batching import EmbeddingCache
from bscl.losses.hashing import sequence_hash


def test_cache_records_without_touching_the_data_and_copies_once_on_read():
    cache = EmbeddingCache(num_examples=6, element="both")
    cache.start_epoch(1)
    for idx in ([0, 1], [2, 3]):
        cache.push(idx)
        cache(torch.empty(2, 4, device="meta"), torch.empty(2, 4, device="meta"))  # no host copy possible
    assert len(cache._staged) == 4 and cache.mismatches == 0


def test_cache_rows_after_the_one_copy_equal_the_step_rows():
    gen = torch.Generator().manual_seed(0)
    cache = EmbeddingCache(num_examples=5, element="first")
    batches = [([0, 1], torch.randn(2, 3, generator=gen)), ([3, 0], torch.randn(2, 3, generator=gen))]
    cache.start_epoch(2)
    for idx, rows in batches:
        cache.push(idx)
        cache(rows, rows)
    store, seen = cache.lookup(0)
    want = {0: batches[1][1][1], 1: batches[0][1][1], 3: batches[1][1][0]}  # index 0: the later row wins
    for i, row in want.items():
        np.testing.assert_allclose(store[i], (row / row.norm()).numpy(), rtol=1e-6)
    assert seen.tolist() == [True, True, False, True, False]
    assert cache.seen_epoch[0].tolist() == [2, 2, -1, 2, -1] and not cache._staged


def test_text_ids_run_on_the_tokens_device():
    ids = torch.zeros(3, 5, dtype=torch.int64, device="meta")
    out = sequence_hash(ids, torch.ones(3, 5, dtype=torch.int64, device="meta"))
    assert out.device.type == "meta" and out.shape == (3,)


def test_faiss_indexes_and_kmeans_move_to_the_gpus_when_faiss_sees_some(monkeypatch):
    """faiss-gpu is not installed here: fake one GPU and check what would move there."""
    import faiss

    from bscl.batching import grouping
    from bscl.batching.knn import KnnIndex, l2_normalize

    moved: list[str] = []
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(
        faiss,
        "index_cpu_to_all_gpus",
        lambda index: moved.append(type(index).__name__) or index,
        raising=False,
    )
    x = l2_normalize(np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32))
    KnnIndex(x, method="exact")
    KnnIndex(x, method="ivf", nlist=4)
    KnnIndex(x, method="hnsw")
    assert moved == ["IndexFlatIP", "IndexIVFFlat"]  # HNSW has no GPU version in faiss
    seen: list[object] = []
    real = faiss.Kmeans

    def kmeans(*args, **kwargs):
        seen.append(kwargs.get("gpu"))
        return real(*args, **{**kwargs, "gpu": False})

    monkeypatch.setattr(faiss, "Kmeans", kmeans)
    assert grouping.cluster_shingles(x, 4, np.random.default_rng(0)).shape == (300,)
    assert seen == [True]
