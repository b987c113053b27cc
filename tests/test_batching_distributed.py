"""Two real processes (gloo over loopback): same global order on every rank, cache merged across ranks."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.distributed

N, B, DIM = 90, 8, 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    from accelerate.data_loader import BatchSamplerShard
    from datasets import Dataset

    from bscl.batching import make_batch_sampler

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        ds = Dataset.from_dict({"q": [f"q{i}" for i in range(N)], "a": [f"a{i}" for i in range(N)]})
        calls: list[int] = []

        def encoder(texts: list[str]) -> np.ndarray:
            # rank-dependent on purpose: only rank 0's grouping may count
            calls.append(len(texts))
            x = np.random.default_rng(rank).standard_normal((len(texts), DIM)).astype(np.float32)
            return x / np.linalg.norm(x, axis=1, keepdims=True)

        factory = make_batch_sampler("example", group_size=4, n_candidates=32, reuse_embeddings=True)
        factory.encoder = encoder
        sampler = factory(ds, batch_size=B, drop_last=False, seed=5)
        assert (sampler.rank, sampler.world_size) == (rank, world_size)
        shard = BatchSamplerShard(sampler, num_processes=world_size, process_index=rank, even_batches=False)
        cache = factory.embedding_cache
        assert cache is not None
        result: dict[str, object] = {}
        for epoch in range(2):
            sampler.set_epoch(epoch)
            mine = list(shard)
            for batch in mine:  # the loss callback: rows encode their index
                q = torch.zeros(len(batch), DIM)
                q[:, 0] = 1.0
                q[:, 1] = torch.tensor(batch, dtype=torch.float32)
                cache(q, -q)
            result[f"order{epoch}"] = sampler.epoch_order().tolist()
            result[f"mine{epoch}"] = mine
        cache.synchronize()
        rows, seen = cache.lookup(0)
        assert rows is not None
        result["seen_all"] = bool(seen.all())
        result["decoded"] = np.rint(rows[:, 1] / rows[:, 0]).astype(int).tolist()
        result["calls"] = calls
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_two_processes_share_order_and_cache(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads(Path(tmp_path, f"rank{r}.json").read_text()) for r in range(2))
    for epoch in range(2):
        assert r0[f"order{epoch}"] == r1[f"order{epoch}"]  # broadcast from rank 0
        order = r0[f"order{epoch}"]
        assert sorted(order) == list(range(N))
        for j, (a, b) in enumerate(zip(r0[f"mine{epoch}"], r1[f"mine{epoch}"], strict=False)):
            assert a + b == order[j * 2 * B : (j + 1) * 2 * B]  # rank slices cover global batch j
        seen = [i for part in r0[f"mine{epoch}"] + r1[f"mine{epoch}"] for batch in [part] for i in batch]
        assert sorted(seen) == list(range(N))
    assert r0["order0"] != r0["order1"]
    # epoch 1 encoded once on rank 0 only; epoch 2 reused the merged cache (no encode anywhere)
    assert r0["calls"] == [N] and r1["calls"] == []
    assert r0["seen_all"] and r1["seen_all"]
    assert r0["decoded"] == list(range(N)) == r1["decoded"]
