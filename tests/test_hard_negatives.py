"""``--data.hard_negatives K``: mined negatives as extra denominator columns of bscl's contrastive losses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bscl.models import load_model
from bscl.run import prepare_task, run_training
from bscl.training import peers
from bscl.training.config import from_dict

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


@pytest.fixture(autouse=True)
def _loose_mining(monkeypatch):
    # the tiny random model scores every candidate alike: the 5% false-negative margin would drop them all
    monkeypatch.setitem(peers.MINING, "relative_margin", None)


def config(out: Path, task: str = "pfcc", loss: str = "bsc", k: int | None = 2, **data):
    return from_dict(
        {
            "data": {"task": task, "data_root": str(FIXTURES), "hard_negatives": k, **data},
            "loss": {"name": loss},
            "train": {"model": "tiny", "output_dir": str(out), "epochs": 1, "batch_size": 4, "logging_steps": 1},
            "eval": {"batch_size": 8, "before": False},
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": 0}, "--data.hard_negatives must be >= 1"),
        ({"loss": "mse"}, "needs a contrastive loss"),
        ({"loss": "st-mnrl"}, "st-mnrl-hard mines its own"),
        ({"negatives": "ranked"}, "cannot be combined"),
    ],
)
def test_bad_options_name_the_option(change, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **change).validate()


@pytest.mark.parametrize("task", ["pfcc", "mrpc"])
def test_mined_columns_are_positive_pairs_with_k_other_texts(task, tmp_path):
    cfg = config(tmp_path, task=task, k=2)
    task_ = prepare_task(cfg, FIXTURES)
    model = load_model("tiny", max_seq_length=32)
    out = peers.with_hard_negatives(task_.train, model, task_, 2, task_.binarize_threshold, 8)
    assert out.column_names == ["anchor", "positive", "negative_1", "negative_2", "label"]
    assert len(out) >= 1 and set(out["label"]) == {1.0}
    # only positive training pairs survive, and no negative is the row's own positive or anchor's positive
    tr = task_.train
    rows = zip(tr["anchor"], tr["positive"], tr["label"], strict=True)
    positives = {(a, p) for a, p, y in rows if y > task_.binarize_threshold}
    own: dict[str, set[str]] = {}
    for a, p in positives:
        own.setdefault(a, set()).add(p)
    for row in out:
        assert (row["anchor"], row["positive"]) in positives
        for col in ("negative_1", "negative_2"):
            assert row[col] not in own[row["anchor"]]
        assert row["negative_1"] != row["negative_2"]
    if task == "pfcc":  # mined from the pool of verified claims
        pool = set(task_.extras["pool"])
        assert all(row["negative_1"] in pool for row in out)


@pytest.mark.slow
def test_bsc_trains_with_mined_negatives_and_records_the_option(tmp_path, capsys):
    metrics = run_training(config(tmp_path / "run", task="mrpc", k=2))
    assert "mined hard negatives" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["config"]["data"]["hard_negatives"] == 2
    losses = [r["loss"] for s in metrics["seeds"].values() for r in s["train_loss"]]
    assert losses and all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize(
    ("loss", "k", "option"), [("bsc", 2, "--data.hard_negatives"), ("st-mnrl", None, "st-mnrl")]
)
def test_a_batch_larger_than_the_positive_pairs_is_refused_before_the_model_loads(loss, k, option, tmp_path):
    from bscl.run import check_training_data

    cfg = config(tmp_path, task="mrpc", loss=loss, k=k)
    task = prepare_task(cfg, FIXTURES)
    positives = sum(1 for y in task.train["label"] if y > task.binarize_threshold)
    assert 2 <= positives < len(task.train)  # the fixture has both kinds
    fits = from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "batch_size": positives}})
    check_training_data(fits, task)  # every positive in one batch: allowed
    too_big = from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "batch_size": positives + 1}})
    assert positives + 1 <= len(task.train)  # the old check (all pairs) let it through
    with pytest.raises(
        ValueError, match=rf"larger than the training data \({positives} positive pairs.*{option}"
    ):
        check_training_data(too_big, task)


def test_a_batch_larger_than_the_mined_set_is_refused_after_mining(tmp_path, monkeypatch):
    # mining can drop anchors (fewer than K candidates): the mined set is checked again, before training
    real = peers.with_hard_negatives
    monkeypatch.setattr(
        "bscl.training.builder.with_hard_negatives", lambda *a, **kw: real(*a, **kw).select(range(1))
    )
    cfg = config(tmp_path / "run", task="mrpc", k=1)
    with pytest.raises(ValueError, match=r"larger than the training data \(1 positive pairs with 1 mined"):
        run_training(cfg)
