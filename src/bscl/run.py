"""``bscl train``: one training run from a :class:`~bscl.training.config.RunConfig`.

Data -> batch sampler -> model -> loss -> ``BSCLTrainer`` (dev evaluator picks the best epoch) ->
evaluation before / after -> run folder::

    OUTPUT_DIR/
      config.yaml        resolved configuration
      metrics.json       before / per-epoch dev / after (dev and test), written atomically
      seed-N/            trainer checkpoints of each seed (resumable)
      model/             the chosen model: SentenceTransformer(OUTPUT_DIR/model) loads it

Several seeds (``--train.seeds``) run one after another; the one with the best dev metric is kept
(the paper's seed optimisation). Re-running the same command resumes: finished seeds are read back
from ``metrics.json``, an unfinished one continues from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from bscl.batching import make_batch_sampler
from bscl.data import Task, load_task
from bscl.evaluation import build_evaluator, evaluate
from bscl.losses import STLoss, build_loss
from bscl.losses.modules import EmbeddingLoss
from bscl.models import load_model
from bscl.paths import data_root
from bscl.training import BSCLTrainer
from bscl.training.config import RunConfig

logger = logging.getLogger(__name__)

#: which config fields each loss takes
LOSS_FIELDS: dict[str, tuple[str, ...]] = {
    "bsc": ("tau", "trainable_tau", "tau_parametrization", "symmetric", "combine", "normalization", "use_labels", "threshold", "duplicates"),
    "combo": ("tau", "trainable_tau", "tau_parametrization", "symmetric", "combine", "normalization", "use_labels", "threshold", "duplicates", "mu"),
    "mse": (),
    "pearson": (),
    "triplet": ("margin", "threshold"),
    "softcse-weight": ("tau", "trainable_tau", "tau_parametrization", "symmetric", "combine", "use_labels", "threshold", "duplicates", "beta"),
    "softcse-temperature": ("tau", "trainable_tau", "tau_parametrization", "symmetric", "combine", "use_labels", "threshold", "duplicates", "gamma"),
    "focal-infonce": ("tau", "trainable_tau", "tau_parametrization", "symmetric", "combine", "use_labels", "threshold", "duplicates", "margin"),
}  # fmt: skip


class EpochSummary(TrainerCallback):
    """One clean line per epoch: mean training loss since the last epoch, dev metric, tau, time."""

    def __init__(self, metric_key: str):
        self.metric_key = metric_key
        self.losses: list[float] = []
        self.tau: float | None = None
        self.start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        logs = logs or {}
        if "loss" in logs:
            self.losses.append(float(logs["loss"]))
        if "tau" in logs:
            self.tau = float(logs["tau"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001
        metrics = metrics or {}
        if self.metric_key not in metrics:
            return
        loss = sum(self.losses) / len(self.losses) if self.losses else float("nan")
        tau = f", tau {self.tau:.4f}" if self.tau is not None else ""
        name = self.metric_key.removeprefix("eval_")
        print(
            f"epoch {state.epoch:.2f}/{args.num_train_epochs:g}: train loss {loss:.4f}, "
            f"dev {name} {metrics[self.metric_key]:.4f}{tau}, {time.perf_counter() - self.start:.0f} s",
            flush=True,
        )
        self.losses = []


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a crash never leaves a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False))
    os.replace(tmp, path)


def loss_from_config(cfg: RunConfig, task: Task) -> EmbeddingLoss:
    """Instantiate the configured loss with the fields it takes (threshold defaults to the task's)."""
    lo = cfg.loss
    kwargs = {name: getattr(lo, name) for name in LOSS_FIELDS[lo.name]}
    if "threshold" in kwargs and kwargs["threshold"] is None:
        kwargs["threshold"] = task.binarize_threshold
    return build_loss(lo.name, **kwargs)


def _subset(task: Task, cfg: RunConfig) -> Any:
    train = task.train
    n = cfg.data.train_subset
    if n is not None and n < len(train):
        # keep the file order for sequential batching; otherwise a seeded random subset
        train = train.select(range(n)) if cfg.batching.strategy == "sequential" else train.shuffle(seed=0).select(range(n))
    return train


def _last_checkpoint(folder: Path) -> str | None:
    ckpts = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    return str(ckpts[-1]) if ckpts else None


def _print_table(rows: list[tuple[str, dict[str, float]]], keys: list[str]) -> str:
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, metrics in rows:
        lines.append(f"| {name} | " + " | ".join(f"{metrics.get(k, float('nan')):.4f}" for k in keys) + " |")
    return "\n".join(lines)


def train_seed(cfg: RunConfig, task: Task, seed: int, out: Path) -> dict[str, Any]:
    """Train one seed in ``out``; returns the chosen checkpoint's dev and test metrics."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    tr = cfg.train
    model = load_model(tr.model, seed=seed, max_seq_length=tr.max_seq_length)
    train = _subset(task, cfg)
    if tr.batch_size > len(train):
        raise ValueError(f"--train.batch_size={tr.batch_size} is larger than the training data ({len(train)} pairs)")
    loss = STLoss(model, loss_from_config(cfg, task))

    strategy = cfg.batching.strategy
    sampler: Any = BatchSamplers.BATCH_SAMPLER
    if strategy != "random" or cfg.batching.reuse_embeddings:
        factory = make_batch_sampler(
            strategy,
            group_size=cfg.batching.group_size,
            element=cfg.batching.group_by,
            reuse_embeddings=cfg.batching.reuse_embeddings,
        )
        if factory.needs_encoder:
            factory.set_model(model, batch_size=cfg.eval.batch_size)
        if factory.embedding_cache is not None:
            loss.embedding_callback = factory.embedding_cache
        sampler = factory

    evaluator = build_evaluator(task, "dev", batch_size=cfg.eval.batch_size)
    evaluator(model)  # sets the evaluator's prefixed primary_metric
    metric_key = f"eval_{evaluator.primary_metric}"
    steps_per_epoch = math.ceil(len(train) / tr.batch_size)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        num_train_epochs=tr.epochs,
        per_device_train_batch_size=tr.batch_size,
        per_device_eval_batch_size=cfg.eval.batch_size,
        learning_rate=tr.learning_rate,
        warmup_steps=max(0, round(tr.warmup_ratio * steps_per_epoch * tr.epochs)),
        lr_scheduler_type="linear",
        weight_decay=tr.weight_decay,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=metric_key,
        greater_is_better=True,
        logging_steps=tr.logging_steps,
        seed=seed,
        data_seed=seed,
        batch_sampler=sampler,
        report_to="none",
        dataloader_drop_last=False,
        disable_tqdm=False,
    )
    trainer = BSCLTrainer(
        model=model,
        args=args,
        train_dataset=train,
        loss=loss,
        evaluator=evaluator,
        tau_learning_rate=cfg.loss.tau_learning_rate,
        adam_bias_correction=tr.adam_bias_correction,
        callbacks=[EpochSummary(metric_key)],
    )
    resume = _last_checkpoint(out) if tr.resume else None
    if resume:
        logger.info("resuming seed %d from %s", seed, resume)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - start
    history = [
        {"epoch": row["epoch"], "dev": row[metric_key]} for row in trainer.state.log_history if metric_key in row
    ]
    losses = [{"step": row["step"], "loss": row["loss"], **({"tau": row["tau"]} if "tau" in row else {})}
              for row in trainer.state.log_history if "loss" in row]  # fmt: skip
    dev = evaluate(model, task, "dev", batch_size=cfg.eval.batch_size)
    test = evaluate(model, task, "test", batch_size=cfg.eval.batch_size) if task.test is not None else {}
    model.save(str(out / "best-model"))
    return {
        "seed": seed,
        "train_seconds": seconds,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "dev_per_epoch": history,
        "train_loss": losses,
        "dev": dev,
        "test": test,
    }


def run_training(cfg: RunConfig) -> dict[str, Any]:
    """The whole ``bscl train`` job; returns what it writes to ``metrics.json``."""
    cfg.validate()
    root = data_root(cfg.data.data_root)  # fails before any model is loaded
    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    metrics_path = out / "metrics.json"
    metrics: dict[str, Any] = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if metrics.get("config") not in (None, cfg.to_dict()):
        raise ValueError(
            f"{out} holds a run with another configuration; choose a new --train.output_dir or delete {out}"
        )
    metrics["config"] = cfg.to_dict()

    task = load_task(cfg.data.task, root, seed=0)
    primary = task.metric
    print(f"task {task.name}: {len(task.train)} training pairs, metric {primary}; model {cfg.train.model}")
    if cfg.eval.before and "before" not in metrics:
        base = load_model(cfg.train.model, seed=cfg.train.seed, max_seq_length=cfg.train.max_seq_length)
        metrics["before"] = {
            split: evaluate(base, task, split, batch_size=cfg.eval.batch_size)
            for split in ("dev", "test")
            if getattr(task, split) is not None
        }
        write_json(metrics_path, metrics)
        del base

    seeds = metrics.setdefault("seeds", {})
    for k in range(cfg.train.seeds):
        seed = cfg.train.seed + k
        if str(seed) in seeds:
            print(f"seed {seed}: already finished, dev {primary} = {seeds[str(seed)]['dev'].get(primary)}")
            continue
        result = train_seed(cfg, task, seed, out / f"seed-{seed}")
        seeds[str(seed)] = result
        write_json(metrics_path, metrics)
        print(f"seed {seed}: dev {primary} = {result['dev'].get(primary):.4f}, {result['train_seconds']:.0f} s")

    best_seed = max(seeds, key=lambda s: seeds[s]["dev"].get(primary, float("-inf")))
    metrics["best_seed"] = int(best_seed)
    metrics["after"] = {"dev": seeds[best_seed]["dev"], "test": seeds[best_seed]["test"]}
    final = out / "model"
    tmp = out / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(out / f"seed-{best_seed}" / "best-model", tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json(metrics_path, metrics)

    split = cfg.eval.split
    keys = sorted({*metrics["after"].get(split, {})})
    rows = []
    if "before" in metrics:
        rows.append((f"{cfg.train.model} (before)", metrics["before"].get(split, {})))
    rows.append((f"{cfg.loss.name} (seed {best_seed}, best dev)", metrics["after"].get(split, {})))
    table = _print_table(rows, keys)
    print(f"\n{task.name} {split}:\n{table}\nmodel saved to {final}")
    return metrics
