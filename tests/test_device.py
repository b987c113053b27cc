"""``--device`` reaches every model load of eval / encode / rank / train's before-evaluation; the
default (None) lets sentence-transformers pick CUDA when available."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import bscl.models
import bscl.run
from bscl.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


@pytest.fixture
def devices(monkeypatch):
    seen: list[str | None] = []
    real = bscl.models.load_model

    def load(name, **kwargs):
        seen.append(kwargs.get("device"))
        return real(name, **{**kwargs, "device": "cpu"})

    monkeypatch.setattr(bscl.models, "load_model", load)
    monkeypatch.setattr(bscl.run, "load_model", load)  # imported by name there
    return seen


def test_load_model_defaults_to_the_best_device():
    assert inspect.signature(bscl.models.load_model).parameters["device"].default is None


def test_device_option_of_the_subcommands(tmp_path, devices):
    texts = tmp_path / "texts.txt"
    texts.write_text("a cat\na dog\n")
    assert (
        main(
            ["encode", "--model=tiny", f"--input={texts}", f"--output={tmp_path / 'e.npy'}", "--device=meta"]
        )
        == 0
    )
    argv = [
        "rank",
        "--model=tiny",
        f"--queries={texts}",
        f"--pool={texts}",
        f"--output={tmp_path / 'r.jsonl'}",
    ]
    assert main([*argv, "--device", "cuda:7"]) == 0
    argv = [
        "eval",
        "--task=stsb",
        "--model=tiny",
        f"--data-root={FIXTURES}",
        f"--output={tmp_path / 'x.json'}",
    ]
    assert main([*argv, "--device=mps"]) == 0
    assert main(argv) == 0
    assert devices == ["meta", "cuda:7", "mps", None]


def test_train_device_reaches_the_before_evaluation(tmp_path, devices):
    argv = [
        "train",
        f"--data.data_root={FIXTURES}",
        "--train.model=tiny",
        f"--train.output_dir={tmp_path / 'run'}",
        "--train.epochs=1",
        "--train.batch_size=4",
        "--batching.group_size=4",
        "--train.device=cuda:3",
    ]
    assert main(argv) == 0
    assert devices[0] == "cuda:3"  # before training; the trained model is placed by the HF trainer
