"""Metrics on hand-computed examples, cross-checked against scikit-learn / ranx and the SemEval scorer."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from bscl.evaluation import metrics as M
from bscl.paths import data_root

# Three queries (scores, binary relevance aligned with the candidates):
# q1 ranks as [0, 1, 0, 1]: AP = (1/2 + 2/4) / 2 = 0.5, RR = 1/2
# q2 has no relevant candidate: AP = 0, RR = 0 (kept in the mean: SemEval convention)
# q3 ranks as [1, 0, 1]: AP = (1/1 + 2/3) / 2 = 5/6, RR = 1
SCORES = [np.array([0.9, 0.1, 0.8, 0.3]), np.array([0.2, 0.7, 0.4]), np.array([0.3, 0.9, 0.5])]
RELEVANCE = [np.array([0, 1, 1, 0]), np.array([0, 0, 0]), np.array([1, 1, 0])]


def test_average_precision_by_hand() -> None:
    assert M.average_precision(SCORES[0], RELEVANCE[0]) == pytest.approx(0.5)
    assert M.average_precision(SCORES[1], RELEVANCE[1]) == 0.0
    assert M.average_precision(SCORES[2], RELEVANCE[2]) == pytest.approx(5 / 6)


def test_map_counts_queries_without_relevant_items_as_zero() -> None:
    assert M.mean_average_precision(SCORES[:2], RELEVANCE[:2]) == pytest.approx(0.25)  # not 0.5
    assert M.mean_average_precision(SCORES, RELEVANCE) == pytest.approx((0.5 + 0 + 5 / 6) / 3)


def test_mrr_precision_has_positive_by_hand() -> None:
    assert M.mean_reciprocal_rank(SCORES, RELEVANCE) == pytest.approx((0.5 + 0 + 1) / 3)
    assert M.mean_reciprocal_rank(SCORES, RELEVANCE, k=1) == pytest.approx(1 / 3)  # q1's hit is at rank 2
    assert M.precision_at_k(SCORES, RELEVANCE, 1) == pytest.approx(1 / 3)
    assert M.precision_at_k(SCORES, RELEVANCE, 2) == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert M.has_positive_at_k(SCORES, RELEVANCE, 1) == pytest.approx(1 / 3)
    assert M.has_positive_at_k(SCORES, RELEVANCE, 2) == pytest.approx(2 / 3)
    assert M.has_positive_at_k(SCORES, RELEVANCE, 50) == pytest.approx(2 / 3)


def test_ndcg_by_hand() -> None:
    gains = [np.array([2.0, 1.0, 0.0])]  # q3 ranks candidates 1, 2, 0 -> gains 1, 0, 2
    # DCG@2 = 1/log2(2) + 0 = 1; IDCG@2 = 2 + 1/log2(3)
    assert M.ndcg_at_k(SCORES[2:], gains, 2) == pytest.approx(1 / (2 + 1 / math.log2(3)))
    assert M.ndcg_at_k(SCORES[2:], gains, 1) == pytest.approx(0.5)
    assert M.ndcg_at_k(SCORES[1:2], [np.zeros(3)], 1) == 0.0  # no positive gain -> 0


def test_ties_keep_candidate_order_like_the_semeval_scorer() -> None:
    s = [np.array([0.5, 0.5, 0.5])]
    assert M.mean_reciprocal_rank(s, [np.array([0, 1, 0])]) == 0.5
    assert M.mean_reciprocal_rank(s, [np.array([1, 0, 0])]) == 1.0


def test_ranking_metrics_by_name() -> None:
    out = M.ranking_metrics(SCORES, RELEVANCE, ["map", "mrr", "p@1", "has_positive@2", "ndcg@1"])
    assert out == pytest.approx(
        {"map": 4 / 9, "mrr": 0.5, "p@1": 1 / 3, "has_positive@2": 2 / 3, "ndcg@1": 1 / 3}
    )
    with pytest.raises(ValueError, match="unknown ranking metric"):
        M.ranking_metrics(SCORES, RELEVANCE, ["recall"])
    with pytest.raises(ValueError, match="1-D of equal length"):
        M.mean_average_precision([np.array([0.1, 0.2])], [np.array([1])])
    with pytest.raises(ValueError, match="no queries"):
        M.mean_reciprocal_rank([], [])


def test_f1_threshold_is_chosen_on_dev_and_applied_to_test() -> None:
    dev_scores = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2]
    dev_labels = [1, 1, 0, 1, 0, 0]
    # cut after 0.6: P = 3/4, R = 1 -> F1 = 6/7 (best); threshold = midpoint (0.6 + 0.3) / 2
    f1, threshold = M.best_f1_threshold(dev_scores, dev_labels)
    assert f1 == pytest.approx(6 / 7)
    assert threshold == pytest.approx(0.45)
    test_scores = [0.5, 0.4, 0.46, 0.1]
    test_labels = [1, 1, 0, 0]
    out = M.binary_metrics(test_scores, test_labels, threshold)  # predicts [1, 0, 1, 0]
    assert out == pytest.approx(
        {"f1": 0.5, "accuracy": 0.5, "precision": 0.5, "recall": 0.5, "threshold": 0.45}
    )
    # a threshold tuned on test itself (>= 0.4) would report F1 0.8: the dev threshold must be used
    assert M.best_f1_threshold(test_scores, test_labels)[0] == pytest.approx(0.8)


def test_correlations_by_hand() -> None:
    assert M.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6*2 / (4*15)
    assert M.pearson([1, 2, 3, 4], [1, 3, 2, 8]) == pytest.approx(10 / math.sqrt(5 * 29))


def test_ndcg_matches_scikit_learn_without_ties() -> None:
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    scores = rng.random((20, 7))
    gains = rng.integers(0, 4, size=(20, 7)).astype(float)
    for k in (1, 3, 7):
        assert M.ndcg_at_k(list(scores), list(gains), k) == pytest.approx(ndcg_score(gains, scores, k=k))


_RANX_SCRIPT = """
import json, sys
from ranx import Qrels, Run, evaluate
scores, rel, names = json.load(sys.stdin)
qrels = Qrels({f"q{i}": {f"d{j}": int(v) for j, v in enumerate(r)} for i, r in enumerate(rel)})
run = Run({f"q{i}": {f"d{j}": float(v) for j, v in enumerate(s)} for i, s in enumerate(scores)})
ref = evaluate(qrels, run, names, make_comparable=True)
print(json.dumps([float(ref[n]) for n in names]))
"""


def test_matches_ranx_on_random_rankings() -> None:
    # ranx runs in a child process with numba's JIT off: the same metric code, interpreted, in ~2 s
    # instead of tens of seconds of compilation (and no numba setting leaks into this process)
    import json
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    n_q, n_c = 30, 12
    scores = [rng.random(n_c) for _ in range(n_q)]
    rel = [(rng.random(n_c) < 0.25).astype(int) for _ in range(n_q)]
    rel[0][:] = 0  # a query without relevant candidates
    names = ["map", "mrr", "precision@1", "precision@3", "hit_rate@5", "ndcg@3"]
    payload = json.dumps([[s.tolist() for s in scores], [r.tolist() for r in rel], names])
    done = subprocess.run(
        [sys.executable, "-c", _RANX_SCRIPT],
        input=payload,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
    )
    ref = json.loads(done.stdout)
    ours = M.ranking_metrics(scores, rel, ["map", "mrr", "p@1", "p@3", "has_positive@5", "ndcg@3"])
    assert list(ours.values()) == pytest.approx(ref)


def _semeval_gold(path):  # noqa: ANN001, ANN202
    by_q: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for line in path.read_text().splitlines():
        q, _c, _rank, score, label = line.split("\t")
        by_q[q][0].append(float(score))
        by_q[q][1].append(int(label == "true"))
    return [np.array(s) for s, _ in by_q.values()], [np.array(r) for _, r in by_q.values()]


def test_reproduces_the_official_semeval2016_ir_baseline() -> None:
    """The official scorer on the 2016 subtask-A test gold prints for the IR baseline (the gold file's
    own ranking): MAP 0.5953, MRR 67.83, REC-1@01 53.21 (SemEval2016_task3_submissions_and_scores,
    _baseline/subtask_A_baseline_true.txt.score)."""
    try:
        root = data_root()
    except FileNotFoundError:
        pytest.skip("data root not found")
    gold = (
        root
        / "semeval2016_task3_cqa/v3.2/test2016/SemEval2016-Task3-CQA-QL-test-subtaskA.xml.subtaskA.relevancy"
    )
    if not gold.is_file():
        pytest.skip("SemEval 2016 test gold not available")
    scores, rel = _semeval_gold(gold)
    assert len(scores) == 327
    assert round(M.mean_average_precision(scores, rel), 4) == 0.5953
    assert round(100 * M.mean_reciprocal_rank(scores, rel), 2) == 67.83
    assert round(100 * M.has_positive_at_k(scores, rel, 1), 2) == 53.21
    # excluding the 12 queries without a Good comment would give a different (wrong) MAP
    kept = [(s, r) for s, r in zip(scores, rel, strict=True) if r.any()]
    assert len(kept) == 315
    assert round(M.mean_average_precision([s for s, _ in kept], [r for _, r in kept]), 4) == 0.6180
