"""evaluation layer: metrics (pure functions), evaluators for the trainer, and ``bscl eval``.

Public API: :func:`evaluate`, :func:`build_evaluator`, :class:`TaskEvaluator`, :mod:`metrics`,
:func:`bscl.evaluation.command.run_eval` / ``register``.
"""

from bscl.evaluation import metrics
from bscl.evaluation.evaluators import TaskEvaluator, build_evaluator, evaluate

__all__ = ["TaskEvaluator", "build_evaluator", "evaluate", "metrics"]
