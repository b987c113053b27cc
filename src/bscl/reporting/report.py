"""``report.md`` and PNG plots for a ``bscl train`` run folder.

:func:`write_report` reads ``OUTPUT_DIR/metrics.json`` (and ``config.yaml``) as written by
:func:`bscl.run.run_training` and writes, next to them::

    report.md          configuration summary, results (before vs after, dev and test), seeds, plots
    train_loss.png     training loss over optimiser steps, one line per seed
    tau.png            learned temperature over steps (only when some logged row has "tau")
    dev_per_epoch.png  the dev metric before training (epoch 0) and after each epoch, one line per seed

An interrupted run (``metrics.json`` without ``"after"``/``"best_seed"``, fewer seeds than configured)
still gets a report that says so and shows what was recorded. Every file is written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bscl.data import TASK_SPECS
from bscl.reporting.atomic import atomic_open, atomic_write_text
from bscl.reporting.runfolder import (
    checkpoints,
    dev_history,
    failure,
    load_config,
    load_metrics,
    outcome_notes,
    read_trainer_state,
    train_losses,
)

PathLike = str | os.PathLike[str]

REPORT_NAME = "report.md"
LOSS_PLOT = "train_loss.png"
TAU_PLOT = "tau.png"
DEV_PLOT = "dev_per_epoch.png"

MISSING = "–"


# --------------------------------------------------------------------------------------------------
# Markdown helpers
# --------------------------------------------------------------------------------------------------
def format_value(value: Any, floatfmt: str = ".4f") -> str:
    """One table cell: floats with ``floatfmt``, missing/NaN as an en dash, ``|`` escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_table(
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    headers: Sequence[str] | None = None,
    floatfmt: str = ".4f",
) -> str:
    """A Markdown table: one column per key (header = ``headers`` or the keys), one line per row.

    Missing keys and NaN show as an en dash. Numeric columns are right-aligned.
    """
    if headers is not None and len(headers) != len(keys):
        raise ValueError(f"{len(headers)} headers for {len(keys)} keys")
    names = list(headers) if headers is not None else list(keys)
    numeric = [
        any(isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool) for r in rows)
        and all(r.get(k) is None or isinstance(r.get(k), int | float) for r in rows)
        for k in keys
    ]
    lines = [
        "| " + " | ".join(format_value(n) for n in names) + " |",
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(k), floatfmt) for k in keys) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# reading a run folder
# --------------------------------------------------------------------------------------------------
def primary_metric(metrics: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    """The model-selection metric: ``metrics["primary"]`` if recorded, else the named task's."""
    if isinstance(metrics.get("primary"), str):
        return metrics["primary"]
    task = str(_get(config, "data", "task") or "").lower()
    spec = TASK_SPECS.get(task)
    return spec.metric if spec is not None else None


def _get(d: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return None
        d = d[k]
    return d


def _seed_items(metrics: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    seeds = metrics.get("seeds") or {}

    def order(key: str) -> tuple[int, Any]:
        return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)

    return [(k, seeds[k]) for k in sorted(seeds, key=order) if isinstance(seeds[k], Mapping)]


def unfinished_seeds(
    run_dir: PathLike, metrics: Mapping[str, Any], primary: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """Curves of seeds that started but are not in ``metrics.json``, from their last checkpoint.

    ``run_dir/seed-N/checkpoint-*/trainer_state.json`` holds the trainer's ``log_history``: the loss
    (and tau) rows become ``train_loss``; the per-epoch dev rows (key ``eval_*_{primary}``) become
    ``dev_per_epoch``. Unreadable folders are skipped: this is a best-effort view of an interrupted run
    (a checkpoint cut short after its ``trainer_state.json`` counts here, not for resuming).
    """
    done = set((metrics.get("seeds") or {}).keys())
    found: list[tuple[str, dict[str, Any]]] = []
    for folder in sorted(Path(run_dir).glob("seed-*")):
        seed = folder.name[len("seed-") :]
        if seed in done or not folder.is_dir():
            continue
        states = checkpoints(folder, complete=False)
        if not states:
            continue
        try:
            state = read_trainer_state(states[-1])
            history = [row for row in state.get("log_history", []) if isinstance(row, dict)]
        except (OSError, ValueError, AttributeError):
            continue
        found.append(
            (
                seed,
                {
                    "seed": seed,
                    "unfinished": True,
                    "train_loss": train_losses(history),
                    "dev_per_epoch": dev_history(history, primary=primary) if primary else [],
                    "last_step": state.get("global_step"),
                },
            )
        )
    return found


def _ordered_metrics(dicts: Sequence[Mapping[str, Any]], primary: str | None) -> list[str]:
    names = sorted({k for d in dicts for k in d})
    if primary in names:
        names.remove(primary)
        names.insert(0, primary)
    return names


def _delta(after: Any, before: Any) -> str | None:
    """``after - before`` with a sign (``+0.0123``), or None when either is missing."""
    if isinstance(after, int | float) and isinstance(before, int | float):
        d = float(after) - float(before)
        return None if math.isnan(d) else f"{d:+.4f}"
    return None


# --------------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------------
def _save(fig: Any, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")


def _figure() -> tuple[Any, Any]:
    # Figure without pyplot: Agg rendering, no global backend state, nothing to close.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _line_style(seed: str, kept: str | None) -> dict[str, Any]:
    if kept is None:
        return {"linewidth": 1.5}
    return {"linewidth": 2.2, "zorder": 3} if seed == kept else {"linewidth": 1.0, "alpha": 0.7}


def _label(seed: str, kept: str | None, unfinished: bool = False) -> str:
    if unfinished:
        return f"seed {seed} (unfinished)"
    return f"seed {seed} (kept)" if seed == kept else f"seed {seed}"


def plot_series(
    seeds: Sequence[tuple[str, Mapping[str, Any]]],
    field: str,
    value: str,
    x: str,
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    kept: str | None = None,
    log_y: bool = False,
    mark_best: bool = False,
    start: tuple[float, float] | None = None,
    start_label: str = "before training",
) -> bool:
    """Plot ``row[value]`` against ``row[x]`` for the rows of ``seed[field]``, one line per seed.

    ``start``: an ``(x, value)`` every line starts from (the value before training), drawn as its own
    point with a dotted level line, inside the axes. Returns False (and writes nothing) when no seed
    has such rows.
    """
    fig, ax = _figure()
    drawn = False
    if start is not None:
        ax.axhline(start[1], color="0.5", linestyle=":", linewidth=1.0, zorder=1)
        ax.scatter([start[0]], [start[1]], s=60, marker="D", color="0.2", zorder=5,
                   label=f"{start_label}: {start[1]:.4f}")  # fmt: skip
    for seed, result in seeds:
        rows = [
            r
            for r in result.get(field) or []
            if isinstance(r, Mapping)
            and isinstance(r.get(x), int | float)
            and isinstance(r.get(value), int | float)
        ]
        if not rows:
            continue
        xs = [float(r[x]) for r in rows]
        ys = [float(r[value]) for r in rows]
        if start is not None:  # each line starts from the value before training
            xs, ys = [start[0], *xs], [start[1], *ys]
        unfinished = bool(result.get("unfinished"))
        style = {"linestyle": "--", "linewidth": 1.2} if unfinished else _line_style(seed, kept)
        (line,) = ax.plot(xs, ys, marker="o" if len(xs) <= 20 else None, markersize=4,
                          label=_label(seed, kept, unfinished), **style)  # fmt: skip
        if mark_best:
            first = 1 if start is not None else 0  # the best epoch, not the starting point
            i = max(range(first, len(ys)), key=ys.__getitem__)
            ax.scatter([xs[i]], [ys[i]], s=80, facecolors="none", edgecolors=line.get_color(), zorder=4)
        drawn = True
    if not drawn:
        return False
    if log_y and all(v > 0 for ln in ax.get_lines() for v in ln.get_ydata()):
        ax.set_yscale("log")
    ax.margins(x=0.05, y=0.12)  # no point on the frame (a start or a best value at an axis limit)
    if all(float(v).is_integer() for ln in ax.get_lines() for v in ln.get_xdata()):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize="small")
    _save(fig, path)
    return True


# --------------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------------
def _config_summary(cfg: Mapping[str, Any], loss_options: Mapping[str, Any] | None = None) -> str:
    """One-row table of the main settings; the loss's values are the resolved ones (``loss_options``
    in metrics.json: what the loss ran with) where recorded, else the config's."""
    if loss_options:
        cfg = {**cfg, "loss": {**(cfg.get("loss") or {}), **loss_options}}
    loss = _get(cfg, "loss", "name")
    fields = [
        ("task", _get(cfg, "data", "task")),
        ("model", _get(cfg, "train", "model")),
        ("loss", loss),
        ("tau", _get(cfg, "loss", "tau") if loss not in ("mse", "pearson", "triplet") else None),
        (
            "trainable tau",
            _get(cfg, "loss", "trainable_tau") if loss not in ("mse", "pearson", "triplet") else None,
        ),
        ("batching", _get(cfg, "batching", "strategy")),
        ("batch size", _get(cfg, "train", "batch_size")),
        ("epochs", _get(cfg, "train", "epochs")),
        ("learning rate", _get(cfg, "train", "learning_rate")),
        ("seeds", _get(cfg, "train", "seeds")),
        ("train subset", _get(cfg, "data", "train_subset")),
    ]
    row = {k: v for k, v in fields}
    return format_table([row], [k for k, _ in fields], floatfmt="g")


def _results_section(metrics: Mapping[str, Any], primary: str | None, complete: bool) -> list[str]:
    before = metrics.get("before") or {}
    after = metrics.get("after") or {}
    seeds = _seed_items(metrics)
    out: list[str] = ["## Results", ""]
    if primary:
        out += [f"Primary (model-selection) metric: **{primary}**.", ""]
    splits = [s for s in ("dev", "test") if before.get(s) or after.get(s) or any(r.get(s) for _, r in seeds)]
    if not splits:
        return [*out, "No evaluation results recorded yet.", ""]
    for split in splits:
        b = before.get(split) or {}
        out += [f"### {split}", ""]
        if complete:
            a = after.get(split) or {}
            names = _ordered_metrics([b, a], primary)
            rows = [
                {"metric": n, "before": b.get(n), "after": a.get(n), "delta": _delta(a.get(n), b.get(n))}
                for n in names
            ]
            keys = ["metric", "before", "after", "delta"]
            headers = ["metric", "before", f"after (seed {metrics.get('best_seed')})", "Δ"]
        else:
            # no model chosen yet: show the before numbers next to every finished seed
            per_seed = [(s, r.get(split) or {}) for s, r in seeds]
            names = _ordered_metrics([b, *(m for _, m in per_seed)], primary)
            rows = [
                {"metric": n, "before": b.get(n), **{f"seed {s}": m.get(n) for s, m in per_seed}}
                for n in names
            ]
            keys = ["metric", "before", *(f"seed {s}" for s, _ in per_seed)]
            headers = keys
        if not names:
            out += ["(no metrics)", ""]
            continue
        if not b:
            keys = [k for k in keys if k not in ("before", "delta")]
            headers = [h for h in headers if h not in ("before", "Δ")]
        out += [format_table(rows, keys, headers=headers), ""]
    return out


def _checkpoint_step(path: Any) -> int | None:
    """The step of a ``best_checkpoint`` path (records written before ``best_step`` was recorded)."""
    tail = Path(str(path)).name.removeprefix("checkpoint-") if path else ""
    return int(tail) if tail.isdigit() else None


def _seeds_section(metrics: Mapping[str, Any], primary: str | None, kept: str | None) -> list[str]:
    seeds = _seed_items(metrics)
    out = ["## Seeds", ""]
    if not seeds:
        return [*out, "No seed has finished yet.", ""]
    rows = []
    for s, r in seeds:
        per_epoch = [e.get("dev") for e in r.get("dev_per_epoch") or [] if isinstance(e, Mapping)]
        per_epoch = [v for v in per_epoch if isinstance(v, int | float)]
        rows.append(
            {
                "seed": s,
                "kept": "**kept**" if s == kept else "",
                "dev": (r.get("dev") or {}).get(primary) if primary else None,
                "test": (r.get("test") or {}).get(primary) if primary else None,
                "best epoch dev": max(per_epoch) if per_epoch else None,
                "epochs": len(per_epoch),
                "seconds": f"{r['train_seconds']:.1f}"
                if isinstance(r.get("train_seconds"), int | float)
                else None,
                "step": r.get("best_step", _checkpoint_step(r.get("best_checkpoint"))),
            }
        )
    keys = ["seed", "kept", "dev", "test", "best epoch dev", "epochs", "seconds", "step"]
    label = primary or "primary metric"
    headers = ["seed", "kept", f"dev {label}", f"test {label}", "best per-epoch dev", "evaluated epochs",
               "train seconds", "chosen at step"]  # fmt: skip
    if not primary:
        keys, headers = keys[:2] + keys[4:], headers[:2] + headers[4:]
    if kept is None:  # no model chosen yet
        keys, headers = [k for k in keys if k != "kept"], [h for h in headers if h != "kept"]
    return [*out, format_table(rows, keys, headers=headers), ""]


def write_report(run_dir: PathLike) -> Path:
    """Write ``report.md`` and its PNG plots into ``run_dir``; returns the report's path.

    Works on a finished run and on an interrupted one (``metrics.json`` without ``"after"``, or with
    fewer seeds than configured): the report then opens with a notice saying so.
    """
    run = Path(run_dir)
    metrics = load_metrics(run)
    cfg = load_config(run, metrics)
    primary = primary_metric(metrics, cfg)
    seeds = _seed_items(metrics)
    planned = _get(cfg, "train", "seeds")
    complete = "after" in metrics and "best_seed" in metrics
    kept = str(metrics["best_seed"]) if complete else None
    running = [] if complete else unfinished_seeds(run, metrics, primary)
    curves = seeds + running

    lines = [f"# Run report: `{run.resolve().name}`", ""]
    failed = failure(metrics)
    if failed is not None:
        lines += [f"**Status:** failed: {failed}", ""]
    elif complete:
        n = len(seeds)
        lines += [f"**Status:** finished; {n} seed{'s' if n != 1 else ''} trained, seed {kept} kept "
                  f"(best dev {primary or 'primary metric'}); the model is in `model/`.", ""]  # fmt: skip
    else:
        of = f" of {planned}" if isinstance(planned, int) else ""
        lines += [
            f"> **Interrupted run:** `metrics.json` has no final result yet; {len(seeds)}{of} seed(s) "
            "finished and no model was chosen. Re-run the same `bscl train` command to resume. "
            "The numbers below are what was recorded so far.",
            "",
        ]
    lines += outcome_notes(metrics)
    if cfg:
        lines += ["## Configuration", "", _config_summary(cfg, metrics.get("loss_options")), ""]
        lines += ["<details><summary>full configuration</summary>", "", "```yaml",
                  yaml.safe_dump(cfg, sort_keys=False).rstrip(), "```", "", "</details>", ""]  # fmt: skip

    lines += _results_section(metrics, primary, complete)
    lines += _seeds_section(metrics, primary, kept)
    for seed, r in running:
        lines += [f"Seed {seed} started but did not finish: its last checkpoint is at step {r.get('last_step')}; "
                  "its curves below (dashed) come from that checkpoint.", ""]  # fmt: skip

    lines += ["## Training curves", ""]
    plots = []
    if plot_series(curves, "train_loss", "loss", "step", run / LOSS_PLOT, title="Training loss",
                   xlabel="optimiser step", ylabel="loss", kept=kept):  # fmt: skip
        plots.append(("training loss", LOSS_PLOT))
    has_tau = any(
        isinstance(row, Mapping) and "tau" in row for _, r in curves for row in r.get("train_loss") or []
    )
    if has_tau and plot_series(curves, "train_loss", "tau", "step", run / TAU_PLOT, title="Learned temperature τ",
                               xlabel="optimiser step", ylabel="τ", kept=kept):  # fmt: skip
        plots.append(("temperature", TAU_PLOT))
    dev_label = f"dev {primary}" if primary else "dev metric"
    before = _get(metrics, "before", "dev", primary) if primary else None
    comparable = not _get(cfg, "data", "eval_subset")  # the before value is on the whole dev set
    start = (
        (0.0, float(before))
        if comparable and isinstance(before, int | float) and math.isfinite(before)
        else None
    )
    if plot_series(curves, "dev_per_epoch", "dev", "epoch", run / DEV_PLOT, title=f"{dev_label} per epoch",
                   xlabel="epoch (0: before training)", ylabel=dev_label, kept=kept, mark_best=True,
                   start=start):  # fmt: skip
        plots.append((f"{dev_label} per epoch", DEV_PLOT))
    if plots:
        for alt, name in plots:
            lines += [f"![{alt}]({name})", ""]
        if _get(cfg, "data", "eval_subset"):
            lines += [
                f"(per-epoch dev values use the first {_get(cfg, 'data', 'eval_subset')} dev pairs only)",
                "",
            ]
    else:
        lines += ["No training curves recorded yet.", ""]
    for stale in {LOSS_PLOT, TAU_PLOT, DEV_PLOT} - {name for _, name in plots}:
        (run / stale).unlink(missing_ok=True)  # a plot of an earlier report that no longer applies

    path = run / REPORT_NAME
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
