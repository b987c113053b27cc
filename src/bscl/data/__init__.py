"""data layer: named tasks, their loaders and evaluation splits.

Public API: :func:`load_task`, :data:`TASKS`, :data:`TASK_SPECS` / :func:`get_spec` (one
:class:`TaskSpec` per task), :class:`Task`, :class:`PairSplit`,
:class:`RankingSplit`, :class:`DataError`, :func:`sample_ranked_negatives`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bscl._lazy import attach

if TYPE_CHECKING:
    from bscl.data.errors import DataError, SkipLog
    from bscl.data.negatives import ranked_positions, sample_ranked_negatives
    from bscl.data.spec import PaperSettings, TaskSpec
    from bscl.data.task import (
        TRAIN_COLUMNS,
        EvalSplit,
        PairSplit,
        RankingSplit,
        Task,
        group_split,
        pairs_dataset,
    )
    from bscl.data.tasks import AVAILABLE_TASKS, TASK_SPECS, TASKS, get_spec, load_task

#: each public name and the module it comes from, imported on first use (:mod:`bscl._lazy`)
_LAZY: dict[str, str] = {
    "DataError": "bscl.data.errors",
    "SkipLog": "bscl.data.errors",
    "ranked_positions": "bscl.data.negatives",
    "sample_ranked_negatives": "bscl.data.negatives",
    "PaperSettings": "bscl.data.spec",
    "TaskSpec": "bscl.data.spec",
    "TRAIN_COLUMNS": "bscl.data.task",
    "EvalSplit": "bscl.data.task",
    "PairSplit": "bscl.data.task",
    "RankingSplit": "bscl.data.task",
    "Task": "bscl.data.task",
    "group_split": "bscl.data.task",
    "pairs_dataset": "bscl.data.task",
    "AVAILABLE_TASKS": "bscl.data.tasks",
    "TASK_SPECS": "bscl.data.tasks",
    "TASKS": "bscl.data.tasks",
    "get_spec": "bscl.data.tasks",
    "load_task": "bscl.data.tasks",
}

__all__ = [
    "AVAILABLE_TASKS",
    "TASK_SPECS",
    "TASKS",
    "TRAIN_COLUMNS",
    "DataError",
    "EvalSplit",
    "PaperSettings",
    "PairSplit",
    "RankingSplit",
    "SkipLog",
    "Task",
    "TaskSpec",
    "get_spec",
    "group_split",
    "load_task",
    "pairs_dataset",
    "ranked_positions",
    "sample_ranked_negatives",
]


__getattr__, __dir__ = attach(__name__, _LAZY)
