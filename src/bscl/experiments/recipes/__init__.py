"""Named recipes of the tasks: one YAML file per task (``<task>.yaml`` beside this module).

A recipe is a preset ``{section: {field: value}}`` over :class:`bscl.training.config.RunConfig`:
``bscl train --data.task TASK`` starts from the task's default recipe, ``--recipe NAME`` from another
one, and ``bscl compare TASK`` runs each as ``bscl-NAME`` against the task's sentence-transformers
peers. A task's file holds::

    default: ours                      # the recipe `bscl train --data.task TASK` starts from
    peers: [st-mnrl, ...]              # the sentence-transformers recipes `bscl compare` runs
    recipes:
      NAME:
        base: paper                    # the spec's paper recipe (PaperSettings.recipe), or another NAME
        paper_loss: mse                # with base paper: the paper's recipe for this loss instead
        replace: {loss: {...}}         # sections replaced whole
        set: {train: {...}}            # fields set on top, section by section
        reason: one line: why the recipe exists
        records: [benchmarks/results/TASK/bscl-NAME]   # the record folders that support it

so that the paper's values live in the task spec (:mod:`bscl.data.tasks`) only. Recipes keep the file's
order (``bscl compare``'s order). ``base: none`` starts from :class:`~bscl.training.config.RunConfig`'s
defaults (a task without paper settings).

The user's own pairs (``generic``) have no single recipe: what fits depends on the kind of labels
(:data:`bscl.data.tasks.generic.LABEL_TYPES`). Their file holds one such block per kind::

    kinds:
      score: {default: NAME, peers: [...], recipes: {NAME: {...}}}
      binary: ...
      positive: ...

and every function takes the ``kind`` (without one, such a task has no recipes: the library's plain
defaults). :func:`command_line_lookup` gives ``bscl train`` the kind of its training file.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from bscl.data import get_spec
from bscl.data.tasks.generic import LABEL_TYPES
from bscl.experiments.cells import Recipe, merge_recipes

PAPER = "paper"  #: the base that names the task spec's paper recipe
NONE = "none"  #: the base that names RunConfig's defaults
_KEYS = {"base", "paper_loss", "replace", "set", "reason", "records"}
_KIND_KEYS = {"default", "peers", "recipes"}


@dataclass(frozen=True)
class TaskRecipes:
    """The recipes file of one task (or one kind of labels of it), as read."""

    task: str
    default: str | None
    peers: tuple[str, ...]
    entries: dict[str, dict[str, Any]]
    kinds: dict[str, TaskRecipes] = field(default_factory=dict)  #: by kind of labels (generic)
    kind: str | None = None  #: the kind of labels these recipes are for (None: the task's only kind)


def _block(task: str, data: dict[str, Any], where: str, kind: str | None = None) -> TaskRecipes:
    """One ``default`` / ``peers`` / ``recipes`` block of a recipes file, checked."""
    entries = data.get("recipes") or {}
    for name, entry in entries.items():
        unknown = set(entry) - _KEYS
        if unknown:
            raise ValueError(
                f"{where}: recipe {name!r}: unknown keys {sorted(unknown)}; keys are {sorted(_KEYS)}"
            )
        if not entry.get("reason"):
            raise ValueError(f"{where}: recipe {name!r} gives no reason")
    default = data.get("default")
    if default is not None and default not in entries:
        raise ValueError(f"{where}: default recipe {default!r} is unknown")
    return TaskRecipes(task, default, tuple(data.get("peers") or ()), dict(entries), kind=kind)


@functools.cache
def _read(task: str) -> TaskRecipes:
    """The recipes file of ``task`` (a task without one has no recipes and no peers)."""
    path = resources.files(__name__).joinpath(f"{task}.yaml")
    if not path.is_file():
        return TaskRecipes(task, None, (), {})
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    kinds = data.get("kinds")
    if kinds is None:
        return _block(task, data, str(path))
    if set(data) != {"kinds"} or set(kinds) - set(LABEL_TYPES):
        raise ValueError(f"{path}: a file with kinds holds only 'kinds:', of {list(LABEL_TYPES)}")
    for kind, block in kinds.items():
        if set(block) - _KIND_KEYS:
            raise ValueError(f"{path}: kind {kind!r}: unknown keys {sorted(set(block) - _KIND_KEYS)}")
    return TaskRecipes(
        task, None, (), {}, kinds={k: _block(task, b, f"{path}: kind {k!r}", k) for k, b in kinds.items()}
    )


def _of(task: str, kind: str | None = None) -> TaskRecipes:
    """The recipes of ``task``; for a task whose recipes depend on the kind of labels, those of
    ``kind`` (none without a kind: the library's plain defaults)."""
    recipes = _read(get_spec(task).name)
    if not recipes.kinds:
        return recipes
    if kind is None:
        return TaskRecipes(recipes.task, None, (), {})
    if kind not in recipes.kinds:
        raise ValueError(
            f"task {recipes.task!r} has no recipes for labels of kind {kind!r}: {list(recipes.kinds)}"
        )
    return recipes.kinds[kind]


def kinds(task: str) -> list[str]:
    """The kinds of labels ``task``'s recipes depend on (empty for a task with one set of recipes)."""
    return list(_read(get_spec(task).name).kinds)


def recipe_names(task: str, kind: str | None = None) -> list[str]:
    """The names of ``task``'s recipes (of ``kind``), in the file's order."""
    return list(_of(task, kind).entries)


def default_recipe(task: str, kind: str | None = None) -> str | None:
    """The recipe ``bscl train --data.task TASK`` starts from (None for a task without recipes)."""
    return _of(task, kind).default


def peers(task: str, kind: str | None = None) -> tuple[str, ...]:
    """The sentence-transformers recipes ``bscl compare TASK`` runs by default
    (names of :data:`bscl.training.peers.PEER_LOSSES`)."""
    return _of(task, kind).peers


def reason(task: str, name: str, kind: str | None = None) -> str:
    """The one-line reason of a recipe."""
    return str(_entry(_of(task, kind), name)["reason"])


def record_folders(task: str, name: str, kind: str | None = None) -> list[str]:
    """The record folders (relative to the repository) that support a recipe."""
    return list(_entry(_of(task, kind), name).get("records") or [])


def _entry(recipes: TaskRecipes, name: str) -> dict[str, Any]:
    if name not in recipes.entries:
        of = f" for {recipes.kind} labels" if recipes.kind else ""
        raise ValueError(
            f"task {recipes.task!r} has no recipe {name!r}{of}; recipes: {sorted(recipes.entries)}"
        )
    return recipes.entries[name]


def _resolve(recipes: TaskRecipes, name: str, seen: tuple[str, ...] = ()) -> Recipe:
    if name in seen:
        raise ValueError(f"task {recipes.task!r}: recipe {name!r} is its own base ({' -> '.join(seen)})")
    entry = _entry(recipes, name)
    base = entry.get("base", PAPER)
    if base == NONE:
        out: Recipe = {}
    elif base == PAPER:  # the spec's paper settings (the recipe named "paper" is this one too)
        paper = get_spec(recipes.task).paper
        if paper is None:
            raise ValueError(
                f"task {recipes.task!r} has no paper settings: recipe {name!r} cannot start from them"
            )
        out = paper.recipe(entry.get("paper_loss"))
    else:
        out = _resolve(recipes, base, (*seen, name))
    out = {section: copy.deepcopy(values) for section, values in out.items()}
    out.update(copy.deepcopy(entry.get("replace") or {}))
    return merge_recipes(out, copy.deepcopy(entry.get("set") or {}))


def recipe(task: str, name: str | None = None, kind: str | None = None) -> Recipe:
    """A copy of the recipe ``name`` of ``task`` (None: the task's default; ``{}`` when it has none),
    of the ``kind`` of labels where the task's recipes depend on it. An unknown name is a ValueError
    that lists the task's recipes."""
    recipes = _of(task, kind)
    if name is not None and kind is None and kinds(task):
        raise ValueError(
            f"recipe {name!r}: task {recipes.task!r} has recipes by kind of labels ({kinds(task)}); "
            "name the training file (--data.train_file) so that its kind is known"
        )
    key = name if name is not None else recipes.default
    return _resolve(recipes, key) if key is not None else {}


def command_line_lookup(argv: list[str]) -> Callable[[str, str | None], Recipe]:
    """The ``recipe_lookup`` of ``bscl train`` (:func:`bscl.training.config.parse_command_line`):
    a named task's recipe; for a task whose recipes depend on the kind of labels (``generic``), the
    recipe of the kind its training file has (:func:`label_kind`), so that ``bscl train --data.task
    generic`` starts from the recipe ``bscl compare`` runs as that kind's default."""

    def lookup(task: str, name: str | None) -> Recipe:
        kind = label_kind(argv) if kinds(task) else None
        return recipe(task, name, kind=kind)

    return lookup


def label_kind(argv: list[str]) -> str | None:
    """The kind of labels of the training file that the ``bscl train`` options ``argv`` name, as its
    loader infers it (:func:`bscl.data.tasks.generic.infer_label_type`); None without a training file
    or when the options ask for help."""
    if any(a in ("-h", "--help") for a in argv):
        return None
    from bscl.run import prepare_task
    from bscl.training.config import parse_command_line

    plain = parse_command_line(argv, recipe_lookup=lambda task, name: {})  # the data options alone
    if not plain.data.train_file:
        return None  # the run's own check names --data.train_file
    return str(prepare_task(plain, None).info["label_type"])
