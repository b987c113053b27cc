"""``bscl reproduce``: grid definition, cell configs, resumable cells and the table (tiny model, fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bscl.cli import main
from bscl.experiments.cells import same_config
from bscl.experiments.reproduce import PAPER, grid, ordering_agreement, slug

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
    from bscl.experiments.reproduce import Cell

    cells = [Cell("a", paper="0.9"), Cell("b", paper="0.8"), Cell("c", paper="0.7")]
    same = {n: {"test": {"m": v}} for n, v in zip("abc", (0.5, 0.4, 0.3), strict=True)}
    reverse = {n: {"test": {"m": v}} for n, v in zip("abc", (0.3, 0.4, 0.5), strict=True)}
    assert "Kendall tau 1.00" in ordering_agreement(same, cells, "m")
    assert "Kendall tau -1.00" in ordering_agreement(reverse, cells, "m")
    assert ordering_agreement({"a": same["a"]}, cells, "m") is None


def _records(tmp_path: Path) -> list[str]:
    """Keep a test's records and tables out of the checkout's benchmarks/."""
    return ["--results-dir", str(tmp_path / "records"), "--results-file", str(tmp_path / "RESULTS.md")]


def test_reproduce_runs_cells_once_and_prints_the_table(tmp_path, capsys):
    args = ["reproduce", "stsb", "--model", "tiny", "--data-root", str(FIXTURES), "--batch-size", "4",
            "--cells", "bsc-then-mse,mse", "--output-dir", str(tmp_path), *_records(tmp_path)]  # fmt: skip
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
    assert main([*args, *_records(tmp_path)]) == 0
    other = ["--results-dir", str(tmp_path / "other-records"), "--results-file", str(tmp_path / "R.md")]
    assert main([*args, "--epochs", "2", *other]) == 2  # the run folder holds other options
    assert "other options" in capsys.readouterr().err


def _cell(tmp_path: Path, out: str, cells: str, *more: str) -> list[str]:
    return ["reproduce", "stsb", "--model", "tiny", "--data-root", str(FIXTURES), "--batch-size", "4",
            "--cells", cells, "--output-dir", str(tmp_path / out), *_records(tmp_path), *more]  # fmt: skip


def test_each_cell_writes_a_record_and_a_fresh_checkout_trains_nothing(tmp_path, capsys):
    results_file = tmp_path / "RESULTS.md"
    results_file.write_text("# Results\n\nprose kept\n\n<!-- grid:begin stsb -->\nold\n<!-- grid:end -->\n")
    assert main(_cell(tmp_path, "runs-a", "zero-shot,bsc-then-mse")) == 0
    capsys.readouterr()
    root = tmp_path / "records" / "stsb"
    made = sorted(p.relative_to(root).as_posix() for p in root.glob("*/seed-*.json"))
    assert made == ["bsc-example-shuffle/seed-0.json", "bsc-then-mse/seed-0.json", "zero-shot/seed-0.json"]
    rec = json.loads((root / "bsc-then-mse" / "seed-0.json").read_text())
    assert rec["cell"] == "bsc then mse" and rec["side"] == "bscl" and rec["task"] == "stsb"
    assert rec["config"]["loss"]["name"] == "mse" and rec["wall_seconds"] > 0
    assert json.loads((root / "zero-shot" / "seed-0.json").read_text())["side"] == "zero-shot"
    written = results_file.read_text()
    assert "prose kept" in written and "\nold\n" not in written
    assert "| bsc then mse |" in written and "3 of 11 cells recorded" in written

    # another output folder (a fresh clone): the records are the results, nothing trains
    assert main(_cell(tmp_path, "runs-b", "zero-shot,bsc-then-mse")) == 0
    out = capsys.readouterr().out
    assert "===" not in out and out.count("skipped") == 3
    assert not (tmp_path / "runs-b" / "stsb" / "bsc-then-mse").exists()
    assert json.loads((root / "bsc-then-mse" / "seed-0.json").read_text()) == rec
    assert results_file.read_text() == written  # regenerated from the same records: unchanged


def test_a_record_of_other_options_is_refused_before_training(tmp_path, capsys):
    assert main(_cell(tmp_path, "runs-a", "mse")) == 0
    capsys.readouterr()
    assert main(_cell(tmp_path, "runs-b", "mse", "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert "record of other options" in err and "train.epochs: 1.0 -> 2.0" in err
    assert not (tmp_path / "runs-b" / "stsb" / "mse").exists()  # nothing trained


def test_grid_section_only_replaces_its_task():
    from bscl.experiments.records import fill

    text = "<!-- grid:begin stsb -->\na\n<!-- grid:end -->\n<!-- grid:begin mrpc -->\nb\n<!-- grid:end -->\n"
    text += "<!-- results:begin stsb -->\nc\n<!-- results:end -->\n"
    out = fill(text, {"stsb": "new"}, kind="grid", only=["stsb"])
    assert out == text.replace("\na\n", "\nnew\n")
    added = fill("# R\n", {"cqa-b": "t"}, kind="grid", heading="### {task} grid", only=["cqa-b"])
    assert added == "# R\n\n### cqa-b grid\n\n<!-- grid:begin cqa-b -->\nt\n<!-- grid:end -->\n"


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
    from bscl.training.config import RunConfig

    wanted = RunConfig().to_dict()
    old = {k: v for k, v in wanted.items() if k != "hf"}
    old["train"] = {k: v for k, v in old["train"].items() if k not in ("device", "keep_checkpoints")}
    assert same_config(old, wanted)
    assert not same_config(old, {**wanted, "hf": {"bf16": True}})


def test_grid_records_of_an_earlier_split_are_shown_as_such(tmp_path):
    from bscl.experiments.reproduce import grid_section

    def write(split):
        path = tmp_path / "pfcc" / "zero-shot" / "seed-0.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        metrics = {"has_positive@1": 0.5, "has_positive@5": 0.6, "has_positive@50": 0.7, "mrr": 0.55}
        record = {"task": "pfcc", "recipe": "zero-shot", "seed": 0, "dev": metrics, "test": metrics}
        path.write_text(json.dumps(record if split is None else {**record, "split": split}))

    write(None)  # a record from before split versions: PFCC-S's split 1
    section = grid_section("pfcc", tmp_path)
    assert "1 of 11 cells recorded" in section
    assert "data split 1 (the loader now makes split 2; these cells are not re-run on it yet)" in section
    write(2)
    assert "data split" not in grid_section("pfcc", tmp_path)
