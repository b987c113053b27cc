"""Metrics as pure functions of scores (no model, no data loading).

Pair metrics
------------
- :func:`spearman`, :func:`pearson`: SciPy's rank / linear correlation of predicted and gold scores.
- :func:`best_f1_threshold`: the threshold maximising F1 on (dev) scores, from sentence-transformers'
  ``BinaryClassificationEvaluator.find_best_f1_and_threshold`` (midpoint between consecutive distinct
  scores). :func:`binary_metrics` applies a threshold (positive iff ``score >= threshold``) and
  computes F1 / accuracy / precision / recall with scikit-learn. MRPC/QQP: the threshold is chosen on
  dev and applied unchanged to test.

Ranking metrics
---------------
Every ranking metric takes, per query, an array of candidate ``scores`` and an aligned array of
``relevance`` (binary 0/1, or graded gains for nDCG). Candidates are ranked by descending score; ties
keep the given candidate order (a *stable* sort), which is what the SemEval-2016 Task 3 scorer does
(Python's stable ``sorted`` over the gold-file order). With ``rel_r`` the relevance at rank ``r``
(1-based), ``R`` the number of relevant candidates of the query and ``Q`` the number of queries:

- ``AP = (1/R) * sum_r rel_r * P@r`` with ``P@r = (1/r) * sum_{i<=r} rel_i``; **AP = 0 when R = 0**;
  ``MAP = (1/Q) * sum_q AP_q`` over **all** queries, including those without any relevant candidate.
  This is the official SemEval-2016/2017 Task 3 convention: its scorer (``MAP_scripts/ev.py`` +
  ``metrics.map``, run without ``--ignore_noanswer``) gives such queries AP = 0 and divides by the
  number of all queries. The scorer cuts each list at ``th = 10``; CQA lists have exactly 10
  candidates, so the two agree. (Checked: on the 2016 subtask-A test gold this reproduces the
  official IR-baseline MAP 0.5953 and MRR 67.83; skipping no-answer queries would give 0.6180.)
- ``RR = 1 / (rank of the first relevant candidate)``, 0 when there is none (or, with ``k``, when it
  is ranked below ``k``); ``MRR`` = mean over all queries.
- ``P@k = (1/k) * sum_{r<=k} rel_r`` (divides by ``k`` even when fewer than ``k`` candidates exist,
  as trec_eval and ranx do).
- ``HasPositive@k`` (Shaar et al. 2020) = fraction of queries with at least one relevant candidate in
  the top ``k`` (ranx calls it ``hit_rate@k``).
- ``nDCG@k = DCG@k / IDCG@k`` with ``DCG@k = sum_{r<=k} g_r / log2(r + 1)`` (linear gains, Jarvelin &
  Kekalainen; as trec_eval, ranx and scikit-learn); 0 when the query has no positive gain.

Why hand-written: ranx (used in the tests as the reference implementation) builds a numba typed
dict per (query, candidate): ranking 199 PFCC-S claims against the 10,381-claim pool takes ~30 s
just to build its ``Run``, plus a JIT compile on first use, and we need full-depth ranks (exact MRR)
and the SemEval stable tie order. Each formula here is a few vectorised NumPy lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

# --------------------------------------------------------------------------------------------------
# pair metrics
# --------------------------------------------------------------------------------------------------


def spearman(pred: ArrayLike, gold: ArrayLike) -> float:
    """Spearman rank correlation (SciPy; ties get average ranks)."""
    return float(stats.spearmanr(np.asarray(pred, float), np.asarray(gold, float)).statistic)


def pearson(pred: ArrayLike, gold: ArrayLike) -> float:
    """Pearson linear correlation (SciPy)."""
    return float(stats.pearsonr(np.asarray(pred, float), np.asarray(gold, float)).statistic)


def mean_pairwise_cosine(embeddings: ArrayLike) -> float:
    """The mean cosine similarity over all pairs of distinct rows (1.0: every row points the same way,
    an encoder that has collapsed); needs two rows."""
    e = np.asarray(embeddings, float)
    n = len(e)
    if n < 2:
        raise ValueError(f"mean_pairwise_cosine needs at least 2 rows, got {n}")
    unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    total = unit.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))  # the sum over i != j of u_i . u_j, averaged


def correlation_chance_band(n: int) -> float:
    """Half-width of the 95% band of a correlation over ``n`` pairs of unrelated values (``1.96 /
    sqrt(n - 1)``, the normal approximation): inside it a Spearman or Pearson value is at chance."""
    return 1.96 / math.sqrt(max(n - 1, 1))


def best_f1_threshold(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """``(best F1, threshold)`` over all cut points of ``scores`` (predict 1 iff score >= threshold).

    Library code: sentence-transformers' ``find_best_f1_and_threshold`` (the threshold is the midpoint
    between the last accepted and the next score).
    """
    from sentence_transformers.sentence_transformer.evaluation import BinaryClassificationEvaluator

    s = np.asarray(scores, float)
    y = np.asarray(labels, int)
    f1, _p, _r, threshold = BinaryClassificationEvaluator.find_best_f1_and_threshold(s, y, True)
    return float(f1), float(threshold)


def binary_metrics(scores: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, float]:
    """F1, accuracy, precision, recall (scikit-learn) of ``score >= threshold`` against 0/1 ``labels``."""
    y = np.asarray(labels, int)
    pred = (np.asarray(scores, float) >= threshold).astype(int)
    return {
        "f1": float(f1_score(y, pred, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "threshold": float(threshold),
    }


# --------------------------------------------------------------------------------------------------
# ranking metrics (per query: scores and aligned relevance)
# --------------------------------------------------------------------------------------------------
Scores = Sequence[ArrayLike]


def ranked_relevance(scores: ArrayLike, relevance: ArrayLike) -> np.ndarray:
    """Relevance in rank order: descending score, ties in the given order (stable sort)."""
    s = np.asarray(scores, float)
    r = np.asarray(relevance, float)
    if s.shape != r.shape or s.ndim != 1:
        raise ValueError(f"scores and relevance must be 1-D of equal length; got {s.shape} and {r.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return r[np.argsort(-s, kind="stable")]


def _check(scores: Scores, relevance: Scores) -> None:
    if len(scores) != len(relevance):
        raise ValueError(f"{len(scores)} score lists but {len(relevance)} relevance lists")
    if len(scores) == 0:
        raise ValueError("no queries")


def average_precision(scores: ArrayLike, relevance: ArrayLike) -> float:
    """AP of one query (binary relevance: > 0 is relevant); 0 when nothing is relevant."""
    rel = ranked_relevance(scores, relevance) > 0
    n_rel = int(rel.sum())
    if n_rel == 0:
        return 0.0
    precision_at_r = np.cumsum(rel) / np.arange(1, len(rel) + 1)
    return float(precision_at_r[rel].sum() / n_rel)


def mean_average_precision(scores: Scores, relevance: Scores) -> float:
    """MAP over all queries, SemEval convention (queries without relevant candidates count as 0)."""
    _check(scores, relevance)
    return float(np.mean([average_precision(s, r) for s, r in zip(scores, relevance, strict=True)]))


def reciprocal_rank(scores: ArrayLike, relevance: ArrayLike, k: int | None = None) -> float:
    """1 / rank of the first relevant candidate (0 if none, or if it is ranked below ``k``)."""
    rel = ranked_relevance(scores, relevance) > 0
    hits = np.flatnonzero(rel)
    if hits.size == 0 or (k is not None and hits[0] >= k):
        return 0.0
    return 1.0 / (hits[0] + 1)


def mean_reciprocal_rank(scores: Scores, relevance: Scores, k: int | None = None) -> float:
    """MRR (optionally MRR@k) over all queries."""
    _check(scores, relevance)
    return float(np.mean([reciprocal_rank(s, r, k) for s, r in zip(scores, relevance, strict=True)]))


def precision_at_k(scores: Scores, relevance: Scores, k: int) -> float:
    """Mean P@k = (relevant in top k) / k over all queries."""
    _check(scores, relevance)
    return float(
        np.mean([(ranked_relevance(s, r)[:k] > 0).sum() / k for s, r in zip(scores, relevance, strict=True)])
    )


def has_positive_at_k(scores: Scores, relevance: Scores, k: int) -> float:
    """HasPositive@k: fraction of queries with a relevant candidate among the top k."""
    _check(scores, relevance)
    return float(
        np.mean([(ranked_relevance(s, r)[:k] > 0).any() for s, r in zip(scores, relevance, strict=True)])
    )


def ndcg_at_k(scores: Scores, gains: Scores, k: int) -> float:
    """Mean nDCG@k with linear gains and log2 discount; queries without positive gain count as 0."""
    _check(scores, gains)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    out = []
    for s, g in zip(scores, gains, strict=True):
        ranked = ranked_relevance(s, g)[:k]
        ideal = np.sort(np.asarray(g, float))[::-1][:k]
        idcg = float((ideal * discount[: len(ideal)]).sum())
        out.append(float((ranked * discount[: len(ranked)]).sum()) / idcg if idcg > 0 else 0.0)
    return float(np.mean(out))


def ranking_metrics(
    scores: Scores,
    relevance: Scores,
    names: Sequence[str],
    gains: Scores | None = None,
) -> dict[str, float]:
    """Several ranking metrics by name: ``map``, ``mrr``, ``p@K``, ``has_positive@K``, ``ndcg@K``.

    ``gains`` (graded, aligned with ``scores``) are used for nDCG; binary ``relevance`` otherwise.
    """
    out: dict[str, float] = {}
    for name in names:
        base, _, k_text = name.partition("@")
        k = int(k_text) if k_text else None
        if base == "map" and k is None:
            out[name] = mean_average_precision(scores, relevance)
        elif base == "mrr":
            out[name] = mean_reciprocal_rank(scores, relevance, k)
        elif base == "p" and k is not None:
            out[name] = precision_at_k(scores, relevance, k)
        elif base == "has_positive" and k is not None:
            out[name] = has_positive_at_k(scores, relevance, k)
        elif base == "ndcg" and k is not None:
            out[name] = ndcg_at_k(scores, gains if gains is not None else relevance, k)
        else:
            raise ValueError(f"unknown ranking metric {name!r}")
    return out
