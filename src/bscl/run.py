"""``bscl train``: one training run from a :class:`~bscl.training.config.RunConfig`.

Data -> batch sampler -> model -> loss -> ``BSCLTrainer`` (dev evaluator picks the best epoch) ->
evaluation before / after -> run folder::

    OUTPUT_DIR/
      config.yaml        resolved configuration
      metrics.json       before / per-epoch dev / after (dev and test), written atomically; while a
                         seed trains, its progress is under "running"
      report.md, *.png   run report with plots (:mod:`bscl.reporting.report`)
      seed-N/            trainer checkpoints of each seed (resumable)
      model/             the chosen model: SentenceTransformer(OUTPUT_DIR/model) loads it

Several seeds (``--train.seeds``) run one after another; the one with the best dev metric is kept
(the paper's seed optimisation). Re-running the same command resumes: finished seeds are read back
from ``metrics.json``, an unfinished one continues from its last checkpoint (sampler epoch, optimizer,
scheduler and temperature included).

Sequential training (the paper's "BSC then MSE"): pass the first run's folder as ``--train.model``.
Under ``torchrun`` every process runs this function; only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback

from bscl.batching import make_batch_sampler
from bscl.data import Task, load_task
from bscl.evaluation import build_evaluator, evaluate
from bscl.losses import LossStateCallback, make_st_loss
from bscl.losses.modules import EmbeddingLoss, build_loss
from bscl.models import load_model
from bscl.paths import data_root
from bscl.reporting.atomic import atomic_write_text
from bscl.reporting.report import format_table, write_report
from bscl.training import BSCLTrainer
from bscl.training.config import HF_DEFAULTS, RunConfig

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


def is_main_process() -> bool:
    """Rank 0 under ``torchrun`` (``RANK`` is set before any process group exists), else True."""
    return int(os.environ.get("RANK", "0")) == 0


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a crash never leaves a half-written file."""
    if is_main_process():
        atomic_write_text(path, json.dumps(data, indent=2))


class Progress(TrainerCallback):
    """One clean line per epoch (mean training loss, dev metric, tau, time), and the running seed's
    progress written into ``metrics.json`` after every evaluation (readable if the run is killed)."""

    def __init__(self, metric_key: str, metrics: dict[str, Any], path: Path, seed: int, factory: Any = None):
        self.metric_key = metric_key
        self.factory = factory  #: the batch-sampler factory, whose sampler times each epoch's grouping
        self.batching: list[dict[str, float]] = []
        self.metrics = metrics
        self.path = path
        self.seed = seed
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
        loss = f"train loss {sum(self.losses) / len(self.losses):.4f}, " if self.losses else ""
        tau = f", tau {self.tau:.4f}" if self.tau is not None else ""
        name = self.metric_key.removeprefix("eval_")
        if is_main_process():
            tqdm.write(  # below the progress bars, not glued to them
                f"epoch {state.epoch:.2f}/{args.num_train_epochs:g}: {loss}"
                f"dev {name} {metrics[self.metric_key]:.4f}{tau}, {time.perf_counter() - self.start:.0f} s"
            )
        self.losses = []
        sampler = getattr(self.factory, "last_sampler", None)
        if sampler is not None and getattr(sampler, "stats", None):
            self.batching.append({"epoch": state.epoch, **sampler.stats})
        self.metrics["running"] = {
            "seed": self.seed,
            "dev_per_epoch": _history(state.log_history, self.metric_key),
            "train_loss": _losses(state.log_history),
            "batching": self.batching,
        }
        write_json(self.path, self.metrics)


def _history(log_history: list[dict[str, Any]], metric_key: str) -> list[dict[str, float]]:
    return [{"epoch": row["epoch"], "dev": row[metric_key]} for row in log_history if metric_key in row]


def _losses(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [
        {"step": row["step"], "loss": row["loss"], **({"tau": row["tau"]} if "tau" in row else {})}
        for row in log_history
        if "loss" in row
    ]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def loss_from_config(cfg: RunConfig, task: Task) -> EmbeddingLoss:
    """Instantiate the configured loss with the fields it takes (threshold defaults to the task's)."""
    lo = cfg.loss
    kwargs = {name: getattr(lo, name) for name in LOSS_FIELDS[lo.name]}
    if "threshold" in kwargs and kwargs["threshold"] is None:
        kwargs["threshold"] = task.binarize_threshold
    return build_loss(lo.name, **kwargs)


def prepare_task(cfg: RunConfig, root: Path | None) -> Task:
    """Load the task with the data options of ``cfg`` (generic files, ranked negatives, unsupervised)."""
    da = cfg.data
    options: dict[str, Any] = {}
    if da.task == "generic":
        options = {
            "train": da.train_file,
            "dev": da.dev_file,
            "test": da.test_file,
            "text1": da.text1,
            "text2": da.text2,
            "label": da.label,
            "label_type": da.label_type,
            **({"score_range": (0.0, da.label_max)} if da.label_max is not None else {}),
        }
    if da.negatives:
        # the paper ranks the claims with a pretrained SBERT: here the zero-shot model of the run
        options["negatives"] = da.negatives
        options["model"] = load_model(
            cfg.train.model,
            seed=cfg.train.seed,
            max_seq_length=cfg.train.max_seq_length,
            device=cfg.train.device,
        )
    task = load_task(da.task, root, seed=0, **options)
    if da.positives_only and "label" in task.train.column_names:
        t = cfg.loss.threshold if cfg.loss.threshold is not None else task.binarize_threshold
        before = len(task.train)
        task.train = task.train.filter(lambda row: row["label"] >= t)
        task.info["positives_only"] = f"kept {len(task.train)} of {before} pairs with label >= {t}"
        if len(task.train) == 0:
            raise ValueError(f"--data.positives_only left no training pairs (no label >= {t})")
    if da.unsupervised and task.kind != "unsupervised":
        from datasets import Dataset

        first = task.train.column_names[0]
        texts = list(dict.fromkeys(task.train[first]))  # unique first texts, file order
        task.train = Dataset.from_dict({"anchor": texts, "positive": texts, "label": [1.0] * len(texts)})
        task.info["unsupervised"] = f"{len(texts)} unique first texts paired with themselves"
    return task


def _subset(task: Task, cfg: RunConfig) -> Any:
    train = task.train
    n = cfg.data.train_subset
    if n is not None and n < len(train):
        # the same seeded random subset for every strategy (strategies compare on the same pairs);
        # sequential batching keeps those pairs in their file order
        if cfg.batching.strategy == "sequential":
            rows = (
                train.add_column("__row", list(range(len(train)))).shuffle(seed=0).select(range(n))["__row"]
            )
            train = train.select(sorted(rows))
        else:
            train = train.shuffle(seed=0).select(range(n))
    return train


def _dev_task(task: Task, n: int | None) -> Task:
    """The task whose dev split (first ``n`` items) the per-epoch evaluator scores."""
    if n is None or task.dev is None or n >= len(task.dev):
        return task
    return dataclasses.replace(task, dev=task.dev.head(n))


def _last_checkpoint(folder: Path) -> str | None:
    def step(p: Path) -> int:
        tail = p.name.split("-")[-1]
        return int(tail) if tail.isdigit() else -1

    ckpts = sorted((p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()), key=step)
    return str(ckpts[-1]) if ckpts else None


def prune_checkpoints(seed_dir: Path) -> None:
    """Delete a finished seed's trainer checkpoints (model + optimizer state per epoch): resuming reads
    finished seeds from ``metrics.json`` and the chosen model is ``seed-N/best-model``, so nothing needs
    them once the seed's result is written (``--train.keep_checkpoints true`` keeps them)."""
    for ckpt in seed_dir.glob("checkpoint-*"):
        if ckpt.is_dir():
            shutil.rmtree(ckpt, ignore_errors=True)


def train_seed(
    cfg: RunConfig, task: Task, seed: int, out: Path, metrics: dict[str, Any], metrics_path: Path
) -> dict[str, Any]:
    """Train one seed in ``out``; returns the chosen checkpoint's dev and test metrics."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    tr = cfg.train
    model = load_model(tr.model, seed=seed, max_seq_length=tr.max_seq_length)
    train = _subset(task, cfg)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if tr.batch_size * world > len(train):
        raise ValueError(
            f"--train.batch_size={tr.batch_size} (x {world} processes) is larger than the training data "
            f"({len(train)} pairs); lower --train.batch_size or raise --data.train_subset"
        )
    loss = make_st_loss(model, loss_from_config(cfg, task), mini_batch_size=tr.mini_batch_size)

    strategy = cfg.batching.strategy
    sampler: Any = BatchSamplers.BATCH_SAMPLER
    factory = None
    bc = cfg.batching
    if strategy != "random" or bc.reuse_embeddings or bc.pack_by_length:
        factory = make_batch_sampler(
            strategy,
            group_size=bc.group_size,
            element=bc.group_by,
            reuse_embeddings=bc.reuse_embeddings,
            cold_start=bc.cold_start,
            pack_by_length=bc.pack_by_length,
            pack_window=bc.pack_window,
        )
        if factory.needs_encoder:
            factory.set_model(model, batch_size=cfg.eval.batch_size)
        if factory.embedding_cache is not None:
            loss.embedding_callback = factory.embedding_cache
        sampler = factory

    evaluator = build_evaluator(_dev_task(task, cfg.data.eval_subset), "dev", batch_size=cfg.eval.batch_size)
    metric_key = f"eval_{evaluator.primary_metric}"
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
        "logging_steps": tr.logging_steps,
        "seed": seed,
        "data_seed": seed,
        "batch_sampler": sampler,
    }
    # under torchrun on a CPU-only machine: gloo (the trainer would otherwise not run in DDP mode)
    ddp = {"use_cpu": True, "ddp_backend": "gloo"} if world > 1 and not _cuda() else {}
    # bscl's defaults (HF_DEFAULTS), then --hf.* (checked in RunConfig.validate), then bscl's own fields
    args = SentenceTransformerTrainingArguments(**{**HF_DEFAULTS, **ddp, **cfg.hf, **own})
    progress = Progress(metric_key, metrics, metrics_path, seed, factory)
    trainer = BSCLTrainer(
        model=model,
        args=args,
        train_dataset=train,
        loss=loss,
        evaluator=evaluator,
        tau_learning_rate=cfg.loss.tau_learning_rate,
        adam_bias_correction=tr.adam_bias_correction,
        callbacks=[progress, LossStateCallback(loss)],
    )
    resume = _last_checkpoint(out) if tr.resume else None
    if resume and is_main_process():
        print(f"seed {seed}: resuming from {resume}", flush=True)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - start
    dev = evaluate(model, task, "dev", batch_size=cfg.eval.batch_size)
    test = evaluate(model, task, "test", batch_size=cfg.eval.batch_size) if task.test is not None else {}
    if is_main_process():
        model.save(str(out / "best-model"))
    return {
        "seed": seed,
        "train_seconds": seconds,
        "resumed_from": resume,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "dev_per_epoch": _history(trainer.state.log_history, metric_key),
        "train_loss": _losses(trainer.state.log_history),
        "batching": progress.batching,  # per epoch: encode / grouping seconds, examples reused
        "dev": dev,
        "test": test,
    }


def run_training(cfg: RunConfig) -> dict[str, Any]:
    """The whole ``bscl train`` job; returns what it writes to ``metrics.json``."""
    cfg.validate()
    # a missing data root fails here, before any model is loaded
    root = None if cfg.data.task == "generic" else data_root(cfg.data.data_root)
    out = Path(cfg.train.output_dir)
    metrics_path = out / "metrics.json"
    metrics: dict[str, Any] = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if metrics.get("config") not in (None, cfg.to_dict()):
        raise ValueError(
            f"{out} holds a run with another configuration; choose a new --train.output_dir or delete {out}"
        )
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.yaml")
    metrics["config"] = cfg.to_dict()

    task = prepare_task(cfg, root)
    primary = task.metric
    metrics["task"] = task.name
    metrics["primary"] = primary
    if is_main_process():
        print(
            f"task {task.name}: {len(task.train)} training pairs, metric {primary}; model {cfg.train.model}"
        )
    try:
        if cfg.eval.before and "before" not in metrics and is_main_process():
            base = load_model(
                cfg.train.model,
                seed=cfg.train.seed,
                max_seq_length=cfg.train.max_seq_length,
                device=cfg.train.device,
            )
            metrics["before"] = {
                split: evaluate(base, task, split, batch_size=cfg.eval.batch_size)
                for split in ("dev", "test")
                if getattr(task, split) is not None
            }
            write_json(metrics_path, metrics)
            del base
            print(
                f"before training: dev {primary} = {metrics['before'].get('dev', {}).get(primary, float('nan')):.4f}"
            )

        seeds = metrics.setdefault("seeds", {})
        for k in range(cfg.train.seeds):
            seed = cfg.train.seed + k
            if str(seed) in seeds:
                if is_main_process():
                    print(
                        f"seed {seed}: already finished, dev {primary} = {seeds[str(seed)]['dev'].get(primary)}"
                    )
                continue
            result = train_seed(cfg, task, seed, out / f"seed-{seed}", metrics, metrics_path)
            seeds[str(seed)] = result
            metrics.pop("running", None)
            write_json(metrics_path, metrics)
            if not cfg.train.keep_checkpoints and is_main_process():
                prune_checkpoints(out / f"seed-{seed}")
            if is_main_process():
                print(
                    f"seed {seed}: dev {primary} = {result['dev'].get(primary):.4f}, {result['train_seconds']:.0f} s"
                )

        best_seed = max(seeds, key=lambda s: seeds[s]["dev"].get(primary, float("-inf")))
        metrics["best_seed"] = int(best_seed)
        metrics["after"] = {"dev": seeds[best_seed]["dev"], "test": seeds[best_seed]["test"]}
        if is_main_process():
            final = out / "model"
            tmp = out / ".model.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(out / f"seed-{best_seed}" / "best-model", tmp)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        write_json(metrics_path, metrics)
    finally:
        if is_main_process() and metrics_path.is_file():
            try:
                write_report(out)
            except Exception as err:  # a report must never hide the training error
                logger.warning("could not write the report: %s", err)

    if is_main_process():
        split = cfg.eval.split
        rows: list[dict[str, Any]] = []
        if "before" in metrics:
            rows.append({"model": f"{cfg.train.model} (before)", **metrics["before"].get(split, {})})
        rows.append(
            {"model": f"{cfg.loss.name} (seed {best_seed}, best on dev)", **metrics["after"].get(split, {})}
        )
        keys = [primary] + sorted(k for k in metrics["after"].get(split, {}) if k != primary)
        print(
            f"\n{task.name} {split}:\n{format_table(rows, ['model', *keys])}\nmodel saved to {out / 'model'}"
        )
    return metrics
