"""Typed run configuration: YAML, command-line overrides, validation messages, round trip."""

from __future__ import annotations

import argparse

import pytest
import yaml

from bscl.training import config as C


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    C.add_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_overrides_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump({"loss": {"name": "combo", "tau": 0.05, "mu": 0.9}, "train": {"epochs": 3}})
    )
    cfg = C.load_yaml(path)
    cfg = C.from_args(
        _parse(["--loss.tau=0.07", "--train.batch_size", "16", "--loss.symmetric", "false"]), cfg
    )
    assert cfg.loss.name == "combo" and cfg.loss.mu == 0.9  # from YAML
    assert cfg.loss.tau == 0.07 and cfg.train.batch_size == 16 and cfg.loss.symmetric is False  # overrides
    assert cfg.train.epochs == 3.0 and isinstance(cfg.train.epochs, float)
    assert cfg.train.mini_batch_size is None


def test_optional_fields_accept_none_and_numbers():
    cfg = C.from_args(_parse(["--data.train_subset", "100", "--loss.threshold", "none"]))
    assert cfg.data.train_subset == 100 and cfg.loss.threshold is None


def test_round_trip(tmp_path):
    cfg = C.from_args(_parse(["--loss.name", "focal-infonce", "--batching.strategy", "example"]))
    cfg.save(tmp_path / "config.yaml")
    again = C.load_yaml(tmp_path / "config.yaml")
    assert again == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"loss": {"name": "nope"}}, "--loss.name"),
        ({"loss": {"tau": 0}}, "--loss.tau must be > 0"),
        ({"loss": {"tau": -1}}, "--loss.tau must be > 0"),
        ({"loss": {"mu": 2}}, "--loss.mu"),
        ({"loss": {"normalization": "max"}}, "--loss.normalization"),
        ({"train": {"batch_size": 0}}, "--train.batch_size"),
        ({"train": {"epochs": 0}}, "--train.epochs"),
        ({"batching": {"group_by": "third"}}, "--batching.group_by"),
        ({"batching": {"cold_start": "later"}}, "--batching.cold_start"),
        ({"batching": {"strategy": "sequential", "pack_by_length": True}}, "--batching.pack_by_length"),
        ({"batching": {"pack_window": 0}}, "--batching.pack_window"),
    ],
)
def test_invalid_values_fail_with_the_option_name(data, message):
    cfg = C.from_dict(data)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_unknown_keys_and_bad_types_name_the_source(tmp_path):
    with pytest.raises(ValueError, match="unknown option loss.temp"):
        C.from_dict({"loss": {"temp": 1}})
    with pytest.raises(ValueError, match="unknown section"):
        C.from_dict({"optim": {}})
    with pytest.raises(ValueError, match=r"command line: train.batch_size: expected int"):
        C.from_args(_parse(["--train.batch_size", "big"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: [1, 2")
    with pytest.raises(ValueError, match="bad.yaml"):
        C.load_yaml(bad)


def test_cli_rejects_invalid_config_before_training(tmp_path, capsys):
    from bscl.cli import main

    code = main(["train", "--loss.tau=0", f"--train.output_dir={tmp_path / 'run'}"])
    assert code == 2
    assert "--loss.tau must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_cli_missing_data_root(tmp_path, capsys):
    from bscl.cli import main

    code = main(
        ["train", f"--data.data_root={tmp_path / 'nowhere'}", f"--train.output_dir={tmp_path / 'run'}"]
    )
    assert code == 2
    assert "data root not found" in capsys.readouterr().err
