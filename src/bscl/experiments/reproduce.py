"""``bscl reproduce TASK``: the paper's method grid for one task, one table beside the paper's numbers.

Every cell of the grid is one ``bscl train`` run (:func:`bscl.run.run_training`) in
``OUTPUT_DIR/TASK/CELL`` with the paper's hyperparameters for the task (NOTES.md, Sec. 5.2 of the
paper) and the cell's overrides, plus the options that fit the run to this machine (epochs, training
subset, seeds, model). Every finished cell writes one record (:mod:`bscl.experiments.records`) under
``RESULTS_DIR/TASK/CELL/seed-N.json`` (default ``benchmarks/results/grid``); a recorded cell of the
same options is not re-run (so a fresh clone with the committed records trains nothing), a record of
other options is refused before anything trains, a finished cell folder is read back and an
interrupted cell resumes from its last checkpoint. The table (Markdown) is printed and written to
``OUTPUT_DIR/TASK/table.md``, and the task's generated grid section of the results file
(``<!-- grid:begin TASK -->``) is rebuilt from all of the task's records.

The paper's numbers are for BERT-base on a GPU, 5-7 epochs and 5 seeds, and CQA was tested on
SemEval-2017 (not available here: we test on SemEval-2016): read the comparison as an ordering of
methods, not as equal setups.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bscl.data import TASK_SPECS, get_spec
from bscl.experiments import records
from bscl.experiments.cells import (
    cell_config as layered_config,
)
from bscl.experiments.cells import (
    config_difference,
    merge_recipes,
    option_flags,
    run_or_skip,
)
from bscl.losses.options import loss_options
from bscl.reporting import runfolder as RF
from bscl.reporting.atomic import atomic_write_text
from bscl.reporting.report import format_table
from bscl.reporting.runfolder import write_json
from bscl.training.config import RunConfig
from bscl.training.registry import LOSS_CONFIG_EXTRA


@dataclass
class Cell:
    """One row of the grid."""

    name: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    paper: str | None = None  #: the paper's number(s) for this row, as printed (scaled to [0, 1])
    after: str | None = None  #: sequential training: start from this cell's model
    zero_shot: bool = False


#: tasks with the paper's settings (their specs, :mod:`bscl.data.tasks`), in the paper's order
REPRODUCIBLE: list[str] = [name for name, s in TASK_SPECS.items() if s.paper is not None]

#: where the grid's records go (a folder of its own: the head-to-head tables read benchmarks/results/)
GRID_RESULTS = records.RESULTS_DIR / "grid"

BSC = {"loss": {"name": "bsc"}, "batching": {"strategy": "example"}}
SIMCSE = {"tau": 0.05, "symmetric": False}  #: SimCSE's temperature, one direction (wiki-unsup cells)


def _with(base: dict[str, dict[str, Any]], **sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return merge_recipes(copy.deepcopy(base), sections)


def grid(task: str) -> list[Cell]:
    """The paper's rows for ``task`` (main rows first, so a partial grid is still useful)."""
    cells = [Cell("zero-shot", zero_shot=True)]
    if task == "wiki-unsup":
        return cells + [
            Cell("bsc one direction (SimCSE)", _with(BSC, batching={"strategy": "random"})),
            Cell("focal-infonce", {"loss": {"name": "focal-infonce", "margin": 0.3, **SIMCSE}}),
            Cell("softcse-weight", {"loss": {"name": "softcse-weight", **SIMCSE}}),
            Cell("softcse-temperature", {"loss": {"name": "softcse-temperature", **SIMCSE}}),
        ]
    paper = PAPER.get(task, {})
    cells += [
        Cell("bsc (example shuffle)", BSC, paper.get("bsc")),
        Cell("bsc (example shuffle, reuse embeddings)", _with(BSC, batching={"reuse_embeddings": True})),
        Cell("mse", {"loss": {"name": "mse"}}, paper.get("mse")),
    ]
    if task in ("pfcc", "cqa-a", "cqa-b"):
        cells.append(Cell("triplet", {"loss": {"name": "triplet"}}, paper.get("triplet")))
    if task != "pfcc":
        cells.append(Cell("combo", _with(BSC, loss={"name": "combo"}), paper.get("combo")))
    if task == "stsb":
        cells.append(
            Cell(
                "bsc then mse",
                {"loss": {"name": "mse"}},
                paper.get("bsc then mse"),
                after="bsc (example shuffle)",
            )
        )
    cells += [
        Cell("bsc random shuffle", _with(BSC, batching={"strategy": "random"}), paper.get("bsc random")),
        Cell("bsc no shuffle", _with(BSC, batching={"strategy": "sequential"}), paper.get("bsc no shuffle")),
        Cell("bsc clusters", _with(BSC, batching={"strategy": "clusters"})),
    ]
    if task == "pfcc":
        cells += [
            Cell("bsc l2 norm", _with(BSC, loss={"normalization": "l2", "tau": 0.1}), paper.get("bsc l2")),
            Cell(
                "bsc no norm", _with(BSC, loss={"normalization": "none", "tau": 1.2}), paper.get("bsc none")
            ),
        ]
    else:
        cells.append(Cell("bsc positives only", _with(BSC, data={"positives_only": True})))
    fast = {"reuse_embeddings": True, "cold_start": "words", "pack_by_length": True}
    cells.append(
        Cell("bsc (example shuffle, reuse, words first epoch, packed by length)", _with(BSC, batching=fast))
    )
    return cells


#: the paper's test numbers per task and method (a view of the specs' ``paper_results``)
PAPER: dict[str, dict[str, str]] = {
    n: dict(s.paper_results) for n, s in TASK_SPECS.items() if s.paper_results
}


def task_settings(task: str, loss: str) -> dict[str, dict[str, Any]]:
    """The paper's settings of ``task`` for a cell training ``loss``: the spec's paper recipe for that
    loss (its tau / mu / normalization / margin only where the loss takes them; learning rate, batch
    size, bias correction, group size), without the shuffle: each cell names its own batching."""
    values = get_spec(task).paper.recipe(loss)  # type: ignore[union-attr]
    values["batching"].pop("strategy")
    return values


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def cell_config(task: str, cell: Cell, ns: argparse.Namespace, folder: Path) -> RunConfig:
    """Defaults <- the paper's task settings <- the cell's overrides <- this machine's options. The
    zero-shot cell: the model, data and evaluation alone (a later --epochs still finds it finished)."""
    if cell.zero_shot:
        values: dict[str, dict[str, Any]] = {
            "data": {"task": task, "data_root": ns.data_root},
            "train": {"model": ns.model, "output_dir": str(folder), "device": getattr(ns, "device", None)},
            "eval": {"before": False},
        }
        return layered_config(values, source=f"reproduce {task} / {cell.name}")
    loss = cell.overrides.get("loss", {}).get("name", "bsc")
    values = _with(task_settings(task, loss), data={"task": task})
    for name, section in cell.overrides.items():
        values = _with(values, **{name: section})
    if task == "pfcc" and values.get("loss", {}).get("name", "bsc") in ("mse", "triplet"):
        values = _with(values, data={"negatives": "ranked"})  # positives-only data: sampled negatives
    # the task settings hold the options of several losses (tau, mu, margin): keep the cell's loss's
    # (an option that a loss does not take is an error)
    taken = loss_options(values.get("loss", {}).get("name", "bsc"))
    values["loss"] = {k: v for k, v in values.get("loss", {}).items() if k in taken or k in LOSS_CONFIG_EXTRA}
    model = str(folder.parent / slug(cell.after)) if cell.after else ns.model
    values = _with(
        values,
        data={"data_root": ns.data_root, "train_subset": ns.train_subset, "eval_subset": ns.eval_subset},
        train={
            "model": model,
            "output_dir": str(folder),
            "epochs": ns.epochs,
            "seeds": ns.seeds,
            "batch_size": ns.batch_size,
            "mini_batch_size": ns.mini_batch_size,
        },
        eval={"before": False},
    )
    cfg = layered_config(values, source=f"reproduce {task} / {cell.name}")
    # a group must fit into a batch (bscl.batching.check_options): --batch-size below a cell's group caps it
    cfg.batching.group_size = min(cfg.batching.group_size, cfg.train.batch_size)
    return cfg


def _comparable(config: dict[str, Any] | None, cell: Cell) -> dict[str, Any] | None:
    """``config`` as compared across checkouts: the output folder is where a cell ran, not what it
    ran, and a sequential cell's model is "the first stage's model" wherever that folder was (the
    first stage's own config is checked itself)."""
    if config is None:
        return None
    out = copy.deepcopy(config)
    train = out.setdefault("train", {})
    train.pop("output_dir", None)
    if cell.after:
        train["model"] = f"<model of {slug(cell.after)}>"
    return out


def _differ(stored: dict[str, Any] | None, wanted: dict[str, Any], cell: Cell) -> str | None:
    return config_difference(_comparable(stored, cell), _comparable(wanted, cell))  # type: ignore[arg-type]


def cell_records(results_dir: Path, task: str, cell: Cell) -> list[Path]:
    """The records of ``cell`` under ``results_dir`` (at most one: another one is refused)."""
    return sorted(records.record_path(results_dir, task, slug(cell.name), 0).parent.glob("seed-*.json"))


def _as_result(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("dev", "test", "wall_seconds", "train_seconds")
    return {k: record[k] for k in keys if record.get(k) is not None}


def run_cell(task: str, cell: Cell, ns: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Run (or read back) one cell and record it; returns ``{"dev": {...}, "test": {...},
    "wall_seconds": s}``. A record of the same options under ``--results-dir`` is the result (a fresh
    clone trains nothing that is committed); a record or finished folder of other options is refused
    before anything trains."""
    folder = root / slug(cell.name)
    cfg = cell_config(task, cell, ns, folder)
    wanted = cfg.to_dict()
    results_dir = Path(ns.results_dir)
    done = folder / "cell.json"

    def finished() -> dict[str, Any] | None:
        return json.loads(done.read_text()) if done.is_file() else None

    def run() -> dict[str, Any]:
        from bscl.run import run_training, run_zero_shot

        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        metrics = run_zero_shot(cfg) if cell.zero_shot else run_training(cfg)
        result = dict(metrics["after"])
        result["train_seconds"] = sum(s["train_seconds"] for s in metrics["seeds"].values())
        result["wall_seconds"] = time.perf_counter() - start
        result["config"] = wanted
        write_json(done, result)
        return result

    def record(result: dict[str, Any]) -> Path:
        made = records.make_record(
            folder, slug(cell.name), side=records.ZERO_SHOT if cell.zero_shot else "bscl"
        )
        made.update(cell=cell.name, wall_seconds=result.get("wall_seconds"))
        path = records.write_record(made, results_dir)
        print(f"record: {path}", flush=True)
        return path

    _path, result, from_record = run_or_skip(
        f"{task} / {cell.name}",
        folder,
        recorded=cell_records(results_dir, task, cell),
        differ=lambda stored: _differ(stored, wanted, cell),
        hint="use another --results-dir (and --output-dir) for these options, or delete the record",
        finished=finished,
        run=run,
        record=record,
        announce_finished=False,
        announce_run=None
        if cell.zero_shot
        else f"\n=== {task} / {cell.name}: bscl train --config {folder / 'config.yaml'}",
    )
    return _as_result(result) if from_record else result


def recorded(task: str, results_dir: Path) -> dict[str, dict[str, Any]]:
    """Cell name -> result, from the records of ``task``'s grid under ``results_dir``."""
    by_slug = {slug(c.name): c.name for c in grid(task)}
    out = {}
    for path in sorted((results_dir / task).glob("*/seed-*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        name = by_slug.get(str(rec.get("recipe")))
        if name is None:
            raise ValueError(f"{path}: recipe {rec.get('recipe')!r} is no cell of the {task} grid")
        out[name] = _as_result(rec)
        out[name]["config"] = rec.get("config")
        out[name]["split"] = RF.stored_split(rec)
    return out


def grid_section(task: str, results_dir: Path) -> str:
    """The generated RESULTS.md section of ``task``'s grid: the table of every recorded cell, the
    ordering against the paper, and the options the records share."""
    results = recorded(task, results_dir)
    cells = grid(task)
    text = table(task, results, cells)
    trained = [(c, results[c.name]["config"]) for c in cells if c.name in results and not c.zero_shot]
    trained = [(c, cfg) for c, cfg in trained if cfg]

    def values(section: str, key: str, of: list[tuple[Cell, dict[str, Any]]]) -> str:
        shown = {"full" if cfg[section].get(key) is None else str(cfg[section].get(key)) for _c, cfg in of}
        return "/".join(sorted(shown)) or "-"

    shared = [
        f"model {values('train', 'model', [(c, cfg) for c, cfg in trained if not c.after])}",
        f"epochs {values('train', 'epochs', trained)}",
        f"seeds per cell {values('train', 'seeds', trained)}",
        f"training subset {values('data', 'train_subset', trained)}",
    ]
    recorded_cells = [c for c in cells if c.name in results]
    splits = sorted({results[c.name]["split"] for c in recorded_cells})
    current = RF.split_of(task)
    if splits and splits != [current]:
        # records of an earlier split of the data stay readable (history) but are not the current
        # split's results: `bscl reproduce TASK` refuses them and would train the cells again
        shared.append(
            f"data split {'/'.join(map(str, splits))} (the loader now makes split {current}; "
            "these cells are not re-run on it yet)"
        )
    command = grid_command(task, results_dir)
    return (
        f"{text}\n\n{len(recorded_cells)} of {len(cells)} cells recorded "
        f"(records: {results_dir / task}/); trained cells: {', '.join(shared)}."
        + (f"\n\n```\n{command}\n```" if command else "")
    )


def grid_command(
    task: str, results_dir: Path, into: Path | None = None, results_file: Path | None = None
) -> str | None:
    """The ``bscl reproduce`` command that makes ``task``'s recorded grid cells from nothing (the
    setting its trained cells share: model, epochs, seeds per cell, training subset), or None when
    they share none. ``into`` / ``results_file``: where its records and table go instead of the
    defaults (a recorded cell of the same options is read back, not trained)."""
    cells = {c.name: c for c in grid(task)}
    trained = [(cells[n], r["config"]) for n, r in recorded(task, results_dir).items() if r.get("config")]
    trained = [(c, cfg) for c, cfg in trained if not c.zero_shot]
    if not trained:
        return None
    settings = {
        "--model": {str(cfg["train"].get("model")) for c, cfg in trained if not c.after},
        "--epochs": {f"{float(cfg['train'].get('epochs', 1.0)):g}" for _c, cfg in trained},
        "--seeds": {str(cfg["train"].get("seeds", 1)) for _c, cfg in trained},
        "--train-subset": {str(cfg["data"].get("train_subset")) for _c, cfg in trained},
    }
    if any(len(values) != 1 for values in settings.values()):
        return None
    args = ["bscl", "reproduce", task]
    for flag, (value,) in settings.items():
        if value != "None":
            args += [flag, value]
    if into is not None:
        args += ["--results-dir", Path(into).as_posix()]
    if results_file is not None:
        args += ["--results-file", Path(results_file).as_posix()]
    return " ".join(args)


def table(task: str, results: dict[str, dict[str, Any]], cells: list[Cell]) -> str:
    """Markdown: one row per cell, our dev primary and test metrics, the paper's number."""
    spec = get_spec(task)
    keys = list(spec.table_metrics)
    headline = list(spec.paper_metrics)
    rows = []
    for cell in cells:
        r = results.get(cell.name)
        row: dict[str, Any] = {"method": cell.name, "paper": cell.paper or "–"}
        if r is not None:
            row["dev"] = r.get("dev", {}).get(keys[0])
            row.update({f"test {k}": r.get("test", {}).get(k) for k in keys})
            row["ours (as paper)"] = "/".join(
                f"{r.get('test', {}).get(k, float('nan')):.3f}" for k in headline
            )
            row["minutes"] = f"{r.get('wall_seconds', 0.0) / 60:.1f}"
        rows.append(row)
    columns = ["method", "dev", *[f"test {k}" for k in keys], "ours (as paper)", "paper", "minutes"]
    headers = [
        "method",
        f"dev {keys[0]}",
        *[f"test {k}" for k in keys],
        "ours (paper's metric)",
        "paper",
        "minutes",
    ]
    lines = [format_table(rows, columns, headers=headers)]
    agreement = ordering_agreement(results, cells, keys[0])
    if agreement:
        lines.append("")
        lines.append(agreement)
    return "\n".join(lines)


def ordering_agreement(results: dict[str, dict[str, Any]], cells: list[Cell], key: str) -> str | None:
    """Kendall's tau between our test numbers and the paper's over the rows that have both."""
    from scipy.stats import kendalltau

    pairs = [
        (results[c.name]["test"][key], float(c.paper.split("/")[0]))
        for c in cells
        if c.paper and c.name in results and key in results[c.name].get("test", {})
    ]
    if len(pairs) < 3:
        return None
    ours, paper = zip(*pairs, strict=True)
    tau = kendalltau(ours, paper).statistic
    order = lambda vals: sorted(range(len(vals)), key=lambda i: -vals[i])  # noqa: E731
    names = [
        c.name for c in cells if c.paper and c.name in results and key in results[c.name].get("test", {})
    ]
    return (
        f"Ordering of the {len(pairs)} rows the paper also has, by test {key}: ours "
        f"{' > '.join(names[i] for i in order(ours))}; paper {' > '.join(names[i] for i in order(paper))} "
        f"(Kendall tau {tau:.2f})."
    )


def reproduce(ns: argparse.Namespace) -> str:
    task = ns.task
    if task not in REPRODUCIBLE:
        raise ValueError(f"bscl reproduce: no grid for task {task!r}; choose one of {REPRODUCIBLE}")
    cells = grid(task)
    if ns.cells:
        wanted = [c.strip() for c in ns.cells.split(",") if c.strip()]
        unknown = [w for w in wanted if w not in {c.name for c in cells} | {slug(c.name) for c in cells}]
        if unknown:
            raise ValueError(f"--cells: unknown {unknown}; cells of {task}: {[slug(c.name) for c in cells]}")
        chosen = {c.name for c in cells if c.name in wanted or slug(c.name) in wanted}
        for c in cells:  # a sequential cell needs its first stage
            if c.name in chosen and c.after:
                chosen.add(c.after)
        cells = [c for c in cells if c.name in chosen]
    root = Path(ns.output_dir) / task
    root.mkdir(parents=True, exist_ok=True)
    if ns.dry_run:
        for c in cells:
            if not c.zero_shot:
                cfg = cell_config(task, c, ns, root / slug(c.name))
                cfg.validate()
                print(f"{c.name}: bscl train " + " ".join(option_flags(cfg)))
        return ""
    results: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for c in cells:  # every cell's options are checked before the first one trains
        cell_config(task, c, ns, root / slug(c.name)).validate()
    try:
        for cell in cells:
            results[cell.name] = run_cell(task, cell, ns, root)
    finally:
        total = sum(r.get("wall_seconds", 0.0) for r in results.values())
        text = (
            f"## {task}: `bscl {' '.join(shlex.quote(a) for a in ns.argv)}`\n\n"
            f"{table(task, results, cells)}\n\n"
            f"Finished {len(results)}/{len(cells)} cells; wall time {total / 60:.1f} min over all cells "
            f"({(time.perf_counter() - started) / 60:.1f} min in this invocation).\n"
        )
        atomic_write_text(root / "table.md", text)
        print("\n" + text, flush=True)
        regenerate(task, Path(ns.results_dir), Path(ns.results_file))
    return text


#: the heading of a task's generated grid section, where RESULTS.md has none yet
GRID_HEADING = (
    "### {task}: generated by `bscl reproduce {task}` from the records in benchmarks/results/grid/{task}/"
)


def regenerate(task: str, results_dir: Path, results_file: Path) -> None:
    """Rebuild ``task``'s generated grid section of ``results_file`` from its records."""
    if not (results_dir / task).is_dir():
        return
    text = results_file.read_text(encoding="utf-8") if results_file.is_file() else "# Benchmark results\n"
    new = records.fill(
        text,
        {task: grid_section(task, results_dir)},
        kind=records.GRID_KIND,
        heading=GRID_HEADING,
        only=[task],
    )
    if new != text:
        atomic_write_text(results_file, new)
        print(f"grid table of {task} regenerated in {results_file}", flush=True)


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's method grid for a task and print it beside the paper's numbers",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("task", choices=list(REPRODUCIBLE), help="the task whose grid to run")
    p.add_argument("--model", default="minilm")
    p.add_argument("--epochs", type=float, default=1.0, help="paper: 5-7")
    p.add_argument("--seeds", type=int, default=1, help="paper: 5 (best on dev kept)")
    p.add_argument("--batch-size", type=int, default=30, help="paper: 30")
    p.add_argument("--mini-batch-size", type=int, default=None, help="gradient caching chunk (default: off)")
    p.add_argument(
        "--train-subset", type=int, default=None, help="train on the first N pairs (seeded shuffle)"
    )
    p.add_argument(
        "--eval-subset", type=int, default=None, help="per-epoch dev metric on the first N dev items"
    )
    cells = "; ".join(f"{t}: {', '.join(slug(c.name) for c in grid(t))}" for t in REPRODUCIBLE)
    p.add_argument(
        "--cells", default=None, help=f"comma-separated cell names (default: the whole grid). Cells: {cells}"
    )
    p.add_argument("--output-dir", default="runs/reproduce")
    records.add_results_arguments(
        p,
        GRID_RESULTS,
        dir_help="the cells' records (one JSON per cell; a recorded cell of the same options is not re-run)",
        file_help="the Markdown file whose grid tables are regenerated",
    )
    p.add_argument("--data-root", default=None)
    p.add_argument("--dry-run", action="store_true", help="print each cell's bscl train options and stop")
    p.add_argument(
        "--device", default=None, help="zero-shot cells: cpu, cuda, ... (default: CUDA when available)"
    )
    p.set_defaults(func=lambda ns: (reproduce(ns), 0)[1])
    return p
