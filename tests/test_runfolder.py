"""The training guard, the run folder and its clear errors: nothing lost, nothing silently wrong.
Each test names the failure it guards against in a comment."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from bscl.cli import main
from bscl.reporting import runfolder as RF
from bscl.run import run_training
from bscl.training.config import RunConfig, from_dict

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


def config(out: Path, **sections: dict) -> RunConfig:
    base = {
        "data": {"task": "stsb", "data_root": str(FIXTURES)},
        "train": {"model": "tiny", "output_dir": str(out), "epochs": 1, "batch_size": 4, "logging_steps": 1},
        "eval": {"batch_size": 8, "before": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return from_dict(base)


def write_csv(
    path: Path, rows: list[tuple[str, str, float]], header: str = "sentence1,sentence2,score"
) -> Path:
    path.write_text(header + "\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows))
    return path


WORDS = [
    "red",
    "blue",
    "green",
    "cat",
    "dog",
    "bird",
    "runs",
    "sleeps",
    "eats",
    "small",
    "big",
    "old",
    "new",
    "fast",
]


def pairs(n: int) -> list[tuple[str, str, float]]:
    return [
        (f"{WORDS[i % 14]} {WORDS[(3 * i) % 14]} {i}", f"{WORDS[(5 * i) % 14]} {i}", (i % 5) / 4)
        for i in range(n)
    ]


# --------------------------------------------------------------------------------------------------
# part 1: the non-finite guard and the best seed
# --------------------------------------------------------------------------------------------------
class NaNAt(torch.nn.Module):
    """An embedding loss (mean cosine) that returns NaN at its ``k``-th call, or a finite value with a
    NaN gradient (sqrt at 0) when ``grad_only``."""

    requires_labels = False
    uses_ids = False

    def __init__(self, k: int, grad_only: bool = False):
        super().__init__()
        self.k, self.grad_only, self.calls = k, grad_only, 0

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None):
        self.calls += 1
        loss = 1 - torch.nn.functional.cosine_similarity(q, a).mean()
        if self.calls == self.k:
            if self.grad_only:
                return loss + torch.sqrt(((q - q.detach()) ** 2).sum())  # value + 0, gradient NaN
            return loss * float("nan")
        return loss


def _trainer(tmp_path: Path, inner: torch.nn.Module):
    from sentence_transformers import SentenceTransformerTrainingArguments

    from bscl.losses import STLoss
    from bscl.models import load_model
    from bscl.training import BSCLTrainer

    model = load_model("tiny", seed=0)
    data = Dataset.from_dict(
        {"anchor": [a for a, _, _ in pairs(16)], "positive": [b for _, b, _ in pairs(16)]}
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=4,
        save_strategy="steps", save_steps=1, eval_strategy="no", report_to="none", disable_tqdm=True,
        logging_steps=1,
    )  # fmt: skip
    return BSCLTrainer(model=model, args=args, train_dataset=data, loss=STLoss(model, inner))


@pytest.mark.parametrize(
    ("grad_only", "what"), [(False, "training loss is nan"), (True, "gradient norm is nan")]
)
def test_non_finite_loss_or_gradient_stops_training_naming_step_and_batch(tmp_path, grad_only, what):
    # before: HF's logging_nan_inf_filter hid a NaN loss and a NaN gradient was applied: exit 0, NaN model
    from bscl.training.trainer import COMPLETE_FILE, NonFiniteError

    trainer = _trainer(tmp_path, NaNAt(3, grad_only=grad_only))
    with pytest.raises(
        NonFiniteError, match=rf"training step 3 \(epoch .*\): the {what}.*batch starting with \["
    ):
        trainer.train()
    assert isinstance(NonFiniteError("x"), ValueError)  # the CLI prints it in one line, exit 2
    saved = sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*") if (p / COMPLETE_FILE).is_file())
    assert saved == ["checkpoint-1", "checkpoint-2"]  # the NaN step wrote nothing
    for p in trainer.model.parameters():
        assert torch.isfinite(p).all()


def test_best_seed_never_picks_a_nan_seed():
    # before: max(seeds, key=dev) with NaN first: NaN > x and x > NaN are both False, the NaN seed won
    seeds = {
        "0": {"dev": {"spearman": float("nan")}},
        "1": {"dev": {"spearman": 0.2}},
        "2": {"dev": {"spearman": None}},
    }
    assert RF.best_seed(seeds, "spearman") == "1"
    with pytest.raises(ValueError, match=r"no seed has a finite dev spearman"):
        RF.best_seed({"0": {"dev": {"spearman": float("nan")}}, "1": {"dev": {}}}, "spearman")


# --------------------------------------------------------------------------------------------------
# part 2: the run folder
# --------------------------------------------------------------------------------------------------
def test_metrics_json_is_strict_json(tmp_path):
    # before: json.dumps wrote bare NaN (not JSON: jq / JavaScript reject the file)
    RF.write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -math.inf}})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {
        "a": None, "b": [1.0, None], "c": {"d": None}
    }  # fmt: skip


def test_second_holder_of_the_lock_fails_naming_folder_and_pid(tmp_path):
    # before: two `bscl train` into one folder mixed config.yaml, metrics.json and model/, both exit 0
    with RF.locked(tmp_path):
        held = rf"{tmp_path} is in use by another `bscl train` \(pid {os.getpid()}\)"
        with pytest.raises(RF.RunFolderError, match=held), RF.locked(tmp_path):
            pass
        code = (
            "import sys; from bscl.reporting import runfolder as RF\n"
            "try:\n    RF.locked(sys.argv[1]).__enter__()\nexcept RF.RunFolderError as e:\n    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 3 and f"pid {os.getpid()}" in proc.stdout
    with RF.locked(tmp_path):  # released on exit
        pass


def test_concurrent_train_into_one_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with RF.locked(out):  # another `bscl train` holds the folder
        code = main(["train", "--data.data_root", str(FIXTURES), "--train.model", "tiny",
                     "--train.output_dir", str(out), "--train.batch_size", "4", "--batching.group_size", "4"])  # fmt: skip
    assert code == 2
    assert f"{out} is in use by another `bscl train` (pid {os.getpid()})" in capsys.readouterr().err
    assert not (out / "config.yaml").exists()


def test_config_diff_names_options_and_ignores_harmless_differences():
    # before: "holds a run with another configuration", naming nothing; ./runs/x vs runs/x/ refused
    old = RunConfig().to_dict()
    new = json.loads(json.dumps(old))
    new["train"]["output_dir"] = "./" + old["train"]["output_dir"] + "/"
    new["train"]["logging_steps"] = 1
    new["eval"]["batch_size"] = 7
    new["train"]["resume"] = False
    new["train"]["seeds"] = 3
    assert RF.config_diff(old, new) == []
    assert RF.config_diff(old, new, more_seeds=False) == ["train.seeds: 1 -> 3"]
    new["loss"]["tau"] = 0.2
    new["train"]["epochs"] = 2.0
    assert RF.config_diff(old, new) == ["loss.tau: 0.1 -> 0.2", "train.epochs: 1.0 -> 2.0"]
    fewer = json.loads(json.dumps(old))
    fewer["train"]["seeds"] = 0
    assert RF.config_diff(old, fewer) == ["train.seeds: 1 -> 0"]


def test_guard_lists_differences_allows_more_seeds_and_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    first = run_training(config(out))
    with pytest.raises(
        ValueError, match=r"another configuration \(loss\.tau: 0\.1 -> 0\.2\).*--train\.overwrite true"
    ):
        run_training(config(out, loss={"tau": 0.2}))
    capsys.readouterr()
    # harmless: another spelling of the folder, another logging / eval batch size; two seeds
    more = run_training(
        config(Path(str(out) + "/"), train={"seeds": 2, "logging_steps": 2}, eval={"batch_size": 4})
    )
    assert "seed 0: already finished" in capsys.readouterr().out
    assert set(more["seeds"]) == {"0", "1"} and more["seeds"]["0"] == first["seeds"]["0"]
    again = run_training(config(out, loss={"tau": 0.2}, train={"overwrite": True}))
    assert set(again["seeds"]) == {"0"} and again["config"]["loss"]["tau"] == 0.2
    assert not (out / "seed-1").exists()  # the previous run was deleted


def test_resume_after_the_data_changed_is_refused_naming_the_file(tmp_path):
    # before: the re-run continued on the new rows without a word
    train = write_csv(tmp_path / "train.csv", pairs(24))
    dev = write_csv(tmp_path / "dev.csv", pairs(30)[24:])

    def cfg(**kw):
        return config(
            tmp_path / "run", data={"task": "generic", "train_file": str(train), "dev_file": str(dev), **kw}
        )

    metrics = run_training(cfg())
    assert set(metrics["data"]["files"]) == {str(train.resolve()), str(dev.resolve())}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["data"] == metrics["data"]
    moved = {str(tmp_path / "elsewhere" / Path(k).name): v for k, v in metrics["data"]["files"].items()}
    RF.check_fingerprint(tmp_path, metrics["data"]["files"], moved)  # same contents elsewhere: fine
    write_csv(train, pairs(23) + [("a changed row", "another text", 0.5)])
    with pytest.raises(ValueError, match=rf"trained on other data: {train.resolve()} changed"):
        run_training(cfg())


def test_resume_of_a_run_on_another_split_of_the_data_is_refused(tmp_path):
    # a loader that splits its files otherwise (TaskSpec.split_version) makes other dev / test sets
    train = write_csv(tmp_path / "train.csv", pairs(24))
    dev = write_csv(tmp_path / "dev.csv", pairs(30)[24:])
    cfg = config(tmp_path / "run", data={"task": "generic", "train_file": str(train), "dev_file": str(dev)})
    assert run_training(cfg)["data"]["split"] == 1
    path = tmp_path / "run" / "metrics.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "data": {**stored["data"], "split": 2}}))
    with pytest.raises(ValueError, match="on split 2 of generic's data; the loader now makes split 1"):
        run_training(cfg)
    assert RF.stored_split({"files": {}}) == 1 and RF.split_of("pfcc") == 2 and RF.split_of("mine") == 1


def test_resume_of_a_run_from_before_data_fingerprints_counts_as_split_1(tmp_path, monkeypatch):
    # before: a metrics.json without a data section (written before fingerprints and split versions,
    # so on split 1) was resumed, unchecked, by a loader that now makes split 2
    train = write_csv(tmp_path / "train.csv", pairs(24))
    dev = write_csv(tmp_path / "dev.csv", pairs(30)[24:])

    def cfg(out):
        return config(out, data={"task": "generic", "train_file": str(train), "dev_file": str(dev)})

    run_training(cfg(tmp_path / "run"))
    path = tmp_path / "run" / "metrics.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in stored.items() if k != "data"}))
    monkeypatch.setattr(RF, "split_of", lambda task: 2)
    with pytest.raises(ValueError, match="on split 1 of generic's data; the loader now makes split 2"):
        run_training(cfg(tmp_path / "run"))
    assert run_training(cfg(tmp_path / "new"))["data"]["split"] == 2  # a new folder starts on split 2


def test_config_yaml_is_not_written_when_the_data_fail_to_load(tmp_path):
    # before: config.yaml (and the folder) were written before the data loaded
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence1,sentence2,score\na,b,0.5\nc,d\n")
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="bad.csv"):
        run_training(config(out, data={"task": "generic", "train_file": str(bad)}))
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="bad.csv"):
        run_training(config(out, data={"task": "generic", "train_file": str(bad)}))
    assert sorted(p.name for p in out.iterdir()) == [".lock", "keep.txt"]


def test_model_is_replaced_without_a_window_without_model(tmp_path, monkeypatch):
    # before: rmtree(model) then rename: a kill between them left no model at all
    old, new = tmp_path / "model", tmp_path / "new"
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        (folder / "w.txt").write_text(text)
    real = os.replace
    calls = []

    def kill_on_second(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between the two renames
        real(src, dst)

    monkeypatch.setattr(RF.os, "replace", kill_on_second)
    with pytest.raises(KeyboardInterrupt):
        RF.replace_model(tmp_path, new)
    monkeypatch.setattr(RF.os, "replace", real)
    assert calls == [("model", ".model.trash"), ("new", "model")]
    RF.recover_model(tmp_path)  # what the next run does first
    assert (old / "w.txt").read_text() == "old" and (new / "w.txt").read_text() == "new"
    RF.replace_model(tmp_path, new)  # moved, not copied: the run folder holds the model once
    assert (old / "w.txt").read_text() == "new" and not new.exists()
    assert not (tmp_path / ".model.trash").exists()


def test_only_complete_checkpoints_are_resumed(tmp_path):
    from bscl.training.trainer import COMPLETE_FILE

    for step, complete in ((5, True), (10, True), (15, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
        if complete:
            (folder / COMPLETE_FILE).write_text("")
    assert RF.last_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert [p.name for p in RF.checkpoints(tmp_path, complete=False)][-1] == "checkpoint-15"
    RF.remove_incomplete_after(tmp_path, 10)
    assert not (tmp_path / "checkpoint-15").exists()


def test_embedding_cache_state_round_trip():
    import numpy as np

    from bscl.batching.cache import EmbeddingCache

    cache = EmbeddingCache(6, element="both")
    cache.start_epoch(2)
    cache.push([0, 3])
    cache(torch.ones(2, 4), torch.arange(8.0).reshape(2, 4))
    back = EmbeddingCache(6)
    back.load_state_dict({k: np.asarray(v) for k, v in cache.state_dict().items()})
    for e in (0, 1):
        got, seen = back.lookup(e)
        want, want_seen = cache.lookup(e)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(seen, want_seen)
    assert back.element == "both" and back.epoch == 2
    with pytest.raises(ValueError, match="holds 6 examples, the training data has 5"):
        EmbeddingCache(5).load_state_dict(cache.state_dict())


# --------------------------------------------------------------------------------------------------
# part 4: clear errors
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def read_only(tmp_path):
    """A folder nobody (root included) can write in: chattr +i where possible, else chmod."""
    folder = tmp_path / "ro"
    folder.mkdir()
    immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if not immutable:
        if os.geteuid() == 0:
            pytest.skip("root without chattr: no read-only folder")
        folder.chmod(0o555)
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_read_only_output_fails_before_any_work(read_only, tmp_path, capsys, monkeypatch):
    # before: PermissionError traceback; encode / rank only after all the encoding
    import bscl.models

    monkeypatch.setattr(bscl.models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    texts = tmp_path / "t.txt"
    texts.write_text("a cat\na dog\n")
    runs = [
        ["train", "--data.data_root", str(FIXTURES), "--train.model", "tiny", "--train.output_dir", str(read_only / "run")],
        ["encode", "--model", "tiny", "--input", str(texts), "--output", str(read_only / "e.npy")],
        ["rank", "--model", "tiny", "--queries", str(texts), "--pool", str(texts), "--output", str(read_only / "r.jsonl")],
        ["eval", "--task", "stsb", "--model", "tiny", "--data-root", str(FIXTURES), "--output", str(read_only / "e.json")],
    ]  # fmt: skip
    for argv in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"cannot write in {read_only}" in err and "Traceback" not in err, err


def test_small_generic_file_without_dev_file_names_the_file(tmp_path):
    # before: scipy's "`x` and `y` must have the same length" (14 rows: one dev row), naming nothing
    train = write_csv(tmp_path / "small.csv", pairs(14))
    with pytest.raises(
        ValueError, match=rf"{train}: 14 rows are too few to split off a dev set.*--data\.dev_file"
    ):
        run_training(config(tmp_path / "run", data={"task": "generic", "train_file": str(train)}))


def test_generic_file_with_one_first_text_names_the_file(tmp_path):
    # before: everything went to dev, then "--train.batch_size=4 is larger than the training data (0 pairs)"
    train = write_csv(tmp_path / "one.csv", [("same question", f"answer {i}", 0.5) for i in range(30)])
    with pytest.raises(ValueError, match=rf"{train}: all 30 rows share one first text .*--data\.dev_file"):
        run_training(config(tmp_path / "run", data={"task": "generic", "train_file": str(train)}))


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_duplicated_header_name_is_an_error(tmp_path, suffix):
    # before: the row dict kept the last of the two columns silently
    from bscl.data import DataError, load_task

    path = tmp_path / f"dup{suffix}"
    if suffix == ".jsonl":
        path.write_text('{"sentence1": "a", "sentence2": "b", "sentence2": "c", "score": 0.5}\n')
    else:
        sep = "," if suffix == ".csv" else "\t"
        path.write_text(
            sep.join(["sentence1", "sentence2", "sentence2", "score"])
            + "\n"
            + sep.join("abc")
            + sep
            + "0.5\n"
        )
    with pytest.raises(DataError, match=rf"{path}.*'sentence2'"):
        load_task("generic", train=str(path), dev=str(path))


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"loss": {"tau": float("inf")}}, r"--loss\.tau must be > 0 and finite \(got inf\)"),
        ({"train": {"batch_size": 1}}, r"--train\.batch_size=1 with --loss\.name bsc: .*nothing is learned"),
        ({"train": {"batch_size": 100}}, r"--train\.batch_size=100"),
        (
            {"data": {"unsupervised": True}, "loss": {"name": "mse"}},
            r"--loss\.name mse needs graded or binary labels",
        ),
        ({"loss": {"threshold": 1.01}}, r"no training pair of stsb has a label above the threshold 1\.01"),
    ],
)
def test_bad_data_for_the_options_fails_before_a_model_loads(tmp_path, monkeypatch, sections, message):
    # before: batch > data was checked after the model loaded; tau inf, batch 1, mse without labels and
    # all-negative labels trained to the end and learned nothing
    import bscl.run

    monkeypatch.setattr(bscl.run, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(ValueError, match=message):
        run_training(config(tmp_path / "run", **sections))
    assert not (tmp_path / "run" / "config.yaml").exists()
