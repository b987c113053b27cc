"""Named tasks of the BSC paper, plus a generic loader for user data: one module per task, each with
its :class:`~bscl.data.spec.TaskSpec` (loader, metrics, threshold, paper settings and numbers).

``load_task(name, data_root=None, *, seed=0, **options)`` returns a :class:`~bscl.data.task.Task`.
The data root is resolved by :func:`bscl.paths.data_root` (``--data-root`` / ``BSCL_DATA_ROOT`` /
``../shared/data`` beside the checkout). Splits, labels and metrics per task (see docs/tasks.md for
where they differ from the paper, and why):

========== ============================================ =============== ================================
task       train / dev / test                           labels          primary metric (others)
========== ============================================ =============== ================================
stsb       official train / dev / test                  score / 5       spearman (pearson)
mrpc       train split 9:1 (seeded) / official test     0/1             f1 at the dev threshold (acc.)
pfcc       pairs[:800] 9:1 (seeded) / pairs[800:]       positives only  has_positive@1 (@3..@50, mrr)
cqa-a      v3.2 train-part2 / v3.2 dev / 2016 test      Good=1          map (mrr, p@1)
cqa-b      train-part2 + legacy part1, 9:1 / v3.2 dev   PM, Relevant=1  map (mrr)
qqp        GLUE train sample / GLUE train sample / dev  0/1             f1 (accuracy)
antique    train qrels 9:1 by query / test qrels        (grade-1)/3     mrr (p@1, ndcg@1)
wiki-unsup wiki1m prefix (anchor == positive) / STSb    none            spearman on STSb
generic    user files or datasets.Dataset               inferred        by label type
========== ============================================ =============== ================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bscl.data.spec import TaskSpec
from bscl.data.task import Task
from bscl.data.tasks import antique, cqa, generic, mrpc, pfcc, qqp, stsb, wiki_unsup
from bscl.data.tasks.antique import load_antique, read_id_text, read_qrels
from bscl.data.tasks.common import DEV_FRACTION, PathLike, grouped_ranking, positives_ranking
from bscl.data.tasks.cqa import load_cqa_a, load_cqa_b, read_cqa_orgq, read_cqa_threads, read_relevancy
from bscl.data.tasks.generic import load_generic, read_generic
from bscl.data.tasks.mrpc import load_mrpc, read_mrpc
from bscl.data.tasks.pfcc import load_pfcc, read_pfcc
from bscl.data.tasks.qqp import load_qqp, read_qqp
from bscl.data.tasks.stsb import load_stsb, read_stsb
from bscl.data.tasks.wiki_unsup import load_wiki_unsup
from bscl.paths import data_root as resolve_data_root

logger = logging.getLogger("bscl.data")

#: the registry: task name -> spec, in the order of the paper's tables (then wiki-unsup, generic)
TASK_SPECS: dict[str, TaskSpec] = {
    s.name: s
    for s in (
        stsb.SPEC,
        mrpc.SPEC,
        pfcc.SPEC,
        cqa.SPEC_A,
        cqa.SPEC_B,
        qqp.SPEC,
        antique.SPEC,
        wiki_unsup.SPEC,
        generic.SPEC,
    )
}
LOADERS: dict[str, Callable[..., Task]] = {name: s.loader for name, s in TASK_SPECS.items()}
TASKS: list[str] = list(TASK_SPECS)
#: tasks whose files are in the shared data folder (qqp and antique need user-supplied files).
AVAILABLE_TASKS: list[str] = [name for name, s in TASK_SPECS.items() if s.available]


def get_spec(name: str) -> TaskSpec:
    """The spec of a named task (case-insensitive); a clear error listing the known tasks."""
    key = name.lower()
    if key not in TASK_SPECS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASK_SPECS[key]


def load_task(name: str, data_root: PathLike | None = None, *, seed: int = 0, **options: Any) -> Task:
    """Load a named task (see :data:`TASKS`).

    ``seed`` fixes every split and shuffle. Options per task: ``pfcc``: ``train_size``,
    ``negatives="ranked"`` with ``model=`` (a SentenceTransformer) to replace train by anchors with
    ranked negatives (see :func:`bscl.data.negatives.sample_ranked_negatives`); ``qqp``: ``folder``,
    ``train_size``, ``dev_size``, ``test_size``; ``antique``: ``folder``; ``wiki-unsup``: ``shuffle``,
    ``limit``; ``generic``: ``train``, ``dev``, ``test``, ``text1``, ``text2``, ``label``,
    ``label_type``, ``score_range``, ``task_name``, ``binarize_threshold`` (data_root is not needed).
    """
    key = name.lower()
    if key not in LOADERS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    negatives = options.pop("negatives", None) if key == "pfcc" else None
    neg_model = options.pop("model", None) if key == "pfcc" else None
    neg_opts = {k: options.pop(k) for k in ("batch_size",) if k in options} if key == "pfcc" else {}
    if key == "generic":
        root = Path(data_root) if data_root is not None else None
    else:
        root = resolve_data_root(data_root)
    try:
        task = LOADERS[key](root, seed, **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise ValueError(f"task {name!r}: {err}") from err
        raise
    if negatives is not None:
        if negatives != "ranked":
            raise ValueError(f"negatives must be 'ranked' (the paper's scheme), not {negatives!r}")
        if neg_model is None:
            raise ValueError("negatives='ranked' needs model=... to rank the claims")
        from bscl.data.negatives import sample_ranked_negatives

        task.train = sample_ranked_negatives(task, neg_model, seed=seed, **neg_opts)
        task.info["negatives"] = "ranked (positions 100 + 2^k), positives oversampled"
    if task.skipped:
        logger.info("task %s: rows skipped by design: %s", task.name, task.skipped)
    return task


__all__ = [
    "AVAILABLE_TASKS",
    "DEV_FRACTION",
    "LOADERS",
    "TASKS",
    "TASK_SPECS",
    "PathLike",
    "get_spec",
    "grouped_ranking",
    "load_antique",
    "load_cqa_a",
    "load_cqa_b",
    "load_generic",
    "load_mrpc",
    "load_pfcc",
    "load_qqp",
    "load_stsb",
    "load_task",
    "load_wiki_unsup",
    "positives_ranking",
    "read_cqa_orgq",
    "read_cqa_threads",
    "read_generic",
    "read_id_text",
    "read_mrpc",
    "read_pfcc",
    "read_qqp",
    "read_qrels",
    "read_relevancy",
    "read_stsb",
]
