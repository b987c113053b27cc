"""Typed run configuration: YAML, command-line overrides, validation messages, round trip."""

from __future__ import annotations

from typing import Literal

import pytest
import yaml

from bscl.training import config as C


def test_command_line_overrides_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump({"loss": {"name": "combo", "tau": 0.05, "mu": 0.9}, "train": {"epochs": 3}})
    )
    cfg = C.parse_command_line(
        [f"--config={path}", "--loss.tau=0.07", "--train.batch_size", "16", "--loss.symmetric", "false"]
    )
    assert cfg.loss.name == "combo" and cfg.loss.mu == 0.9  # from YAML
    assert cfg.loss.tau == 0.07 and cfg.train.batch_size == 16 and cfg.loss.symmetric is False  # overrides
    assert cfg.train.epochs == 3.0 and isinstance(cfg.train.epochs, float)
    assert cfg.train.mini_batch_size is None


def test_optional_fields_accept_none_and_numbers():
    cfg = C.parse_command_line(["--data.train_subset", "100", "--loss.threshold", "none"])
    assert cfg.data.train_subset == 100 and cfg.loss.threshold is None
    cfg = C.parse_command_line(["--loss.threshold=0.6", "--data.label_max", "5"])
    assert cfg.loss.threshold == 0.6 and cfg.data.label_max == 5.0


def test_round_trip(tmp_path):
    cfg = C.parse_command_line(
        ["--loss.name", "focal-infonce", "--batching.strategy", "example", "--hf.save_total_limit", "3"]
    )
    cfg.save(tmp_path / "config.yaml")
    again = C.load_yaml(tmp_path / "config.yaml")
    assert again == cfg and again.hf == {"save_total_limit": 3}


def test_no_prefix_matching_and_typo_suggestion():
    with pytest.raises(ValueError, match=r"--train\.epoch: did you mean --train\.epochs\?"):
        C.parse_command_line(["--train.epoch", "1"])
    with pytest.raises(ValueError, match=r"did you mean --hf\.bf16\?"):
        C.parse_command_line(["--hf.bf1", "true"])


def test_choices_are_checked_and_listed(capsys):
    with pytest.raises(ValueError, match="batching.strategy"):
        C.parse_command_line(["--batching.strategy", "nope"])
    with pytest.raises(ValueError, match="loss.name"):
        C.parse_command_line(["--loss.name", "nope"])
    with pytest.raises(SystemExit):
        C.parse_command_line(["--help"])
    out = capsys.readouterr().out
    from bscl.batching import STRATEGIES
    from bscl.data import TASKS
    from bscl.losses.options import LOSS_OPTIONS, NORMALIZATIONS
    from bscl.training.peers import PEER_LOSSES

    words = set(out.replace(",", " ").replace("(", " ").replace(")", " ").split())
    for values in (STRATEGIES, [*LOSS_OPTIONS, *PEER_LOSSES], TASKS, NORMALIZATIONS):
        assert set(values) <= words, values  # every allowed value is listed
    assert "--loss.combine {mean,sum}" in out  # a few values: beside the option
    assert "--hf.gradient_accumulation_steps" not in out  # the trainer's options have their own help
    assert "paper: 90 sub-tokens" in out  # help from the Args: docstrings
    with pytest.raises(SystemExit):
        C.parse_command_line(["--help-hf"])
    out = capsys.readouterr().out
    assert "--hf.gradient_accumulation_steps" in out and "--hf.push_to_hub" in out


def test_layers_base_then_yaml_then_command_line(tmp_path, monkeypatch):
    seen = []

    def base(task=None, **_):
        seen.append(task)
        cfg = C.RunConfig()
        cfg.data.task = task or cfg.data.task
        cfg.train.epochs = 7.0  # what a task recipe would set
        cfg.train.batch_size = 11
        return cfg

    monkeypatch.setattr(C, "base_config", base)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"data": {"task": "mrpc"}, "train": {"batch_size": 12}}))
    cfg = C.parse_command_line([f"--config={path}", "--train.seed", "3"])
    assert seen == ["mrpc"]  # the YAML's task chose the base
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.seed) == (7.0, 12, 3)
    cfg = C.parse_command_line([f"--config={path}", "--data.task", "pfcc", "--train.batch_size=13"])
    assert seen[-1] == "pfcc" and cfg.data.task == "pfcc" and cfg.train.batch_size == 13


def test_hf_options_pass_through_and_conflicts(tmp_path):
    cfg = C.parse_command_line(
        ["--hf.bf16", "true", "--hf.report_to", "tensorboard", "--hf.gradient_accumulation_steps", "2"]
    )
    assert cfg.hf == {"bf16": True, "report_to": "tensorboard", "gradient_accumulation_steps": 2}
    cfg.validate()
    with pytest.raises(ValueError, match=r"unrecognized arguments: --hf\.learning_rate"):
        C.parse_command_line(["--hf.learning_rate", "1e-4"])  # not an --hf option at all
    with pytest.raises(ValueError, match=r"--hf\.learning_rate conflicts .* --train\.learning_rate"):
        C.from_dict({"hf": {"learning_rate": 1e-4}}).validate()  # from YAML
    with pytest.raises(ValueError, match=r"--hf\.save_step is not .*did you mean --hf\.save_steps"):
        C.from_dict({"hf": {"save_step": 10}}).validate()


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
        ({"data": {"task": "generic", "train_file": "x.csv", "label_max": 0}}, "--data.label_max"),
        ({"data": {"label_max": 5}}, "--data.label_max applies to --data.task generic"),
    ],
)
def test_invalid_values_fail_with_the_option_name(data, message):
    cfg = C.from_dict(data)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_unknown_keys_and_bad_types_name_the_source(tmp_path):
    with pytest.raises(ValueError, match=r"unknown option loss.taus \(did you mean loss.tau"):
        C.from_dict({"loss": {"taus": 1}})
    with pytest.raises(ValueError, match="unknown section"):
        C.from_dict({"optim": {}})
    with pytest.raises(ValueError, match=r"train.batch_size"):
        C.parse_command_line(["--train.batch_size", "big"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: [1, 2")
    with pytest.raises(ValueError, match="bad.yaml"):
        C.load_yaml(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train:\n  epoch: 2\n")
    with pytest.raises(
        ValueError, match=r"unknown.yaml: unknown option train.epoch \(did you mean train.epochs"
    ):
        C.parse_command_line([f"--config={unknown}"])


def test_cli_rejects_invalid_config_before_training(tmp_path, capsys):
    from bscl.cli import main

    code = main(["train", "--loss.tau=0", f"--train.output_dir={tmp_path / 'run'}"])
    assert code == 2
    assert "--loss.tau must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_cli_prefix_is_rejected_in_every_subcommand(capsys):
    from bscl.cli import main

    assert main(["train", "--train.epoch", "1"]) == 2
    assert "did you mean --train.epochs?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["encode", "--model", "tiny", "--input", "x.txt", "--output", "x.npy", "--batch", "8"])
    assert "--batch: did you mean --batch-size?" in capsys.readouterr().err


def test_cli_missing_data_root(tmp_path, capsys):
    from bscl.cli import main

    code = main(
        ["train", f"--data.data_root={tmp_path / 'nowhere'}", f"--train.output_dir={tmp_path / 'run'}"]
    )
    assert code == 2
    assert "data root not found" in capsys.readouterr().err


def test_parser_takes_a_loss_config_with_optional_fields(monkeypatch):
    """The loss section is whatever dataclass config.py exports: fields defaulting to None ("the loss's
    own default"), optional bool / float / str / Literal types, help from an Args docstring."""
    import dataclasses

    @dataclasses.dataclass
    class LossConfig:
        """The loss.

        Args:
            name: which loss
            tau: temperature (None = the loss's default)
            symmetric: both directions
            combine: how the directions combine
            note: free text
        """

        name: str = "bsc"
        tau: float | None = None
        symmetric: bool | None = None
        combine: Literal["mean", "sum"] | None = None
        note: str | None = None

    monkeypatch.setattr(C, "LossConfig", LossConfig)
    monkeypatch.setitem(C.STAGES, "loss", LossConfig)
    monkeypatch.setattr(C, "base_config", lambda task=None, **_: C.RunConfig(loss=LossConfig()))
    cfg = C.parse_command_line(["--loss.tau", "0.05", "--loss.symmetric", "false", "--loss.combine", "sum"])
    assert (cfg.loss.tau, cfg.loss.symmetric, cfg.loss.combine, cfg.loss.note) == (0.05, False, "sum", None)
    cfg = C.parse_command_line(["--loss.note", "x", "--loss.tau", "null"])
    assert cfg.loss.note == "x" and cfg.loss.tau is None
    with pytest.raises(ValueError, match="loss.combine"):
        C.parse_command_line(["--loss.combine", "max"])
    with pytest.raises(ValueError, match=r"loss.combine: expected one of \['mean', 'sum'\]"):
        C.from_dict({"loss": {"combine": "max"}}, C.base_config())
    from bscl.training.options import train_parser

    parser = train_parser(C.base_config())
    help_text = " ".join(parser.format_help().split())
    assert "temperature" in help_text
    assert "--loss.combine {mean,sum}" in help_text  # the allowed values
