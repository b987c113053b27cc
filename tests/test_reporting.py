"""Run reports: report.md + PNG plots from synthetic metrics.json files (finished, interrupted, with tau)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bscl.reporting.atomic import atomic_open
from bscl.reporting.report import DEV_PLOT, LOSS_PLOT, TAU_PLOT, format_table, write_report

CONFIG = {
    "data": {"task": "stsb", "train_subset": None},
    "batching": {"strategy": "random"},
    "loss": {"name": "bsc", "tau": 0.1, "trainable_tau": True},
    "train": {"model": "tiny", "seeds": 2, "epochs": 3.0, "batch_size": 32, "learning_rate": 2e-5},
}


def seed_result(seed: int, *, tau: bool) -> dict[str, Any]:
    return {
        "seed": seed,
        "train_seconds": 12.34 + seed,
        "best_checkpoint": f"runs/x/seed-{seed}/checkpoint-{30 + seed}",
        "dev_per_epoch": [{"epoch": e, "dev": 0.70 + 0.05 * e - 0.03 * seed} for e in (1, 2, 3)],
        "train_loss": [
            {
                "step": s,
                "loss": 2 * math.exp(-s / 30) + 0.1 * seed,
                **({"tau": 0.1 * math.exp(-s / 200)} if tau else {}),
            }
            for s in range(10, 101, 10)
        ],
        "dev": {"spearman": 0.8512 - 0.03 * seed, "pearson": 0.8401},
        "test": {"spearman": 0.8123 - 0.03 * seed, "pearson": 0.8004},
    }


def full_metrics(*, tau: bool = False) -> dict[str, Any]:
    seeds = {str(s): seed_result(s, tau=tau) for s in (0, 1)}
    return {
        "config": copy.deepcopy(CONFIG),
        "before": {
            "dev": {"spearman": 0.6001, "pearson": 0.6102},
            "test": {"spearman": 0.5503, "pearson": 0.5604},
        },
        "seeds": seeds,
        "best_seed": 0,
        "after": {"dev": seeds["0"]["dev"], "test": seeds["0"]["test"]},
    }


def make_run(tmp_path: Path, metrics: dict[str, Any], name: str = "run") -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        width, height = img.size
        assert width > 300 and height > 200
        # not a blank canvas: a plot has many distinct colours (lines, text, grid)
        assert len(img.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 10


def table_row(report: str, first_cell: str, section: str) -> list[str]:
    """Cells of the table row starting with ``first_cell`` inside the ``### section`` block."""
    block = report.split(f"### {section}\n", 1)[1].split("\n#", 1)[0]
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in section {section!r}:\n{block}")


def test_finished_run_report(tmp_path: Path) -> None:
    run = make_run(tmp_path, full_metrics())
    path = write_report(run)
    assert path == run / "report.md"
    text = path.read_text()
    assert "Interrupted" not in text
    assert "seed 0 kept" in text
    # before / after / delta, dev and test, all metrics
    assert table_row(text, "spearman", "dev") == ["spearman", "0.6001", "0.8512", "+0.2511"]
    assert table_row(text, "pearson", "dev") == ["pearson", "0.6102", "0.8401", "+0.2299"]
    assert table_row(text, "spearman", "test") == ["spearman", "0.5503", "0.8123", "+0.2620"]
    assert table_row(text, "pearson", "test") == ["pearson", "0.5604", "0.8004", "+0.2400"]
    assert "after (seed 0)" in text
    seeds_block = text.split("## Seeds", 1)[1]
    assert "| 0 | **kept** | 0.8512 | 0.8123 |" in seeds_block
    assert "| 1 |  | 0.8212 | 0.7823 |" in seeds_block
    for name in (LOSS_PLOT, DEV_PLOT):
        assert_png(run / name)
        assert f"]({name})" in text
    assert not (run / TAU_PLOT).exists()  # no tau logged -> no temperature plot
    assert "tau.png" not in text
    assert sorted(p.name for p in run.iterdir()) == sorted(["metrics.json", "report.md", LOSS_PLOT, DEV_PLOT])


def test_tau_plot_only_when_tau_logged(tmp_path: Path) -> None:
    run = make_run(tmp_path, full_metrics(tau=True))
    text = write_report(run).read_text()
    assert_png(run / TAU_PLOT)
    assert f"]({TAU_PLOT})" in text
    # the same run re-reported without tau rows: the old temperature plot must not linger
    metrics = full_metrics(tau=False)
    (run / "metrics.json").write_text(json.dumps(metrics))
    text = write_report(run).read_text()
    assert not (run / TAU_PLOT).exists()
    assert TAU_PLOT not in text


def test_partial_run_report(tmp_path: Path) -> None:
    metrics = full_metrics(tau=True)
    del metrics["after"], metrics["best_seed"], metrics["seeds"]["1"]
    run = make_run(tmp_path, metrics)
    (run / "config.yaml").write_text("data: {task: stsb}\ntrain: {model: tiny, seeds: 2}\n")
    text = write_report(run).read_text()
    assert "Interrupted run" in text
    assert "1 of 2 seed(s) finished" in text
    assert "kept" not in text.split("## Seeds", 1)[1]
    # no model chosen: before next to each finished seed
    assert table_row(text, "spearman", "dev") == ["spearman", "0.6001", "0.8512"]
    assert table_row(text, "pearson", "test") == ["pearson", "0.5604", "0.8004"]
    for name in (LOSS_PLOT, TAU_PLOT, DEV_PLOT):
        assert_png(run / name)


def test_partial_run_with_unfinished_seed_checkpoint(tmp_path: Path) -> None:
    metrics = full_metrics()
    del metrics["after"], metrics["best_seed"], metrics["seeds"]["1"]
    run = make_run(tmp_path, metrics)
    ckpt = run / "seed-1" / "checkpoint-40"
    ckpt.mkdir(parents=True)
    history = [{"step": s, "epoch": s / 20, "loss": 1.5 - s / 100} for s in (10, 20, 30, 40)]
    history.append({"step": 20, "epoch": 1.0, "eval_stsb_dev_spearman": 0.7345})
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 40, "log_history": history}))
    text = write_report(run).read_text()
    assert "Seed 1 started but did not finish" in text
    assert "step 40" in text
    assert_png(run / LOSS_PLOT)


def test_run_without_finished_seeds(tmp_path: Path) -> None:
    metrics = {"config": copy.deepcopy(CONFIG), "before": full_metrics()["before"], "seeds": {}}
    run = make_run(tmp_path, metrics)
    text = write_report(run).read_text()
    assert "Interrupted run" in text and "0 of 2 seed(s)" in text
    assert "No seed has finished yet." in text
    assert "No training curves recorded yet." in text
    assert table_row(text, "spearman", "dev") == ["spearman", "0.6001"]
    assert not any(run.glob("*.png"))


def test_missing_and_malformed_metrics(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        write_report(run)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        write_report(tmp_path / "nowhere")
    (run / "metrics.json").write_text('{"config": {},\n "seeds": {,}}')
    with pytest.raises(ValueError, match=r"metrics\.json: line 2: invalid JSON"):
        write_report(run)


def test_format_table() -> None:
    rows = [{"name": "a|b", "x": 0.123456, "n": 3}, {"name": "c", "x": float("nan")}]
    table = format_table(rows, ["name", "x", "n"], headers=["model", "score", "count"])
    assert table.splitlines() == [
        "| model | score | count |",
        "|---|---:|---:|",
        "| a\\|b | 0.1235 | 3 |",
        "| c | – | – |",
    ]
    with pytest.raises(ValueError):
        format_table(rows, ["name"], headers=["a", "b"])


def test_atomic_open_keeps_old_content_on_error(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temp file left behind
