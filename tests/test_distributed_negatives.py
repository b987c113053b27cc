"""Extra negative columns under DDP (marker ``distributed``): 2 processes, gloo over loopback.

``gather_negatives`` must give every rank the global ``(M, k, d)`` negatives in rank order (row ``i``
keeps its own negatives), with the all-gather's gradient (the sum over ranks) flowing back, and the
BSC loss on the gathered batch must equal the loss of one process on the concatenated batch.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.distributed
WORLD_SIZE = 2
SPLIT = [0, 3, 7]  # uneven: rank 0 rows 0-2, rank 1 rows 3-6


def _global_batch():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(7, 5, generator=g, dtype=torch.float64)
    a = torch.randn(7, 5, generator=g, dtype=torch.float64)
    n = torch.randn(7, 2, 5, generator=g, dtype=torch.float64)
    q_ids = torch.tensor([0, 1, 0, 2, 3, 1, 4])
    a_ids = torch.tensor([10, 11, 12, 13, 14, 15, 16])
    neg_ids = torch.tensor([[11, 20], [21, 22], [23, 10], [24, 25], [26, 27], [28, 29], [30, 14]])
    labels = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.7, 1.0, 0.2], dtype=torch.float64)
    return q, a, n, labels, q_ids, a_ids, neg_ids


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    from bscl.losses import functional as F
    from bscl.losses.distributed import gather_batch, gather_negatives

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        q, a, n, labels, q_ids, a_ids, neg_ids = _global_batch()
        rows = slice(SPLIT[rank], SPLIT[rank + 1])
        lq, la, ln = (t[rows].clone().requires_grad_(True) for t in (q, a, n))
        gq, ga, gy, gqi, gai = gather_batch(lq, la, labels[rows], q_ids[rows], a_ids[rows])
        gn, gni = gather_negatives(ln, neg_ids[rows])
        loss = F.bsc_loss(gq, ga, 0.2, labels=gy, q_ids=gqi, a_ids=gai, negatives=gn, neg_ids=gni)
        loss.backward()
        torch.save(
            {"n": gn.detach(), "neg_ids": gni, "loss": loss.detach(), "grad_n": ln.grad},
            os.path.join(out, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gathered_negatives_equal_the_concatenated_batch(tmp_path):
    from bscl.losses import functional as F

    mp.spawn(_worker, args=(WORLD_SIZE, _free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    q, a, n, labels, q_ids, a_ids, neg_ids = _global_batch()
    n_leaf = n.clone().requires_grad_(True)
    want = F.bsc_loss(q, a, 0.2, labels=labels, q_ids=q_ids, a_ids=a_ids, negatives=n_leaf, neg_ids=neg_ids)
    want.backward()
    for rank in range(WORLD_SIZE):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        torch.testing.assert_close(got["n"], n)
        assert torch.equal(got["neg_ids"], neg_ids)
        torch.testing.assert_close(got["loss"], want.detach(), atol=1e-12, rtol=1e-12)
        # every rank computed the same loss: the all-gather's backward sums W copies of dL/dn
        rows = slice(SPLIT[rank], SPLIT[rank + 1])
        torch.testing.assert_close(got["grad_n"], WORLD_SIZE * n_leaf.grad[rows], atol=1e-12, rtol=1e-12)
