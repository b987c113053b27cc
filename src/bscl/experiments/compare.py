"""``bscl compare TASK``: bscl's recipes head to head with sentence-transformers' own.

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
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from bscl.data import get_spec
from bscl.experiments import recipes, records
from bscl.experiments.cells import (
    Recipe,
    config_difference,
    merge_recipes,
    option_flags,
    run_or_skip,
)
from bscl.experiments.cells import (
    cell_config as layered_config,
)
from bscl.training.config import RunConfig
from bscl.training.peers import PEER_LOSSES

#: the pretrained model, evaluated only (one record: it is deterministic); recipe name and record side
ZERO_SHOT = records.ZERO_SHOT


def recipes_of(task: str, every_peer: bool = False) -> dict[str, Recipe]:
    """Recipe name -> ``{section: {field: value}}``: zero-shot, the task's bscl recipes, its peers
    (the sentence-transformers recipes its recipes file lists; ``every_peer``: all of them, so
    ``--recipes st-mnrl`` also runs where the file does not list it). The default list leaves out a
    bscl recipe that is the same preset as an earlier one ("ours" while it is still the paper's), so
    that ``bscl compare TASK`` does not train one recipe twice; ``every_peer`` keeps every name."""
    out: dict[str, Recipe] = {ZERO_SHOT: {}}
    for name in recipes.recipe_names(task):
        preset = recipes.recipe(task, name)
        if every_peer or preset not in [v for k, v in out.items() if k.startswith("bscl-")]:
            out[f"bscl-{name}"] = preset
    peers = list(PEER_LOSSES) if every_peer else recipes.peers(task)
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


def cell_config(task: str, recipe: str, seed: int, ns: argparse.Namespace) -> RunConfig:
    """Defaults <- what every side shares (the task's paper lr / batch / max length / warm-up) <- the
    recipe <- this machine's options (model, epochs, subset, seed, folder; ``--batch-size`` for every
    recipe, st-cached-mnrl's 128 included)."""
    spec = get_spec(task)
    known = recipes_of(task, every_peer=True)
    if recipe not in known:
        raise ValueError(f"bscl compare: task {task!r} has no recipe {recipe!r}; recipes: {list(known)}")
    common: Recipe = spec.paper.common() if spec.paper is not None else {}
    machine: Recipe = {
        "data": {"task": task, "data_root": ns.data_root, "train_subset": ns.train_subset},
        "train": {
            "model": ns.model,
            "epochs": ns.epochs,
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


def cell_dir(output_dir: str | Path, task: str, recipe: str, seed: int) -> Path:
    return Path(output_dir) / task / recipe / f"seed-{seed}"


def _finished_run(folder: Path) -> dict[str, Any] | None:
    """The metrics of the finished run folder ``folder`` (with its ``config``), None when unfinished."""
    try:
        return records.read_run(folder)
    except (FileNotFoundError, ValueError):
        return None


def compare(ns: argparse.Namespace) -> dict[str, list[Path]]:
    """Run every (recipe, seed) cell not yet finished; record each; regenerate the tables."""
    task = ns.task
    known = recipes_of(task, every_peer=True)
    chosen = [r.strip() for r in ns.recipes.split(",") if r.strip()] if ns.recipes else list(recipes_of(task))
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise ValueError(f"--recipes: unknown {unknown}; recipes of {task}: {list(known)}")
    cells = [(r, seed) for r in chosen for seed in (range(1) if r == ZERO_SHOT else range(ns.seeds))]
    configs = {cell: cell_config(task, *cell, ns) for cell in cells}
    for cfg in configs.values():
        cfg.validate()  # every cell's options are checked before the first one trains
    if ns.dry_run:
        for (recipe, seed), cfg in configs.items():
            print(f"{recipe} seed {seed}: bscl train " + " ".join(option_flags(cfg)))
        return {}
    from bscl.run import run_training, run_zero_shot

    written: dict[str, list[Path]] = {}
    try:
        for (recipe, seed), cfg in configs.items():
            folder = Path(cfg.train.output_dir)
            kept = records.record_path(ns.results_dir, task, recipe, seed)
            zero_shot = recipe == ZERO_SHOT

            def run(cfg: RunConfig = cfg, zero_shot: bool = zero_shot) -> dict[str, Any]:
                return run_zero_shot(cfg) if zero_shot else run_training(cfg)

            def record(_result: dict[str, Any], folder: Path = folder, recipe: str = recipe) -> Path:
                made = records.make_record(folder, recipe, side=ZERO_SHOT if recipe == ZERO_SHOT else None)
                return records.write_record(made, ns.results_dir, force=ns.force)

            path, _result, _recorded = run_or_skip(
                f"{task} / {recipe} / seed {seed}",
                folder,
                # the committed record is the result: a fresh clone does not train the cell again
                recorded=[kept] if kept.is_file() and not ns.force else [],
                differ=functools.partial(config_difference, wanted=cfg.to_dict()),
                hint="use another --results-dir (and --output-dir) for these options, or --force to replace it",
                finished=functools.partial(_finished_run, folder),
                run=run,
                record=record,
                announce_run=f"\n=== {task} / {recipe} / seed {seed}: {folder}",
            )
            written.setdefault(recipe, []).append(path)
    finally:
        records.regenerate(ns.results_dir, ns.results_file)
        print(f"tables regenerated in {ns.results_file}", flush=True)
    table = records.tables(records.load_records(ns.results_dir)).get(task)
    if table:
        print(f"\n{task} (records in {ns.results_dir}):\n{table}", flush=True)
    return written


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare",
        help="bscl's recipes against sentence-transformers' own, several seeds, records + tables",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("task")
    p.add_argument("--seeds", type=int, default=3, help="seeds per recipe (0, 1, ...)")
    p.add_argument("--recipes", default=None, help="comma-separated recipe names (default: all of the task)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--train-subset", type=int, default=None, help="default: the full training set")
    p.add_argument(
        "--batch-size", type=int, default=None, help="every recipe (default: the paper's; st-cached-mnrl 128)"
    )
    p.add_argument("--model", default="minilm")
    p.add_argument("--data-root", default=None)
    p.add_argument("--output-dir", default="runs/compare")
    records.add_results_arguments(p)
    p.add_argument("--force", action="store_true", help="overwrite a different record of the same cell")
    p.add_argument("--dry-run", action="store_true", help="print each cell's bscl train options and stop")
    p.set_defaults(func=lambda ns: (compare(ns), 0)[1])
    return p
