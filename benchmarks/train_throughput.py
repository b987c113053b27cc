"""Training throughput: ``bscl train`` vs a plain SentenceTransformerTrainer, and MFU.

Two sides, same model (all-MiniLM-L6-v2, max 90 tokens), batch, data, steps and training arguments:

- ``bscl``: built by ``bscl train``'s run builder (``bscl.training.builder.build_trainer``): symmetric BSC loss
  (tau 0.1, labeled negatives below 0.6) through ``STLoss``, the ``example`` batch sampler
  (Algorithm 1, groups of 8) in reuse mode with its ``EmbeddingCache`` wired to the loss, and
  ``BSCLTrainer``;
- ``bscl-pack``: the same with ``--batching.pack_by_length`` (the kNN groups are kept, but groups of
  similar length share a batch, so less padding is computed);
- ``bscl-fast``: the same with both speed options of ``bscl train``: ``pack_by_length`` and
  ``--batching.cold_start=words`` (epoch 1 grouped by words instead of one encode pass; later epochs
  by the embeddings recorded during training);
- ``bscl-padfree``: ``bscl`` with the padding-free forward (``--train.padding_free``,
  :mod:`bscl.padding_free`): the same batches, only the real tokens are computed;
- ``bscl-padfree+packing``: ``bscl-pack`` with the padding-free forward;
- ``st``: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss(scale=10)`` and the
  default batch sampler, on the same pairs without the label column;
- ``st-unpad``: ``st`` with sentence-transformers' own unpadded path (``attn_implementation=
  "flash_attention_2"``, ``Transformer.unpad_inputs``): needs ``flash_attn`` on a CUDA device.

On a CUDA device everything runs there (the trainer's default); ``--bf16`` trains in bfloat16 autocast
(``bf16=True`` on both sides) and measures the peak matmul in bfloat16.

Data: ``--task stsb`` (short texts) or ``--task cqa-a`` (question/comment texts, most cut at the
90-token cap).

Each run loads a fresh model and times ``trainer.train()`` (``--steps`` optimizer steps), which
includes the sampler's grouping at the start of each epoch (for ``bscl`` in epoch 1 that is one encode
pass over the training texts, since nothing is cached yet). The training set is the seeded random
subset that ``bscl train --data.train_subset`` takes, by default ``steps * batch / epochs`` pairs, so a
run covers whole epochs, as a real ``bscl train`` run does. The sides take turns for
``--rounds`` rounds after one untimed warm-up run each (``--warmup-steps``), the side that goes first
rotating from round to round; the medians are reported.

Model FLOPs are counted analytically from the padded shapes of the batches the trainer actually fed
to the model (a forward pre-hook records every ``(rows, padded length)``): per sequence of padded
length L, forward = 2 * P * L + 4 * layers * L^2 * hidden (P = encoder-layer parameters, without
embeddings and pooler; the second term is QK^T and attention x V), training = 3 x forward. The
sampler's encode pass (forward only, no gradient) is counted separately and not in the MFU. Peak =
best of ``--peak-repeats`` fp32 ``torch.matmul`` of ``--peak-size`` square matrices (2 n^3 FLOPs)
with torch's default threads, measured at the start and at the end of this run; MFU = achieved
training FLOP/s / peak, where the FLOPs are those the side computes (padded shapes; real tokens for
the padding-free sides). **Real-token MFU** counts, on every side, only the FLOPs of the real tokens
(the same formula with each sequence's real length l instead of L) -- the useful work.

Encode pass (``--encode N``): sentences/s on N training texts of ``model.encode`` (batch
``--encode-batch-size``, which sorts the texts by characters) padded, the same padding-free, and bscl's
encode pass (:func:`bscl.batching.encoding.encode_by_length`: padding-free, sorted by tokens, batches
cut by a token budget; what the sampler and the evaluations run), alternating, ``--rounds`` rounds
after one warm-up each; the embeddings are checked to agree. The ratio is bscl's pass over the padded
``model.encode``.

Usage (~4 minutes on 2 idle cores; 25 minutes or more while another job holds the cores)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py --out /tmp/train_throughput.json
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py --steps 4 --rounds 1   # quick check
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py --epochs 3 --steps 90  # reuse at work
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py --task cqa-a --encode 512  # long texts
    # smoke run (seconds): tiny model, 64 pairs, 1 epoch
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py --model tiny --steps 4 --batch-size 16 \
        --rounds 1 --warmup-steps 1 --peak-size 256 --encode 64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

SIDES = ("st", "st-unpad", "bscl", "bscl-pack", "bscl-fast", "bscl-padfree", "bscl-padfree+packing")
LABELS = {
    "st": "SentenceTransformerTrainer + MNRL (random batches)",
    "st-unpad": "the same with sentence-transformers' unpad_inputs (flash-attention varlen)",
    "bscl": "bscl train: BSC + example shuffling, reuse",
    "bscl-pack": "bscl train: the same + pack_by_length",
    "bscl-fast": "bscl train: the same + pack_by_length, cold_start=words",
    "bscl-padfree": "bscl train: BSC + example shuffling, reuse, padding-free forward",
    "bscl-padfree+packing": "bscl train: the same + pack_by_length, padding-free forward",
}
SAMPLER_OPTIONS: dict[str, dict[str, Any]] = {
    "bscl": {},
    "bscl-pack": {"pack_by_length": True},
    "bscl-fast": {"cold_start": "words", "pack_by_length": True},
    "bscl-padfree": {},
    "bscl-padfree+packing": {"pack_by_length": True},
}
PADDING_FREE_SIDES = ("bscl-padfree", "bscl-padfree+packing")
TASKS = ("stsb", "cqa-a")
#: the targets for the padding-free sides: pairs/s ratio to st per task, and real-token MFU
RATIO_TARGETS = {"stsb": 2.2, "cqa-a": 1.8}
REAL_MFU_TARGET = 0.60
#: bscl's encode pass over the padded ``model.encode`` (sentences/s)
ENCODE_TARGET = 1.6


def device() -> torch.device:
    """Where the trainer runs: the first CUDA device if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize() -> None:
    """Wait for queued device work (timings on CUDA are asynchronous)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ---- peak -----------------------------------------------------------------------------------------


def peak_matmul_gflops(n: int, repeats: int, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Best-of-``repeats`` GFLOP/s of one ``n x n`` matmul on :func:`device` (CPU: torch default threads)."""
    a = torch.randn(n, n, dtype=dtype, device=device())
    b = torch.randn(n, n, dtype=dtype, device=device())
    out = torch.empty(n, n, dtype=dtype, device=device())
    for _ in range(2):
        torch.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        synchronize()
        t0 = time.perf_counter()
        torch.matmul(a, b, out=out)
        synchronize()
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n**3
    return {
        "size": n,
        "repeats": repeats,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "gflops": flops / min(times) / 1e9,
        "median_gflops": flops / statistics.median(times) / 1e9,
    }


# ---- FLOP counting ---------------------------------------------------------------------------------


def encoder_shape(model: Any) -> dict[str, int]:
    """Layers, hidden size and matmul parameters (encoder layers only) of the model's transformer."""
    hf = model[0].auto_model
    cfg = hf.config
    layer_params = sum(
        p.numel()
        for name, p in hf.named_parameters()
        if not name.startswith("embeddings.") and not name.startswith("pooler.")
    )
    return {
        "layers": int(cfg.num_hidden_layers),
        "hidden": int(cfg.hidden_size),
        "layer_params": int(layer_params),
        "all_params": int(sum(p.numel() for p in hf.parameters())),
    }


def forward_flops(rows: int, length: int, shape: dict[str, int]) -> float:
    """Forward FLOPs of ``rows`` sequences padded to ``length`` tokens."""
    per_seq = 2.0 * shape["layer_params"] * length + 4.0 * shape["layers"] * length**2 * shape["hidden"]
    return rows * per_seq


def real_forward_flops(lengths: list[int], shape: dict[str, int]) -> float:
    """Forward FLOPs of the real tokens only: each sequence at its own length."""
    return sum(forward_flops(1, length, shape) for length in lengths)


class ShapeRecorder:
    """Forward pre-hook on the SentenceTransformer: records the padded shape of every forward."""

    def __init__(self, model: Any) -> None:
        self.train: list[tuple[int, int, int]] = []  # (rows, padded length, real tokens)
        self.encode: list[tuple[int, int, int]] = []
        self.train_lengths: list[int] = []  # real length of every training sequence
        self.handle = model.register_forward_pre_hook(self._hook)

    def _hook(self, module: Any, args: tuple[Any, ...]) -> None:
        features = args[0] if args else None
        # training passes a dict, SentenceTransformer.encode a BatchEncoding (a Mapping, not a dict)
        if not isinstance(features, Mapping) or "input_ids" not in features:
            return
        ids = features["input_ids"]
        mask = features.get("attention_mask")
        cu = features.get("cu_seq_lens_q")  # sentence-transformers' unpadded (flat) batch
        if cu is not None:
            lengths = (cu[1:] - cu[:-1]).tolist()
        elif mask is not None:
            lengths = mask.sum(1).tolist()
        else:
            lengths = [int(ids.shape[1])] * int(ids.shape[0])
        rows, padded = (len(lengths), max(lengths, default=0)) if cu is not None else tuple(ids.shape)
        record = (int(rows), int(padded), int(sum(lengths)))
        if torch.is_grad_enabled() and module.training:
            self.train.append(record)
            self.train_lengths.extend(int(n) for n in lengths)
        else:
            self.encode.append(record)

    def close(self) -> None:
        self.handle.remove()


class GroupingLog(list):
    """Stands in for ``factory.samplers``: wraps each new sampler's ``epoch_order`` so that the
    grouping stats of every epoch are kept (the sampler resets ``stats`` at each epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[dict[str, float]] = []

    def append(self, sampler: Any) -> None:
        super().append(sampler)
        original = sampler.epoch_order
        log = self.epochs

        def epoch_order(epoch: int | None = None) -> Any:
            before = sampler.stats
            order = original(epoch)
            if sampler.stats is not before:  # recomputed for a new epoch
                log.append(dict(sampler.stats))
            return order

        sampler.epoch_order = epoch_order


class StepTimer:
    """Trainer callback: wall time spent between ``on_step_begin`` and ``on_step_end``."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                timer._t0 = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                timer.step_s.append(time.perf_counter() - timer._t0)

        self.callback = _Callback()
        self.step_s: list[float] = []
        self._t0 = 0.0


# ---- the two sides -----------------------------------------------------------------------------------


def training_args(out: str, batch: int, steps: int, **extra: Any) -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=out,
        **extra,
        per_device_train_batch_size=batch,
        max_steps=steps,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        dataloader_pin_memory=False,
        disable_tqdm=True,
        seed=0,
    )


def bscl_trainer(
    side: str,
    task: Any,
    train: Any,
    model: Any,
    out: str,
    batch: int,
    steps: int,
    callback: Any,
    bf16: bool = False,
) -> tuple[Any, Any]:
    """The trainer of a bscl side, from ``bscl train``'s run builder: BSC (tau 0.1, labeled negatives
    below 0.6), ``example`` batches of groups of 8 reusing the training embeddings (+ the side's sampler
    options), ``steps`` steps on ``train``, no evaluation or checkpoints; returns it and its sampler factory."""
    import dataclasses

    from bscl.training.builder import build_trainer
    from bscl.training.config import from_dict

    cfg = from_dict(
        {
            "data": {"task": task.name},
            "batching": {
                "strategy": "example",
                "group_size": 8,
                "reuse_embeddings": True,
                **SAMPLER_OPTIONS[side],
            },
            "loss": {"name": "bsc", "tau": 0.1, "threshold": 0.6},
            "train": {"batch_size": batch, "output_dir": out},
            "hf": {
                "max_steps": steps,
                "eval_strategy": "no",
                "save_strategy": "no",
                "load_best_model_at_end": False,
                "disable_tqdm": True,
                **({"bf16": True} if bf16 else {}),
            },
        }
    )
    built = build_trainer(
        cfg, dataclasses.replace(task, train=train), model, out, seed=0, callbacks=lambda *_: [callback]
    )
    built.factory.samplers = GroupingLog()
    return built.trainer, built.factory


def st_unpad_model(model_name: str, max_seq_length: int) -> Any:
    """The model with sentence-transformers' own unpadded path: flash-attention 2 attention, which makes
    its ``Transformer`` module concatenate a text batch without padding (``unpad_inputs``)."""
    from sentence_transformers import SentenceTransformer

    from bscl.models import resolve_model_path

    try:
        import flash_attn  # noqa: F401
    except ImportError as err:
        raise SystemExit("side st-unpad needs flash_attn (pip install flash-attn) on a CUDA device") from err
    model = SentenceTransformer(
        resolve_model_path(model_name),
        local_files_only=True,
        model_kwargs={"attn_implementation": "flash_attention_2", "torch_dtype": torch.bfloat16},
    )
    model.max_seq_length = max_seq_length
    if not model[0].unpad_inputs and not getattr(model[0], "can_flatten_inputs", False):
        raise SystemExit("side st-unpad: sentence-transformers did not enable unpad_inputs for this model")
    return model


def run_side(
    side: str,
    task: Any,
    train: Any,
    batch: int,
    steps: int,
    max_seq_length: int,
    model_name: str = "minilm",
    bf16: bool = False,
) -> dict[str, Any]:
    """One timed ``trainer.train()`` of ``side`` on a fresh model."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from bscl.models import load_model

    if side == "st-unpad":
        model = st_unpad_model(model_name, max_seq_length)
    else:
        model = load_model(model_name, max_seq_length=max_seq_length, padding_free=side in PADDING_FREE_SIDES)
    shape = encoder_shape(model)
    timer = StepTimer()
    factory = None
    with tempfile.TemporaryDirectory() as out:
        if side in SAMPLER_OPTIONS:
            trainer, factory = bscl_trainer(side, task, train, model, out, batch, steps, timer.callback, bf16)
        else:
            args = training_args(out, batch, steps, **({"bf16": True} if bf16 else {}))
            data = train.remove_columns([c for c in train.column_names if c not in ("anchor", "positive")])
            loss = MultipleNegativesRankingLoss(model, scale=10)
            trainer = SentenceTransformerTrainer(
                model=model, args=args, train_dataset=data, loss=loss, callbacks=[timer.callback]
            )
        recorder = ShapeRecorder(model)
        load0 = os.getloadavg()[0]
        synchronize()
        t0 = time.perf_counter()
        trainer.train()
        synchronize()
        wall = time.perf_counter() - t0
        recorder.close()
    grouping = {
        "encode_s": 0.0,
        "knn_s": 0.0,
        "pack_s": 0.0,
        "total_s": 0.0,
        "n_encoded": 0.0,
        "n_reused": 0.0,
        "cold_start": 0.0,
    }
    if factory is not None:
        for stats in factory.samplers.epochs:
            for k in grouping:
                grouping[k] += float(stats.get(k, 0.0))
        grouping["epochs"] = len(factory.samplers.epochs)
    train_fwd = sum(forward_flops(r, length, shape) for r, length, _ in recorder.train)
    encode_fwd = sum(forward_flops(r, length, shape) for r, length, _ in recorder.encode)
    rows = sum(r for r, _, _ in recorder.train)
    padded = sum(r * length for r, length, _ in recorder.train)
    real = sum(t for _, _, t in recorder.train)
    real_train_flops = 3.0 * real_forward_flops(recorder.train_lengths, shape)
    # what the side computes: padded shapes, or only the real tokens for a padding-free side
    train_flops = real_train_flops if side in (*PADDING_FREE_SIDES, "st-unpad") else 3.0 * train_fwd
    return {
        "side": side,
        "wall_s": wall,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "pairs": rows // 2,
        "pairs_per_s": (rows // 2) / wall,
        "step_s_sum": sum(timer.step_s),
        "step_s": timer.step_s,
        "step_s_median": statistics.median(timer.step_s) if timer.step_s else float("nan"),
        "other_s": wall - sum(timer.step_s),
        "grouping": grouping,
        "train_forwards": len(recorder.train),
        "padded_tokens": padded,
        "real_tokens": real,
        "padding_efficiency": real / padded if padded else float("nan"),
        "mean_padded_length": padded / rows if rows else float("nan"),
        "train_flops": train_flops,
        "padded_train_flops": 3.0 * train_fwd,
        "real_train_flops": real_train_flops,
        "real_train_gflops_per_s": real_train_flops / wall / 1e9,
        "encode_flops": encode_fwd,
        "train_gflops_per_s": train_flops / wall / 1e9,
        "train_gflops_per_s_in_steps": train_flops / sum(timer.step_s) / 1e9
        if timer.step_s
        else float("nan"),
        "load_avg_1min_start": load0,
        "load_avg_1min_end": os.getloadavg()[0],
        "model": shape,
    }


# ---- encode pass ----------------------------------------------------------------------------------------


#: encode-pass sides: (padding-free forward, bscl's encode pass by token length)
ENCODE_SIDES = {"padded": (False, False), "padding-free": (True, False), "bscl": (True, True)}


def encode_side(side: str, texts: list[str], batch: int, max_seq_length: int, model_name: str) -> Any:
    """One timed encode pass over ``texts`` on a fresh model; returns (seconds, embeddings)."""
    from bscl.batching.encoding import encode_by_length
    from bscl.models import load_model

    padding_free, by_length = ENCODE_SIDES[side]
    model = load_model(model_name, max_seq_length=max_seq_length, padding_free=padding_free)
    synchronize()
    t0 = time.perf_counter()
    if by_length:
        emb = encode_by_length(model, texts, batch_size=batch, normalize=False, show_progress_bar=False)
    else:
        emb = model.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)
    synchronize()
    return time.perf_counter() - t0, emb


def encode_padding(texts: list[str], batch: int, max_seq_length: int, model_name: str) -> dict[str, Any]:
    """Real and padded tokens of ``model.encode``'s batches: sentence-transformers sorts the texts by
    characters, longest first, cuts batches of ``batch`` texts and pads each to its longest text. At equal
    FLOP rates a padding-free pass over the same texts is at most padded / real times as fast."""
    import numpy as np

    from bscl.batching.encoding import token_lengths
    from bscl.models import load_model

    lengths = token_lengths(load_model(model_name, max_seq_length=max_seq_length), texts)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    padded = sum(
        int(lengths[order[i : i + batch]].max()) * len(order[i : i + batch])
        for i in range(0, len(texts), batch)
    )
    real = int(lengths.sum())
    return {
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_efficiency": real / padded,
        "bound": padded / real,
    }


def encode_benchmark(
    texts: list[str], batch: int, rounds: int, max_seq_length: int, model_name: str
) -> dict[str, Any]:
    """Sentences/s of the encode sides, alternating; embeddings compared with the padded ones."""
    import numpy as np

    for side in ENCODE_SIDES:  # warm-up
        encode_side(side, texts[:batch], batch, max_seq_length, model_name)
    times: dict[str, list[float]] = {side: [] for side in ENCODE_SIDES}
    diff = 0.0
    for rnd in range(rounds):
        order = list(ENCODE_SIDES) if rnd % 2 == 0 else list(ENCODE_SIDES)[::-1]
        embs = {}
        for side in order:
            seconds, embs[side] = encode_side(side, texts, batch, max_seq_length, model_name)
            times[side].append(seconds)
        diff = max(diff, *(float(np.abs(embs[s] - embs["padded"]).max()) for s in ENCODE_SIDES))
    out: dict[str, Any] = {"texts": len(texts), "batch_size": batch, "max_abs_diff": diff}
    for name, ts in times.items():
        out[name] = {"seconds": ts, "sentences_per_s": len(texts) / statistics.median(ts)}
    out["ratio_padding_free"] = out["padding-free"]["sentences_per_s"] / out["padded"]["sentences_per_s"]
    out["ratio"] = out["bscl"]["sentences_per_s"] / out["padded"]["sentences_per_s"]
    out["padding"] = encode_padding(texts, batch, max_seq_length, model_name)
    print(
        f"encode {len(texts)} texts: model.encode padded {out['padded']['sentences_per_s']:.1f}/s, "
        f"padding-free {out['padding-free']['sentences_per_s']:.1f}/s, bscl's pass "
        f"{out['bscl']['sentences_per_s']:.1f}/s (ratio {out['ratio']:.3f}; max |diff| {diff:.1e})",
        flush=True,
    )
    return out


# ---- report -------------------------------------------------------------------------------------------


def _median_run(result: dict[str, Any], side: str) -> dict[str, float]:
    runs = [r for r in result["runs"] if r["side"] == side]
    return {
        key: statistics.median(r[key] for r in runs)
        for key in ("wall_s", "step_s_sum", "train_flops", "padded_train_flops")
    }


def bound_line(result: dict[str, Any], side: str, target: float) -> str:
    """What the ratio target asks of a padding-free side's steps, from the medians of this run: the
    FLOP rate its steps would need with its time outside the steps (the sampler's encode pass, the loop)
    unchanged, against st's rate and the peak; and the ratio at st's own FLOP rate."""
    st, side_run = _median_run(result, "st"), _median_run(result, side)
    peak = result["peak_gflops"]
    outside = side_run["wall_s"] - side_run["step_s_sum"]  # encode pass + loop, not steps
    st_rate = st["train_flops"] / st["wall_s"] / 1e9
    budget = st["wall_s"] / target - outside
    need = side_run["train_flops"] / budget / 1e9 if budget > 0 else float("inf")
    at_st_rate = st["wall_s"] / (side_run["train_flops"] / st_rate / 1e9 + outside)
    return (
        f"bound: st computes {st['padded_train_flops'] / side_run['train_flops']:.2f}x the FLOPs of {side}; "
        f"{side} spends {outside:.1f} s outside its steps, so the {target}x target needs its steps at "
        f"{need:.1f} GFLOP/s ({need / peak:.2f} of the peak; st runs at {st_rate:.1f} = {st_rate / peak:.2f}); "
        f"at st's FLOP rate the ratio would be {at_st_rate:.2f}"
    )


def markdown(result: dict[str, Any]) -> str:
    peak = result["peak_gflops"]
    lines = [
        "| side | round | load (start/end) | wall (s) | steps (s) | grouping (s) | other (s) | pairs | pairs/s | "
        "mean padded len | padding eff. | train GFLOP (computed) | GFLOP/s | MFU | real-token MFU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['side']} | {r['round']} | {r['load_avg_1min_start']:.1f}/{r['load_avg_1min_end']:.1f} | "
            f"{r['wall_s']:.1f} | {r['step_s_sum']:.1f} | {r['grouping']['total_s']:.1f} | "
            f"{r['other_s'] - r['grouping']['total_s']:.1f} | {r['pairs']} | {r['pairs_per_s']:.2f} | "
            f"{r['mean_padded_length']:.1f} | {r['padding_efficiency']:.2f} | {r['train_flops'] / 1e9:.0f} | "
            f"{r['train_gflops_per_s']:.1f} | {r['train_gflops_per_s'] / peak:.3f} | "
            f"{r['real_train_gflops_per_s'] / peak:.3f} |"
        )
    s = result["summary"]
    lines += [
        "",
        "| side | median pairs/s | median GFLOP/s | MFU (whole train()) | MFU (inside steps) | real-token MFU |",
        "|---|---|---|---|---|---|",
    ]
    for side in result["config"]["sides"]:
        m = s[side]
        lines.append(
            f"| {side}: {LABELS[side]} | {m['pairs_per_s']:.2f} | {m['gflops_per_s']:.1f} | "
            f"{m['mfu']:.3f} | {m['mfu_in_steps']:.3f} | {m['real_mfu']:.3f} |"
        )
    lines.append("")
    task = result["config"]["task"]
    for side, ratio in s["ratios"].items():
        if side in PADDING_FREE_SIDES:
            target = f"target >= {RATIO_TARGETS[task]} on {task}; real-token MFU target >= {REAL_MFU_TARGET}"
        elif side == "st-unpad":
            target = "sentence-transformers' own unpadded path, no target"
        else:
            target = "target >= 1.05; MFU target >= 0.70"
        lines.append(
            f"ratio {side} / st (median pairs/s): **{ratio:.3f}**; {side} MFU **{s[side]['mfu']:.3f}**, "
            f"real-token MFU **{s[side]['real_mfu']:.3f}**, st MFU {s['st']['mfu']:.3f} ({target})"
        )
        if side in PADDING_FREE_SIDES and task in RATIO_TARGETS:
            lines.append(bound_line(result, side, RATIO_TARGETS[task]))
    dtype = "bf16" if result["config"].get("bf16") else "fp32"
    lines.append(f"peak {dtype} matmul {peak:.1f} GFLOP/s ({result['peak'][0]['size']}^2, best of start/end)")
    enc = result.get("encode")
    if enc:
        lines.append(
            f"encode pass ({enc['texts']} texts, batch {enc['batch_size']}): model.encode padded "
            f"{enc['padded']['sentences_per_s']:.1f} sentences/s, padding-free "
            f"{enc['padding-free']['sentences_per_s']:.1f}, bscl's pass by token length "
            f"{enc['bscl']['sentences_per_s']:.1f}: **ratio {enc['ratio']:.3f}** (target >= {ENCODE_TARGET}; "
            f"max |embedding diff| {enc['max_abs_diff']:.1e})"
        )
        pad = enc.get("padding")
        if pad:
            lines.append(
                f"bound: model.encode's batches hold {pad['real_tokens']} real of {pad['padded_tokens']} tokens "
                f"(padding efficiency {pad['padding_efficiency']:.2f}): at equal FLOP rates a padding-free pass "
                f"is at most {pad['bound']:.2f}x as fast"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per run")
    parser.add_argument(
        "--warmup-steps", type=int, default=2, help="steps of the untimed warm-up run per side"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per side, alternating")
    parser.add_argument("--epochs", type=int, default=1, help="epochs the --steps cover (sets the subset)")
    parser.add_argument("--train-subset", type=int, default=None, help="pairs (default steps*batch/epochs)")
    parser.add_argument("--max-seq-length", type=int, default=90)
    parser.add_argument("--task", default="stsb", choices=TASKS, help="stsb (short texts) or cqa-a (long)")
    parser.add_argument(
        "--model", default="minilm", help="model name for bscl.models.load_model (tiny: smoke)"
    )
    parser.add_argument("--peak-size", type=int, default=2048)
    parser.add_argument("--peak-repeats", type=int, default=10)
    parser.add_argument(
        "--encode", type=int, default=0, help="also time the encode pass on this many texts (0: skip)"
    )
    parser.add_argument("--encode-batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--sides",
        default=",".join(s for s in SIDES if s != "st-unpad"),
        help=f"comma-separated, from {', '.join(SIDES)}",
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 training and peak (CUDA)")
    args = parser.parse_args()
    sides = [x.strip() for x in args.sides.split(",") if x.strip()]
    if "st" not in sides or any(x not in SIDES for x in sides):
        parser.error(f"--sides must include st and name only {', '.join(SIDES)} (got {args.sides!r})")

    import transformers

    from bscl.data import load_task

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    task = load_task(args.task)
    n = args.train_subset or math.ceil(args.steps * args.batch_size / args.epochs)
    n = min(n, len(task.train))
    train = task.train.shuffle(seed=0).select(range(n))  # what ``bscl train --data.train_subset n`` takes
    print(
        f"{task.name} train subset: {n} of {len(task.train)} pairs; model {args.model}, batch {args.batch_size}, "
        f"{args.steps} steps, {torch.get_num_threads()} threads; load average {os.getloadavg()}",
        flush=True,
    )

    peak_dtype = torch.bfloat16 if args.bf16 else torch.float32
    peaks = [peak_matmul_gflops(args.peak_size, args.peak_repeats, peak_dtype)]
    print(f"peak matmul (start): {peaks[0]['gflops']:.1f} GFLOP/s", flush=True)

    warm = train.select(range(min(n, args.warmup_steps * args.batch_size)))
    for side in sides:
        t0 = time.perf_counter()
        run_side(
            side, task, warm, args.batch_size, args.warmup_steps, args.max_seq_length, args.model, args.bf16
        )
        print(f"warm-up {side}: {time.perf_counter() - t0:.1f} s", flush=True)

    config = {**vars(args), "out": str(args.out) if args.out else None, "train_pairs": n, "sides": sides}
    runs = []
    for rnd in range(args.rounds):
        for side in sides[rnd % len(sides) :] + sides[: rnd % len(sides)]:  # rotate who goes first
            r = run_side(
                side, task, train, args.batch_size, args.steps, args.max_seq_length, args.model, args.bf16
            )
            r["round"] = rnd + 1
            runs.append(r)
            if args.out is not None:  # partial results, in case the run is cut short
                args.out.parent.mkdir(parents=True, exist_ok=True)
                partial = {"config": config, "partial": True, "peak": peaks, "runs": runs}
                args.out.write_text(json.dumps(partial, indent=2))
            print(
                f"round {rnd + 1} {side}: {r['wall_s']:.1f} s, {r['pairs_per_s']:.2f} pairs/s, "
                f"steps {r['step_s_sum']:.1f} s, grouping {r['grouping']['total_s']:.1f} s, "
                f"{r['train_gflops_per_s']:.1f} GFLOP/s ({r['real_train_gflops_per_s']:.1f} on real tokens), "
                f"load {r['load_avg_1min_end']:.2f}",
                flush=True,
            )

    encode = None
    if args.encode > 0:
        texts = list(dict.fromkeys(task.train.shuffle(seed=1)["anchor"]))[: args.encode]
        encode = encode_benchmark(texts, args.encode_batch_size, args.rounds, args.max_seq_length, args.model)

    peaks.append(peak_matmul_gflops(args.peak_size, args.peak_repeats, peak_dtype))
    print(f"peak matmul (end): {peaks[1]['gflops']:.1f} GFLOP/s", flush=True)
    peak = max(p["gflops"] for p in peaks)

    summary: dict[str, Any] = {}
    for side in sides:
        mine = [r for r in runs if r["side"] == side]
        gf = statistics.median(r["train_gflops_per_s"] for r in mine)
        gf_steps = statistics.median(r["train_gflops_per_s_in_steps"] for r in mine)
        summary[side] = {
            "pairs_per_s": statistics.median(r["pairs_per_s"] for r in mine),
            "gflops_per_s": gf,
            "mfu": gf / peak,
            "mfu_in_steps": gf_steps / peak,
            "real_mfu": statistics.median(r["real_train_gflops_per_s"] for r in mine) / peak,
        }
    summary["ratios"] = {
        side: summary[side]["pairs_per_s"] / summary["st"]["pairs_per_s"] for side in sides if side != "st"
    }
    summary["targets_met"] = {}
    for side, ratio in summary["ratios"].items():
        if side in PADDING_FREE_SIDES:
            summary["targets_met"][side] = {
                f"ratio>={RATIO_TARGETS[args.task]}": ratio >= RATIO_TARGETS[args.task],
                f"real_mfu>={REAL_MFU_TARGET}": summary[side]["real_mfu"] >= REAL_MFU_TARGET,
            }
        elif side != "st-unpad":
            summary["targets_met"][side] = {
                "ratio>=1.05": ratio >= 1.05,
                "mfu>=0.70": summary[side]["mfu"] >= 0.70,
            }
    if encode is not None:
        summary["targets_met"]["encode"] = {f"ratio>={ENCODE_TARGET}": encode["ratio"] >= ENCODE_TARGET}
    result = {
        "config": config,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "load_avg_end": os.getloadavg(),
        },
        "peak": peaks,
        "peak_gflops": peak,
        "runs": runs,
        "summary": summary,
        "encode": encode,
    }
    print()
    print(markdown(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
