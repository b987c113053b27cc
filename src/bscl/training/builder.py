"""The run builder: a resolved :class:`~bscl.training.config.RunConfig`, a task and a model -> a ready
:class:`~bscl.training.trainer.BSCLTrainer`.

:func:`build_trainer` wires the training data (subset, mined hard negatives), the loss and its batch
sampler (the ``--loss.name`` registry entry decides: a bscl loss with bscl's batch sampler, or a
sentence-transformers recipe with its own sampler and data), the dev evaluator, the callbacks and the
trainer arguments. ``bscl train`` (:func:`bscl.run.train_seed`) and the throughput benchmark use it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bscl.training.hf import training_arguments
from bscl.training.peers import PeerSetup, with_hard_negatives
from bscl.training.registry import loss_entry

if TYPE_CHECKING:
    from transformers import TrainerCallback

    from bscl.data import Task
    from bscl.training.config import RunConfig
    from bscl.training.trainer import BSCLTrainer


def is_main_process() -> bool:
    """Rank 0 under ``torchrun`` (``RANK`` is set before any process group exists), else True."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    """The number of training processes (``WORLD_SIZE`` under ``torchrun``, else 1)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def positive_threshold(cfg: RunConfig, task: Task) -> float:
    """``--loss.threshold`` where given, else the task's: labels above it are the positive pairs."""
    return cfg.loss.threshold if cfg.loss.threshold is not None else task.binarize_threshold


def train_subset(task: Task, cfg: RunConfig) -> Any:
    """The training pairs of ``task`` the run trains on: the first ``--data.train_subset`` after a seeded
    shuffle, the same pairs for every strategy (sequential batching keeps them in file order)."""
    train = task.train
    n = cfg.data.train_subset
    if n is not None and n < len(train):
        if cfg.batching.strategy == "sequential":
            rows = (
                train.add_column("__row", list(range(len(train)))).shuffle(seed=0).select(range(n))["__row"]
            )
            train = train.select(sorted(rows))
        else:
            train = train.shuffle(seed=0).select(range(n))
    return train


def dev_task(task: Task, n: int | None) -> Task:
    """The task whose dev split (first ``n`` items) the per-epoch evaluator scores."""
    if n is None or task.dev is None or n >= len(task.dev):
        return task
    return dataclasses.replace(task, dev=task.dev.head(n))


def check_batch_fits(cfg: RunConfig, n: int, what: str) -> None:
    """A batch (x processes) no larger than the ``n`` training items: otherwise no step would run."""
    world = world_size()
    if cfg.train.batch_size * world > n:
        raise ValueError(
            f"--train.batch_size={cfg.train.batch_size} (x {world} processes) is larger than the training "
            f"data ({n} {what}); lower --train.batch_size or raise --data.train_subset"
        )


def trainer_loss(cfg: RunConfig, task: Task, model: Any, train: Any) -> PeerSetup:
    """The trainer's loss on ``model`` for ``cfg.loss``, the batch sampler it brings (None: bscl's) and
    the data it trains on (``train``: after the subset and any mined hard negatives)."""
    from bscl.models import load_model

    tr = cfg.train
    entry = loss_entry(cfg.loss.name)

    def guide() -> Any:  # the pretrained model, loaded again: GIST's guide stays fixed while model trains
        return load_model(tr.model, seed=tr.seed, max_seq_length=tr.max_seq_length)

    return entry.setup(
        model,
        train,
        task,
        options=entry.options(cfg.loss, task.binarize_threshold),
        threshold=positive_threshold(cfg, task),
        batch_size=cfg.eval.batch_size,
        mini_batch_size=tr.mini_batch_size,
        guide=guide,
    )


def training_data(cfg: RunConfig, task: Task, model: Any, seed: int) -> Any:
    """The subset of training pairs, with ``--data.hard_negatives`` K negatives mined by the pretrained
    ``model`` (before any training step) when asked."""
    train = train_subset(task, cfg)
    k = cfg.data.hard_negatives
    if k:
        before = len(train)
        train = with_hard_negatives(
            train, model, task, k, positive_threshold(cfg, task), cfg.eval.batch_size
        )  # anchor, positive, negative_1..K, label
        if is_main_process():
            print(
                f"seed {seed}: {len(train)} positive pairs of {before} with {k} mined hard negatives each",
                flush=True,
            )
        check_batch_fits(cfg, len(train), f"positive pairs with {k} mined negatives each")
    return train


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@dataclass
class BuiltRun:
    """A ready trainer and the parts of it that the run reads back."""

    trainer: BSCLTrainer
    train: Any  #: the training dataset
    loss: Any  #: the trainer's loss
    factory: Any  #: bscl's batch-sampler factory, or None (plain random batches / a peer's own sampler)
    metric_key: str  #: the dev metric the trainer picks the best checkpoint by (``eval_...``)


def build_trainer(
    cfg: RunConfig,
    task: Task,
    model: Any,
    out: Path | str,
    *,
    seed: int,
    callbacks: Callable[[str, Any], Sequence[TrainerCallback]] | None = None,
) -> BuiltRun:
    """The ``BSCLTrainer`` of one seed of ``cfg`` on ``task``, training ``model`` in ``out``.

    ``callbacks(metric_key, factory)``: the run's own callbacks, placed first (before the loss state and
    embedding cache callbacks). Raises ValueError when the data left after mining is smaller than a batch.
    """
    from sentence_transformers.base.sampler import BatchSamplers

    from bscl.batching import make_batch_sampler
    from bscl.evaluation import build_evaluator
    from bscl.losses import LossStateCallback
    from bscl.training.card import TrainingCardCallback, sampler_description
    from bscl.training.trainer import BSCLTrainer, EmbeddingCacheCallback

    tr, bc = cfg.train, cfg.batching
    entry = loss_entry(cfg.loss.name)
    setup = trainer_loss(cfg, task, model, training_data(cfg, task, model, seed))
    train, loss = setup.train, setup.loss
    if hasattr(loss, "one_forward"):  # bscl's losses (STLoss); sentence-transformers' embed their own way
        loss.one_forward = tr.one_forward
    if entry.data == "mined":
        check_batch_fits(cfg, len(train), "positive pairs with a mined negative each")

    sampler: Any = setup.batch_sampler if setup.batch_sampler is not None else BatchSamplers.BATCH_SAMPLER
    factory = None
    if bc.own_sampler():
        factory = make_batch_sampler(**dataclasses.asdict(bc))  # the section's fields are its options
        if factory.needs_encoder:
            factory.set_model(model, batch_size=cfg.eval.batch_size)
        if factory.embedding_cache is not None:
            loss.embedding_callback = factory.embedding_cache
        sampler = factory

    evaluator = build_evaluator(dev_task(task, cfg.data.eval_subset), "dev", batch_size=cfg.eval.batch_size)
    metric_key = f"eval_{evaluator.primary_metric}"
    world = world_size()
    steps_per_epoch = math.ceil(len(train) / (tr.batch_size * world))
    own = {  # the fields bscl sets from its own options (HF_FROM_BSCL): --hf.* may not override them
        "output_dir": str(out),
        "num_train_epochs": tr.epochs,
        "per_device_train_batch_size": tr.batch_size,
        "per_device_eval_batch_size": cfg.eval.batch_size,
        "learning_rate": tr.learning_rate,
        "warmup_steps": max(0, round(tr.warmup_ratio * steps_per_epoch * tr.epochs)),
        "weight_decay": tr.weight_decay,
        "metric_for_best_model": metric_key,
        "greater_is_better": True,
        # a short run logs more often, so its loss curve has points to draw (about 50, at most every step)
        "logging_steps": max(1, min(tr.logging_steps, math.ceil(steps_per_epoch * tr.epochs) // 50)),
        "seed": seed,
        "data_seed": seed,
        "batch_sampler": sampler,
    }
    # under torchrun on a CPU-only machine: gloo (the trainer would otherwise not run in DDP mode)
    ddp = {"use_cpu": True, "ddp_backend": "gloo"} if world > 1 and not _cuda() else {}
    args = training_arguments(own, cfg.hf, ddp)  # --hf.* checked in RunConfig.validate
    run_callbacks: list[TrainerCallback] = list(callbacks(metric_key, factory) if callbacks else [])
    if entry.loss_state:
        run_callbacks.append(LossStateCallback(loss))
    if factory is not None and factory.embedding_cache is not None:
        run_callbacks.append(EmbeddingCacheCallback(factory.embedding_cache))
    trainer = BSCLTrainer(
        model=model,
        args=args,
        train_dataset=train,
        loss=loss,
        evaluator=evaluator,
        tau_learning_rate=cfg.loss.tau_learning_rate,
        adam_bias_correction=tr.adam_bias_correction,
        callbacks=run_callbacks,
    )
    options = {k: v for k, v in dataclasses.asdict(bc).items() if k != "strategy"}
    sampler_text = sampler_description(bc.strategy, options) if factory is not None else None
    if setup.batch_sampler is not None:  # a sentence-transformers recipe's own sampler
        sampler_text = str(getattr(setup.batch_sampler, "value", setup.batch_sampler))
    trainer.add_callback(  # after sentence-transformers' model card callback: see bscl.training.card
        TrainingCardCallback(cfg.loss.name, sampler_text or sampler_description(None))
    )
    return BuiltRun(trainer, train, loss, factory, metric_key)
