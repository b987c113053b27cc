"""``bscl compare`` on the user's own pairs: recipes by kind of labels, splits, refusals, report, and
the equivalence with ``bscl compare TASK`` on a named task written out as the user's files."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest

from bscl import cli
from bscl.experiments import compare as C
from bscl.experiments import recipes
from bscl.experiments.cells import CellProgress
from bscl.experiments.records import Summary
from bscl.training import peers
from bscl.training.config import base_config, parse_command_line
from bscl.training.peers import PEER_LOSSES

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "data_root"
WORDS = ("cat", "dog", "bird", "fish", "tree", "car", "road", "sky", "sun", "moon", "star", "rain", "snow", "wind",
         "fire", "water", "stone", "house", "door")  # fmt: skip
#: the candidates of each kind of labels
CANDIDATES = {
    "score": ["bscl-combo", "bscl-pearson-combo", "bscl-bsc-knn", "st-cosine", "st-cosent", "st-angle"],
    "binary": [
        "bscl-pearson-combo",
        "bscl-combo",
        "bscl-bsc-labeled-negatives",
        "st-online-contrastive",
        "st-cosent",
        "st-mnrl",
    ],  # fmt: skip
    "positive": [
        "bscl-bsc-knn",
        "bscl-bsc-hard-negatives",
        "bscl-focal-infonce",
        "st-mnrl",
        "st-cached-mnrl",
        "st-gist",
        "st-mnrl-hard",
    ],  # fmt: skip
}


@pytest.fixture(autouse=True)
def _loose_mining(monkeypatch):
    # the tiny random model scores every candidate alike: the 5% false-negative margin would drop them all
    monkeypatch.setitem(peers.MINING, "relative_margin", None)


def pairs_csv(path: Path, kind: str, n: int = 40, seed: int = 0) -> Path:
    """A small CSV of one kind: score (columns q, a, score in 0-5), binary (sentence1, sentence2,
    label 0/1) or positive (query, document; no label column)."""
    rng = random.Random(seed)
    header = {
        "score": ["q", "a", "score"],
        "binary": ["sentence1", "sentence2", "label"],
        "positive": ["query", "document"],
    }
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header[kind])
        for i in range(n):
            a = " ".join(rng.choice(WORDS) for _ in range(5))
            b = " ".join(rng.choice(WORDS) for _ in range(4)) + f" {i}"
            label = {"score": [round(rng.uniform(0, 5), 1)], "binary": [i % 2], "positive": []}[kind]
            writer.writerow([a, b, *label])
    return path


def own_args(path: Path, kind: str) -> list[str]:
    """The ``--data.*`` options of ``pairs_csv``'s file (the score file names its columns and scale)."""
    extra = ["--data.text1", "q", "--data.text2", "a", "--data.label", "score", "--data.label_max", "5"]
    return ["--data.train_file", str(path), *(extra if kind == "score" else [])]


def test_each_kind_of_labels_has_valid_recipes_and_the_issues_candidates():
    assert recipes.kinds("generic") == ["score", "binary", "positive"]
    for kind, names in CANDIDATES.items():
        assert list(C.recipes_of("generic", kind=kind)) == ["zero-shot", *names]
        for name in recipes.recipe_names("generic", kind):
            cfg = base_config("generic", recipe=recipes.recipe("generic", name, kind=kind))
            cfg.data.train_file = "pairs.csv"
            cfg.validate()
            assert recipes.reason("generic", name, kind)
            for folder in recipes.record_folders("generic", name, kind):
                assert (ROOT / folder).is_dir(), (kind, name, folder)
        assert set(recipes.peers("generic", kind)) <= set(PEER_LOSSES)
    # the library alone keeps its plain defaults; a recipe name needs the kind
    assert recipes.recipe("generic") == {} and recipes.peers("generic") == ()
    with pytest.raises(ValueError, match="by kind of labels"):
        recipes.recipe("generic", "combo")


def _train_config(monkeypatch, argv):
    import bscl.run

    seen = {}
    monkeypatch.setattr(bscl.run, "run_training", lambda cfg: seen.setdefault("cfg", cfg))
    assert cli.main(["train", *argv]) == 0
    return seen["cfg"]


def test_bscl_train_on_own_pairs_starts_from_the_recipe_compare_runs_as_the_kinds_default(
    monkeypatch, tmp_path
):
    out = ["--train.output_dir", str(tmp_path / "run")]
    for kind, (loss, group, tau) in {
        "score": ("combo", 8, None), "binary": ("pearson-combo", 4, None), "positive": ("bsc", 8, 0.05)
    }.items():  # fmt: skip
        argv = ["--data.task", "generic", *own_args(pairs_csv(tmp_path / f"{kind}.csv", kind), kind), *out]
        cfg = _train_config(monkeypatch, argv)
        assert (cfg.loss.name, cfg.batching.strategy, cfg.batching.group_size, cfg.loss.tau) == (
            loss, "example", group, tau
        ), kind  # fmt: skip
        assert cfg.data.hard_negatives == (1 if kind == "positive" else None)
        # the library without the lab's lookup: its plain defaults
        plain = parse_command_line(argv)
        assert (plain.loss.name, plain.batching.strategy) == ("bsc", "random")
    binary = ["--data.task", "generic", *own_args(tmp_path / "binary.csv", "binary"), *out]
    cfg = _train_config(monkeypatch, [*binary, "--recipe", "combo"])
    assert (cfg.loss.name, cfg.batching.group_size) == ("combo", 4)
    assert cli.main(["train", *binary, "--recipe", "bsc-knn"]) == 2  # a positive-pairs recipe, not binary's


def test_missing_splits_are_cut_once_and_changed_data_or_options_are_refused(tmp_path):
    path = pairs_csv(tmp_path / "pairs.csv", "score")
    options = {"train_file": str(path), "text1": "q", "text2": "a", "label": "score", "label_max": 5.0}
    out = tmp_path / "report"
    user = C.user_data(options, out)
    assert user.kind == "score" and user.made == ["test", "dev"]
    assert user.sizes == {"train": 32, "dev": 4, "test": 4}
    written = {p.name: p.read_bytes() for p in (out / "data").iterdir()}
    rows = [json.loads(line) for line in (out / "data" / "test.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["label"] <= 1.0 for r in rows)  # scores as the loader read them
    assert user.data["train_file"] == str(out / "data" / "train.jsonl") and user.data["label_type"] == "score"
    assert C.user_data(options, out).sizes == user.sizes  # the same data: accepted, the same splits
    assert {p.name: p.read_bytes() for p in (out / "data").iterdir()} == written
    with pytest.raises(ValueError, match=r"--data.label_max: 5.0 -> 10.0"):
        C.user_data({**options, "label_max": 10.0}, out)
    with path.open("a", encoding="utf-8") as f:
        f.write("one more pair,another text,3.0\n")
    with pytest.raises(ValueError, match=r"pairs.csv changed"):
        C.user_data(options, out)
    # with a dev and a test file, the cells read the user's files as they are
    dev, test = (
        pairs_csv(tmp_path / "dev.csv", "binary", 8, 1),
        pairs_csv(tmp_path / "test.csv", "binary", 8, 2),
    )
    train = pairs_csv(tmp_path / "train.csv", "binary")
    given = C.user_data(
        {"train_file": str(train), "dev_file": str(dev), "test_file": str(test)}, tmp_path / "b"
    )
    assert given.kind == "binary" and given.made == [] and not (tmp_path / "b" / "data").exists()
    assert (given.data["train_file"], given.data["test_file"]) == (str(train), str(test))


def test_compare_dry_run_on_own_pairs_runs_the_kinds_candidates(tmp_path, capsys):
    for kind, names in CANDIDATES.items():
        path = pairs_csv(tmp_path / f"{kind}.csv", kind)
        out = tmp_path / kind
        assert (
            cli.main(
                ["compare", *own_args(path, kind), "--output-dir", str(out), "--seeds", "2", "--dry-run"]
            )
            == 0
        )
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith(f"{kind} labels")
        assert [line.split(" seed ")[0] for line in lines[1:]] == ["zero-shot"] + [
            n for n in names for _ in (0, 1)
        ]
        assert all("--train.epochs=3.0" in line for line in lines[2:])  # several epochs by default
        assert not out.exists()  # a dry run writes nothing
    assert cli.main(["compare", "stsb", "--data.train_file", str(path), "--dry-run"]) == 2
    assert "options of your own pairs" in capsys.readouterr().err
    assert cli.main(["compare", "--data.train_file", str(path), "--recipes", "st-nope", "--dry-run"]) == 2
    assert "(positive labels)" in capsys.readouterr().err


def _row(recipe, side, mean, sd, minutes=1.0):
    return Summary(recipe, side, 3 if sd is not None else 1, mean, sd, None, None, minutes)


def test_the_recommendation_is_one_plain_line():
    zero = _row("zero-shot", "zero-shot", 0.70, None, 0.0)
    ahead = [
        _row("bscl-combo", "bscl", 0.80, 0.01),
        _row("st-cosine", "sentence-transformers", 0.75, 0.02),
        zero,
    ]
    assert C.recommendation(ahead, "spearman") == (
        "use bscl-combo: test spearman 0.8000 ± 0.0100, ahead of the next recipe, st-cosine (0.7500), "
        "by +0.0500, beyond both spreads (largest sd 0.0200)"
    )
    level = [_row("bscl-combo", "bscl", 0.80, 0.03, 2.0), _row("st-cosine", "sentence-transformers", 0.79, 0.01, 1.5),
             _row("st-angle", "sentence-transformers", 0.70, 0.001), zero]  # fmt: skip
    line = C.recommendation(level, "spearman")
    assert (
        line.startswith("level: bscl-combo, st-cosine are within the spread")
        and "st-cosine (1.5 train min): use it" in line
    )
    below = [_row("bscl-combo", "bscl", 0.71, 0.02), zero]
    assert C.recommendation(below, "spearman").startswith("keep the pretrained model")
    assert "run more seeds" in C.recommendation([_row("bscl-combo", "bscl", 0.8, None), zero], "spearman")


def test_progress_counts_cells_and_estimates_the_time_left_from_finished_ones():
    progress = CellProgress(total=7, to_train=6)
    assert progress.line(1, "zero-shot").startswith("cell 1 of 7: zero-shot (6 cells to train; the time left")
    progress.trained(120.0)
    progress.trained(60.0)
    assert progress.line(4, "x") == "cell 4 of 7: x (about 6 min left: 4 cells to train at 90 s each so far)"
    resumed = CellProgress(total=3, to_train=1, recorded_seconds=[30.0])
    assert (
        "about 30 s left: 1 cells to train at 30 s each (train time of the recorded cells)"
        in resumed.line(3, "y")
    )


def _records(out: Path) -> dict[str, dict]:
    return {
        p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in sorted(out.rglob("seed-*.json"))
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CANDIDATES))
def test_compare_on_own_pairs_end_to_end(kind, tmp_path, capsys):
    path = pairs_csv(tmp_path / f"{kind}.csv", kind)
    out = tmp_path / "report"
    chosen = f"zero-shot,{CANDIDATES[kind][1]},{CANDIDATES[kind][-1]}"
    args = ["compare", *own_args(path, kind), "--model", "tiny", "--seeds", "2", "--epochs", "1", "--batch-size", "4",
            "--recipes", chosen, "--output-dir", str(out)]  # fmt: skip
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "cell 1 of 5" in printed and "cell 5 of 5" in printed and "s each so far" in printed
    found = _records(out / "records")
    assert len(found) == 5 and all(r["task"] == "generic" for r in found.values())
    metric = {"score": "spearman", "binary": "f1", "positive": "mrr"}[kind]
    assert {r["primary"] for r in found.values()} == {metric}
    assert all(math.isfinite(r["test"][metric]) for r in found.values())
    report = (out / "report.md").read_text()
    assert (
        "**Recommendation:** " in report and f"test {metric} (mean ± sd)" in report and "figure.svg" in report
    )
    assert f"| {CANDIDATES[kind][1]} | bscl | 2 |" in report and "| zero-shot | zero-shot | 1 |" in report
    assert (out / "figure.svg").is_file() and (out / "data" / "test.jsonl").is_file()
    assert not (ROOT / "benchmarks" / "results" / "generic").exists()  # records stay in the report folder
    assert cli.main(args) == 0  # finished cells are skipped
    assert capsys.readouterr().out.count(", skipped") == 5 and _records(out / "records") == found
    with path.open("a", encoding="utf-8") as f:  # the user's file changes: refused before anything runs
        f.write(f"a new first text,a new second text{',1' if kind != 'positive' else ''}\n")
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert f"{path.name} changed" in captured.err and "cell 1" not in captured.out


@pytest.mark.slow
def test_compare_on_own_pairs_resumes_after_a_kill(tmp_path, monkeypatch, capsys):
    import bscl.run

    path = pairs_csv(tmp_path / "binary.csv", "binary")
    out = tmp_path / "report"
    args = ["compare", *own_args(path, "binary"), "--model", "tiny", "--seeds", "2", "--epochs", "1",
            "--batch-size", "4", "--recipes", "bscl-pearson-combo,st-cosent", "--output-dir", str(out)]  # fmt: skip
    train = bscl.run.run_training
    calls = []

    def killed_at_the_second(cfg):
        calls.append(cfg.train.output_dir)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train(cfg)

    monkeypatch.setattr(bscl.run, "run_training", killed_at_the_second)
    assert cli.main(args) == 130
    assert list(_records(out / "records")) == ["generic/bscl-pearson-combo/seed-0.json"]
    assert (
        "| bscl-pearson-combo | bscl | 1 |" in (out / "report.md").read_text()
    )  # the finished cell reported
    capsys.readouterr()
    monkeypatch.setattr(bscl.run, "run_training", train)
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "generic / bscl-pearson-combo / seed 0: recorded in" in printed and printed.count("\n=== ") == 3
    assert len(_records(out / "records")) == 4
    assert "| bscl-pearson-combo | bscl | 2 |" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def shared_root() -> Path:
    from bscl.paths import data_root

    try:
        path = data_root()
    except FileNotFoundError:
        pytest.skip("shared data root not found (set BSCL_DATA_ROOT)")
    if not (path / "mrpc" / "msr_paraphrase_train.txt").is_file():
        pytest.skip(f"{path} does not hold the shared data")
    return path


@pytest.mark.slow
def test_mrpc_written_as_own_files_gives_the_numbers_of_compare_mrpc(tmp_path, shared_root):
    # MRPC's own split (train / seeded dev / test) as CSV files; 80 training pairs, the full dev and test
    files = C.write_task_files("mrpc", tmp_path / "files", data_root=str(shared_root))
    common = ["--model", "tiny", "--seeds", "1", "--epochs", "1", "--batch-size", "4", "--train-subset", "80"]
    named = ["compare", "mrpc", "--data-root", str(shared_root), "--recipes", "zero-shot,bscl-pearson-combo-bias-corrected",
             "--output-dir", str(tmp_path / "named"), "--results-dir", str(tmp_path / "named-records"),
             "--results-file", str(tmp_path / "RESULTS.md"), *common]  # fmt: skip
    own = ["compare", "--data.train_file", str(files["train"]), "--data.dev_file", str(files["dev"]),
           "--data.test_file", str(files["test"]), "--recipes", "zero-shot,bscl-pearson-combo",
           "--output-dir", str(tmp_path / "own"), *common]  # fmt: skip
    assert cli.main(named) == 0 and cli.main(own) == 0
    a = _records(tmp_path / "named-records")
    b = _records(tmp_path / "own" / "records")
    pairs = {"zero-shot": ("mrpc/zero-shot/seed-0.json", "generic/zero-shot/seed-0.json"),
             "trained": ("mrpc/bscl-pearson-combo-bias-corrected/seed-0.json", "generic/bscl-pearson-combo/seed-0.json")}  # fmt: skip
    for x, y in pairs.values():
        assert a[x]["primary"] == b[y]["primary"] == "f1"
        for split in ("dev", "test"):
            assert a[x][split].keys() == b[y][split].keys()
            for key, value in a[x][split].items():
                assert b[y][split][key] == pytest.approx(value, abs=1e-9), (x, split, key)
    trained, zero = a[pairs["trained"][0]], a[pairs["zero-shot"][0]]
    assert trained["test"] != zero["test"]  # the trained cell moved the model: the equality is not trivial
    assert (
        trained["config"]["train"]["batch_size"] == 4 and trained["config"]["loss"]["name"] == "pearson-combo"
    )
    # the same steps: the same training losses and dev scores per epoch
    runs = [
        json.loads(Path(r["run_dir"], "metrics.json").read_text())["seeds"]["0"]
        for r in (trained, b[pairs["trained"][1]])
    ]
    for key in ("train_loss", "dev_per_epoch"):
        steps = [[list(row.values()) for row in run[key]] for run in runs]
        assert steps[0] and len(steps[0]) == len(steps[1]), key
        for x, y in zip(*steps, strict=True):
            assert y == pytest.approx(x, abs=1e-9), key
