"""``bscl compare``: bscl's recipes head to head with sentence-transformers' own, on a named task
(``bscl compare TASK``) or on the user's own pairs (``bscl compare --data.train_file pairs.csv ...``).

Recipes of a task: ``zero-shot`` (the pretrained model, evaluated once), ``bscl-<name>`` for each of
the task's named recipes (:mod:`bscl.experiments.recipes`; "bscl-paper": the paper's best method and
hyperparameters; "bscl-ours": the tuned one) and every sentence-transformers recipe the task's recipes
file lists (``st-*``, :mod:`bscl.training.peers`: the library's loss classes, samplers and trainer). Every
(recipe, seed) is one ``bscl train`` run (:func:`bscl.run.run_training`, one seed) in
``OUTPUT_DIR/TASK/RECIPE/seed-N`` on the same model, training data (full by default), epochs, max
length, learning rate and batch size (the task's paper values; st-cached-mnrl trains at 128, its
point), the same dev evaluator and dev-chosen checkpoint. Finished cells are skipped, an unfinished
one resumes from its last checkpoint. Each finished cell writes its record
(``RESULTS_DIR/TASK/RECIPE/seed-N.json``, :mod:`bscl.experiments.records`), then the tables of the
results file are regenerated.

The user's own pairs take the data options of ``bscl train --data.task generic`` (``--data.train_file``,
``--data.dev_file``, ``--data.test_file``, the column names, ``--data.label_type``, ``--data.label_max``;
read by the generic task's loader). The recipes are those of the kind of labels the training file has
(graded scores, binary labels, positive pairs only: ``recipes/generic.yaml``), several epochs by
default (:data:`USER_EPOCHS`). Without a dev or test file, the missing splits are cut from the
training file (seeded, the pairs of one first text kept together) and written once into
``OUTPUT_DIR/data/`` (so they are reused and can be read). ``OUTPUT_DIR/data.json`` keeps the data
options and the sha256 of every file read: a later run with another file content or option is refused,
naming what changed. The records go to ``OUTPUT_DIR/records/``, and ``OUTPUT_DIR/report.md`` (the
table, ``figure.svg``, one recommendation line) is rewritten after every cell.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bscl.data import get_spec
from bscl.experiments import recipes, records
from bscl.experiments.cells import (
    CellProgress,
    Recipe,
    config_difference,
    merge_recipes,
    option_flags,
    run_or_skip,
)
from bscl.experiments.cells import (
    cell_config as layered_config,
)
from bscl.experiments.figures import plot_recipes
from bscl.reporting import runfolder as RF
from bscl.reporting.atomic import atomic_write_text
from bscl.training.config import DataConfig, RunConfig
from bscl.training.peers import PEER_LOSSES

#: the pretrained model, evaluated only (one record: it is deterministic); recipe name and record side
ZERO_SHOT = records.ZERO_SHOT
USER_TASK = "generic"  #: the task of the user's own pairs
#: the ``--data.*`` options of the user's own pairs: the generic task's options of ``bscl train``
#: (:class:`bscl.training.config.DataConfig`, whose docstring gives their help)
USER_DATA_OPTIONS = (
    "train_file",
    "dev_file",
    "test_file",
    "text1",
    "text2",
    "label",
    "label_type",
    "label_max",
)
#: epochs of a named task's comparison: the setting of the committed records (benchmarks/results)
NAMED_EPOCHS = 1.0
#: epochs on the user's own pairs. Several, not one: some losses start slowly, and the records show
#: gains from more epochs on both sides (CQA-A 1 -> 2 epochs: +0.02 MAP for bscl and
#: sentence-transformers alike; CQA-B 1 -> 5: +0.013 / +0.008), while PFCC-S's 720 pairs fell back at
#: 5; 3 with the checkpoint chosen on dev after each epoch lies between.
USER_EPOCHS = 3.0
SPLIT_SEED = 0  #: the seed of the splits cut from the user's training file (the loader's own dev split's)
DATA_FOLDER = "data"  #: the splits cut from the user's training file, in the report folder
MANIFEST = "data.json"  #: the data options and the fingerprint of the user's files, in the report folder
RECORDS_FOLDER = "records"
REPORT = "report.md"
FIGURE = "figure.svg"


def recipes_of(task: str, every_peer: bool = False, kind: str | None = None) -> dict[str, Recipe]:
    """Recipe name -> ``{section: {field: value}}``: zero-shot, the task's bscl recipes, its peers
    (the sentence-transformers recipes its recipes file lists; ``every_peer``: all of them, so
    ``--recipes st-mnrl`` also runs where the file does not list it). The default list leaves out a
    bscl recipe that is the same preset as an earlier one ("ours" while it is still the paper's), so
    that ``bscl compare TASK`` does not train one recipe twice; ``every_peer`` keeps every name.
    ``kind``: the kind of labels, for a task whose recipes depend on it (the user's own pairs)."""
    out: dict[str, Recipe] = {ZERO_SHOT: {}}
    for name in recipes.recipe_names(task, kind):
        preset = recipes.recipe(task, name, kind=kind)
        if every_peer or preset not in [v for k, v in out.items() if k.startswith("bscl-")]:
            out[f"bscl-{name}"] = preset
    peers = list(PEER_LOSSES) if every_peer else recipes.peers(task, kind)
    out.update({peer: PEER_LOSSES[peer].recipe(peer) for peer in peers})
    if every_peer:
        out.update(wise_peers(task))
        out.update(uncorrected_peers(task))
    return out


WISE = "-wise"  #: suffix of a sentence-transformers recipe with the task's WiSE-FT averaging


def wise_peers(task: str) -> dict[str, Recipe]:
    """``st-X-wise`` for each of the task's peers where it has a ``wise`` recipe: the peer
    recipe with the same ``--train.interpolate`` (WiSE-FT is a trainer option, not a loss, so the
    sentence-transformers side gets it too when bscl's side does; run when named in ``--recipes``)."""
    if "wise" not in recipes.recipe_names(task):
        return {}
    alpha = recipes.recipe(task, "wise").get("train", {}).get("interpolate")
    if alpha is None:
        return {}
    return _peer_variants(recipes.peers(task), WISE, {"train": {"interpolate": alpha}})


UNCORRECTED = "-uncorrected"  #: suffix of a sentence-transformers recipe with the paper's AdamW


def uncorrected_peers(task: str) -> dict[str, Recipe]:
    """``st-X-uncorrected`` for each of the task's peers where the paper trains with AdamW without its
    bias correction (every task but CQA): the peer recipe with that optimizer, so that a lead of
    bscl's paper recipe can be told apart from its optimizer (``--train.adam_bias_correction false``
    is a trainer option; the peers otherwise keep sentence-transformers' own, bias correction on; run
    when named in ``--recipes``)."""
    spec = get_spec(task)
    if spec.paper is None or spec.paper.adam_bias_correction:
        return {}
    return _peer_variants(recipes.peers(task), UNCORRECTED, {"train": {"adam_bias_correction": False}})


def _peer_variants(peers: tuple[str, ...], suffix: str, override: Recipe) -> dict[str, Recipe]:
    """``{peer}{suffix}`` -> the peer's recipe with ``override`` (trainer options) set on top."""
    return {f"{peer}{suffix}": merge_recipes(PEER_LOSSES[peer].recipe(peer), override) for peer in peers}


# --------------------------------------------------------------------------------------------------
# the user's own pairs
# --------------------------------------------------------------------------------------------------
@dataclass
class UserData:
    """The user's pairs as the cells read them."""

    data: dict[str, Any]  #: the cells' ``data`` section: the user's files, or the splits cut from train
    kind: str  #: the kind of labels (:data:`bscl.data.tasks.generic.LABEL_TYPES`)
    sizes: dict[str, int]  #: pairs per split
    made: list[str] = field(default_factory=list)  #: the splits cut from the training file
    options: dict[str, Any] = field(default_factory=dict)  #: the user's ``--data.*`` options


def user_options(ns: argparse.Namespace) -> dict[str, Any]:
    """The ``--data.*`` options of the user's own pairs given on the command line."""
    return {name: getattr(ns, f"data_{name}", None) for name in USER_DATA_OPTIONS}


def user_data(options: Mapping[str, Any], folder: str | Path, *, write: bool = True) -> UserData:
    """Read the user's pairs with the generic task's loader, check them against what ``folder`` (the
    report folder) was made on, and give the cells' data section.

    With a dev and a test file the cells read the user's files as they are. Otherwise the missing
    splits are cut from the training file with :func:`bscl.data.task.group_split` (seed
    :data:`SPLIT_SEED`, the share of :data:`bscl.data.tasks.common.DEV_FRACTION` each, the pairs of one
    first text kept together: test first, then dev from the rest), and every split is written as JSON
    lines into ``folder/data/`` (labels as the loader read them: scores in [0, 1]), which the cells read.
    ``write``: write the splits and the manifest (False: only check, for ``--dry-run``).

    A ValueError when the options or the content of a file read differ from those ``folder`` was made
    on (its ``data.json``), naming them."""
    from bscl.data.task import group_split, recording_reads
    from bscl.data.tasks.common import DEV_FRACTION
    from bscl.data.tasks.generic import read_generic
    from bscl.run import generic_options
    from bscl.training.config import check_data_section

    folder = Path(folder)
    options = {name: options.get(name) for name in USER_DATA_OPTIONS}
    da = DataConfig(task=USER_TASK, **options)
    check_data_section(da, None)  # the options' own errors (--data.label_max <= 0, no train file) first
    reading = generic_options(da)
    files = {split: reading.pop(split) for split in ("train", "dev", "test")}
    with recording_reads() as read:
        a, b, y, kind, _source = read_generic(files["train"], "train", **reading)
        given = {
            split: read_generic(files[split], split, **{**reading, "label_type": kind})[:3]
            for split in ("dev", "test")
            if files[split]
        }
    manifest = {"options": options, "label_type": kind, "files": RF.fingerprint(read)}
    _check_manifest(folder, manifest)
    if len(given) == 2:
        data = {"task": USER_TASK, **options}
        sizes = {"train": len(a), **{split: len(rows[0]) for split, rows in given.items()}}
        made: list[str] = []
    else:
        rows = {"train": (a, b, y), **given}
        made = [split for split in ("test", "dev") if split not in given]
        for split in made:  # test first, then dev from what is left for training
            ta, tb, ty = rows["train"]
            keep, held = group_split(ta, DEV_FRACTION, SPLIT_SEED)
            rows[split] = ([ta[i] for i in held], [tb[i] for i in held], [ty[i] for i in held])
            rows["train"] = ([ta[i] for i in keep], [tb[i] for i in keep], [ty[i] for i in keep])
        paths = {split: folder / DATA_FOLDER / f"{split}.jsonl" for split in ("train", "dev", "test")}
        if write:
            for split, path in paths.items():
                _write_pairs(path, *rows[split], kind=kind)
        data = {
            "task": USER_TASK,
            "train_file": str(paths["train"]),
            "dev_file": str(paths["dev"]),
            "test_file": str(paths["test"]),
            "label_type": kind,
        }
        sizes = {split: len(rows[split][0]) for split in ("train", "dev", "test")}
    if write:
        folder.mkdir(parents=True, exist_ok=True)
        RF.write_json(folder / MANIFEST, {**manifest, "sizes": sizes, "made": made, "split_seed": SPLIT_SEED})
    return UserData(data, kind, sizes, made, options)


def _check_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse a report folder made on other data options or file contents, naming what changed."""
    path = folder / MANIFEST
    if not path.is_file():
        return
    stored = RF.read_json_object(path)
    old = stored.get("options") or {}
    # the files are compared by their contents (a file moved or spelled otherwise is the same data)
    what = [
        f"--data.{name}: {old.get(name)!r} -> {value!r}"
        for name, value in manifest["options"].items()
        if not name.endswith("_file") and old.get(name) != value
    ]
    what += RF.data_changes(stored.get("files"), manifest["files"])
    if what:
        raise ValueError(
            f"{folder} holds a comparison of other data ({'; '.join(what)}); its cells, records and report "
            "are of the data they were made on: restore the data and options, or use another --output-dir"
        )


def _write_pairs(
    path: Path, text1: Sequence[str], text2: Sequence[str], labels: Sequence[float], *, kind: str
) -> None:
    """One split as JSON lines ``{"anchor", "positive", "label"}`` (no label for positive pairs)."""
    lines = []
    for a, b, y in zip(text1, text2, labels, strict=True):
        row: dict[str, Any] = {"anchor": a, "positive": b}
        if kind != "positive":
            row["label"] = int(y) if kind == "binary" else y
        lines.append(json.dumps(row, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_task_files(task: str, folder: str | Path, data_root: str | None = None) -> dict[str, Path]:
    """Write a named pair task's train / dev / test split as the user's own CSV files
    (``folder/{train,dev,test}.csv``, columns ``text1, text2, label``; labels as the task's loader gives
    them: 0/1, or scores in [0, 1]), so that ``bscl compare --data.train_file ...`` can be run on a task
    with known numbers. Returns the paths."""
    from bscl.data import load_task
    from bscl.data.task import PairSplit

    loaded = load_task(task, data_root)
    graded = get_spec(task).kind == "regression"
    splits: dict[str, tuple[list[str], list[str], list[float]]] = {
        "train": (list(loaded.train["anchor"]), list(loaded.train["positive"]), list(loaded.train["label"]))
    }
    for split in ("dev", "test"):
        part = getattr(loaded, split)
        if not isinstance(part, PairSplit):
            raise ValueError(f"task {task!r}: its {split} split is not pairs with labels; choose a pair task")
        splits[split] = (list(part.sentences1), list(part.sentences2), [float(v) for v in part.labels])
    out: dict[str, Path] = {}
    for split, (a, b, y) in splits.items():
        path = Path(folder) / f"{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text1", "text2", "label"])
            writer.writerows(
                [t1, t2, repr(v) if graded else int(v)] for t1, t2, v in zip(a, b, y, strict=True)
            )
        out[split] = path
    return out


# --------------------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------------------
def cell_config(
    task: str, recipe: str, seed: int, ns: argparse.Namespace, user: UserData | None = None
) -> RunConfig:
    """Defaults <- what every side shares (the task's paper lr / batch / max length / warm-up; the
    trainer's defaults on the user's own pairs) <- the recipe <- this machine's options (model, epochs,
    subset, seed, folder; ``--batch-size`` for every recipe, st-cached-mnrl's 128 included).
    ``user``: the user's pairs (:func:`user_data`), whose files and kind of labels the cell takes."""
    spec = get_spec(task)
    known = recipes_of(task, every_peer=True, kind=user.kind if user else None)
    if recipe not in known:
        raise ValueError(f"bscl compare: task {task!r} has no recipe {recipe!r}; recipes: {list(known)}")
    common: Recipe = spec.paper.common() if spec.paper is not None else {}
    data = {"task": task, "data_root": ns.data_root} if user is None else dict(user.data)
    machine: Recipe = {
        "data": {**data, "train_subset": ns.train_subset},
        "train": {
            "model": ns.model,
            "epochs": epochs_of(ns, user),
            "seed": seed,
            "seeds": 1,
            "output_dir": str(cell_dir(ns.output_dir, task, recipe, seed)),
        },
        "eval": {"before": False},
    }
    if ns.batch_size is not None:  # every recipe, st-cached-mnrl's 128 too
        machine["train"]["batch_size"] = ns.batch_size
    if recipe == ZERO_SHOT:
        # no training: a later --epochs / --batch-size / --train-subset still finds it finished
        machine["data"]["train_subset"] = None
        machine["train"] = {k: machine["train"][k] for k in ("model", "seed", "output_dir")}
        common = {}
    cfg = layered_config(common, known[recipe], machine, source=f"compare {task} / {recipe} / seed {seed}")
    # a group must fit into a batch (bscl.batching.check_options): --batch-size below a recipe's group caps it
    cfg.batching.group_size = min(cfg.batching.group_size, cfg.train.batch_size)
    return cfg


def epochs_of(ns: argparse.Namespace, user: UserData | None) -> float:
    """``--epochs``, else :data:`USER_EPOCHS` on the user's own pairs and :data:`NAMED_EPOCHS` on a
    named task."""
    if ns.epochs is not None:
        return float(ns.epochs)
    return USER_EPOCHS if user is not None else NAMED_EPOCHS


def cell_dir(output_dir: str | Path, task: str, recipe: str, seed: int) -> Path:
    return Path(output_dir) / task / recipe / f"seed-{seed}"


def _finished_run(folder: Path) -> dict[str, Any] | None:
    """The metrics of the finished run folder ``folder`` (with its ``config``), None when unfinished."""
    try:
        return records.read_run(folder)
    except (FileNotFoundError, ValueError):
        return None


def _task_of(ns: argparse.Namespace) -> tuple[str, bool]:
    """``(task, on the user's own pairs)`` from the positional TASK and the ``--data.*`` options."""
    given = [f"--data.{k}" for k, v in user_options(ns).items() if v is not None]
    task = ns.task.lower() if ns.task else None
    if task is None and not given:
        raise ValueError("name a TASK (bscl compare stsb) or your own pairs (--data.train_file pairs.csv)")
    if given and task not in (None, USER_TASK):
        raise ValueError(f"{', '.join(given)}: options of your own pairs; leave out the task {ns.task!r}")
    if task not in (None, USER_TASK):
        return get_spec(task).name, False
    return USER_TASK, True


def compare(ns: argparse.Namespace) -> dict[str, list[Path]]:
    """Run every (recipe, seed) cell not yet finished; record each; write the report (and, for a named
    task, regenerate the tables of the results file)."""
    task, own = _task_of(ns)
    out = Path(ns.output_dir)
    user = user_data(user_options(ns), out, write=not ns.dry_run) if own else None
    kind = user.kind if user is not None else None
    results_dir = (
        Path(ns.results_dir) if ns.results_dir else (out / RECORDS_FOLDER if own else records.RESULTS_DIR)
    )
    known = recipes_of(task, every_peer=True, kind=kind)
    chosen = (
        [r.strip() for r in ns.recipes.split(",") if r.strip()]
        if ns.recipes
        else list(recipes_of(task, kind=kind))
    )
    unknown = [r for r in chosen if r not in known]
    if unknown:
        of = f" ({kind} labels)" if kind else ""
        raise ValueError(f"--recipes: unknown {unknown}; recipes of {task}{of}: {list(known)}")
    cells = [(r, seed) for r in chosen for seed in (range(1) if r == ZERO_SHOT else range(ns.seeds))]
    configs = {cell: cell_config(task, *cell, ns, user) for cell in cells}
    for cfg in configs.values():
        cfg.validate()  # every cell's options are checked before the first one trains
    if ns.dry_run:
        if user is not None:
            print(
                f"{kind} labels; splits {user.sizes}"
                + (f" ({', '.join(user.made)} cut from train)" if user.made else "")
            )
        for (recipe, seed), cfg in configs.items():
            print(f"{recipe} seed {seed}: bscl train " + " ".join(option_flags(cfg)))
        return {}
    from bscl.run import run_training, run_zero_shot

    kept = {cell: records.record_path(results_dir, task, *cell) for cell in cells}
    recorded = [p for p in kept.values() if p.is_file() and not ns.force]
    progress = CellProgress(
        len(cells),
        sum(1 for (r, s) in cells if r != ZERO_SHOT and not (kept[(r, s)].is_file() and not ns.force)),
        [
            float(RF.read_json_object(p).get("train_seconds") or 0.0)
            for p in recorded
            if "zero-shot" not in p.parts
        ],
    )
    about = _about(ns, task, user, len(cells)) if own else []
    written: dict[str, list[Path]] = {}
    try:
        for k, ((recipe, seed), cfg) in enumerate(configs.items(), start=1):
            folder = Path(cfg.train.output_dir)
            zero_shot = recipe == ZERO_SHOT
            print(progress.line(k, f"{task} / {recipe} / seed {seed}"), flush=True)
            ran: list[float] = []

            def run(
                cfg: RunConfig = cfg, zero_shot: bool = zero_shot, ran: list[float] = ran
            ) -> dict[str, Any]:
                start = time.perf_counter()
                result = run_zero_shot(cfg) if zero_shot else run_training(cfg)
                ran.append(time.perf_counter() - start)
                return result

            def record(_result: dict[str, Any], folder: Path = folder, recipe: str = recipe) -> Path:
                made = records.make_record(folder, recipe, side=ZERO_SHOT if recipe == ZERO_SHOT else None)
                return records.write_record(made, results_dir, force=ns.force)

            path, _result, from_record = run_or_skip(
                f"{task} / {recipe} / seed {seed}",
                folder,
                # the committed record is the result: a fresh clone does not train the cell again
                recorded=[kept[(recipe, seed)]] if kept[(recipe, seed)].is_file() and not ns.force else [],
                differ=functools.partial(config_difference, wanted=cfg.to_dict()),
                hint="use another --results-dir (and --output-dir) for these options, or --force to replace it",
                finished=functools.partial(_finished_run, folder),
                run=run,
                record=record,
                announce_run=f"\n=== {task} / {recipe} / seed {seed}: {folder}",
            )
            if ran and not zero_shot:
                progress.trained(ran[0])
            elif not zero_shot and not from_record:
                progress.skipped()
            written.setdefault(recipe, []).append(path)
            if own:  # the report follows the cells: a killed comparison leaves the finished ones reported
                write_report(out, task, _records_of(results_dir, task, cells), about)
    finally:
        if not own:
            records.regenerate(results_dir, ns.results_file)
            print(f"tables regenerated in {ns.results_file}", flush=True)
    if own:
        report = write_report(out, task, _records_of(results_dir, task, cells), about)
        print(f"\n{report.read_text(encoding='utf-8')}\nreport: {report}", flush=True)
        return written
    table = records.tables(records.load_records(results_dir)).get(task)
    if table:
        figure = records.figure_path(ns.results_file, records.table_kind(results_dir), task)
        print(
            f"\n{task} (records in {results_dir}):\n{table}\n\nreport: {ns.results_file}; figure: {figure}",
            flush=True,
        )
    return written


def _records_of(results_dir: Path, task: str, cells: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """The records of this comparison's cells (others in the folder are left out of its report)."""
    wanted = set(cells)
    return [
        r
        for r in records.load_records(results_dir)
        if r["task"] == task and (r["recipe"], r["seed"]) in wanted
    ]


def _about(ns: argparse.Namespace, task: str, user: UserData | None, n_cells: int) -> list[str]:
    """The report's lines on what was compared and how."""
    lines = []
    if user is not None:
        files = ", ".join(f"{k} `{v}`" for k, v in user.options.items() if k.endswith("_file") and v)
        cut = (
            f"; {' and '.join(user.made)} cut from the training file (seed {SPLIT_SEED}, `{DATA_FOLDER}/`)"
            if user.made
            else ""
        )
        lines.append(f"- data: {files}; {user.kind} labels; pairs per split {user.sizes}{cut}")
    else:
        lines.append(f"- data: task {task}, training subset {ns.train_subset or 'full'}")
    lines.append(
        f"- model {ns.model}; epochs: {epochs_of(ns, user):g} (the checkpoint chosen on dev after each); "
        f"{ns.seeds} seeds per recipe; {n_cells} cells; batch size "
        f"{ns.batch_size if ns.batch_size is not None else 'each recipe’s'}"
    )
    argv = getattr(ns, "argv", None)
    if argv:
        lines.append(f"- command: `{shlex.join(['bscl', *argv])}`")
    return lines


def write_report(folder: Path, task: str, recs: Sequence[Mapping[str, Any]], about: Sequence[str]) -> Path:
    """``folder/report.md`` (and ``figure.svg``) of a comparison's records: what was compared, the
    recommendation, the table (:func:`bscl.experiments.records.table`: mean ± sd over seeds, n, dev
    beside test, train minutes, the verdicts against the best sentence-transformers recipe and against
    zero-shot) and the figure (:func:`bscl.experiments.figures.plot_recipes`)."""
    folder.mkdir(parents=True, exist_ok=True)
    title = f"bscl compare: {task}"
    lines = [f"# {title}", "", *about, ""]
    if recs:
        metric = str(recs[0].get("primary") or records.primary_of(task, recs))
        rows = records.summarize(recs, metric)
        lines += [f"**Recommendation:** {recommendation(rows, metric)}", ""]
        lines += [records.table(task, recs, metric), ""]
        plot_recipes(recs, metric, folder / FIGURE, title=title)
        lines += [f"![test {metric} per recipe and seed]({FIGURE})", ""]
    else:
        lines += ["(no cell finished yet)", ""]
    path = folder / REPORT
    atomic_write_text(path, "\n".join(lines))
    return path


def recommendation(rows: Sequence[records.Summary], metric: str) -> str:
    """One plain line: the recipe to use and by how much its mean test ``metric`` leads the next recipe
    beyond both spreads (:func:`bscl.experiments.records.beyond`); or, when others are level with it,
    the cheapest of those in train minutes; or the pretrained model when no recipe is above zero-shot
    by more than its own spread. ``rows``: :func:`bscl.experiments.records.summarize` (best first)."""
    trained = [r for r in rows if r.side != ZERO_SHOT]
    zero = next((r for r in rows if r.side == ZERO_SHOT), None)
    if not trained:
        return "no trained recipe recorded yet"
    best = trained[0]
    if best.test_std is None:
        return (
            f"{best.recipe} has the best test {metric} ({best.test_mean:.4f}), but one seed has no spread "
            "to tell a lead from noise: run more seeds (--seeds 3) before choosing"
        )
    if zero is not None and (
        best.test_mean <= zero.test_mean or not records.beyond(best.test_mean - zero.test_mean, best.test_std)
    ):
        return (
            f"keep the pretrained model: no recipe is above zero-shot ({zero.test_mean:.4f}) by more than "
            f"its spread (best: {best.recipe}, {best.test_mean:.4f} ± {best.test_std:.4f})"
        )
    level = [
        r
        for r in trained[1:]
        if r.test_std is None
        or not records.beyond(best.test_mean - r.test_mean, max(best.test_std, r.test_std))
    ]
    if not level:
        if len(trained) == 1:
            return f"use {best.recipe} ({best.test_mean:.4f} ± {best.test_std:.4f}), the only trained recipe"
        runner = trained[1]
        spread = max(best.test_std, runner.test_std or 0.0)
        return (
            f"use {best.recipe}: test {metric} {best.test_mean:.4f} ± {best.test_std:.4f}, ahead of the next "
            f"recipe, {runner.recipe} ({runner.test_mean:.4f}), by {best.test_mean - runner.test_mean:+.4f}, "
            f"beyond both spreads (largest sd {spread:.4f})"
        )
    group = [best, *level]
    timed = [r for r in group if r.train_minutes is not None]
    cheapest = min(timed, key=lambda r: r.train_minutes or 0.0) if timed else best
    minutes = f" ({cheapest.train_minutes:.1f} train min)" if cheapest.train_minutes is not None else ""
    return (
        f"level: {', '.join(r.recipe for r in group)} are within the spread of the best "
        f"({best.recipe}, {best.test_mean:.4f} ± {best.test_std:.4f}); the cheapest of them is "
        f"{cheapest.recipe}{minutes}: use it"
    )


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
def _data_option_help() -> dict[str, str]:
    """The help of each ``--data.*`` option of the user's own pairs, from DataConfig's docstring."""
    import docstring_parser

    return {
        p.arg_name: " ".join((p.description or "").split())
        for p in docstring_parser.parse(DataConfig.__doc__ or "").params
    }


def register(subparsers: Any) -> argparse.ArgumentParser:
    from bscl.training.options import choices

    p = subparsers.add_parser(
        "compare",
        help="bscl's recipes against sentence-transformers' own, on a task or your own pairs, several seeds",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "task", nargs="?", default=None, help="a named task; leave out for your own pairs (--data.*)"
    )
    helps = _data_option_help()
    own = p.add_argument_group("your own pairs (the data options of bscl train --data.task generic)")
    for name in USER_DATA_OPTIONS:
        own.add_argument(
            f"--data.{name}",
            dest=f"data_{name}",
            default=None,
            metavar="NUMBER" if name == "label_max" else "FILE" if name.endswith("_file") else "NAME",
            type=float if name == "label_max" else str,
            choices=choices().get(("data", name)),
            help=helps.get(name),
        )
    p.add_argument("--seeds", type=int, default=3, help="seeds per recipe (0, 1, ...)")
    p.add_argument(
        "--recipes",
        default=None,
        help="comma-separated recipe names (default: the task's, or your labels' kind's)",
    )
    p.add_argument(
        "--epochs",
        type=float,
        default=None,
        help=f"epochs of every recipe, the checkpoint chosen on dev after each (default: {USER_EPOCHS:g} on "
        "your own pairs, as some losses start slowly and the records gain from 2 and 5 epochs on CQA on "
        f"both sides; {NAMED_EPOCHS:g} on a named task, the committed records' setting)",
    )
    p.add_argument("--train-subset", type=int, default=None, help="default: the full training set")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="every recipe (default: the paper's on a named task, the trainer's on your own pairs; st-cached-mnrl 128)",
    )
    p.add_argument("--model", default="minilm", help="minilm | mpnet | tiny | a folder | a hub id")
    p.add_argument("--data-root", default=None)
    p.add_argument(
        "--output-dir",
        default="runs/compare",
        help="cell runs; for your own pairs also the report folder (report.md, figure.svg, records/, data/)",
    )
    records.add_results_arguments(
        p,
        dir_help="where the records go (default: benchmarks/results; OUTPUT_DIR/records for your own pairs)",
    )
    p.set_defaults(results_dir=None)
    p.add_argument("--force", action="store_true", help="overwrite a different record of the same cell")
    p.add_argument("--dry-run", action="store_true", help="print each cell's bscl train options and stop")
    p.set_defaults(func=lambda ns: (compare(ns), 0)[1])
    return p
