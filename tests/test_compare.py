"""Peer recipes (sentence-transformers' own losses through ``bscl train``) and ``bscl compare``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bscl.cli import main
from bscl.experiments import recipes
from bscl.experiments.compare import recipes_of
from bscl.models import load_model
from bscl.run import prepare_task, run_training
from bscl.training import peers
from bscl.training.builder import trainer_loss
from bscl.training.config import from_dict
from bscl.training.peers import PEER_LOSSES

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


@pytest.fixture(autouse=True)
def _loose_mining(monkeypatch):
    # the tiny random model scores every candidate alike: the 5% false-negative margin would drop them all
    monkeypatch.setitem(peers.MINING, "relative_margin", None)


CLASSES = {
    "st-cosine": ("stsb", "CosineSimilarityLoss", "BATCH_SAMPLER"),
    "st-cosent": ("stsb", "CoSENTLoss", "BATCH_SAMPLER"),
    "st-angle": ("stsb", "AnglELoss", "BATCH_SAMPLER"),
    "st-online-contrastive": ("mrpc", "OnlineContrastiveLoss", "BATCH_SAMPLER"),
    "st-mnrl": ("mrpc", "MultipleNegativesRankingLoss", "NO_DUPLICATES"),
    "st-cached-mnrl": ("cqa-b", "CachedMultipleNegativesRankingLoss", "NO_DUPLICATES"),
    "st-gist": ("cqa-a", "GISTEmbedLoss", "NO_DUPLICATES"),
    "st-mnrl-hard": ("pfcc", "MultipleNegativesRankingLoss", "NO_DUPLICATES"),
}


def config(out: Path, task: str, loss: str, **train):
    return from_dict(
        {
            "data": {"task": task, "data_root": str(FIXTURES)},
            "loss": {"name": loss},
            "train": {"model": "tiny", "output_dir": str(out), "epochs": 1, "batch_size": 4, "logging_steps": 1, **train},
            "eval": {"batch_size": 8, "before": False},
        }
    )  # fmt: skip


def test_every_peer_is_listed_with_its_class():
    assert set(CLASSES) == set(PEER_LOSSES)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_peer_recipe_builds_its_own_class_sampler_and_data(name, tmp_path):
    task_name, cls, sampler = CLASSES[name]
    cfg = config(tmp_path, task_name, name)
    task = prepare_task(cfg, FIXTURES)
    model = load_model("tiny", max_seq_length=32)
    setup = trainer_loss(cfg, task, model, task.train)
    assert type(setup.loss).__name__ == cls and setup.batch_sampler.name == sampler
    data = PEER_LOSSES[name].data
    if data == "pairs":
        assert setup.train.column_names == ["anchor", "positive", "label"]
    else:
        positives = sum(1 for y in task.train["label"] if y > task.binarize_threshold)
        assert (
            setup.train.column_names[:2] == ["anchor", "positive"] and "label" not in setup.train.column_names
        )
        if data == "positives":
            assert len(setup.train) == positives < len(task.train) or task.name == "pfcc"
        else:
            assert setup.train.column_names == ["anchor", "positive", "negative"]
            assert all(n != p for p, n in zip(setup.train["positive"], setup.train["negative"], strict=True))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_peer_recipe_trains_through_bscl_train(name, tmp_path):
    task_name, _cls, _sampler = CLASSES[name]
    task_name = "cqa-a" if task_name == "pfcc" else task_name  # the fixture pfcc has no test queries
    # batch 2: the fixtures have 3-4 positive pairs, and the positive-pair recipes train on those alone
    metrics = run_training(config(tmp_path / name, task_name, name, batch_size=2))
    seed = metrics["seeds"]["0"]
    losses = [row["loss"] for row in seed["train_loss"]]
    assert losses and all(math.isfinite(x) for x in losses)
    assert metrics["primary"] in metrics["after"]["test"]


@pytest.mark.parametrize("task_name", ["cqa-a", "cqa-b"])
def test_cqa_cosine_peer_trains_on_the_labeled_negatives_too(task_name, tmp_path):
    # CQA-A's best bscl recipe is MSE on the cosine: its sentence-transformers twin must be compared on
    # the same pairs and 0/1 labels, negatives included
    assert "st-cosine" in recipes.peers(task_name) and "st-cosine" in recipes_of(task_name)
    cfg = config(tmp_path, task_name, "st-cosine")
    task = prepare_task(cfg, FIXTURES)
    setup = trainer_loss(cfg, task, load_model("tiny", max_seq_length=32), task.train)
    assert type(setup.loss).__name__ == "CosineSimilarityLoss"
    assert setup.train["label"] == task.train["label"] and setup.train["anchor"] == task.train["anchor"]
    assert {0.0, 1.0} == set(setup.train["label"])


def test_peer_with_a_bscl_sampler_is_refused():
    cfg = config(Path("unused"), "stsb", "st-cosent")
    cfg.batching.strategy = "example"
    with pytest.raises(ValueError, match="own batch sampler"):
        cfg.validate()


def test_compare_recipes_of_a_task():
    assert list(recipes_of("stsb")) == [
        "zero-shot",
        "bscl-paper",  # bscl-ours is the paper's preset on STSb: not trained twice
        "bscl-paper-bias-corrected",
        "st-cosine",
        "st-cosent",
        "st-angle",
    ]
    assert "bscl-ours" in recipes_of("stsb", every_peer=True)  # still runs when named
    assert [r for r in recipes_of("mrpc") if r.startswith("bscl-")] == [
        "bscl-paper",
        "bscl-pearson-combo",
        "bscl-pearson-combo-bias-corrected",
    ]
    assert recipes_of("cqa-b")["st-cached-mnrl"] == {
        "loss": {"name": "st-cached-mnrl"},
        "train": {"batch_size": 128},
    }
    # WiSE-FT on the sentence-transformers side too, at the alpha of the task's own "wise" recipe
    wise = recipes.recipe("pfcc", "wise")["train"]["interpolate"]
    assert recipes_of("pfcc", every_peer=True)["st-cached-mnrl-wise"] == {
        "loss": {"name": "st-cached-mnrl"},
        "train": {"batch_size": 128, "interpolate": wise},
    }
    assert {
        r for r in recipes_of("pfcc", every_peer=True) if r.startswith("st-") and r.endswith("-wise")
    } == {f"{peer}-wise" for peer in recipes.peers("pfcc")}
    assert not [r for r in recipes_of("stsb", every_peer=True) if r.endswith("-wise")]  # no wise recipe
    assert not [r for r in recipes_of("pfcc") if r.startswith("st-") and r.endswith("-wise")]  # named only
    # the paper's AdamW without bias correction on the sentence-transformers side, where the paper uses it
    assert recipes_of("mrpc", every_peer=True)["st-online-contrastive-uncorrected"] == {
        "loss": {"name": "st-online-contrastive"},
        "train": {"adam_bias_correction": False},
    }
    assert {r for r in recipes_of("stsb", every_peer=True) if r.endswith("-uncorrected")} == {
        f"{peer}-uncorrected" for peer in recipes.peers("stsb")
    }
    assert not [r for r in recipes_of("cqa-a", every_peer=True) if r.endswith("-uncorrected")]  # corrected
    assert not [r for r in recipes_of("stsb") if r.endswith("-uncorrected")]  # named only


def test_compare_runs_cells_once_writes_records_and_the_table(tmp_path, capsys):
    results, table = tmp_path / "results", tmp_path / "RESULTS.md"
    table.write_text("# Results\n\n<!-- results:begin stsb -->\n<!-- results:end -->\n")
    args = ["compare", "stsb", "--model", "tiny", "--data-root", str(FIXTURES), "--seeds", "2", "--batch-size", "4",
            "--recipes", "zero-shot,bscl-paper,st-cosent", "--output-dir", str(tmp_path / "runs"),
            "--results-dir", str(results), "--results-file", str(table)]  # fmt: skip
    assert main(args) == 0
    paths = sorted(p.relative_to(results).as_posix() for p in results.rglob("*.json"))
    assert paths == ["stsb/bscl-paper/seed-0.json", "stsb/bscl-paper/seed-1.json",
                     "stsb/st-cosent/seed-0.json", "stsb/st-cosent/seed-1.json", "stsb/zero-shot/seed-0.json"]  # fmt: skip
    zero = json.loads((results / "stsb" / "zero-shot" / "seed-0.json").read_text())
    assert zero["side"] == "zero-shot" and zero["train_seconds"] == 0.0 and "spearman" in zero["test"]
    record = json.loads((results / "stsb" / "st-cosent" / "seed-1.json").read_text())
    assert record["seed"] == 1 and record["side"] == "sentence-transformers"
    assert record["config"]["loss"]["name"] == "st-cosent" and record["config"]["train"]["batch_size"] == 4
    paper = json.loads((results / "stsb" / "bscl-paper" / "seed-0.json").read_text())
    assert paper["config"]["loss"]["name"] == "combo" and paper["config"]["batching"]["strategy"] == "example"
    text = table.read_text()
    assert "| bscl-paper | bscl | 2 |" in text and "| st-cosent | sentence-transformers | 2 |" in text
    assert "| zero-shot | zero-shot | 1 |" in text
    before = {p: p.read_text() for p in results.rglob("*.json")}
    capsys.readouterr()
    assert main(args) == 0  # finished cells are skipped, records kept
    out = capsys.readouterr().out
    assert out.count(", skipped") == 5 and "===" not in out
    figure = tmp_path / "figures" / "results-stsb.svg"
    assert f"report: {table}; figure: {figure}" in out and figure.read_text().startswith("<?xml")
    assert {p: p.read_text() for p in results.rglob("*.json")} == before
    assert main([*args, "--epochs", "2"]) == 2  # a finished cell with other options is refused
    assert "other options" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "runs")  # a fresh clone: the committed records, no run folders
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("recorded in") == 5 and "===" not in out  # nothing trained again
    assert {p: p.read_text() for p in results.rglob("*.json")} == before
    assert main([*args, "--epochs", "2"]) == 2  # other options: refused before anything trains
    captured = capsys.readouterr()
    assert "is the record of other options (train.epochs: 1.0 -> 2.0)" in captured.err
    assert "===" not in captured.out and not (tmp_path / "runs").exists()
