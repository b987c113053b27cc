"""evaluation layer: metrics (pure functions), evaluators for the trainer, and ``bscl eval``.

Public API: :func:`evaluate`, :func:`build_evaluator`, :class:`TaskEvaluator`, :mod:`metrics`,
:func:`bscl.evaluation.command.run_eval` / ``register``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bscl._lazy import attach

if TYPE_CHECKING:
    from bscl.evaluation import metrics
    from bscl.evaluation.evaluators import TaskEvaluator, build_evaluator, evaluate

#: each public name and the module it comes from, imported on first use (:mod:`bscl._lazy`)
_LAZY: dict[str, str] = {
    "metrics": "bscl.evaluation.metrics",
    "TaskEvaluator": "bscl.evaluation.evaluators",
    "build_evaluator": "bscl.evaluation.evaluators",
    "evaluate": "bscl.evaluation.evaluators",
}

__all__ = ["TaskEvaluator", "build_evaluator", "evaluate", "metrics"]


__getattr__, __dir__ = attach(__name__, _LAZY)
