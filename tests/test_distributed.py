"""Multi-process training: 2 processes, gloo over loopback, CPU (marker ``distributed``).

Cross-process negatives must give each rank the loss of the concatenated batch and, after DDP's
gradient averaging, the gradients of one process on the concatenated batch -- plain and cached.
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

import helpers_distributed as H
from bscl.models import load_model

pytestmark = pytest.mark.distributed
WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(fn, out) -> list:
    load_model("tiny", seed=0)  # build the tiny model's files once, before the workers race for them
    mp.spawn(fn, args=(WORLD_SIZE, _free_port(), str(out)), nprocs=WORLD_SIZE, join=True)
    name = fn.__name__.removesuffix("_worker")
    return [torch.load(out / f"rank{r}_{name}.pt", weights_only=False) for r in range(WORLD_SIZE)]


def _close(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], atol: float, rtol: float) -> None:
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=atol, rtol=rtol, msg=name)


def test_gathered_loss_and_gradients_equal_the_concatenated_batch(tmp_path):
    ranks = _spawn(H.equivalence_worker, tmp_path)
    model = load_model("tiny", seed=0).double().eval()
    for case in H.CASES:
        plain = H.build(model, case, cached=False, gather=False)
        want_value, want_grads = H.loss_and_grads(model, plain, H.QUERIES, H.ANSWERS, H.LABELS)
        # the local loss differs from the global one: the test can tell the two apart
        local, _ = H.loss_and_grads(model, plain, H.QUERIES[:8], H.ANSWERS[:8], H.LABELS[:8])
        assert not torch.allclose(local, want_value)
        for cached in (False, True):
            for rank, results in enumerate(ranks):
                value, grads = results[(case, cached)]
                torch.testing.assert_close(
                    value, want_value, atol=1e-9, rtol=1e-9, msg=f"{case} {cached} {rank}"
                )
                _close(grads, want_grads, atol=1e-9, rtol=1e-7)
        if case == H.PADDING_FREE_CASE:  # DDP + padding-free forward == one padded process
            for cached in (False, True):
                for rank, results in enumerate(ranks):
                    value, grads = results[("padding-free", cached)]
                    torch.testing.assert_close(value, want_value, atol=1e-9, rtol=1e-9, msg=f"pf {rank}")
                    _close(grads, want_grads, atol=1e-9, rtol=1e-7)


@pytest.mark.slow
def test_ddp_training_matches_single_process_on_the_concatenated_batch(tmp_path):
    ranks = _spawn(H.training_worker, tmp_path)
    want = H.train(str(tmp_path / "single"), WORLD_SIZE * H.PER_DEVICE_BATCH, cached=False, gather=False)
    assert want["tau"] != pytest.approx(0.1, abs=1e-4)  # the temperature trained
    for cached in (False, True):
        r0, r1 = ranks[0][cached], ranks[1][cached]
        # identical on all ranks (DDP syncs the encoder; the temperature sees the same gradient everywhere)
        _close(r1["weights"], r0["weights"], atol=0, rtol=0)
        assert r0["tau"] == r1["tau"]
        # and equal to one process on the concatenated batches
        _close(r0["weights"], want["weights"], atol=1e-5, rtol=1e-5)
        assert r0["tau"] == pytest.approx(want["tau"], abs=1e-6)
        assert r0["losses"] == pytest.approx(want["losses"], abs=1e-5)
