"""``bscl compare TASK``: bscl's recipes head to head with sentence-transformers' own (issue 12).

Recipes of a task: ``zero-shot`` (the pretrained model, evaluated once), ``bscl-<name>`` for each recipe of its spec ("bscl-paper": the paper's best method
and hyperparameters; "bscl-ours": the tuned one) and every sentence-transformers recipe the spec lists
(``st-*``, :mod:`bscl.training.peers`: the library's loss classes, samplers and trainer). Every
(recipe, seed) is one ``bscl train`` run (:func:`bscl.run.run_training`, one seed) in
``OUTPUT_DIR/TASK/RECIPE/seed-N`` on the same model, training data (full by default), epochs, max
length, learning rate and batch size (the task's paper values; st-cached-mnrl trains at 128, its
point), the same dev evaluator and dev-chosen checkpoint. Finished cells are skipped, an unfinished
one resumes from its last checkpoint. Each finished cell writes its record
(``benchmarks/results/TASK/RECIPE/seed-N.json``, :mod:`bscl.reporting.records`), then the tables of
benchmarks/RESULTS.md are regenerated.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from bscl.data import get_spec
from bscl.data.spec import merge_recipes
from bscl.reporting import records
from bscl.reproduce import config_difference
from bscl.training.config import RunConfig, from_dict
from bscl.training.peers import PEER_LOSSES

Recipe = dict[str, dict[str, Any]]


#: the pretrained model, evaluated only (one record: it is deterministic); recipe name and record side
ZERO_SHOT = records.ZERO_SHOT


def recipes_of(task: str, every_peer: bool = False) -> dict[str, Recipe]:
    """Recipe name -> ``{section: {field: value}}``: zero-shot, the spec's bscl recipes, its peers
    (the sentence-transformers recipes the spec lists for the task; ``every_peer``: all of them, so
    ``--recipes st-mnrl`` also runs where the spec does not list it). The default list leaves out a
    bscl recipe that is the same preset as an earlier one ("ours" while it is still the paper's), so
    that ``bscl compare TASK`` does not train one recipe twice; ``every_peer`` keeps every name."""
    spec = get_spec(task)
    out: dict[str, Recipe] = {ZERO_SHOT: {}}
    for name in spec.recipes:
        preset = spec.recipe(name)
        if every_peer or preset not in [v for k, v in out.items() if k.startswith("bscl-")]:
            out[f"bscl-{name}"] = preset
    peers = list(PEER_LOSSES) if every_peer else spec.peers
    out.update({peer: PEER_LOSSES[peer].recipe(peer) for peer in peers})
    if every_peer:
        out.update(wise_peers(task))
        out.update(uncorrected_peers(task))
    return out


WISE = "-wise"  #: suffix of a sentence-transformers recipe with the task's WiSE-FT averaging


def wise_peers(task: str) -> dict[str, Recipe]:
    """``st-X-wise`` for each of the task's peers where its spec has a ``wise`` recipe: the peer
    recipe with the same ``--train.interpolate`` (WiSE-FT is a trainer option, not a loss, so the
    sentence-transformers side gets it too when bscl's side does; run when named in ``--recipes``)."""
    spec = get_spec(task)
    alpha = spec.recipes.get("wise", {}).get("train", {}).get("interpolate")
    if alpha is None:
        return {}
    return _peer_variants(spec.peers, WISE, {"train": {"interpolate": alpha}})


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
    return _peer_variants(spec.peers, UNCORRECTED, {"train": {"adam_bias_correction": False}})


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
    return from_dict(
        merge_recipes(common, known[recipe], machine), source=f"compare {task} / {recipe} / seed {seed}"
    )


def cell_dir(output_dir: str | Path, task: str, recipe: str, seed: int) -> Path:
    return Path(output_dir) / task / recipe / f"seed-{seed}"


def finished(folder: Path) -> bool:
    try:
        records.read_run(folder)
    except (FileNotFoundError, ValueError):
        return False
    return True


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
            print(f"{recipe} seed {seed}: bscl train " + " ".join(_options(cfg)))
        return {}
    from bscl.run import run_training, run_zero_shot

    written: dict[str, list[Path]] = {}
    try:
        for (recipe, seed), cfg in configs.items():
            folder = Path(cfg.train.output_dir)
            kept = records.record_path(ns.results_dir, task, recipe, seed)
            wanted = cfg.to_dict()
            found = records.matching_record(
                [kept] if kept.is_file() and not ns.force else [],
                functools.partial(config_difference, wanted=wanted),
                "use another --results-dir (and --output-dir) for these options, or --force to replace it",
            )
            if found is not None:
                # the committed record is the result: a fresh clone does not train the cell again
                print(f"{task} / {recipe} / seed {seed}: recorded in {kept}, skipped", flush=True)
                written.setdefault(recipe, []).append(kept)
                continue
            if finished(folder):
                diff = config_difference(records.read_run(folder).get("config"), wanted)
                if diff is not None:
                    raise ValueError(
                        f"{folder} was run with other options ({diff}); use another --output-dir or delete {folder}"
                    )
                print(f"{task} / {recipe} / seed {seed}: finished, skipped", flush=True)
            else:
                print(f"\n=== {task} / {recipe} / seed {seed}: {folder}", flush=True)
                run_zero_shot(cfg) if recipe == ZERO_SHOT else run_training(cfg)
            record = records.make_record(folder, recipe, side=ZERO_SHOT if recipe == ZERO_SHOT else None)
            path = records.write_record(record, ns.results_dir, force=ns.force)
            written.setdefault(recipe, []).append(path)
    finally:
        records.regenerate(ns.results_dir, ns.results_file)
        print(f"tables regenerated in {ns.results_file}", flush=True)
    table = records.tables(records.load_records(ns.results_dir)).get(task)
    if table:
        print(f"\n{task} (records in {ns.results_dir}):\n{table}", flush=True)
    return written


def _options(cfg: RunConfig) -> list[str]:
    default = RunConfig().to_dict()
    return [
        f"--{stage}.{key}={value}"
        for stage, values in cfg.to_dict().items()
        for key, value in values.items()
        if value != default[stage][key]
    ]


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
    p.add_argument("--results-dir", default=str(records.RESULTS_DIR))
    p.add_argument("--results-file", default=str(records.RESULTS_FILE))
    p.add_argument("--force", action="store_true", help="overwrite a different record of the same cell")
    p.add_argument("--dry-run", action="store_true", help="print each cell's bscl train options and stop")
    p.set_defaults(func=lambda ns: (compare(ns), 0)[1])
    return p
