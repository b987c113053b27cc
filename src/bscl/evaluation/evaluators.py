"""Evaluate a bi-encoder on a task split, and evaluators for ``SentenceTransformerTrainer``.

- :func:`evaluate` returns plain metric names (``spearman``, ``pearson``, ``f1``, ``accuracy``,
  ``threshold``, ``map``, ``mrr``, ``p@1``, ``has_positive@k``, ``ndcg@1``, ...).
- :func:`build_evaluator` returns a sentence-transformers evaluator (a subclass of
  ``sentence_transformers.base.evaluation.evaluator.BaseEvaluator``; sentence-transformers 6.2 has no
  class named ``SentenceTransformerEvaluator``) whose ``primary_metric`` is set *before* training, so
  ``metric_for_best_model=f"eval_{evaluator.primary_metric}"`` picks the best epoch on dev.

Scoring is cosine similarity of L2-normalised embeddings. Every distinct text is encoded once; ranking
tasks encode the queries and the candidate pool once each and score by a matrix product (whole pool:
``Q @ P.T``; per-query candidate lists: a row-wise product of gathered rows), never pair by pair.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

from bscl.batching.encoding import encode_by_length
from bscl.data import TASK_SPECS, PairSplit, RankingSplit, Task
from bscl.evaluation import metrics as M

logger = logging.getLogger(__name__)

#: ranking metrics of tasks without a spec of kind ranking (generic data); named tasks: the spec's ``metrics``
DEFAULT_RANKING_METRICS = ["mrr", "map", "p@1", "has_positive@1", "has_positive@5", "has_positive@10"]


#: ``tuple(texts) -> embeddings``: shared by evaluations of the *same weights* (the final dev and test
#: evaluation of a run), so a list encoded once (PFCC-S: the 10,381-claim pool of dev and test) is not
#: encoded again. Keyed by the whole list: a hit is the same call on the same batches, so the
#: embeddings are exactly those a second call would give. Never reuse one across weight updates.
EncodeCache = dict[tuple[str, ...], np.ndarray]


def encode(
    model: Any, texts: Sequence[str], batch_size: int = 64, cache: EncodeCache | None = None
) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts``; each distinct text is encoded once, in batches of
    similar token length (:func:`~bscl.batching.encoding.encode_by_length`)."""
    if cache is not None:
        key = tuple(texts)
        if key not in cache:
            cache[key] = encode(model, texts, batch_size)
        return cache[key]
    uniq = list(dict.fromkeys(texts))
    # a bar for pools (PFCC: 10k claims) on a terminal, not for small splits
    emb = encode_by_length(
        model, uniq, batch_size=batch_size, show_progress_bar=None if len(uniq) > 2000 else False
    )
    if len(uniq) == len(texts):
        return emb
    index = {t: i for i, t in enumerate(uniq)}
    return emb[[index[t] for t in texts]]


class SimilarityEvaluator(EmbeddingSimilarityEvaluator):
    """sentence-transformers' ``EmbeddingSimilarityEvaluator`` whose float32 embeddings come from
    :func:`encode` (distinct texts once, batches of similar token length); its metrics unchanged."""

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> np.ndarray:
        if (
            kwargs
            or self.precision != "float32"
            or self.truncate_dim is not None
            or isinstance(sentences, str)
        ):
            return super().embed_inputs(model, sentences, **kwargs)
        return encode(model, list(sentences), self.batch_size)


def pair_scores(
    model: Any, split: PairSplit, batch_size: int = 64, cache: EncodeCache | None = None
) -> np.ndarray:
    """Cosine similarity of each pair (both sides encoded in one call)."""
    n = len(split)
    emb = encode(model, [*split.sentences1, *split.sentences2], batch_size, cache)
    return np.einsum("ij,ij->i", emb[:n], emb[n:]).astype(np.float64)


def ranking_scores(
    model: Any, split: RankingSplit, batch_size: int = 64, cache: EncodeCache | None = None
) -> list[np.ndarray]:
    """Per query, the cosine scores of its candidates (aligned with ``split.candidate_indices(i)``)."""
    q = encode(model, split.queries, batch_size, cache)
    p = encode(model, split.pool, batch_size, cache)
    if split.candidates is None:
        return list((q @ p.T).astype(np.float64))
    lengths = [len(c) for c in split.candidates]
    qi = np.repeat(np.arange(len(split.queries)), lengths)
    ci = np.concatenate(split.candidates) if lengths else np.zeros(0, dtype=np.int64)
    flat = np.einsum("ij,ij->i", q[qi], p[ci]).astype(np.float64)
    return np.split(flat, np.cumsum(lengths)[:-1])


def ranking_metric_names(task: Task) -> list[str]:
    spec = TASK_SPECS.get(task.name)
    names = (
        list(spec.metrics) if spec is not None and spec.kind == "ranking" else list(DEFAULT_RANKING_METRICS)
    )
    if task.metric not in names:
        names.insert(0, task.metric)
    return names


def _regression_metrics(model: Any, split: PairSplit, batch_size: int) -> dict[str, float]:
    # Library evaluator (the same one build_evaluator hands to the trainer), keys renamed.
    ev = SimilarityEvaluator(
        split.sentences1,
        split.sentences2,
        split.labels.tolist(),
        batch_size=batch_size,
        main_similarity="cosine",
        write_csv=False,
    )
    out = ev(model)
    return {"spearman": float(out["spearman_cosine"]), "pearson": float(out["pearson_cosine"])}


def evaluate(
    model: Any, task: Task, split: str = "test", batch_size: int = 64, cache: EncodeCache | None = None
) -> dict[str, float]:
    """Metrics of ``model`` on ``task``'s ``split`` ("dev" or "test"), with plain metric names.

    Classification: the F1-optimal threshold is chosen on **dev** and applied to the requested split
    (on dev itself this is the best dev F1). Ranking: see :mod:`bscl.evaluation.metrics` for the
    conventions (SemEval MAP). Graded pairs: Spearman and Pearson of cosine vs gold. ``cache``: an
    :data:`EncodeCache` shared with the other evaluations of the same weights (graded pairs go
    through sentence-transformers' evaluator and do not use it).
    """
    data = task.split(split)
    if isinstance(data, PairSplit):
        if data.graded:
            return _regression_metrics(model, data, batch_size)
        dev = task.split("dev")
        if not isinstance(dev, PairSplit) or dev.graded:
            raise ValueError(f"task {task.name!r}: a binary split needs a binary dev split for the threshold")
        dev_scores = pair_scores(model, dev, batch_size, cache)
        _f1, threshold = M.best_f1_threshold(dev_scores, dev.labels)
        scores = dev_scores if data is dev else pair_scores(model, data, batch_size, cache)
        return M.binary_metrics(scores, data.labels, threshold)
    scores = ranking_scores(model, data, batch_size, cache)
    relevance = [data.relevance(i) for i in range(len(data))]
    gains = [data.graded_relevance(i) for i in range(len(data))] if data.gains is not None else None
    return M.ranking_metrics(scores, relevance, ranking_metric_names(task), gains=gains)


class TaskEvaluator(BaseEvaluator):
    """Runs :func:`evaluate` on one split during training; metrics are prefixed with ``name``.

    ``primary_metric`` is ``f"{name}_{task.metric}"`` from construction on.
    """

    def __init__(self, task: Task, split: str = "dev", name: str | None = None, batch_size: int = 64) -> None:
        super().__init__()
        task.split(split)  # fail now, not at the first evaluation, if the split is missing
        self.task = task
        self.split = split
        self.name = name if name is not None else f"{task.name}_{split}"
        self.batch_size = batch_size
        self.greater_is_better = True
        self.primary_metric = f"{self.name}_{task.metric}" if self.name else task.metric

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        values = evaluate(model, self.task, self.split, self.batch_size)
        logger.info(
            "%s (epoch %s, steps %s): %s",
            self.name,
            epoch,
            steps,
            ", ".join(f"{k}={v:.4f}" for k, v in values.items()),
        )
        out = self.prefix_name_to_metrics(values, self.name)
        if hasattr(model, "model_card_data"):
            self.store_metrics_in_model_card_data(model, out, epoch, steps)
        return out

    @property
    def description(self) -> str:
        return f"{self.task.name} {self.split}"

    def get_config_dict(self) -> dict[str, Any]:
        return {"task": self.task.name, "split": self.split}


def build_evaluator(
    task: Task, split: str = "dev", name: str | None = None, batch_size: int = 64
) -> BaseEvaluator:
    """A sentence-transformers evaluator of ``task``'s ``split`` for ``SentenceTransformerTrainer``.

    Graded pairs (stsb, wiki-unsup): the library's ``EmbeddingSimilarityEvaluator`` (cosine; as
    :class:`SimilarityEvaluator`, which only changes how the texts are batched), primary
    metric ``{name}_spearman_cosine``. Everything else: :class:`TaskEvaluator`, primary metric
    ``{name}_{task.metric}`` (e.g. ``mrpc_dev_f1``, ``cqa-a_dev_map``, ``pfcc_dev_has_positive@1``).
    Default ``name`` is ``f"{task.name}_{split}"``.
    """
    data = task.split(split)
    name = name if name is not None else f"{task.name}_{split}"
    if isinstance(data, PairSplit) and data.graded:
        ev = SimilarityEvaluator(
            data.sentences1,
            data.sentences2,
            data.labels.tolist(),
            batch_size=batch_size,
            main_similarity="cosine",
            name=name,
        )
        ev.primary_metric = f"{name}_spearman_cosine" if name else "spearman_cosine"
        return ev
    return TaskEvaluator(task, split, name, batch_size)
