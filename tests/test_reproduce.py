"""``bscl reproduce``: grid definition, cell configs, resumable cells and the table (tiny model, fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bscl.cli import main
from bscl.reproduce import PAPER, grid, ordering_agreement, same_config, slug

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


def test_every_paper_number_has_a_row():
    for task, numbers in PAPER.items():
        shown = {c.paper for c in grid(task)}
        assert set(numbers.values()) <= shown, task


def test_sequential_row_starts_from_the_bsc_row():
    cells = {c.name: c for c in grid("stsb")}
    assert cells["bsc then mse"].after == "bsc (example shuffle)"
    assert cells["bsc then mse"].paper == "0.8571"


def test_ordering_agreement_is_kendall_tau():
    from bscl.reproduce import Cell

    cells = [Cell("a", paper="0.9"), Cell("b", paper="0.8"), Cell("c", paper="0.7")]
    same = {n: {"test": {"m": v}} for n, v in zip("abc", (0.5, 0.4, 0.3), strict=True)}
    reverse = {n: {"test": {"m": v}} for n, v in zip("abc", (0.3, 0.4, 0.5), strict=True)}
    assert "Kendall tau 1.00" in ordering_agreement(same, cells, "m")
    assert "Kendall tau -1.00" in ordering_agreement(reverse, cells, "m")
    assert ordering_agreement({"a": same["a"]}, cells, "m") is None


def test_reproduce_runs_cells_once_and_prints_the_table(tmp_path, capsys):
    args = ["reproduce", "stsb", "--model", "tiny", "--data-root", str(FIXTURES), "--batch-size", "4",
            "--cells", "bsc-then-mse,mse", "--output-dir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    root = tmp_path / "stsb"
    for name in ("bsc (example shuffle)", "bsc then mse", "mse"):
        assert (root / slug(name) / "cell.json").is_file(), name
        assert f"| {name} |" in out
    first = json.loads((root / "mse" / "cell.json").read_text())
    table = (root / "table.md").read_text()
    assert "0.8571" in table and "Finished 3/3 cells" in table
    # the second stage trained from the first stage's model
    cfg = (root / "bsc-then-mse" / "config.yaml").read_text()
    assert str(root / "bsc-example-shuffle") in cfg

    assert main(args) == 0  # finished cells are read back, not re-run
    assert json.loads((root / "mse" / "cell.json").read_text()) == first
    assert "===" not in capsys.readouterr().out


def test_unknown_cell_is_an_error(tmp_path, capsys):
    code = main(
        ["reproduce", "stsb", "--cells", "nope", "--output-dir", str(tmp_path), "--data-root", str(FIXTURES)]
    )
    assert code == 2
    assert "bsc-example-shuffle" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["stsb", "mrpc", "pfcc", "cqa-a", "cqa-b", "wiki-unsup"])
def test_dry_run_builds_valid_configs(task, tmp_path, capsys):
    assert main(["reproduce", task, "--dry-run", "--output-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(grid(task)) - 1  # all but zero-shot


def test_finished_cell_with_other_options_is_refused(tmp_path, capsys):
    args = ["reproduce", "stsb", "--model", "tiny", "--data-root", str(FIXTURES), "--batch-size", "4",
            "--cells", "mse", "--output-dir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    assert main([*args, "--epochs", "2"]) == 2
    assert "other options" in capsys.readouterr().err


def test_options_added_later_match_at_their_default():
    from bscl.training.config import RunConfig

    wanted = RunConfig().to_dict()
    old = json.loads(json.dumps(wanted))
    del old["batching"]["pack_by_length"]  # a cell finished before the option existed
    assert same_config(old, wanted)
    changed = json.loads(json.dumps(wanted))
    changed["batching"]["pack_by_length"] = True
    assert not same_config(old, changed)  # not the default: the cell ran without it
    removed = json.loads(json.dumps(wanted))
    del removed["loss"]["name"]  # (loss options default to None: "the loss's own")
    assert not same_config(wanted, removed)
    assert same_config(None, None) and not same_config(None, wanted)


def test_cells_stored_before_the_hf_section_existed_still_match():
    from bscl.reproduce import same_config
    from bscl.training.config import RunConfig

    wanted = RunConfig().to_dict()
    old = {k: v for k, v in wanted.items() if k != "hf"}
    old["train"] = {k: v for k, v in old["train"].items() if k not in ("device", "keep_checkpoints")}
    assert same_config(old, wanted)
    assert not same_config(old, {**wanted, "hf": {"bf16": True}})
