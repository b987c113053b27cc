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
order (``bscl compare``'s order).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from bscl.data import get_spec
from bscl.experiments.cells import Recipe, merge_recipes

PAPER = "paper"  #: the base that names the task spec's paper recipe
_KEYS = {"base", "paper_loss", "replace", "set", "reason", "records"}


@dataclass(frozen=True)
class TaskRecipes:
    """The recipes file of one task, as read."""

    task: str
    default: str | None
    peers: tuple[str, ...]
    entries: dict[str, dict[str, Any]]


@functools.cache
def _read(task: str) -> TaskRecipes:
    """The recipes file of ``task`` (a task without one has no recipes and no peers)."""
    path = resources.files(__name__).joinpath(f"{task}.yaml")
    if not path.is_file():
        return TaskRecipes(task, None, (), {})
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("recipes") or {}
    for name, entry in entries.items():
        unknown = set(entry) - _KEYS
        if unknown:
            raise ValueError(
                f"{path}: recipe {name!r}: unknown keys {sorted(unknown)}; keys are {sorted(_KEYS)}"
            )
        if not entry.get("reason"):
            raise ValueError(f"{path}: recipe {name!r} gives no reason")
    default = data.get("default")
    if default is not None and default not in entries:
        raise ValueError(f"{path}: default recipe {default!r} is unknown")
    return TaskRecipes(task, default, tuple(data.get("peers") or ()), dict(entries))


def _of(task: str) -> TaskRecipes:
    return _read(get_spec(task).name)


def recipe_names(task: str) -> list[str]:
    """The names of ``task``'s recipes, in the file's order."""
    return list(_of(task).entries)


def default_recipe(task: str) -> str | None:
    """The recipe ``bscl train --data.task TASK`` starts from (None for a task without recipes)."""
    return _of(task).default


def peers(task: str) -> tuple[str, ...]:
    """The sentence-transformers recipes ``bscl compare TASK`` runs by default
    (names of :data:`bscl.training.peers.PEER_LOSSES`)."""
    return _of(task).peers


def reason(task: str, name: str) -> str:
    """The one-line reason of a recipe."""
    return str(_entry(_of(task), name)["reason"])


def record_folders(task: str, name: str) -> list[str]:
    """The record folders (relative to the repository) that support a recipe."""
    return list(_entry(_of(task), name).get("records") or [])


def _entry(recipes: TaskRecipes, name: str) -> dict[str, Any]:
    if name not in recipes.entries:
        raise ValueError(f"task {recipes.task!r} has no recipe {name!r}; recipes: {sorted(recipes.entries)}")
    return recipes.entries[name]


def _resolve(recipes: TaskRecipes, name: str, seen: tuple[str, ...] = ()) -> Recipe:
    if name in seen:
        raise ValueError(f"task {recipes.task!r}: recipe {name!r} is its own base ({' -> '.join(seen)})")
    entry = _entry(recipes, name)
    base = entry.get("base", PAPER)
    if base == PAPER:  # the spec's paper settings (the recipe named "paper" is this one too)
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


def recipe(task: str, name: str | None = None) -> Recipe:
    """A copy of the recipe ``name`` of ``task`` (None: the task's default; ``{}`` when it has none).
    An unknown name is a ValueError that lists the task's recipes."""
    recipes = _of(task)
    key = name if name is not None else recipes.default
    if key is None:
        return {}
    return _resolve(recipes, key)
