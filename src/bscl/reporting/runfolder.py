"""The ``bscl train`` run folder: its one owner (schema, reader, writer, lock, checkpoints, fingerprint).

Layout::

    OUTPUT_DIR/
      .lock            held (``filelock``) by the ``bscl train`` writing the folder
      .lock.pid        the holder's pid, while it holds the folder
      config.yaml      the resolved :class:`~bscl.training.config.RunConfig` (``--config`` loads it)
      metrics.json     the record (strict JSON: NaN / inf are written as ``null``), keys:
                       config, task, primary, data (``{"files": {path: sha256}}``), before,
                       running (the seed in progress), seeds ({seed: result}), best_seed, after,
                       versus_start (the chosen model's dev value against the start's), failed
                       (why a run stopped that re-running the same command cannot finish)
      report.md, *.png the run report (:mod:`bscl.reporting.report`)
      seed-N/checkpoint-S/   trainer checkpoints; complete only with
                             :data:`bscl.training.trainer.COMPLETE_FILE` (written last)
      seed-N/best-model/     a finished seed's chosen model until it is moved to model/ or dropped
      model/           the run's chosen model, replaced atomically on a re-run

Every reader and writer of these files is here; :mod:`bscl.run`, :mod:`bscl.reporting.report` and
:mod:`bscl.experiments` import them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from bscl.paths import EnvironmentFault, ensure_writable  # noqa: F401  (re-exported: the output folder check)
from bscl.reporting.atomic import atomic_write_text

PathLike = str | os.PathLike[str]

METRICS = "metrics.json"
CONFIG = "config.yaml"
MODEL = "model"
LOCK = ".lock"
LOCK_HOLDER = ".lock.pid"
BEST_MODEL = "best-model"
TRAINER_STATE = "trainer_state.json"

#: options that change only what is printed / logged / how the folder is handled, never the result
OUTPUT_ONLY: frozenset[str] = frozenset(
    {
        "train.logging_steps",
        "train.resume",
        "train.overwrite",
        "train.if_worse",
        "eval.batch_size",
        "eval.split",
        "eval.before",
    }
)
#: options holding a path: ``./runs/x`` and ``runs/x/`` are the same folder
PATH_OPTIONS: frozenset[str] = frozenset(
    {
        "train.output_dir",
        "data.data_root",
        "data.train_file",
        "data.dev_file",
        "data.test_file",
        "train.model",
    }
)


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (locked, another configuration, changed data, read-only)."""


# --------------------------------------------------------------------------------------------------
# strict JSON
# --------------------------------------------------------------------------------------------------
def strict(data: Any) -> Any:
    """``data`` with every non-finite float replaced by ``None`` (JSON has no NaN / Infinity)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(v) for v in data]
    return data


def dumps(data: Any) -> str:
    """Strict JSON text (``allow_nan=False`` after :func:`strict`)."""
    return json.dumps(strict(data), indent=2, allow_nan=False)


def write_json(path: PathLike, data: Any) -> None:
    """Write strict JSON atomically."""
    atomic_write_text(path, dumps(data))


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------
def read_json_object(path: PathLike) -> dict[str, Any]:
    """A JSON file that holds one object; ValueError naming the file (and line) otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: invalid JSON: {err.msg}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def load_metrics(run_dir: PathLike) -> dict[str, Any]:
    """``run_dir/metrics.json`` as a dict; clear errors for a missing or malformed file."""
    path = Path(run_dir) / METRICS
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"{run_dir}: run folder not found")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (is {run_dir} a `bscl train` output folder?)")
    data = read_json_object(path)
    seeds = data.get("seeds", {})
    if not isinstance(seeds, dict):
        raise ValueError(f"{path}: field 'seeds': expected an object seed -> result")
    return data


def read_metrics(run_dir: PathLike) -> dict[str, Any]:
    """:func:`load_metrics`, or ``{}`` when the folder holds no ``metrics.json`` yet."""
    return load_metrics(run_dir) if (Path(run_dir) / METRICS).is_file() else {}


def load_config(run_dir: PathLike, metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's configuration: ``config.yaml`` if present, else ``metrics["config"]``, else ``{}``."""
    path = Path(run_dir) / CONFIG
    if path.is_file():
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: invalid YAML: {err}") from err
        if isinstance(cfg, dict):
            return cfg
    cfg = (metrics or {}).get("config")
    return dict(cfg) if isinstance(cfg, Mapping) else {}


def write_config(run_dir: PathLike, config: Mapping[str, Any]) -> None:
    """``config.yaml``, atomically."""
    atomic_write_text(Path(run_dir) / CONFIG, yaml.safe_dump(dict(config), sort_keys=False))


# --------------------------------------------------------------------------------------------------
# checkpoints and log_history
# --------------------------------------------------------------------------------------------------
def checkpoint_step(path: PathLike) -> int:
    """The step of ``checkpoint-S`` (-1 for another name)."""
    tail = Path(path).name.split("-")[-1]
    return int(tail) if Path(path).name.startswith("checkpoint-") and tail.isdigit() else -1


def is_complete(checkpoint: PathLike) -> bool:
    """Whether a checkpoint was written to the end (its :data:`~bscl.training.trainer.COMPLETE_FILE`
    exists)."""
    from bscl.training.trainer import COMPLETE_FILE  # on use: reading a run folder needs no torch

    return (Path(checkpoint) / COMPLETE_FILE).is_file()


def checkpoints(folder: PathLike, *, complete: bool = True) -> list[Path]:
    """The ``checkpoint-S`` folders of one seed's folder, by step; only complete ones unless
    ``complete=False`` (then those with a ``trainer_state.json``: best-effort views of a crash)."""
    found = [
        p
        for p in Path(folder).glob("checkpoint-*")
        if checkpoint_step(p) >= 0 and (is_complete(p) if complete else (p / TRAINER_STATE).is_file())
    ]
    return sorted(found, key=checkpoint_step)


def last_checkpoint(folder: PathLike) -> Path | None:
    """The newest complete checkpoint of ``folder`` (the one a resume starts from), or None."""
    found = checkpoints(folder)
    return found[-1] if found else None


def remove_incomplete_after(folder: PathLike, step: int) -> list[Path]:
    """Delete the checkpoints newer than ``step`` (incomplete by definition: a resume from ``step``
    writes them again); returns what was removed."""
    gone = [p for p in Path(folder).glob("checkpoint-*") if checkpoint_step(p) > step]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def read_trainer_state(checkpoint: PathLike) -> dict[str, Any]:
    """A checkpoint's ``trainer_state.json``."""
    state = json.loads((Path(checkpoint) / TRAINER_STATE).read_text(encoding="utf-8"))
    if not isinstance(state, dict):
        raise ValueError(f"{checkpoint}/{TRAINER_STATE}: expected a JSON object")
    return state


def train_losses(log_history: Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
    """The training-loss rows of HF's ``log_history``: ``{step, loss[, tau]}``."""
    return [
        {"step": r["step"], "loss": r["loss"], **({"tau": r["tau"]} if "tau" in r else {})}
        for r in log_history
        if isinstance(r, Mapping) and "loss" in r and "step" in r
    ]


def dev_history(
    log_history: Iterable[Mapping[str, Any]], metric_key: str | None = None, primary: str | None = None
) -> list[dict[str, float]]:
    """The per-epoch dev rows ``{epoch, dev}``: by the exact ``metric_key`` (``eval_dev_spearman``), or
    by the first key ``eval_*_{primary}`` when only the metric's name is known."""
    rows = []
    for r in log_history:
        if not isinstance(r, Mapping) or "epoch" not in r:
            continue
        if metric_key is not None:
            key = metric_key if metric_key in r else None
        else:
            keys = [k for k in r if primary and k.startswith("eval_") and k.endswith(f"_{primary}")]
            key = keys[0] if keys else None
        if key is not None:
            rows.append({"epoch": r["epoch"], "dev": r[key]})
    return rows


# --------------------------------------------------------------------------------------------------
# the lock
# --------------------------------------------------------------------------------------------------
@contextmanager
def locked(folder: PathLike) -> Iterator[Path]:
    """Hold ``folder/.lock`` (``filelock``: an OS lock, exclusive, non-blocking) for the block.

    A second holder fails at once with :class:`RunFolderError` naming the folder and the holder's pid
    (kept in ``.lock.pid`` beside the lock: some ``filelock`` versions truncate the lock file when a
    contender opens it). The lock dies with its process, so a killed run leaves no stale lock (the
    files stay, harmless).
    """
    path = Path(folder) / LOCK
    holder = Path(folder) / LOCK_HOLDER
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        pid = holder.read_text(encoding="ascii", errors="replace").strip() if holder.is_file() else ""
        raise RunFolderError(
            f"{folder} is in use by another `bscl train` (pid {pid or 'unknown'}); wait for it to end, or "
            "choose another --train.output_dir"
        ) from None
    try:
        holder.write_text(f"{os.getpid()}\n", encoding="ascii")
        yield path
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


# --------------------------------------------------------------------------------------------------
# writability, overwrite, the model
# --------------------------------------------------------------------------------------------------
def clear(folder: PathLike) -> None:
    """Delete the previous run of ``folder`` (``--train.overwrite true``); the lock files stay.

    A file that cannot be deleted raises :class:`~bscl.paths.EnvironmentFault` naming it (what was
    deleted before it stays deleted; the rest is untouched)."""
    for p in Path(folder).iterdir():
        if p.name in (LOCK, LOCK_HOLDER):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError as err:
            raise EnvironmentFault(
                f"--train.overwrite: cannot delete {err.filename or p} ({err.strerror}); delete the previous "
                f"run in {folder} yourself (check that file's permissions and who holds it open), or choose "
                "another --train.output_dir",
                err.errno,
            ) from err


def replace_model(folder: PathLike, source: PathLike) -> Path:
    """Move ``source`` (a seed's chosen model, in the same run folder) to ``folder/model``, so the run
    folder holds the chosen model once, with no moment without a model: rename the old ``model`` to
    ``.model.trash``, ``source`` to ``model``, then delete the trash (a kill in between leaves
    ``source`` in place for the next run, which first puts the old model back: :func:`recover_model`)."""
    final = Path(folder) / MODEL
    trash = Path(folder) / ".model.trash"
    shutil.rmtree(trash, ignore_errors=True)
    if final.exists():
        os.replace(final, trash)
    os.replace(source, final)
    shutil.rmtree(trash, ignore_errors=True)
    return final


def recover_model(folder: PathLike) -> None:
    """After a kill inside :func:`replace_model`: put the old model back (or drop it when the new one is
    in place)."""
    final, trash = Path(folder) / MODEL, Path(folder) / ".model.trash"
    if trash.is_dir() and not final.exists():
        os.replace(trash, final)
    shutil.rmtree(trash, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# the configuration guard
# --------------------------------------------------------------------------------------------------
def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _same_path(a: Any, b: Any, name: str) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    if name == "train.model" and "/" not in a + b and not a.startswith("."):
        return False  # model names (minilm), not paths
    norm = lambda s: os.path.normpath(os.path.abspath(os.path.expanduser(s)))  # noqa: E731
    return norm(a) == norm(b)


def _resolved_loss(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``config`` with its loss section as the loss runs it: an unset option (None) replaced by the
    loss's own default (the threshold by the task's), options the loss does not take dropped. So
    ``--loss.tau 0.1`` equals an unset tau for a loss whose default is 0.1, and the comparison does
    not depend on whether the config was stored before or after resolution."""
    loss = config.get("loss")
    if not isinstance(loss, Mapping):
        return config
    from bscl.losses.modules import LOSSES, loss_options
    from bscl.training.registry import LOSS_CONFIG_EXTRA

    name = loss.get("name")
    if name not in LOSSES:
        return config  # a sentence-transformers recipe or an unknown name: compared as stored
    options = loss_options(name)
    threshold = None
    if "threshold" in options and loss.get("threshold") is None:
        from bscl.data import TASK_SPECS

        spec = TASK_SPECS.get(str((config.get("data") or {}).get("task")))
        threshold = spec.threshold if spec is not None else None
    resolved: dict[str, Any] = {k: v for k, v in loss.items() if k in LOSS_CONFIG_EXTRA}
    for key, default in options.items():
        value = loss.get(key)
        resolved[key] = value if value is not None else (threshold if key == "threshold" else default)
    return {**config, "loss": resolved}


def config_diff(
    stored: Mapping[str, Any], wanted: Mapping[str, Any], *, more_seeds: bool = True
) -> list[str]:
    """The options that differ, as ``section.option: old -> new``, ignoring harmless differences:
    output-only options (:data:`OUTPUT_ONLY`), spellings of one path (:data:`PATH_OPTIONS`), more
    ``train.seeds`` than before when ``more_seeds`` (the new seeds train, the old are kept), and an
    option the stored config lacks (added to the config later) when the wanted value is its default."""
    from bscl.training.config import RunConfig

    defaults = _flatten(RunConfig().to_dict())
    old, new = _flatten(_resolved_loss(stored)), _flatten(_resolved_loss(wanted))
    missing = object()
    diffs = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, missing), new.get(name, missing)
        if name in OUTPUT_ONLY or a == b:
            continue
        if a is missing and b == defaults.get(name, missing):
            continue
        if name in PATH_OPTIONS and _same_path(a, b, name):
            continue
        if more_seeds and name == "train.seeds" and isinstance(a, int) and isinstance(b, int) and b > a:
            continue
        show = lambda v: "(unset)" if v is missing else repr(v)  # noqa: E731
        diffs.append(f"{name}: {show(a)} -> {show(b)}")
    return diffs


# --------------------------------------------------------------------------------------------------
# the data fingerprint
# --------------------------------------------------------------------------------------------------
def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(files: Sequence[PathLike]) -> dict[str, str]:
    """``{path: sha256}`` of the data files a run read."""
    return {str(Path(p)): sha256_file(p) for p in files}


def data_changes(stored: Mapping[str, str] | None, current: Mapping[str, str]) -> list[str]:
    """What differs between two fingerprints (:func:`fingerprint`): ``PATH changed``, ``PATH is new``,
    ``PATH is no longer read``; empty when nothing was stored (from before fingerprints) or the
    contents are the same (a data root moved or spelled otherwise)."""
    if not stored or sorted(stored.values()) == sorted(current.values()):
        return []
    changed = [p for p in current if p in stored and stored[p] != current[p]]
    added = [p for p in current if p not in stored]
    gone = [p for p in stored if p not in current]
    return (
        [f"{p} changed" for p in changed]
        + [f"{p} is new" for p in added]
        + [f"{p} is no longer read" for p in gone]
    )


def check_fingerprint(folder: PathLike, stored: Mapping[str, str] | None, current: Mapping[str, str]) -> None:
    """Refuse to continue a run whose data changed, naming the files."""
    what = data_changes(stored, current)
    if what:
        raise RunFolderError(
            f"{folder} was trained on other data: {'; '.join(what)}. Resuming would continue on the new "
            "rows; restore the data, choose another --train.output_dir, or pass --train.overwrite true"
        )


def split_of(task: str | None) -> int:
    """The version of ``task``'s split of its files (:attr:`bscl.data.spec.TaskSpec.split_version`);
    1 for a task without a spec (the user's own files)."""
    from bscl.data import TASK_SPECS

    spec = TASK_SPECS.get(str(task))
    return spec.split_version if spec is not None else 1


def stored_split(data: Mapping[str, Any] | None) -> int:
    """The split version a run folder's ``metrics.json`` ``data`` section (or a record) stores; 1 for
    one written before split versions existed."""
    return int((data or {}).get("split", 1))


def check_run_split(folder: PathLike, task: str | None, stored: int, current: int) -> None:
    """Refuse to continue (or count as done) a run made on another split of the task's files."""
    if stored != current:
        raise RunFolderError(
            f"{folder} was trained and evaluated on split {stored} of {task}'s data; the loader now makes "
            f"split {current} (docs: the task's spec); choose another --train.output_dir, or pass "
            "--train.overwrite true"
        )


# --------------------------------------------------------------------------------------------------
# the record
# --------------------------------------------------------------------------------------------------
def best_seed(seeds: Mapping[str, Mapping[str, Any]], primary: str) -> str:
    """The seed with the best finite dev ``primary`` (NaN / missing / null values never win); a
    ValueError naming the seeds when none has a finite value."""
    values: dict[str, float] = {}
    for seed, result in seeds.items():
        v = (result.get("dev") or {}).get(primary)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            values[seed] = float(v)
    if not values:
        got = {s: (r.get("dev") or {}).get(primary) for s, r in seeds.items()}
        raise ValueError(
            f"no seed has a finite dev {primary} ({got}): every trained model is broken; check the "
            "training loss in the run report, lower --train.learning_rate or change the loss options"
        )
    return max(values, key=values.__getitem__)


def versus_start(start: Any, trained: Any, primary: str) -> dict[str, Any] | None:
    """The chosen model's dev ``primary`` against the start's (the model before training, evaluated by
    the same code on the same dev split): ``{"metric", "start", "trained", "worse"}``, or None when
    either value is unknown (``--eval.before false``) or not finite. The start is a candidate: a run
    whose chosen model is below it made the model worse."""
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (start, trained)
    ):
        return None
    return {"metric": primary, "start": float(start), "trained": float(trained), "worse": trained < start}


def failure(metrics: Mapping[str, Any]) -> str | None:
    """Why the run in ``metrics`` stopped for good (re-running the same command fails the same way), or
    None for a finished or merely interrupted (resumable) run."""
    failed = metrics.get("failed")
    return str(failed.get("reason")) if isinstance(failed, Mapping) and failed.get("reason") else None


def outcome_notes(metrics: Mapping[str, Any]) -> list[str]:
    """Markdown lines of the run report for a chosen model that is worse on dev than the model training
    started from, kept by ``--train.if_worse warn`` (a failed run's reason is its status line)."""
    vs = metrics.get("versus_start")
    if failure(metrics) is not None or not (isinstance(vs, Mapping) and vs.get("worse")):
        return []
    return [
        f"> **Worse than the start:** dev {vs.get('metric')} {vs.get('trained'):.4f} after training vs "
        f"{vs.get('start'):.4f} before; kept because of `--train.if_worse warn`.",
        "",
    ]
