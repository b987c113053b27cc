"""evaluate(), build_evaluator() and `bscl eval` on the fixture data root with a deterministic fake encoder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

from bscl.data import PairSplit, RankingSplit, load_task
from bscl.evaluation import build_evaluator, evaluate
from bscl.evaluation import metrics as M
from bscl.evaluation.command import format_table, main, run_eval
from bscl.evaluation.evaluators import TaskEvaluator, ranking_scores

ROOT = Path(__file__).parent / "fixtures" / "data_root"


class _Card:
    def set_evaluation_metrics(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeModel:
    """Hashed character-trigram embeddings: deterministic, similar texts get similar vectors."""

    similarity_fn_name = "cosine"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_card_data = _Card()
        self.calls: list[int] = []

    def embed(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim)
        t = f"  {text.lower()}  "
        for i in range(len(t) - 2):
            h = int(hashlib.md5(t[i : i + 3].encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
        return v

    def encode(self, sentences: list[str], normalize_embeddings: bool = False, **kwargs: Any) -> np.ndarray:
        self.calls.append(len(sentences))
        e = np.stack([self.embed(s) for s in sentences]).astype(np.float32)
        if normalize_embeddings:
            e /= np.linalg.norm(e, axis=1, keepdims=True)
        return e


def cos(model: FakeModel, a: str, b: str) -> float:
    x, y = model.embed(a), model.embed(b)
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


def test_regression_matches_independent_spearman() -> None:
    task = load_task("stsb", ROOT)
    model = FakeModel()
    out = evaluate(model, task, "test")
    assert set(out) == {"spearman", "pearson"}
    s = [cos(model, a, b) for a, b in zip(task.test.sentences1, task.test.sentences2, strict=True)]
    assert out["spearman"] == pytest.approx(M.spearman(s, task.test.labels), abs=1e-6)
    assert out["pearson"] == pytest.approx(M.pearson(s, task.test.labels), abs=1e-5)


def test_classification_applies_the_dev_threshold_to_test() -> None:
    task = load_task("mrpc", ROOT)
    model = FakeModel()
    dev = [cos(model, a, b) for a, b in zip(task.dev.sentences1, task.dev.sentences2, strict=True)]
    test = [cos(model, a, b) for a, b in zip(task.test.sentences1, task.test.sentences2, strict=True)]
    _, threshold = M.best_f1_threshold(dev, task.dev.labels)
    out = evaluate(model, task, "test")
    assert out["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert out == pytest.approx(M.binary_metrics(test, task.test.labels, threshold), abs=1e-6)
    out_dev = evaluate(model, task, "dev")
    assert out_dev["threshold"] == pytest.approx(threshold, abs=1e-6)


@pytest.mark.parametrize(
    ("name", "options"), [("cqa-a", {}), ("cqa-b", {}), ("pfcc", {"train_size": 10}), ("antique", {})]
)
def test_ranking_scores_equal_pairwise_cosines(name: str, options: dict[str, Any]) -> None:
    task = load_task(name, ROOT, **options)
    split = task.test
    assert isinstance(split, RankingSplit)
    model = FakeModel()
    scores = ranking_scores(model, split)
    assert model.calls == [len(set(split.queries)), len(set(split.pool))]  # queries once, pool once
    for i, s in enumerate(scores):
        cand = split.candidate_indices(i)
        expect = [cos(model, split.queries[i], split.pool[j]) for j in cand]
        assert s == pytest.approx(expect, abs=1e-5)
    out = evaluate(model, task, "test")
    assert task.metric in out
    rel = [split.relevance(i) for i in range(len(split))]
    assert out["mrr"] == pytest.approx(M.mean_reciprocal_rank(scores, rel))
    assert all(0.0 <= v <= 1.0 for v in out.values())


def test_pfcc_reports_has_positive_at_all_k() -> None:
    out = evaluate(FakeModel(), load_task("pfcc", ROOT, train_size=10), "test")
    assert [k for k in out if k.startswith("has_positive@")] == [
        f"has_positive@{k}" for k in (1, 3, 5, 10, 20, 50)
    ]
    assert out["has_positive@50"] == 1.0  # the 13-claim pool is smaller than 50


def test_build_evaluator_uses_the_library_for_stsb_and_names_the_primary_metric() -> None:
    task = load_task("stsb", ROOT)
    ev = build_evaluator(task)
    assert isinstance(ev, EmbeddingSimilarityEvaluator)
    assert ev.primary_metric == "stsb_dev_spearman_cosine"
    out = ev(FakeModel())
    assert ev.primary_metric in out
    assert out[ev.primary_metric] == pytest.approx(evaluate(FakeModel(), task, "dev")["spearman"], abs=1e-6)


@pytest.mark.parametrize(
    ("name", "options", "primary"),
    [
        ("mrpc", {}, "mrpc_dev_f1"),
        ("cqa-a", {}, "cqa-a_dev_map"),
        ("pfcc", {"train_size": 10}, "pfcc_dev_has_positive@1"),
        ("antique", {}, "antique_dev_mrr"),
    ],
)
def test_task_evaluator_primary_metric_is_in_its_output(
    name: str, options: dict[str, Any], primary: str
) -> None:
    task = load_task(name, ROOT, **options)
    ev = build_evaluator(task, "dev")
    assert isinstance(ev, TaskEvaluator) and isinstance(ev, BaseEvaluator)
    assert ev.primary_metric == primary and ev.greater_is_better
    out = ev(FakeModel())
    assert primary in out
    assert out[primary] == pytest.approx(evaluate(FakeModel(), task, "dev")[task.metric])
    assert ev.primary_metric == primary  # unchanged by the call (no double prefix)


def test_missing_split_is_a_clear_error() -> None:
    task = load_task(
        "generic",
        train=ROOT / "qqp" / "dev.tsv",
        dev=ROOT / "qqp" / "dev.tsv",  # 4 rows: too few for a 9:1 dev split (an error)
        text1="question1",
        text2="question2",
        label="is_duplicate",
    )
    assert task.test is None
    with pytest.raises(ValueError, match="has no test split"):
        evaluate(FakeModel(), task, "test")
    with pytest.raises(ValueError, match="has no test split"):
        build_evaluator(task, "test")
    assert isinstance(task.dev, PairSplit)


def test_run_eval_writes_json_and_table(tmp_path: Path) -> None:
    out_file = tmp_path / "res" / "cqa.json"
    res = run_eval("cqa-a", FakeModel(), "test", ROOT, out_file)
    saved = json.loads(out_file.read_text())
    assert saved["metrics"] == pytest.approx(res["metrics"])
    assert (
        saved["task"] == "cqa-a"
        and saved["split"] == "test"
        and saved["n"] == 2
        and saved["primary"] == "map"
    )
    table = format_table(res)
    assert "map" in table and "mrr" in table and "p@1" in table


def test_cli_eval_subcommand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bscl.evaluation.command as command

    monkeypatch.setattr(command, "_load_model", lambda name, device=None: FakeModel())
    out_file = tmp_path / "stsb.json"
    rc = main(
        [
            "eval",
            "--task",
            "stsb",
            "--model",
            "fake",
            "--split",
            "dev",
            "--data-root",
            str(ROOT),
            "--output",
            str(out_file),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "spearman" in printed and "split dev" in printed
    assert json.loads(out_file.read_text())["n"] == 4
    with pytest.raises(SystemExit):
        main(["eval", "--task", "nope", "--model", "fake"])


@pytest.mark.slow
def test_tiny_model_end_to_end_and_trainer_metric_for_best_model(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    from bscl.models import load_model

    model = load_model("tiny", seed=0)
    for name, options in [("stsb", {}), ("mrpc", {}), ("cqa-a", {}), ("pfcc", {"train_size": 10})]:
        out = evaluate(model, load_task(name, ROOT, **options), "test")
        assert out and all(np.isfinite(v) for v in out.values())
    res = run_eval("stsb", model, "test", ROOT, tmp_path / "stsb.json")
    assert json.loads((tmp_path / "stsb.json").read_text())["metrics"] == pytest.approx(res["metrics"])
    task = load_task("mrpc", ROOT)
    ev = build_evaluator(task)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model=f"eval_{ev.primary_metric}",
        report_to=[],
        use_cpu=True,
        logging_strategy="no",
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=task.train, loss=CosineSimilarityLoss(model), evaluator=ev
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert f"eval_{ev.primary_metric}" in metrics


@pytest.mark.parametrize(
    ("name", "options", "shared"),
    [("pfcc", {"train_size": 10}, True), ("mrpc", {}, True), ("cqa-a", {}, False)],
)
def test_a_shared_cache_encodes_each_list_once_and_changes_no_metric(
    name: str, options: dict[str, Any], shared: bool
) -> None:
    # PFCC: dev and test rank against one pool; MRPC: test needs dev's scores for the threshold;
    # CQA-A: nothing in common (each split has its own candidates)
    task = load_task(name, ROOT, **options)
    plain = FakeModel()
    want = {split: evaluate(plain, task, split) for split in ("dev", "test")}
    cached, cache = FakeModel(), {}
    got = {split: evaluate(cached, task, split, cache=cache) for split in ("dev", "test")}
    assert got == want  # exactly: a hit is the same list, so the same embeddings
    assert (sum(cached.calls) < sum(plain.calls)) == shared
    if name == "pfcc":  # the pool is encoded once
        pool = len(dict.fromkeys(task.test.pool))
        assert cached.calls.count(pool) == 1 and plain.calls.count(pool) == 2
