"""Own data: parquet / Arrow / datasets folders for the generic task, the ignored-columns warning,
``bscl eval --task generic``."""

from __future__ import annotations

import json
import logging

import pytest
from datasets import Dataset, DatasetDict

from bscl.cli import main
from bscl.data import load_task
from bscl.data.errors import DataError

ROWS = {
    "sentence1": ["a cat sits", "dogs bark", "it rains", "the sun", "a car", "kids play"],
    "sentence2": ["a cat is sitting", "a dog barks", "cars", "sunny", "an auto", "children play"],
    "score": [5.0, 4.0, 0.0, 3.5, 4.5, 5.0],
    "source": ["x"] * 6,
}


@pytest.fixture
def table() -> Dataset:
    return Dataset.from_dict(ROWS)


@pytest.mark.parametrize("kind", ["parquet", "arrow", "saved folder"])
def test_generic_task_reads_datasets_formats(tmp_path, table, kind):
    if kind == "parquet":
        path = tmp_path / "train.parquet"
        table.to_parquet(str(path))
    elif kind == "arrow":
        table.save_to_disk(str(tmp_path / "saved"))
        path = next((tmp_path / "saved").glob("*.arrow"))
    else:
        path = tmp_path / "saved"
        table.save_to_disk(str(path))
    task = load_task("generic", train=path, dev=path, score_range=(0.0, 5.0))
    assert task.train["label"] == pytest.approx([y / 5 for y in ROWS["score"]])
    assert task.metric == "spearman"


def test_a_folder_with_several_splits_names_them(tmp_path, table):
    DatasetDict({"train": table, "test": table}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match=r"dd.*holds the splits \['train', 'test'\]"):
        load_task("generic", train=tmp_path / "dd")


def test_ignored_columns_are_named_in_a_warning(tmp_path, table, caplog):
    path = tmp_path / "t.parquet"
    table.to_parquet(str(path))
    with caplog.at_level(logging.WARNING, logger="bscl.data"):
        load_task("generic", train=path, dev=path, score_range=(0.0, 5.0))
    assert "ignoring ['source']" in caplog.text


def test_bscl_eval_on_generic_data(tmp_path, table):
    path = tmp_path / "pairs.parquet"
    table.to_parquet(str(path))
    out = tmp_path / "eval.json"
    argv = ["eval", "--task=generic", f"--file={path}", "--label-max=5", "--model=tiny", f"--output={out}"]
    assert main([*argv, "--device=cpu"]) == 0
    result = json.loads(out.read_text())
    assert result["primary"] == "spearman" and result["n"] == 6 and "spearman" in result["metrics"]
    assert main(["eval", "--task=generic", "--model=tiny"]) == 2  # --file missing: a clear error
