"""The command line and a run's outputs behave as users of such tools expect: a version, a short help
that starts fast and states each default once, one spelling of the data options, each warning once,
``-`` for standard output, a run folder whose files say what ran and hold the chosen model once, and
plots that show where training started."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import bscl
from bscl.cli import main
from bscl.training import config as C

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"
SRC = Path(__file__).parent.parent / "src"
HEAVY = ("torch", "transformers", "sentence_transformers", "datasets", "faiss")


def help_of(*argv: str, recipe_lookup: Any = None) -> None:
    """Run ``bscl train``'s parser on an argv that prints and exits 0 (the output is in capsys)."""
    with pytest.raises(SystemExit) as stop:
        C.parse_command_line(list(argv), recipe_lookup=recipe_lookup)
    assert stop.value.code == 0


def option_line(out: str, option: str) -> str:
    """The help entry of ``option``: its lines joined (the entry ends where the next option starts)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option + " "))
    entry = [lines[start]]
    for line in lines[start + 1 :]:
        if line.strip().startswith("--") or not line.startswith(" "):
            break
        entry.append(line)
    return " ".join(" ".join(entry).split())


# -- the command line --------------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"bscl {bscl.__version__}"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["train", "--help"], ["train", "--data.task", "mrpc", "--help"]]
    + [
        [command, "--help"]
        for command in ("eval", "encode", "rank", "report", "reproduce", "compare", "results")
    ],
)
def test_help_imports_no_deep_learning_library(argv):
    # before: bscl --help imported torch, transformers and sentence-transformers (10-18 s)
    code = (
        "import sys\nfrom bscl.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_train_help_states_each_default_once_and_leaves_the_trainer_options_to_help_hf(capsys):
    help_of("--help")
    out = capsys.readouterr().out
    assert "(type:" not in out and "default: null" not in out  # jsonargparse's second statement
    options = [line.split()[0] for line in out.splitlines() if line.startswith("  --")]
    for option in options:
        entry = option_line(out, option)
        assert entry.count("[default:") <= 1 and not ("(default" in entry and "[default" in entry), entry
    assert "--hf.bf16" not in out and "--help-hf" in out  # 906 lines before, ~500 of them --hf.*
    assert len(out.splitlines()) < 200
    assert option_line(out, "--loss.tau").endswith("[default: 0.1]")  # the chosen loss's (stsb: combo)
    assert option_line(out, "--loss.threshold").endswith("[default: 0.6]")  # the task's threshold
    help_of("--help-hf")
    assert "--hf.bf16" in capsys.readouterr().out


def test_loss_option_defaults_are_the_chosen_loss_own(capsys):
    # before: "(default triplet: 0.5; focal-infonce: 0.3) (type: float | null, default: null)"
    help_of("--loss.name", "triplet", "--help")
    out = capsys.readouterr().out
    assert option_line(out, "--loss.margin").endswith("[default: 0.5]")
    assert "takes no tau" in option_line(out, "--loss.tau")
    help_of("--loss.name", "focal-infonce", "--help")
    assert option_line(capsys.readouterr().out, "--loss.margin").endswith("[default: 0.3]")


def test_generic_task_help_shows_defaults_that_depend_on_the_label_kind(capsys):
    # a lab whose default recipe for generic data depends on the label kind of the file
    def lookup(task: str, name: str | None) -> dict[str, dict[str, Any]]:
        return {"loss": {"name": "mse"}, "batching": {"strategy": "sequential"}} if task == "generic" else {}

    help_of("--data.task", "generic", "--help", recipe_lookup=lookup)
    out = capsys.readouterr().out
    assert option_line(out, "--batching.strategy").endswith("[default: per label kind]")
    assert option_line(out, "--loss.name").endswith("[default: per label kind]")
    # without such a recipe (the library alone) the defaults are the plain ones, stated as such
    help_of("--data.task", "generic", "--help")
    assert option_line(capsys.readouterr().out, "--batching.strategy").endswith("[default: random]")


def test_print_config_shows_the_resolved_loss_options(capsys):
    # before: config.yaml / the parsed config held tau: null, threshold: null
    with pytest.raises(SystemExit):
        C.parse_command_line(["--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["loss"]["name"] == "combo"
    assert (
        printed["loss"]["tau"] == 0.1 and printed["loss"]["threshold"] == 0.6 and printed["loss"]["mu"] == 0.1
    )
    assert "margin" not in printed["loss"]  # combo takes none


def test_eval_spells_the_data_options_as_train_does(tmp_path, capsys):
    # before: bscl eval spelled --label-max, --text1, while its advice named train's --data.text1
    path = tmp_path / "pairs.csv"
    path.write_text("q,a,score\n" + "".join(f"text {i},other {i},{i % 6}\n" for i in range(12)))
    out = tmp_path / "e.json"
    argv = ["eval", "--data.task", "generic", "--data.test_file", str(path), "--data.text1", "q",
            "--data.text2", "a", "--data.label", "score", "--data.label_max", "5", "--model", "tiny",
            "--output", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(out.read_text())["n"] == 12
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    shown = capsys.readouterr().out
    assert "--data.label_max" in shown and "--label-max" not in shown  # the earlier spelling: hidden
    assert main(["eval", "--data.task", "stsb", "--data.text1", "q", "--model", "tiny"]) == 2
    assert "--data.text1 applies to --data.task generic only" in capsys.readouterr().err


def test_a_file_given_for_several_splits_is_read_and_reported_once(tmp_path, caplog):
    # before: bscl eval reads its file as train, dev and test: the ignored-columns warning printed 3 times
    from bscl.data import load_task

    path = tmp_path / "pairs.csv"
    path.write_text(
        "sentence1,sentence2,score,source\n" + "".join(f"a {i},b {i},0.{i},x\n" for i in range(10))
    )
    with caplog.at_level(logging.WARNING, logger="bscl.data"):
        load_task("generic", train=path, dev=path, test=path)
    assert caplog.text.count("ignoring ['source']") == 1


# -- standard output -----------------------------------------------------------------------------------
def test_rank_output_dash_writes_jsonl_to_standard_output(tmp_path, capsys):
    # before: "-: --output must end in .jsonl or .tsv"
    texts = tmp_path / "t.txt"
    texts.write_text("a cat\na dog\nthe sun\n")
    argv = ["rank", "--model", "tiny", "--queries", str(texts), "--pool", str(texts), "--top-k", "2"]
    assert main([*argv, "--output", "-"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["query"] for r in rows] == ["a cat", "a dog", "the sun"] and len(rows[0]["results"]) == 2
    assert "standard output" in captured.err


def test_encode_output_dash_writes_npy_to_a_redirected_standard_output(tmp_path, capsysbinary, monkeypatch):
    texts = tmp_path / "t.txt"
    texts.write_text("a cat\na dog\n")
    argv = ["encode", "--model", "tiny", "--input", str(texts), "--output", "-"]
    assert main(argv) == 0
    emb = np.load(io.BytesIO(capsysbinary.readouterr().out))
    assert emb.shape[0] == 2 and emb.dtype == np.float32
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # binary to a terminal: refused
    assert main(argv) == 2
    assert b"redirect standard output" in capsysbinary.readouterr().err


# -- the run folder ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_folder_says_what_ran_and_holds_the_model_once(tmp_path):
    out = tmp_path / "run"
    argv = ["train", f"--data.data_root={FIXTURES}", "--train.model=tiny", f"--train.output_dir={out}",
            "--train.epochs=2", "--train.batch_size=4", "--batching.group_size=4", "--train.seeds=2"]  # fmt: skip
    assert main(argv) == 0
    # config.yaml: every value the loss ran with (before: tau: null, threshold: null)
    loss = yaml.safe_load((out / "config.yaml").read_text())["loss"]
    assert loss["name"] == "combo" and loss["tau"] == 0.1 and loss["threshold"] == 0.6
    assert None not in loss.values()
    # metrics.json: no pointer to a pruned checkpoint folder (before: best_checkpoint, deleted)
    metrics = json.loads((out / "metrics.json").read_text())
    for result in metrics["seeds"].values():
        assert "best_checkpoint" not in result and result["best_step"] in (2, 4)
        assert len(result["train_loss"]) == 4  # a short run: the loss of every step
    # the chosen model once (before: seed-N/best-model and model/, two copies)
    weights = list(out.rglob("model.safetensors"))
    assert weights == [out / "model" / "model.safetensors"], weights
    # the model card: the loss's model-first class and paper, the sampler, the optimizer as run
    card = (out / "model" / "README.md").read_text()
    assert "bscl.losses.st.ComboLoss" in card and "Batch-Softmax Contrastive Loss" in card
    assert "`bscl_loss`: combo" in card
    assert "`batch_sampler`: bscl example batching (group_size=4" in card
    assert "`optim`: AdamW without bias correction (bscl.training.optim.AdamW)" in card
    assert "adamw_torch_fused" not in card
    assert main(argv) == 0  # re-running: both seeds read back, the config is the same


# -- plots -----------------------------------------------------------------------------------------------
def test_dev_plot_starts_from_the_value_before_training(tmp_path, monkeypatch):
    # before: one epoch was a single dot, and a run that ended below its start showed a climb
    from bscl.reporting import report

    figures: dict[str, Any] = {}
    monkeypatch.setattr(report, "_save", lambda fig, path: figures.__setitem__(path.name, fig))
    run = tmp_path / "run"
    run.mkdir()
    metrics = {
        "config": {"data": {"task": "stsb"}, "train": {"seeds": 1}},
        "primary": "spearman",
        "before": {"dev": {"spearman": 0.9390}},
        "seeds": {"0": {"dev_per_epoch": [{"epoch": 1.0, "dev": 0.9360}], "dev": {"spearman": 0.936},
                        "train_loss": [{"step": s, "loss": 1.0 / s} for s in range(1, 6)]}},
        "best_seed": 0,
        "after": {"dev": {"spearman": 0.936}},
    }  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(metrics))
    report.write_report(run)
    ax = figures[report.DEV_PLOT].axes[0]
    seed_line = next(line for line in ax.get_lines() if line.get_label().startswith("seed 0"))
    assert list(seed_line.get_xdata()) == [0.0, 1.0] and list(seed_line.get_ydata()) == [0.9390, 0.9360]
    low, high = ax.get_ylim()
    assert low < 0.9360 and high > 0.9390  # neither point on the frame
    assert any("before training: 0.9390" in t.get_text() for t in ax.get_legend().get_texts())
    loss_line = figures[report.LOSS_PLOT].axes[0].get_lines()[0]
    assert len(loss_line.get_xdata()) == 5
