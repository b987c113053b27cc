"""Helpers shared by the task loaders: the 9:1 dev fraction, subsets and ranking splits."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from bscl.data.task import PairSplit, RankingSplit

PathLike = str | os.PathLike[str]
DEV_FRACTION = 0.1  # "where no dev split exists the paper splits train 9:1"


def _subset(split: PairSplit, idx: np.ndarray, tag: str) -> PairSplit:
    return PairSplit(
        [split.sentences1[i] for i in idx],
        [split.sentences2[i] for i in idx],
        split.labels[idx],
        graded=split.graded,
        source=f"{split.source} ({tag})",
    )


def positives_ranking(
    anchors: Sequence[str],
    positives: Sequence[str],
    pool: Sequence[str] | None = None,
    pool_ids: Sequence[str] | None = None,
    source: str = "",
) -> RankingSplit:
    """A ranking split from positive pairs: every unique anchor is a query ranked against the whole pool.

    The relevant items of a query are all pool entries whose text equals one of its positives (so a
    duplicated pool text counts as relevant twice). Without ``pool``, the pool is the unique positives.
    """
    if pool is None:
        pool = list(dict.fromkeys(positives))
    if pool_ids is None:
        pool_ids = [str(i) for i in range(len(pool))]
    by_text: dict[str, list[int]] = {}
    for j, text in enumerate(pool):
        by_text.setdefault(text, []).append(j)
    queries: list[str] = []
    rel: dict[str, list[int]] = {}
    for a, p in zip(anchors, positives, strict=True):
        if a not in rel:
            rel[a] = []
            queries.append(a)
        if p not in by_text:
            raise ValueError(f"positive {p[:60]!r} is not in the candidate pool")
        rel[a].extend(j for j in by_text[p] if j not in rel[a])
    return RankingSplit(
        queries=queries,
        query_ids=[str(i) for i in range(len(queries))],
        pool=list(pool),
        pool_ids=list(pool_ids),
        candidates=None,
        relevant=[np.array(sorted(rel[q]), dtype=np.int64) for q in queries],
        source=source,
    )


def grouped_ranking(
    query_ids: Sequence[str],
    queries: Sequence[str],
    cand_ids: Sequence[str],
    cand_texts: Sequence[str],
    labels: Sequence[float],
    gains: Sequence[float] | None = None,
    source: str = "",
) -> RankingSplit:
    """A ranking split from aligned (query, candidate, label) rows: each query ranks its own candidates.

    Candidates keep their file order (the tie-break order). A candidate is relevant iff label >= 0.5.
    """
    qpos: dict[str, int] = {}
    q_texts: list[str] = []
    pool: list[str] = []
    pool_ids: list[str] = []
    cands: list[list[int]] = []
    rel: list[list[int]] = []
    gain_map: dict[tuple[int, int], float] = {}
    for k, (qid, q, cid, c, y) in enumerate(
        zip(query_ids, queries, cand_ids, cand_texts, labels, strict=True)
    ):
        if qid not in qpos:
            qpos[qid] = len(q_texts)
            q_texts.append(q)
            cands.append([])
            rel.append([])
        i = qpos[qid]
        j = len(pool)
        pool.append(c)
        pool_ids.append(cid)
        cands[i].append(j)
        if y >= 0.5:
            rel[i].append(j)
        if gains is not None:
            gain_map[(i, j)] = float(gains[k])
    return RankingSplit(
        queries=q_texts,
        query_ids=list(qpos),
        pool=pool,
        pool_ids=pool_ids,
        candidates=[np.array(c, dtype=np.int64) for c in cands],
        relevant=[np.array(r, dtype=np.int64) for r in rel],
        gains=gain_map if gains is not None else None,
        source=source,
    )
