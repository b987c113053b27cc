"""``bscl train`` end to end on the fixture data root with the tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bscl.cli import main
from bscl.models import resolve_model_path
from bscl.run import prepare_task, run_training
from bscl.training.config import RunConfig, from_dict

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


def config(out: Path, **sections: dict) -> RunConfig:
    base = {
        "data": {"task": "stsb", "data_root": str(FIXTURES)},
        "train": {"model": "tiny", "output_dir": str(out), "epochs": 2, "batch_size": 4, "logging_steps": 1},
        "eval": {"batch_size": 8},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return from_dict(base)


@pytest.mark.slow
def test_train_writes_a_complete_run_folder_and_resumes_finished_seeds(tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    cfg = config(
        out, train={"seeds": 2}, loss={"name": "bsc", "trainable_tau": True, "tau_learning_rate": 0.05}
    )
    metrics = run_training(cfg)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved["primary"] == "spearman" and saved["task"] == "stsb"
    assert set(saved["seeds"]) == {"0", "1"}
    assert "running" not in saved
    best = max(saved["seeds"], key=lambda s: saved["seeds"][s]["dev"]["spearman"])
    assert saved["best_seed"] == int(best)
    assert saved["after"]["test"] == saved["seeds"][best]["test"]
    for seed in saved["seeds"].values():
        assert [round(row["epoch"]) for row in seed["dev_per_epoch"]] == [1, 2]
        assert all("tau" in row for row in seed["train_loss"])  # learned temperature is logged
        assert seed["train_loss"][0]["tau"] != seed["train_loss"][-1]["tau"]
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored == cfg.resolved(0.6)  # every value the run used: the loss's with stsb's threshold
    assert stored["loss"]["tau"] is not None and stored["loss"]["threshold"] == 0.6
    assert (
        (out / "report.md").is_file() and (out / "train_loss.png").is_file() and (out / "tau.png").is_file()
    )
    reloaded = SentenceTransformer(str(out / "model"))
    assert reloaded.encode(["a cat"]).shape == (1, reloaded.get_embedding_dimension())
    assert metrics["after"] == saved["after"]

    capsys.readouterr()
    again = run_training(cfg)  # same command again: nothing is retrained
    assert "already finished" in capsys.readouterr().out
    assert again["seeds"] == saved["seeds"]


@pytest.mark.slow
def test_another_config_in_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    run_training(config(out, train={"epochs": 1}))
    with pytest.raises(ValueError, match="another configuration"):
        run_training(config(out, train={"epochs": 1}, loss={"tau": 0.2}))


@pytest.mark.slow
def test_sequential_training_starts_from_the_previous_run(tmp_path):
    first = tmp_path / "bsc"
    run_training(config(first, train={"epochs": 1}))
    assert resolve_model_path(str(first)) == str(first / "model")
    second = tmp_path / "bsc-then-mse"
    metrics = run_training(config(second, train={"epochs": 1, "model": str(first)}, loss={"name": "mse"}))
    before = json.loads((first / "metrics.json").read_text())["after"]["test"]
    # the second stage's "before" is the first stage's chosen model
    assert metrics["before"]["test"] == pytest.approx(before, abs=1e-6)


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"loss": {"name": "nope"}}, "--loss.name"),
        ({"loss": {"tau": 0.0}}, "--loss.tau"),
        ({"loss": {"mu": 1.5}}, "--loss.mu"),
        ({"batching": {"strategy": "bogus"}}, "--batching.strategy"),
        ({"train": {"batch_size": 100}}, "--train.batch_size=100"),
        ({"data": {"data_root": "/no/such/folder"}}, "/no/such/folder"),
        ({"data": {"task": "generic"}}, "--data.train_file"),
        ({"data": {"negatives": "ranked"}}, "--data.negatives"),
    ],
)
def test_bad_config_fails_before_training_with_what_to_change(tmp_path, sections, message):
    out = tmp_path / "run"
    with pytest.raises((ValueError, FileNotFoundError), match=message.replace(".", r"\.").replace("/", "/")):
        run_training(config(out, **sections))
    assert not any(out.glob("seed-*/checkpoint-*"))


def test_cli_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    code = main(["train", "--data.data_root", str(FIXTURES), "--train.model", "tiny", "--loss.tau=-1"])
    assert code == 2
    assert "--loss.tau must be > 0" in capsys.readouterr().err


def test_unsupervised_pairs_each_first_text_with_itself():
    cfg = config(Path("unused"), data={"unsupervised": True})
    task = prepare_task(cfg, FIXTURES)
    assert task.train["anchor"] == task.train["positive"]
    assert len(set(task.train["anchor"])) == len(task.train)
    assert set(task.train["label"]) == {1.0}


@pytest.mark.slow
def test_unsupervised_training_with_one_direction(tmp_path):
    cfg = config(
        tmp_path / "simcse",
        data={"unsupervised": True},
        loss={"name": "bsc", "symmetric": False, "tau": 0.05},
        train={"epochs": 1},
    )
    metrics = run_training(cfg)
    assert metrics["seeds"]["0"]["train_loss"][0]["loss"] > 0


@pytest.mark.distributed
def test_bscl_train_under_torchrun_with_two_processes(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun is not None
    out = tmp_path / "ddp"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "bscl.cli", "train",
           "--data.data_root", str(FIXTURES), "--train.model", "tiny", "--train.batch_size", "2",
           "--train.epochs", "2", "--batching.strategy", "example", "--batching.group_size", "2",
           "--batching.reuse_embeddings", "true",
           "--loss.trainable_tau", "true", "--train.output_dir", str(out), "--eval.batch_size", "8"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    seed = metrics["seeds"]["0"]
    assert [round(r["epoch"]) for r in seed["dev_per_epoch"]] == [1, 2]
    # 8 fixture pairs, 2 per process and step, 2 processes: 2 steps per epoch
    assert seed["best_step"] in (2, 4)
    assert (out / "model" / "modules.json").is_file()


@pytest.mark.slow
def test_reuse_mode_encodes_once_then_reuses_the_training_embeddings(tmp_path):
    cfg = config(
        tmp_path / "reuse",
        batching={"strategy": "example", "reuse_embeddings": True, "group_size": 2},
        train={"epochs": 3},
    )
    seed = run_training(cfg)["seeds"]["0"]
    n = len(prepare_task(cfg, FIXTURES).train)
    stats = seed["batching"]
    assert [round(s["epoch"]) for s in stats] == [1, 2, 3]
    assert stats[0]["n_encoded"] == n  # epoch 1: nothing recorded yet, one encode pass
    for later in stats[1:]:  # afterwards: the embeddings the loss saw in the previous epoch
        assert later["n_encoded"] == 0 and later["n_reused"] == n


@pytest.mark.slow
def test_cold_start_by_words_and_packing_skip_the_first_encode_pass(tmp_path):
    cfg = config(
        tmp_path / "fast",
        batching={
            "strategy": "example",
            "reuse_embeddings": True,
            "group_size": 2,
            "cold_start": "words",
            "pack_by_length": True,
        },
        train={"epochs": 2},
    )
    seed = run_training(cfg)["seeds"]["0"]
    n = len(prepare_task(cfg, FIXTURES).train)
    first, second = seed["batching"]
    assert first["n_encoded"] == 0 and first["cold_start"] == 1.0  # epoch 1: words, no model pass
    assert second["n_encoded"] == 0 and second["n_reused"] == n and "cold_start" not in second
    assert "pack_s" in first and "pack_s" in second
    assert (tmp_path / "fast" / "model" / "modules.json").is_file()


def test_train_subset_is_the_same_pairs_for_every_strategy():
    from bscl.training.builder import train_subset

    random_cfg = config(Path("unused"), data={"train_subset": 5})
    seq_cfg = config(Path("unused"), data={"train_subset": 5}, batching={"strategy": "sequential"})
    task = prepare_task(random_cfg, FIXTURES)
    rows = lambda ds: list(zip(ds["anchor"], ds["positive"], strict=True))  # noqa: E731
    a, b = rows(train_subset(task, random_cfg)), rows(train_subset(task, seq_cfg))
    assert len(a) == 5 and set(a) == set(b)
    order = rows(task.train)
    assert b == sorted(b, key=order.index)  # sequential keeps the file order


@pytest.mark.parametrize(
    ("loss", "batching", "loss_class", "sampler"),
    [
        ("bsc", {"strategy": "example", "group_size": 2}, "BSCLoss", None),  # the model-first class
        ("st-cosent", {}, "CoSENTLoss", "BATCH_SAMPLER"),
    ],
)
def test_builder_wires_loss_sampler_and_trainer_arguments(tmp_path, loss, batching, loss_class, sampler):
    from bscl.losses import LossStateCallback
    from bscl.models import load_model
    from bscl.training.builder import build_trainer

    cfg = config(tmp_path / "run", loss={"name": loss}, batching=batching, hf={"save_total_limit": 3})
    task = prepare_task(cfg, FIXTURES)
    built = build_trainer(cfg, task, load_model("tiny", max_seq_length=32), tmp_path / "run", seed=5)
    args = built.trainer.args
    assert type(built.loss).__name__ == loss_class
    assert (built.factory is not None) == (loss == "bsc")
    # bscl's sampler factory for a bscl strategy, sentence-transformers' own sampler for a peer
    assert args.batch_sampler is built.factory if sampler is None else args.batch_sampler.name == sampler
    assert (args.per_device_train_batch_size, args.num_train_epochs, args.seed, args.data_seed) == (
        4,
        2,
        5,
        5,
    )
    assert args.learning_rate == cfg.train.learning_rate and args.save_total_limit == 3
    assert args.metric_for_best_model == built.metric_key == "eval_stsb_dev_spearman_cosine"
    has_state = any(isinstance(c, LossStateCallback) for c in built.trainer.callback_handler.callbacks)
    assert has_state == (loss == "bsc")  # a peer's loss keeps no state
