"""``bscl train``: one training run from a :class:`~bscl.training.config.RunConfig`.

Data -> batch sampler -> model -> loss -> ``BSCLTrainer`` (dev evaluator picks the best epoch) ->
evaluation before / after -> run folder::

    OUTPUT_DIR/
      config.yaml        resolved configuration
      metrics.json       before / per-epoch dev / after (dev and test), written atomically; while a
                         seed trains, its progress is under "running"
      report.md, *.png   run report with plots (:mod:`bscl.reporting.report`)
      seed-N/            trainer checkpoints of each seed (resumable)
      model/             the chosen model, stored once: SentenceTransformer(OUTPUT_DIR/model) loads it

(the schema, reader, writer, lock and checkpoint discovery: :mod:`bscl.reporting.runfolder`).

Several seeds (``--train.seeds``) run one after another; the one with the best (finite) dev metric
is kept (the paper's seed optimisation). Re-running the same command resumes: finished seeds are read
back from ``metrics.json``, an unfinished one continues from its last complete checkpoint (sampler
epoch, optimizer, scheduler, temperature and embedding cache included). The re-run must have the same
configuration (the error lists the options that differ; ``--train.seeds`` may grow) and the same data
(sha256 of every file read); ``--train.overwrite true`` deletes the previous run instead. One
``bscl train`` at a time holds the folder (``OUTPUT_DIR/.lock``).

Order of the checks: options, the model (a complete folder; ``max_seq_length`` within its position
limit), the output folder (writable, not locked), the data (loaded and checked against the options:
batch size, labels; dev and test must have a defined metric: labels that vary, two rows), and only
then ``config.yaml`` and the models.

The start is a candidate: the chosen model's dev value is compared with the model's before training
(``--eval.before``, the same code and split). A run that made the model worse fails with
``--train.if_worse fail`` (the default: exit 2, nothing saved as ``model/``; re-running with
``--train.if_worse warn`` keeps the trained model without training again) or keeps it with a warning
(``warn``). An encoder that has collapsed (distinct dev texts get near-identical embeddings, or a dev
correlation that fell to chance from a start above it) stops the run before anything is saved as its
result, naming the likely cause. A run that stops for a reason that re-running the same command cannot
fix (bad options or data found late, a NaN step, a collapse, a worse model) records ``failed`` with the
reason in ``metrics.json`` and ``report.md``; a kill or a full disk leaves an interrupted run that the
same command resumes.

Exit codes of ``bscl train`` (:mod:`bscl.cli`): 0 done, 2 bad input or a failed run (options, data,
model folder, the failures above), 1 the machine's fault (disk full, a file that cannot be written or
deleted; :class:`bscl.paths.EnvironmentFault`), 130 interrupted.

Sequential training (the paper's "BSC then MSE"): pass the first run's folder as ``--train.model``.
Under ``torchrun`` every process runs this function; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback

from bscl.data import PairSplit, Task, load_task
from bscl.data.task import recording_reads
from bscl.evaluation import evaluate
from bscl.evaluation import metrics as M
from bscl.evaluation.evaluators import EncodeCache, encode
from bscl.losses.functional import binarize
from bscl.models import check_model, load_model
from bscl.paths import data_root, write_fault
from bscl.reporting import runfolder as RF
from bscl.reporting.report import format_table, write_report
from bscl.training.builder import (
    build_trainer,
    check_batch_fits,
    is_main_process,
    positive_threshold,
    train_subset,
    world_size,
)
from bscl.training.config import DataConfig, RunConfig
from bscl.training.registry import loss_entry
from bscl.training.wise import interpolate_, snapshot

logger = logging.getLogger(__name__)

#: distinct dev texts encoded to look for a collapsed encoder
COLLAPSE_TEXTS = 64
#: a mean pairwise cosine similarity of distinct texts at or above this: every text maps to nearly one
#: point (a pretrained all-MiniLM-L6-v2 gives about 0.12 on STSb texts, the random ``tiny`` model 0.98,
#: a model trained at learning rate 10 gives 0.9999)
COLLAPSE_COSINE = 0.999


class RunFailed(ValueError):
    """Training ran but its result is refused (a collapsed encoder, a model worse than the start); a
    ``ValueError``: ``bscl`` prints it as one line and exits 2."""


def write_json(path: Path, data: Any) -> None:
    """Write strict JSON atomically (rank 0 only): a crash never leaves a half-written file."""
    if is_main_process():
        RF.write_json(path, data)


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
            "dev_per_epoch": RF.dev_history(state.log_history, self.metric_key),
            "train_loss": RF.train_losses(state.log_history),
            "batching": self.batching,
        }
        write_json(self.path, self.metrics)


def resolved_loss_options(cfg: RunConfig, task: Task) -> dict[str, Any]:
    """The loss's name and every option it runs with (unset options: the loss's defaults; the
    threshold: the task's binarization threshold unless given). Recorded in ``metrics.json``."""
    return loss_entry(cfg.loss.name).options(cfg.loss, task.binarize_threshold)


def loss_from_config(cfg: RunConfig, task: Task) -> Any:
    """The configured bscl loss (embedding level) with its resolved options."""
    return loss_entry(cfg.loss.name).build(resolved_loss_options(cfg, task))


def generic_options(da: DataConfig) -> dict[str, Any]:
    """The generic loader's options (:func:`bscl.data.tasks.generic.load_generic`: ``train``, ``dev``,
    ``test`` and the reading options of :func:`~bscl.data.tasks.generic.read_generic`) that the
    ``--data.*`` options of the user's own pairs give."""
    return {
        "train": da.train_file,
        "dev": da.dev_file,
        "test": da.test_file,
        "text1": da.text1,
        "text2": da.text2,
        "label": da.label,
        "label_type": da.label_type,
        **({"score_range": (0.0, da.label_max)} if da.label_max is not None else {}),
    }


def prepare_task(cfg: RunConfig, root: Path | None) -> Task:
    """Load the task with the data options of ``cfg`` (generic files, ranked negatives, unsupervised)."""
    da = cfg.data
    options: dict[str, Any] = generic_options(da) if da.task == "generic" else {}
    if da.negatives:
        # the paper ranks the claims with a pretrained SBERT: here the zero-shot model of the run
        options["negatives"] = da.negatives
        options["model"] = load_model(
            cfg.train.model,
            seed=cfg.train.seed,
            max_seq_length=cfg.train.max_seq_length,
            padding_free=cfg.train.padding_free,
            device=cfg.train.device,
        )
    with recording_reads() as files:
        task = load_task(da.task, root, seed=0, **options)
    task.files = files
    if da.positives_only and "label" in task.train.column_names:
        t = positive_threshold(cfg, task)
        before = len(task.train)
        keep = binarize(torch.tensor(task.train["label"], dtype=torch.float64), t).tolist()
        task.train = task.train.select([i for i, k in enumerate(keep) if k])
        task.info["positives_only"] = f"kept {len(task.train)} of {before} pairs with label > {t}"
        if len(task.train) == 0:
            raise ValueError(f"--data.positives_only left no training pairs (no label > {t})")
    if da.unsupervised and task.kind != "unsupervised":
        from datasets import Dataset

        first = task.train.column_names[0]
        texts = list(dict.fromkeys(task.train[first]))  # unique first texts, file order
        task.train = Dataset.from_dict({"anchor": texts, "positive": texts, "label": [1.0] * len(texts)})
        task.info["unsupervised"] = f"{len(texts)} unique first texts paired with themselves"
    return task


def check_training_data(cfg: RunConfig, task: Task) -> None:
    """What the options ask of the data, checked before any model is loaded (ValueError naming the
    option): a batch no larger than the data, and what the loss needs of it (its registry entry:
    labels, at least one positive and two pairs per batch for a contrastive loss)."""
    lo = cfg.loss
    entry = loss_entry(lo.name)
    train = train_subset(task, cfg)
    trains_on, what = len(train), "pairs"
    if "label" in train.column_names and (cfg.data.hard_negatives or entry.data in ("positives", "mined")):
        # these train on the positive pairs alone (mining may drop a few more: checked after it)
        t = positive_threshold(cfg, task)
        trains_on = int(sum(1 for v in train["label"] if v > t))
        option = "--data.hard_negatives" if cfg.data.hard_negatives else f"--loss.name {lo.name}"
        what = f"positive pairs (label > {t}), which {option} trains on"
    check_batch_fits(cfg, trains_on, what)
    unlabeled = (
        task.info.get("label_type") == "positive" or cfg.data.unsupervised or task.kind == "unsupervised"
    )
    entry.check_data(
        train["label"] if "label" in train.column_names else None,
        options=resolved_loss_options(cfg, task),
        world_batch=cfg.train.batch_size * world_size(),
        unlabeled=unlabeled,
        source=cfg.data.train_file or task.name,
    )
    # a metric that no model can have would pick the epoch and judge the run at random
    dev_fix = test_fix = ""
    if cfg.data.task == "generic":
        dev_fix = f"pass {'another' if cfg.data.dev_file else 'a'} --data.dev_file"
        test_fix = "pass another --data.test_file"
    if task.dev is not None:
        task.check_scorable("dev", fix=dev_fix)
    if task.test is not None:
        task.check_scorable("test", fix=test_fix)


def prune_checkpoints(seed_dir: Path) -> None:
    """Delete a finished seed's trainer checkpoints (model + optimizer state per epoch): resuming reads
    finished seeds from ``metrics.json`` and the seed's chosen weights are in ``seed-N/best-model``, so
    nothing needs them once the seed's result is written (``--train.keep_checkpoints true`` keeps them)."""
    for ckpt in seed_dir.glob("checkpoint-*"):
        if ckpt.is_dir():
            shutil.rmtree(ckpt, ignore_errors=True)


def keep_best_model(out: Path, seeds: dict[str, Any], primary: str, *, save: bool = True) -> None:
    """Keep the chosen model once: every seed's ``best-model`` but the best finished seed's is deleted,
    and with ``save`` the best one moves to ``OUTPUT_DIR/model`` (replacing what was there). Without
    ``save`` (after each seed, before the run is judged against its start) the best stays in its seed
    folder. A best model already moved (a kill between the move and ``metrics.json``) stays in ``model/``."""
    best = RF.best_seed(seeds, primary)
    source = out / f"seed-{best}" / RF.BEST_MODEL
    if save and source.is_dir():
        RF.replace_model(out, source)
    for folder in out.glob(f"seed-*/{RF.BEST_MODEL}"):
        if folder != source:
            shutil.rmtree(folder, ignore_errors=True)


def final_evaluation(model: Any, task: Task, batch_size: int) -> dict[str, dict[str, float]]:
    """``{"dev": metrics, "test": metrics}`` of one set of weights (a split the task lacks is left
    out); dev and test share what they both encode (PFCC-S's claim pool is encoded once)."""
    cache: EncodeCache = {}
    return {
        split: evaluate(model, task, split, batch_size=batch_size, cache=cache)
        for split in ("dev", "test")
        if getattr(task, split) is not None
    }


def collapse_reason(
    model: Any, task: Task, batch_size: int, dev_value: float | None, start: float | None
) -> str | None:
    """Why the trained ``model`` counts as collapsed, or None: distinct dev texts get near-identical
    embeddings (mean pairwise cosine >= :data:`COLLAPSE_COSINE`), or a dev correlation at chance
    (within :func:`~bscl.evaluation.metrics.correlation_chance_band`) from a ``start`` above it."""
    split = task.split("dev")
    texts = (
        [*split.sentences1, *split.sentences2]
        if isinstance(split, PairSplit)
        else [*split.queries, *split.pool]
    )
    texts = list(dict.fromkeys(texts))[:COLLAPSE_TEXTS]
    if len(texts) >= 2:
        cosine = M.mean_pairwise_cosine(encode(model, texts, batch_size))
        if cosine >= COLLAPSE_COSINE:
            return f"{len(texts)} distinct dev texts get near-identical embeddings (mean pairwise cosine {cosine:.4f})"
    if task.metric in ("spearman", "pearson") and dev_value is not None and start is not None:
        band = M.correlation_chance_band(len(split))
        if abs(dev_value) < band <= start:
            return (
                f"dev {task.metric} fell from {start:.4f} before training to {dev_value:.4f}, at chance "
                f"(|r| < {band:.2f} for {len(split)} pairs)"
            )
    return None


def train_seed(
    cfg: RunConfig, task: Task, seed: int, out: Path, metrics: dict[str, Any], metrics_path: Path
) -> dict[str, Any]:
    """Train one seed in ``out``; returns the chosen checkpoint's dev and test metrics."""
    tr = cfg.train
    model = load_model(tr.model, seed=seed, max_seq_length=tr.max_seq_length, padding_free=tr.padding_free)
    progress: list[Progress] = []

    def callbacks(metric_key: str, factory: Any) -> list[TrainerCallback]:
        progress.append(Progress(metric_key, metrics, metrics_path, seed, factory))
        return progress

    built = build_trainer(cfg, task, model, out, seed=seed, callbacks=callbacks)
    trainer, metric_key = built.trainer, built.metric_key
    checkpoint = RF.last_checkpoint(out) if tr.resume else None
    resume = str(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and is_main_process():
        RF.remove_incomplete_after(out, RF.checkpoint_step(checkpoint))
        print(f"seed {seed}: resuming from {resume}", flush=True)
    # WiSE-FT: the weights training starts from (the pretrained model, or the previous stage's), kept
    # before the first step; a resumed run loaded them above too
    start_weights = snapshot(model) if tr.interpolate < 1.0 else None
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - start
    interpolated = None
    if start_weights is not None:  # the dev-chosen checkpoint is loaded: interpolate it with the start
        interpolated = {"alpha": tr.interpolate, "fine_tuned_dev": trainer.state.best_metric}
        interpolate_(model, start_weights, tr.interpolate)
        del start_weights
    final = final_evaluation(model, task, cfg.eval.batch_size)
    dev, test = final["dev"], final.get("test", {})
    start = ((metrics.get("before") or {}).get("dev") or {}).get(task.metric)
    reason = collapse_reason(model, task, cfg.eval.batch_size, dev.get(task.metric), start)
    if reason is not None:
        raise RunFailed(
            f"seed {seed}: the encoder has collapsed: {reason}. Likely cause: a too high --train.learning_rate "
            f"({tr.learning_rate:g}) or, for a contrastive loss, a too low temperature (--loss.tau); nothing "
            "was saved as the result. Change it with a new --train.output_dir or --train.overwrite true"
        )
    if is_main_process():
        model.save(str(out / "best-model"))
    return {
        "seed": seed,
        "train_seconds": seconds,
        "resumed_from": resume,
        # the dev-chosen checkpoint's step (its folder is pruned unless --train.keep_checkpoints true)
        "best_step": RF.checkpoint_step(best) if (best := trainer.state.best_model_checkpoint) else None,
        **({"best_checkpoint": trainer.state.best_model_checkpoint} if tr.keep_checkpoints else {}),
        "dev_per_epoch": RF.dev_history(trainer.state.log_history, metric_key),
        "train_loss": RF.train_losses(trainer.state.log_history),
        "batching": progress[0].batching,  # per epoch: encode / grouping seconds, examples reused
        # WiSE-FT: alpha and the fine-tuned checkpoint's dev score (dev / test below: interpolated)
        **({"interpolated": interpolated} if interpolated is not None else {}),
        "dev": dev,
        "test": test,
    }


def run_training(cfg: RunConfig) -> dict[str, Any]:
    """The whole ``bscl train`` job; returns what it writes to ``metrics.json``."""
    cfg.validate()
    tr = cfg.train
    # the model's name or folder and its position limit, before any folder is written
    check_model(tr.model, seed=tr.seed, max_seq_length=tr.max_seq_length, option="--train.max_seq_length")
    # a missing data root fails here, before any model is loaded
    root = None if cfg.data.task == "generic" else data_root(cfg.data.data_root)
    out = Path(cfg.train.output_dir)
    main = is_main_process()
    created = False
    if main:
        RF.ensure_writable(out)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
    with RF.locked(out) if main else contextlib.nullcontext():
        try:
            task = prepare_task(cfg, root)
            check_training_data(cfg, task)
        except BaseException:
            if created:  # leave no folder behind for a run that never started
                shutil.rmtree(out, ignore_errors=True)
            raise
        return _train_locked(cfg, task, out)


def run_zero_shot(cfg: RunConfig) -> dict[str, Any]:
    """Evaluate the pretrained model ``cfg.train.model`` on dev and test with the same evaluation code
    as a trained run, and write the result as a finished one-seed run folder (``metrics.json`` in
    ``bscl train``'s format, so that records and reports read it like any other run)."""
    task = prepare_task(cfg, None if cfg.data.task == "generic" else data_root(cfg.data.data_root))
    model = load_model(
        cfg.train.model, seed=cfg.train.seed, max_seq_length=cfg.train.max_seq_length, device=cfg.train.device
    )
    after = final_evaluation(model, task, cfg.eval.batch_size)
    metrics = {
        "config": cfg.to_dict(),
        "task": task.name,
        "data": {"split": RF.split_of(task.name)},
        "primary": task.metric,
        "seeds": {str(cfg.train.seed): {"train_seconds": 0.0, **after}},
        "best_seed": cfg.train.seed,
        "after": after,
    }
    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RF.METRICS, metrics)
    return metrics


def _prepare_folder(cfg: RunConfig, task: Task, out: Path) -> dict[str, Any]:
    """Compare the folder's previous run with this one (or delete it with ``--train.overwrite``);
    returns the metrics to continue from."""
    main = is_main_process()
    data = {"files": RF.fingerprint(task.files), "split": RF.split_of(task.name)}
    if cfg.train.overwrite:
        if main:
            RF.clear(out)
        metrics: dict[str, Any] = {}
    else:
        metrics = RF.read_metrics(out)
        stored = metrics.get("config")
        if stored is not None:
            diffs = RF.config_diff(stored, cfg.to_dict())
            if diffs:
                raise RF.RunFolderError(
                    f"{out} holds a run with another configuration ({'; '.join(diffs)}); choose a new "
                    "--train.output_dir, or pass --train.overwrite true to delete the previous run"
                )
        RF.check_fingerprint(out, (metrics.get("data") or {}).get("files"), data["files"])
        if metrics:  # a metrics.json without a data section predates fingerprints: split 1
            RF.check_run_split(out, task.name, RF.stored_split(metrics.get("data")), data["split"])
        if main:
            RF.recover_model(out)
    resolved = cfg.resolved(task.binarize_threshold)  # every value the run uses, the loss's included
    if main:
        RF.write_config(out, resolved)
    metrics["config"] = resolved
    metrics["data"] = data
    return metrics


def _train_locked(cfg: RunConfig, task: Task, out: Path) -> dict[str, Any]:
    metrics_path = out / RF.METRICS
    metrics = _prepare_folder(cfg, task, out)
    metrics.pop("failed", None)  # this attempt decides anew
    metrics["loss_options"] = resolved_loss_options(cfg, task)  # what the loss runs with
    primary = task.metric
    metrics["task"] = task.name
    metrics["primary"] = primary
    if is_main_process():
        trains = len(train_subset(task, cfg))
        of = f"{trains} of {len(task.train)}" if trains < len(task.train) else f"{trains}"
        subset = f" (--data.train_subset {cfg.data.train_subset})" if trains < len(task.train) else ""
        print(f"task {task.name}: {of} training pairs{subset}, metric {primary}; model {cfg.train.model}")
    try:
        best_seed = _train_seeds(cfg, task, out, metrics, metrics_path)
    except ValueError as err:  # re-running the same command would fail the same way: say so
        if is_main_process():
            metrics["failed"] = {"reason": str(err)}
            write_json(metrics_path, metrics)
        raise
    except Exception as err:
        fault = write_fault(err, out, "re-run the same command to resume")
        if fault is None:
            raise
        raise fault from err
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


def _train_seeds(cfg: RunConfig, task: Task, out: Path, metrics: dict[str, Any], metrics_path: Path) -> str:
    """Evaluate the start, train every seed not yet finished, compare the best with the start and save
    it as ``model/``; returns the chosen seed."""
    primary = task.metric
    if cfg.eval.before and "before" not in metrics and is_main_process():
        base = load_model(
            cfg.train.model,
            seed=cfg.train.seed,
            max_seq_length=cfg.train.max_seq_length,
            padding_free=cfg.train.padding_free,
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
            keep_best_model(out, seeds, primary, save=False)
            print(
                f"seed {seed}: dev {primary} = {result['dev'].get(primary):.4f}, {result['train_seconds']:.0f} s"
            )

    best_seed = RF.best_seed(seeds, primary)
    start = ((metrics.get("before") or {}).get("dev") or {}).get(primary)
    versus = RF.versus_start(start, seeds[best_seed]["dev"].get(primary), primary)
    metrics["versus_start"] = versus
    if versus is not None and versus["worse"]:
        what = (
            f"training made the model worse: dev {primary} {versus['trained']:.4f} after training (seed "
            f"{best_seed}, the best on dev) < {versus['start']:.4f} before"
        )
        if cfg.train.if_worse == "fail":
            raise RunFailed(
                f"{what}; nothing was saved as {out / RF.MODEL} (the trained model is in "
                f"{out / f'seed-{best_seed}' / RF.BEST_MODEL}). Lower --train.learning_rate or change the loss "
                "options (a new --train.output_dir or --train.overwrite true), or keep the trained model: re-run "
                "this command with --train.if_worse warn (nothing is trained again)"
            )
        if is_main_process():
            logger.warning("%s; kept as --train.if_worse warn asks", what)
    metrics["best_seed"] = int(best_seed)
    metrics["after"] = {"dev": seeds[best_seed]["dev"], "test": seeds[best_seed]["test"]}
    if is_main_process():
        keep_best_model(out, seeds, primary)
    write_json(metrics_path, metrics)
    return best_seed
