"""Worker functions for tests/test_distributed.py, run by ``torch.multiprocessing.spawn``.

Each worker joins a gloo process group over loopback and writes its results to ``out/rank{r}_*.pt``;
the test process compares them with a single-process run on the concatenated batch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

# the global batch (14 pairs with duplicates and graded labels), split unevenly over 2 ranks
QUERIES = [
    "red cat", "blue dog", "red cat", "green bird sings", "old tree", "a big house", "blue dog",
    "fast car", "sad cat sleeps", "happy dog", "new house", "red cat", "small bird", "slow car runs",
]  # fmt: skip
ANSWERS = [
    "a red cat", "the blue dog", "a red kitten", "green bird", "an old tree", "big house", "a dog",
    "car fast", "the cat sleeps", "a happy dog", "new house", "cat red", "a bird", "a slow car",
]  # fmt: skip
LABELS = [1.0, 0.9, 0.2, 1.0, 0.7, 0.0, 0.8, 1.0, 0.6, 0.3, 1.0, 0.9, 0.1, 1.0]
SPLIT = [0, 8, 14]  # rank 0: rows 0-7, rank 1: rows 8-13 (uneven on purpose; dups across ranks)

# (loss name, options): the options that depend on the whole batch
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "bsc-dups-labels-coordinate-tau": (
        "bsc",
        {
            "tau": 1.0,
            "use_labels": True,
            "threshold": 0.6,
            "duplicates": True,
            "normalization": "coordinate",
            "trainable_tau": True,
        },
    ),  # fmt: skip
    "combo-dups": ("combo", {"tau": 0.1, "mu": 0.5, "duplicates": True}),
    "focal-infonce-tau": ("focal-infonce", {"tau": 0.1, "trainable_tau": True, "symmetric": True}),
    "softcse-weight-dups": ("softcse-weight", {"tau": 0.1, "beta": -1.0, "duplicates": True}),
}
MINI_BATCH_SIZE = 3
PADDING_FREE_CASE = "bsc-dups-labels-coordinate-tau"  # also run with the padding-free forward


def init(rank: int, world_size: int, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)


def grads_of(model: torch.nn.Module, loss: torch.nn.Module) -> dict[str, torch.Tensor]:
    named = dict(model.named_parameters())
    named.update({f"loss.{n}": p for n, p in loss.loss.named_parameters()})
    return {n: p.grad.detach().clone() for n, p in named.items() if p.grad is not None}


def loss_and_grads(model, loss, queries, answers, labels) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One forward / backward of ``loss`` on the pairs; the loss's ``model`` may be a DDP wrapper."""
    inner = model.module if hasattr(model, "module") else model
    inner.zero_grad(set_to_none=True)
    loss.loss.zero_grad(set_to_none=True)
    features = [inner.preprocess(queries), inner.preprocess(answers)]
    value = loss(features, torch.tensor(labels, dtype=torch.float64))
    value.backward()
    return value.detach(), grads_of(inner, loss)


def build(model, case: str, cached: bool, gather: bool):
    from bscl.losses import STLoss
    from bscl.losses.modules import build_loss

    name, kwargs = CASES[case]
    inner = build_loss(name, **kwargs).double()
    if cached:
        return STLoss(model, inner, mini_batch_size=MINI_BATCH_SIZE, gather_across_processes=gather)
    return STLoss(model, inner, gather_across_processes=gather)


def equivalence_worker(rank: int, world_size: int, port: int, out: str) -> None:
    """Loss value and gradients of every case, plain and cached, under DDP with cross-process negatives."""
    from torch.nn.parallel import DistributedDataParallel

    from bscl.models import load_model

    init(rank, world_size, port)
    try:
        model = load_model("tiny", seed=0).double().eval()
        # one wrapper (DDP hooks the parameters once); the tiny BERT's pooler is unused by mean pooling, and HF
        # Trainer also passes find_unused_parameters=True for a SentenceTransformer
        ddp = DistributedDataParallel(model, find_unused_parameters=True)
        rows = slice(SPLIT[rank], SPLIT[rank + 1])
        results = {}
        for case in CASES:
            for cached in (False, True):
                loss = build(ddp, case, cached, gather=True)
                results[(case, cached)] = loss_and_grads(
                    ddp, loss, QUERIES[rows], ANSWERS[rows], LABELS[rows]
                )
        # the first case again with the padding-free forward (bscl.padding_free): same numbers
        free = load_model("tiny", seed=0, padding_free=True).double().eval()
        ddp_free = DistributedDataParallel(free, find_unused_parameters=True)
        for cached in (False, True):
            loss = build(ddp_free, PADDING_FREE_CASE, cached, gather=True)
            results[("padding-free", cached)] = loss_and_grads(
                ddp_free, loss, QUERIES[rows], ANSWERS[rows], LABELS[rows]
            )
        torch.save(results, Path(out) / f"rank{rank}_equivalence.pt")
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------
# a few real training steps with BSCLTrainer under DDP
# ------------------------------------------------------------------------------------------------
TRAIN_STEPS = 3
PER_DEVICE_BATCH = 4


def sequential_batches(
    dataset, batch_size, drop_last=False, valid_label_columns=None, generator=None, seed=0
):
    """Batches in dataset order: under DDP, accelerate gives rank r the batches r, r + W, ...; so the
    concatenation of the ranks' k-th batches is the single-process batch k of size W * batch_size."""
    from torch.utils.data import BatchSampler, SequentialSampler

    return BatchSampler(SequentialSampler(range(len(dataset))), batch_size, drop_last)


def train(out: str, batch_size: int, cached: bool, gather: bool) -> dict[str, Any]:
    """Train the tiny model (dropout off) for TRAIN_STEPS steps; returns weights, tau and losses."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainingArguments

    from bscl.losses import STLoss
    from bscl.losses.modules import build_loss
    from bscl.models import load_model
    from bscl.training import BSCLTrainer

    model = load_model("tiny", seed=0)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    n = 2 * PER_DEVICE_BATCH * TRAIN_STEPS
    data = Dataset.from_dict(
        {"anchor": (QUERIES * 2)[:n], "positive": (ANSWERS * 2)[:n], "label": (LABELS * 2)[:n]}
    )
    inner = build_loss("bsc", tau=0.1, duplicates=True, use_labels=True, trainable_tau=True)
    if cached:
        loss = STLoss(model, inner, mini_batch_size=MINI_BATCH_SIZE, gather_across_processes=gather)
    else:
        loss = STLoss(model, inner, gather_across_processes=gather)
    args = SentenceTransformerTrainingArguments(
        output_dir=out,
        max_steps=TRAIN_STEPS,
        per_device_train_batch_size=batch_size,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        **({"use_cpu": True, "ddp_backend": "gloo"} if dist.is_initialized() else {}),
        batch_sampler=sequential_batches,
        dataloader_drop_last=False,
        disable_tqdm=True,
    )
    trainer = BSCLTrainer(model=model, args=args, train_dataset=data, loss=loss, tau_learning_rate=0.05)
    trainer.train()
    return {
        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "tau": inner.temperature.value,
        "losses": [row["loss"] for row in trainer.state.log_history if "loss" in row],
    }


def training_worker(rank: int, world_size: int, port: int, out: str) -> None:
    init(rank, world_size, port)
    try:
        results = {
            cached: train(str(Path(out) / f"train-{cached}"), PER_DEVICE_BATCH, cached, gather=True)
            for cached in (False, True)
        }
        torch.save(results, Path(out) / f"rank{rank}_training.pt")
    finally:
        dist.destroy_process_group()
