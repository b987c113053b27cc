"""``bscl train`` from the command line with trainer options (``--hf.*``): TensorBoard, own data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bscl.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "data_root"


def tiny_run(out: Path, *extra: str) -> list[str]:
    return [
        "train",
        f"--data.data_root={FIXTURES}",
        "--train.model=tiny",
        f"--train.output_dir={out}",
        "--train.epochs=1",
        "--train.batch_size=4",
        "--batching.group_size=4",  # the recipe's kNN groups of 8 fit a batch of 4
        "--train.logging_steps=1",
        "--eval.before=false",
        *extra,
    ]


@pytest.mark.slow
def test_tensorboard_event_file_and_model_card_of_a_train_run(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "run"
    argv = tiny_run(
        out,
        *("--hf.report_to", "tensorboard", "--loss.name=focal-infonce", "--loss.tau=0.07"),
        *("--hf.bf16", "true", "--hf.use_cpu", "true"),  # mixed precision from the command line
    )
    assert main(argv) == 0
    events = sorted(out.rglob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event file under {out}"
    acc = event_accumulator.EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/loss" in tags, tags
    losses = [e.value for e in acc.Scalars("train/loss")]
    assert losses and all(v == v for v in losses)  # finite numbers, one per logged step
    card = (out / "model" / "README.md").read_text()  # the chosen model's card names loss, settings, paper
    assert "bscl.losses.st.FocalInfoNCELoss" in card and "`bscl_loss`: focal-infonce" in card
    assert '"tau": 0.07' in card and '"margin": ' in card
    assert "Improving Contrastive Learning of Sentence Embeddings with Focal-InfoNCE" in card
    assert "Batch-Softmax Contrastive Loss" not in card
    assert "stsb_dev" in card  # the named dev evaluator


def test_hf_conflict_is_an_error_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    (tmp_path / "run.yaml").write_text("hf:\n  num_train_epochs: 3\n")
    assert main(tiny_run(out, f"--config={tmp_path / 'run.yaml'}")) == 2
    assert (
        "--hf.num_train_epochs conflicts with bscl's own option: use --train.epochs"
        in capsys.readouterr().err
    )
    assert not (out / "seed-0").exists()


@pytest.mark.slow
def test_generic_scores_on_a_0_to_5_scale(tmp_path):
    rows = [("a cat sits", "a cat is sitting", 5), ("dogs bark", "a dog barks", 4), ("it rains", "cars", 0)]
    rows = rows * 4
    train = tmp_path / "train.csv"
    train.write_text("sentence1,sentence2,score\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows))
    dev = tmp_path / "dev.csv"  # graded dev labels: a split of three texts could leave one constant group
    dev.write_text("sentence1,sentence2,score\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows[:3] * 2))
    out = tmp_path / "run"
    argv = tiny_run(
        out,
        "--data.task=generic",
        f"--data.train_file={train}",
        f"--data.dev_file={dev}",
        "--data.label_max=5",
    )
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["primary"] == "spearman"
    # without the scale the scores above 1 are an error naming the file and the field
    assert main(tiny_run(tmp_path / "run2", "--data.task=generic", f"--data.train_file={train}")) == 2


@pytest.mark.slow
def test_finished_seeds_keep_only_what_resume_and_the_chosen_model_need(tmp_path, capsys):
    out = tmp_path / "run"
    argv = tiny_run(out, "--train.epochs=2", "--train.seeds=2")
    assert main(argv) == 0
    assert not list(out.glob("seed-*/checkpoint-*"))  # pruned
    assert not list(out.glob("seed-*/best-model")) and (out / "model" / "modules.json").is_file()  # once
    capsys.readouterr()
    assert main(argv) == 0  # re-running still works: both seeds read back, the model kept
    assert capsys.readouterr().out.count("already finished") == 2
    kept = tmp_path / "kept"
    assert main(tiny_run(kept, "--train.keep_checkpoints=true")) == 0
    assert list(kept.glob("seed-0/checkpoint-*"))
