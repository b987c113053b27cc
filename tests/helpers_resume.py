"""A tiny training run for tests/test_resume.py: ``python helpers_resume.py OUT [--kill-at-step N]``.

Re-running the same command resumes from the last complete checkpoint in OUT (like ``bscl train``).
With ``--kill-at-step N`` the process SIGKILLs itself at the end of optimizer step N (mid-epoch),
after the checkpoints of the earlier steps were written; ``--kill-in-loss-state N`` SIGKILLs it inside
the checkpoint save of step N, after HF's ``trainer_state.json`` and before the loss state.
``--reuse``: the ``example`` strategy with ``reuse_embeddings`` (the embedding cache is checkpointed).
Writes ``OUT/result.pt`` when training ends.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainingArguments
from transformers import TrainerCallback

from bscl.losses import LossStateCallback, STLoss
from bscl.losses.modules import build_loss
from bscl.models import load_model
from bscl.reporting.runfolder import last_checkpoint
from bscl.training import BSCLTrainer
from bscl.training.trainer import EmbeddingCacheCallback

WORDS = "red blue green cat dog bird runs sleeps eats small big old new fast slow happy sad tree house car".split()  # noqa: SIM905
N_PAIRS, BATCH, EPOCHS, SAVE_STEPS = 40, 8, 3, 3  # 5 steps per epoch, 15 steps


def pairs(n: int, seed: int) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    rows = {"anchor": [], "positive": [], "label": []}
    for i in range(n):
        words = [WORDS[int(j)] for j in torch.randint(0, len(WORDS), (4,), generator=g)]
        if i % 3 == 2:  # a labeled negative
            other = " ".join(WORDS[int(j)] for j in torch.randint(0, len(WORDS), (4,), generator=g))
            label = 0.0
        else:
            other = " ".join(words[p] for p in torch.randperm(4, generator=g).tolist())
            label = 1.0
        rows["anchor"].append(" ".join(words))
        rows["positive"].append(other)
        rows["label"].append(label)
    return Dataset.from_dict(rows)


def batch_sampler(reuse: bool = False):
    """The word-shingle sampler (seeded global order per epoch), or ``example`` grouping by the
    embeddings the previous epoch's training steps recorded (``reuse``)."""
    from bscl.batching import make_batch_sampler

    if reuse:
        return make_batch_sampler("example", group_size=4, reuse_embeddings=True, cold_start="words")
    return make_batch_sampler("words", group_size=4)


class KillInLossState(LossStateCallback):
    """SIGKILL inside the checkpoint save of one step, after trainer_state.json, before the loss state."""

    def __init__(self, loss, step: int):
        super().__init__(loss)
        self.step = step

    def save_checkpoint_state(self, folder):
        if folder.name == f"checkpoint-{self.step}":
            assert (folder / "trainer_state.json").is_file()
            os.kill(os.getpid(), signal.SIGKILL)
        super().save_checkpoint_state(folder)


class KillAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--kill-at-step", type=int, default=None)
    parser.add_argument("--kill-in-loss-state", type=int, default=None)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--no-loss-state", action="store_true", help="leave out LossStateCallback (to see the test fail)"
    )
    ns = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(ns.out)

    model = load_model("tiny", seed=0)  # dropout on: the RNG state must be restored too
    inner = build_loss("bsc", tau=0.1, trainable_tau=True, use_labels=True, duplicates=True)
    sampler = batch_sampler(ns.reuse)
    if ns.reuse:
        sampler.set_model(model, batch_size=16)  # rows never recorded (none here) are encoded
    loss = STLoss(model, inner, mini_batch_size=3, embedding_callback=sampler.embedding_cache)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH,
        learning_rate=2e-3,
        warmup_steps=3,
        lr_scheduler_type="linear",
        logging_steps=1,
        save_strategy="steps",
        save_steps=SAVE_STEPS,
        eval_strategy="no",
        report_to="none",
        seed=0,
        data_seed=0,
        batch_sampler=sampler,
        dataloader_drop_last=False,
        disable_tqdm=True,
    )
    callbacks = [] if ns.no_loss_state else [LossStateCallback(loss)]
    if ns.kill_in_loss_state is not None:
        callbacks = [KillInLossState(loss, ns.kill_in_loss_state)]
    if ns.reuse:
        callbacks.append(EmbeddingCacheCallback(sampler.embedding_cache))
    if ns.kill_at_step is not None:
        callbacks.append(KillAt(ns.kill_at_step))
    trainer = BSCLTrainer(
        model=model,
        args=args,
        train_dataset=pairs(N_PAIRS, 0),
        loss=loss,
        callbacks=callbacks,
        tau_learning_rate=0.05,
    )
    checkpoint = last_checkpoint(out) if out.is_dir() else None
    resume = str(checkpoint) if checkpoint is not None else None
    trainer.train(resume_from_checkpoint=resume)
    metrics = trainer.evaluate(pairs(16, 1))
    torch.save(
        {
            "resumed_from": resume,
            "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "tau": inner.temperature.value,
            "eval_loss": metrics["eval_loss"],
            "losses": {row["step"]: row["loss"] for row in trainer.state.log_history if "loss" in row},
        },
        out / "result.pt",
    )


if __name__ == "__main__":
    main()
