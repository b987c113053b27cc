"""Resume after a crash: SIGKILL mid-epoch, re-run the same command, end where an uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import helpers_resume as H
from bscl.losses import LossStateCallback
from bscl.models import load_model
from bscl.reporting.runfolder import last_checkpoint as last_complete

SCRIPT = Path(__file__).with_name("helpers_resume.py")
KILL_AT = 8  # epoch 2 is steps 6-10; the last checkpoint before the kill is step 6 (mid-epoch)


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *extra], env=env, capture_output=True, text=True, timeout=600
    )


def _kill_and_resume(
    tmp_path: Path, *mode: str, kill: tuple[str, ...] = ("--kill-at-step", str(KILL_AT))
) -> None:
    """An uninterrupted run and a killed-then-resumed one end equal (losses, tau, weights)."""
    load_model("tiny", seed=0)  # build the tiny model's files once
    steps_per_epoch = -(-H.N_PAIRS // H.BATCH)
    assert KILL_AT // steps_per_epoch == 1 and KILL_AT % steps_per_epoch  # killed in the middle of epoch 2
    last_checkpoint = KILL_AT - KILL_AT % H.SAVE_STEPS
    assert last_checkpoint % steps_per_epoch  # and the checkpoint is mid-epoch too
    if kill[0] == "--kill-in-loss-state":
        last_checkpoint = int(kill[1]) - H.SAVE_STEPS  # the cut checkpoint does not count

    full = _run(tmp_path / "full", *mode)
    assert full.returncode == 0, full.stderr[-3000:]
    crashed = _run(tmp_path / "crash", *mode, *kill)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert not (tmp_path / "crash" / "result.pt").exists()
    checkpoint = tmp_path / "crash" / f"checkpoint-{last_checkpoint}"
    saved_loss = torch.load(checkpoint / LossStateCallback.FILE, weights_only=True)
    assert saved_loss["loss.temperature.log_tau"].exp().item() != pytest.approx(0.1, abs=1e-4)

    if kill[0] == "--kill-in-loss-state":  # cut after trainer_state.json, before the loss state
        cut = tmp_path / "crash" / f"checkpoint-{kill[1]}"
        assert (cut / "trainer_state.json").is_file() and not (cut / LossStateCallback.FILE).exists()
        assert last_complete(tmp_path / "crash") == checkpoint

    resumed = _run(tmp_path / "crash", *mode)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    want = torch.load(tmp_path / "full" / "result.pt", weights_only=False)
    got = torch.load(tmp_path / "crash" / "result.pt", weights_only=False)
    assert got["resumed_from"].endswith(f"checkpoint-{last_checkpoint}")
    # the losses of the steps after the checkpoint: same batches (sampler order), same dropout, same tau
    after = {s: v for s, v in want["losses"].items() if s > last_checkpoint}
    assert {s: v for s, v in got["losses"].items() if s > last_checkpoint} == pytest.approx(after, abs=1e-6)
    assert got["tau"] == pytest.approx(want["tau"], abs=1e-7)
    assert got["eval_loss"] == pytest.approx(want["eval_loss"], abs=1e-6)
    for name, value in want["weights"].items():
        torch.testing.assert_close(got["weights"][name], value, atol=1e-6, rtol=1e-6, msg=name)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_matches_an_uninterrupted_run(tmp_path):
    _kill_and_resume(tmp_path)


@pytest.mark.slow
def test_kill_between_trainer_state_and_loss_state_resumes_from_the_complete_checkpoint(tmp_path):
    # before: HF's get_last_checkpoint took checkpoint-6 (trainer_state.json, no loss state): tau restarted at 0.1
    _kill_and_resume(tmp_path, kill=("--kill-in-loss-state", "6"))


@pytest.mark.slow
def test_reuse_embeddings_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    # before: the embedding cache was not checkpointed: epoch 3 was grouped by a fresh encode pass
    _kill_and_resume(tmp_path, "--reuse")
