"""data layer: named tasks, their loaders and evaluation splits.

Public API: :func:`load_task`, :data:`TASKS`, :data:`TASK_SPECS` / :func:`get_spec` (one
:class:`TaskSpec` per task), :class:`Task`, :class:`PairSplit`,
:class:`RankingSplit`, :class:`DataError`, :func:`sample_ranked_negatives`.
"""

from bscl.data.errors import DataError, SkipLog
from bscl.data.negatives import ranked_positions, sample_ranked_negatives
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import TRAIN_COLUMNS, EvalSplit, PairSplit, RankingSplit, Task, group_split, pairs_dataset
from bscl.data.tasks import AVAILABLE_TASKS, TASK_SPECS, TASKS, get_spec, load_task

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
