"""Ranked negative sampling for positives-only ranking data (PFCC-S), for MSE / triplet training.

The paper's scheme (Sec. 4, PFCC-S): encode all texts with a model, take the first element of each
positive pair as the anchor, sort the verified claims by similarity to it, and take negatives
"starting from 101 on, logarithmically: on positions 100 + 2^k". Then oversample the positive pairs
to balance positives and negatives.

Our reading, stated explicitly:

- positions are 1-based ranks ``100 + 2**k`` for ``k = 0, 1, 2, ...`` (101, 102, 104, 108, ...) while
  they fit in the ranking; the ranking is over the task's pool with the anchor's own positives
  removed (so a sampled negative is never a known positive);
- similarity is the cosine of the model's embeddings (pool encoded once, matrix product);
- every positive pair is repeated ``max(1, round(n_negatives / n_positive_pairs))`` times.

This module does not import the model layer: ``model`` is anything with a sentence-transformers style
``encode(texts, batch_size=..., convert_to_numpy=True, normalize_embeddings=True)`` method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from datasets import Dataset

from bscl.data.task import Task, pairs_dataset


class Encoder(Protocol):
    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


def ranked_positions(pool_size: int, first: int = 100) -> np.ndarray:
    """1-based ranks ``first + 2**k`` (k = 0, 1, ...) that are ``<= pool_size``."""
    out = []
    k = 0
    while first + 2**k <= pool_size:
        out.append(first + 2**k)
        k += 1
    return np.array(out, dtype=np.int64)


def sample_ranked_negatives(
    task: Task,
    model: Encoder,
    *,
    first: int = 100,
    oversample: bool = True,
    batch_size: int = 64,
    seed: int = 0,
) -> Dataset:
    """Train set (anchor, positive, label) with ranked negatives (label 0) for a positives-only task.

    ``task.extras["pool"]`` holds the candidate texts (PFCC-S: all verified claims). Rows are grouped
    by anchor in train order: the anchor's positive pairs (oversampled) then its negatives. ``seed`` is
    accepted for interface symmetry; the scheme itself is deterministic given the model.
    """
    pool: list[str] = list(task.extras.get("pool") or [])
    if not pool:
        raise ValueError(
            f"task {task.name!r} has no candidate pool (extras['pool']) to sample negatives from"
        )
    anchors: list[str] = list(task.train["anchor"])
    positives: list[str] = list(task.train["positive"])
    uniq = list(dict.fromkeys(anchors))
    enc = dict(
        batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    a_emb = np.asarray(model.encode(uniq, **enc), dtype=np.float32)
    p_emb = np.asarray(model.encode(pool, **enc), dtype=np.float32)
    scores = a_emb @ p_emb.T  # cosine: embeddings are L2-normalised
    pool_index: dict[str, list[int]] = {}
    for j, text in enumerate(pool):
        pool_index.setdefault(text, []).append(j)
    pos_of: dict[str, list[str]] = {}
    for a, p in zip(anchors, positives, strict=True):
        pos_of.setdefault(a, []).append(p)
    negs_of: dict[str, list[str]] = {}
    for i, a in enumerate(uniq):
        own = {j for p in pos_of[a] for j in pool_index.get(p, [])}
        order = np.argsort(-scores[i], kind="stable")
        ranking = order[~np.isin(order, list(own))] if own else order
        ranks = ranked_positions(len(ranking), first)
        negs_of[a] = [pool[j] for j in ranking[ranks - 1]]
    n_neg = sum(len(v) for v in negs_of.values())
    factor = max(1, round(n_neg / len(anchors))) if oversample else 1
    out_a: list[str] = []
    out_p: list[str] = []
    out_y: list[float] = []
    for a in uniq:
        for p in pos_of[a]:
            out_a += [a] * factor
            out_p += [p] * factor
            out_y += [1.0] * factor
        for n in negs_of[a]:
            out_a.append(a)
            out_p.append(n)
            out_y.append(0.0)
    return pairs_dataset(out_a, out_p, out_y)
