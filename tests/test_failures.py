"""Nothing silently wrong: every probe case of a careless user, one test each.

- a run whose result is wrong (a collapsed encoder, a model worse than its start) is never saved as
  the answer, and its ``report.md`` says "failed: REASON" where re-running cannot finish it;
- every option is checked by its owner before a model loads, naming the option and its range;
- an undefined metric (constant labels, one row) is found from the data, before training;
- failures of the machine (disk full, an undeletable file) and of model folders (half-written,
  foreign) are one line naming the path and what to do, exit 1 (the machine) or 2 (the input), and
  a traceback only with ``--debug``;
- ``bscl eval`` never replaces another model's result, and the messages say what was done.

A full disk is simulated (``ENOSPC`` / torch's zip-writer error raised by the write), since mounting
a small file system needs privileges a test run does not have.
"""

from __future__ import annotations

import ast
import csv
import errno
import json
from pathlib import Path
from typing import Any

import pytest

import bscl.run as run_module
from bscl.cli import main
from bscl.models import load_model
from bscl.reporting import runfolder as RF
from bscl.training.config import from_dict
from bscl.training.trainer import NonFiniteError

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"
SRC = Path(__file__).parents[1] / "src" / "bscl"
#: a batch of 4 (with a recipe's kNN groups made to fit it)
SMALL_BATCH = ["--train.batch_size", "4", "--batching.group_size", "4"]
#: the fixture STSb with the tiny model (its recipe's kNN groups of 8 made to fit the batch of 4)
TRAIN = ["train", "--data.data_root", str(FIXTURES), "--train.model", "tiny", "--batching.group_size", "4",
         "--train.batch_size", "4"]  # fmt: skip


def config(out: Path, **sections: dict) -> Any:
    base: dict[str, dict[str, Any]] = {
        "data": {"task": "stsb", "data_root": str(FIXTURES)},
        "train": {"model": "tiny", "output_dir": str(out), "epochs": 1, "batch_size": 4, "logging_steps": 1},
        "eval": {"batch_size": 8},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return from_dict(base)


def write_pairs(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence1", "sentence2", "score"])
        writer.writerows(rows)
    return path


def graded_pairs(n: int, offset: int = 0) -> list[tuple[str, str, float]]:
    return [(f"a cat number {i + offset}", f"the dog {i * 7 + offset}", i / n) for i in range(n)]


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any model is loaded (the checks must come first)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was loaded before the bad input was reported")

    monkeypatch.setattr(run_module, "load_model", refuse)
    monkeypatch.setattr("bscl.models.load_model", refuse)


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``train_seed`` replaced by a seed that "trained" to the dev / test values in the returned dict
    (its best-model is the start model saved again): the run's decisions after training, in
    milliseconds."""
    outcome: dict[str, Any] = {"dev": -0.5, "test": -0.4, "raise": None, "calls": 0}

    def train_seed(
        cfg: Any, task: Any, seed: int, out: Path, metrics: Any, metrics_path: Path
    ) -> dict[str, Any]:
        outcome["calls"] += 1
        if outcome["raise"] is not None:
            raise outcome["raise"]
        load_model("tiny").save(str(out / RF.BEST_MODEL))
        return {
            "seed": seed,
            "train_seconds": 0.0,
            "dev": {task.metric: outcome["dev"]},
            "test": {task.metric: outcome["test"]},
        }

    monkeypatch.setattr(run_module, "train_seed", train_seed)
    return outcome


# --------------------------------------------------------------------------------------------------
# a wrong result is never the answer
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_collapsed_encoder_stops_the_run_naming_the_learning_rate(tmp_path, capsys):
    # before: learning rate 10 gave identical embeddings for every text, exit 0, saved as model/
    train = write_pairs(tmp_path / "pairs.csv", graded_pairs(40))
    out = tmp_path / "run"
    code = main(["train", "--data.task", "generic", "--data.train_file", str(train), "--train.model", "tiny",
                 "--train.learning_rate", "10", "--train.batch_size", "8", "--train.output_dir", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "the encoder has collapsed" in err and "--train.learning_rate (10)" in err
    assert "Traceback" not in err
    assert not (out / "model").exists() and not (out / "seed-0" / "best-model").exists()
    assert RF.failure(RF.load_metrics(out)).startswith("seed 0: the encoder has collapsed")
    assert "**Status:** failed: seed 0: the encoder has collapsed" in (out / "report.md").read_text()


def test_a_model_worse_than_its_start_fails_and_is_not_saved(tmp_path, fake_training, capsys):
    # before: the start was never a candidate; a run that got worse exited 0 with its model saved
    out = tmp_path / "run"
    code = main([*TRAIN, "--train.output_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "training made the model worse: dev spearman -0.5000 after training" in err
    assert "--train.if_worse warn" in err
    metrics = RF.load_metrics(out)
    assert metrics["versus_start"]["worse"] is True and metrics["versus_start"]["trained"] == -0.5
    assert "after" not in metrics and not (out / "model").exists()
    assert "**Status:** failed: training made the model worse" in (out / "report.md").read_text()


def test_if_worse_warn_keeps_the_worse_model_without_training_again(tmp_path, fake_training, caplog):
    out = tmp_path / "run"
    assert main([*TRAIN, "--train.output_dir", str(out)]) == 2
    code = main([*TRAIN, "--train.output_dir", str(out), "--train.if_worse", "warn"])
    assert code == 0 and fake_training["calls"] == 1  # the finished seed is read back
    assert "training made the model worse" in caplog.text
    metrics = RF.load_metrics(out)
    assert "failed" not in metrics and metrics["versus_start"]["worse"] is True
    assert (out / "model" / "modules.json").is_file()
    report = (out / "report.md").read_text()
    assert "**Status:** finished" in report and "**Worse than the start:**" in report


def test_a_model_better_than_its_start_is_saved_without_a_warning(tmp_path, fake_training, caplog):
    fake_training.update(dev=0.99, test=0.98)
    out = tmp_path / "run"
    assert main([*TRAIN, "--train.output_dir", str(out)]) == 0
    assert RF.load_metrics(out)["versus_start"]["worse"] is False
    assert "worse" not in caplog.text and (out / "model").is_dir()


def test_a_nan_stop_leaves_a_report_that_says_failed_not_resume(tmp_path, fake_training, capsys):
    # before: report.md said "Interrupted run ... re-run the same command to resume", which fails again
    fake_training["raise"] = NonFiniteError("training step 3 (epoch 0.50): the training loss is nan")
    out = tmp_path / "run"
    assert main([*TRAIN, "--train.output_dir", str(out)]) == 2
    report = (out / "report.md").read_text()
    assert "**Status:** failed: training step 3" in report and "Interrupted" not in report


# --------------------------------------------------------------------------------------------------
# every option checked by its owner before a model loads
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--train.learning_rate", "-0.001"], "--train.learning_rate must be > 0 and finite"),
        (["--train.warmup_ratio", "5"], "--train.warmup_ratio must be in [0, 1]"),
        (["--train.weight_decay", "-1"], "--train.weight_decay must be >= 0"),
        (["--train.max_seq_length", "0"], "--train.max_seq_length must be >= 1"),
        (["--train.max_seq_length", "1000"], "--train.max_seq_length 1000 is larger than model tiny's position limit (128"),
        (["--loss.tau_learning_rate", "-1"], "--loss.tau_learning_rate must be > 0 and finite"),
        (["--loss.tau", "inf"], "--loss.tau must be > 0 and finite (got inf)"),
        (["--loss.tau", "nan"], "--loss.tau must be > 0 and finite (got nan)"),
        (["--loss.tau", "-inf"], "--loss.tau must be > 0 and finite (got -inf)"),
        (["--batching.group_size", "8"], "--batching.group_size=8 is larger than --train.batch_size=4"),
        (["--batching.strategy", "random", "--batching.reuse_embeddings", "true"], "--batching.reuse_embeddings applies to"),
        (["--eval.batch_size", "0"], "--eval.batch_size must be >= 1"),
    ],
)  # fmt: skip
def test_bad_options_fail_before_a_model_loads_naming_option_and_range(
    tmp_path, capsys, no_model_load, options, message
):
    # before: accepted silently, or failed inside torch after the model was loaded and evaluated
    out = tmp_path / "run"
    code = main([*TRAIN, "--train.output_dir", str(out), *options])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Expected a" not in err
    assert not out.exists()


# --------------------------------------------------------------------------------------------------
# undefined metrics, found from the data
# --------------------------------------------------------------------------------------------------
def test_constant_dev_labels_are_refused_before_training(tmp_path, capsys, no_model_load):
    # before: a whole run trained, then blamed the learning rate ("every trained model is broken")
    train = write_pairs(tmp_path / "pairs.csv", graded_pairs(20))
    dev = write_pairs(tmp_path / "dev.csv", [(a, b, 0.5) for a, b, _ in graded_pairs(6, 100)])
    out = tmp_path / "run"
    code = main(["train", "--data.task", "generic", "--data.train_file", str(train), "--data.dev_file", str(dev),
                 "--train.model", "tiny", *SMALL_BATCH, "--train.output_dir", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"generic dev ({dev}): all 6 labels are 0.5: Spearman and Pearson correlations are undefined" in err
    )
    assert "--data.dev_file" in err and not out.exists()


def test_a_one_row_test_file_is_refused_before_training(tmp_path, capsys, no_model_load):
    train = write_pairs(tmp_path / "pairs.csv", graded_pairs(20))
    test = write_pairs(tmp_path / "test.csv", graded_pairs(1, 100))
    code = main(["train", "--data.task", "generic", "--data.train_file", str(train), "--data.test_file", str(test),
                 "--train.model", "tiny", *SMALL_BATCH, "--train.output_dir", str(tmp_path / "r")])  # fmt: skip
    assert code == 2
    assert f"generic test ({test}): 1 pair: a metric over pairs needs at least 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "rows", [[("a b", "c d", 0.5), ("e f", "g h", 0.5), ("i j", "k l", 0.5)], [("a b", "c d", 0.5)]]
)
def test_eval_on_an_undefined_metric_exits_2_without_a_result(tmp_path, capsys, no_model_load, rows):
    # before: all-equal labels exited 0 with NaN metrics and a SciPy warning; one row printed SciPy's message
    data = write_pairs(tmp_path / "pairs.csv", rows)
    output = tmp_path / "out.json"
    code = main(["eval", "--task", "generic", "--file", str(data), "--label-type", "score", "--model", "tiny",
                 "--output", str(output)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and str(data) in err and ("labels are 0.5" in err or "1 pair" in err)
    assert not output.exists()


# --------------------------------------------------------------------------------------------------
# failures that speak
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1152 vs 1046"),
    ],
)
def test_disk_full_in_a_checkpoint_is_one_line_exit_1_and_resumable(tmp_path, capsys, monkeypatch, error):
    # before: a raw traceback from the checkpoint save
    from sentence_transformers import SentenceTransformerTrainer

    def full(self: Any, *args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(SentenceTransformerTrainer, "_save_checkpoint", full)
    out = tmp_path / "run"
    code = main([*TRAIN, "--train.output_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    line = err[err.index("bscl train: error:") :]  # the progress bar's last frame may precede it
    assert line.startswith(
        f"bscl train: error: no space left on the device of {out / 'seed-0' / 'checkpoint-'}"
    )
    assert "re-run the same command" in line and line.count("\n") == 1 and "Traceback" not in err
    assert "Interrupted run" in (out / "report.md").read_text()  # resumable: not "failed"


def test_disk_full_while_saving_the_model_is_one_line_exit_1(tmp_path, capsys, fake_training):
    out = tmp_path / "run"
    # the seed's chosen model is written into the run folder (model/ is then a rename of it)
    fake_training["raise"] = OSError(
        errno.ENOSPC, "No space left on device", str(out / "seed-0" / RF.BEST_MODEL)
    )
    assert main([*TRAIN, "--train.output_dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"no space left on the device of {out}: free some space, then re-run the same command" in err
    assert "Traceback" not in err


def test_an_undeletable_file_under_overwrite_names_it_exit_1(tmp_path, capsys, monkeypatch, fake_training):
    # before: a raw PermissionError traceback from shutil.rmtree
    fake_training.update(dev=0.99)
    out = tmp_path / "run"
    assert main([*TRAIN, "--train.output_dir", str(out)]) == 0

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(Path(path) / "model.safetensors"))

    monkeypatch.setattr(RF.shutil, "rmtree", refuse)
    code = main([*TRAIN, "--train.output_dir", str(out), "--train.overwrite", "true"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"--train.overwrite: cannot delete {out}" in err and "model.safetensors (Permission denied)" in err
    assert "Traceback" not in err


@pytest.fixture
def half_written(tmp_path: Path) -> Path:
    folder = tmp_path / "runs" / "a" / "model"
    load_model("tiny").save(str(folder))
    (folder / "model.safetensors").unlink()  # killed while saving
    return folder


@pytest.mark.parametrize("command", ["encode", "rank", "eval", "train"])
def test_a_half_written_model_folder_is_one_line_exit_2(tmp_path, capsys, half_written, command):
    # before: a raw transformers traceback for encode / rank
    texts = tmp_path / "texts.txt"
    texts.write_text("a cat\na dog\n")
    argv = {
        "encode": ["encode", "--input", str(texts), "--output", str(tmp_path / "e.npy")],
        "rank": [
            "rank",
            "--queries",
            str(texts),
            "--pool",
            str(texts),
            "--output",
            str(tmp_path / "r.jsonl"),
        ],
        "eval": [
            "eval",
            "--task",
            "stsb",
            "--data-root",
            str(FIXTURES),
            "--output",
            str(tmp_path / "e.json"),
        ],
        "train": [*TRAIN[:3], *TRAIN[5:], "--train.output_dir", str(tmp_path / "run")],
    }[command]
    code = main([*argv, "--model" if command != "train" else "--train.model", str(half_written)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{half_written}: no weights file in {half_written}" in err and "half-written" in err
    assert "Traceback" not in err


def test_a_foreign_model_folder_is_one_line_exit_2(tmp_path, capsys):
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "config.json").write_text('{"hello": 1}')
    (folder / "model.safetensors").write_bytes(b"not weights")
    texts = tmp_path / "texts.txt"
    texts.write_text("a cat\n")
    code = main(
        ["encode", "--model", str(folder), "--input", str(texts), "--output", str(tmp_path / "e.npy")]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"{folder}: cannot load the model" in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="--train.learning_rate must be > 0"):
        main([*TRAIN, "--train.output_dir", str(tmp_path / "run"), "--train.learning_rate", "-1", "--debug"])


# --------------------------------------------------------------------------------------------------
# no silent overwrite, no small untruths
# --------------------------------------------------------------------------------------------------
def test_eval_default_outputs_differ_per_run_folder(tmp_path, capsys, monkeypatch):
    # before: runs/eval/stsb-model-test.json for every run's model/: the second eval replaced the first
    monkeypatch.chdir(tmp_path)
    for run in ("a", "b"):
        load_model("tiny").save(str(tmp_path / "runs" / run / "model"))
        assert (
            main(["eval", "--task", "stsb", "--data-root", str(FIXTURES), "--model", f"runs/{run}/model"])
            == 0
        )
    written = sorted(p.name for p in (tmp_path / "runs" / "eval").iterdir())
    assert written == ["stsb-a-test.json", "stsb-b-test.json"]


def test_eval_refuses_to_replace_another_models_result(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for parent in ("x", "y"):  # two run folders of one name
        load_model("tiny").save(str(tmp_path / parent / "a" / "model"))
    assert main(["eval", "--task", "stsb", "--data-root", str(FIXTURES), "--model", "x/a/model"]) == 0
    result = tmp_path / "runs" / "eval" / "stsb-a-test.json"
    before = result.read_text()
    code = main(["eval", "--task", "stsb", "--data-root", str(FIXTURES), "--model", "y/a/model"])
    err = capsys.readouterr().err
    assert code == 2 and "holds the result of another model" in err and "pass --output FILE" in err
    assert result.read_text() == before
    assert json.loads(result.read_text())["model_path"] == str((tmp_path / "x" / "a" / "model").resolve())
    assert (
        main(["eval", "--task", "stsb", "--data-root", str(FIXTURES), "--model", "x/a/model"]) == 0
    )  # same model


def test_train_subset_message_counts_the_pairs_trained_on(tmp_path, capsys, fake_training):
    # before: "task stsb: 8 training pairs" with --data.train_subset 4
    fake_training.update(dev=0.99)
    main([*TRAIN, "--train.output_dir", str(tmp_path / "run"), "--data.train_subset", "4"])
    assert "task stsb: 4 of 8 training pairs (--data.train_subset 4)" in capsys.readouterr().out


def test_rank_says_how_many_pool_texts_it_wrote(tmp_path, capsys):
    # before: "wrote the top 10 pool texts" for a pool of 2
    texts = tmp_path / "pool.txt"
    texts.write_text("a cat\na dog\n")
    out = tmp_path / "r.jsonl"
    assert (
        main(["rank", "--model", "tiny", "--queries", str(texts), "--pool", str(texts), "--output", str(out)])
        == 0
    )
    assert "wrote the 2 (the whole pool; --top-k 10) pool texts for 2 queries" in capsys.readouterr().err


def test_no_posix_only_module_is_imported_at_the_top_level_of_the_library():
    # the run folder's lock was `import fcntl` (POSIX only): the package did not import on Windows
    posix_only = {"fcntl", "termios", "pwd", "grp", "resource", "posix", "tty", "pty", "crypt"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            found += [f"{path.relative_to(SRC)}: {n}" for n in names if n in posix_only]
    assert found == []


def test_the_lock_is_held_through_filelock(tmp_path):
    with RF.locked(tmp_path):
        assert (tmp_path / RF.LOCK_HOLDER).read_text().strip().isdigit()
        held = pytest.raises(RF.RunFolderError, match="is in use by another `bscl train` \\(pid \\d+\\)")
        with held, RF.locked(tmp_path):
            pass
    assert not (tmp_path / RF.LOCK_HOLDER).exists()
