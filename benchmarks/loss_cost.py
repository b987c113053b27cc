"""Forward + backward time of each loss as a fraction of one all-MiniLM-L6-v2 training step.

For each batch size B, in the same run:
- the model step: forward + backward of all-MiniLM-L6-v2 over B real STSb pairs (2B sentences, max
  90 tokens). Large batches are processed in chunks of ``--chunk`` pairs with gradients accumulated,
  which is the same arithmetic as one step with bounded memory (the loss needs all embeddings at once,
  the encoder does not);
- each loss: forward + backward on random (B, 384) embeddings with requires_grad.

Prints a table of milliseconds and ratios (loss time / model step time). Usage::

    python benchmarks/loss_cost.py --sizes 32,256,4096 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bscl.data import load_task
from bscl.losses import functional as F
from bscl.models import load_model
from bscl.paths import data_root

LOSSES = {
    "bsc (l2, symmetric)": lambda q, a, y, i: F.bsc_loss(q, a, 0.1),
    "bsc (coordinate)": lambda q, a, y, i: F.bsc_loss(q, a, 1.2, normalization="coordinate"),
    "bsc (labels + duplicates)": lambda q, a, y, i: F.bsc_loss(q, a, 0.1, labels=y, q_ids=i, a_ids=i),
    "bsc (coordinate-l2)": lambda q, a, y, i: F.bsc_loss(q, a, 1.2, normalization="coordinate-l2"),
    "combo": lambda q, a, y, i: F.combo_loss(q, a, y, 0.1, mu=0.1),
    "pearson-combo": lambda q, a, y, i: F.pearson_combo_loss(q, a, y, 0.1, mu=0.1, q_ids=i, a_ids=i),
    "mse": lambda q, a, y, i: F.mse_cosine_loss(q, a, y),
    "triplet": lambda q, a, y, i: F.triplet_loss(q, a, y, q_ids=i),
    "pearson": lambda q, a, y, i: F.pearson_loss(q, a, y),
    "softcse-weight": lambda q, a, y, i: F.softcse_weight_loss(q, a, 0.05, beta=-1.0),
    "softcse-temperature": lambda q, a, y, i: F.softcse_temperature_loss(q, a, 0.05, gamma=0.5),
    "focal-infonce": lambda q, a, y, i: F.focal_infonce_loss(q, a, 0.05),
}


def stsb_sentences(n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` STSb training pairs' texts (repeated when ``n`` exceeds the training split)."""
    train = load_task("stsb", data_root()).train
    s1, s2 = train["anchor"], train["positive"]
    reps = -(-n // len(s1))
    return (s1 * reps)[:n], (s2 * reps)[:n]


def time_model_step(model, s1: list[str], s2: list[str], chunk: int) -> float:
    model.train()
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for lo in range(0, len(s1), chunk):
        feats = [model.preprocess(s1[lo : lo + chunk]), model.preprocess(s2[lo : lo + chunk])]
        q = model(feats[0])["sentence_embedding"]
        a = model(feats[1])["sentence_embedding"]
        # a stand-in scalar so that backward runs through the whole encoder for both columns
        (q.sum() + a.sum()).backward()
    return time.perf_counter() - start


def time_loss(fn, b: int, d: int, repeats: int) -> float:
    g = torch.Generator().manual_seed(b)
    q0, a0 = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    labels = torch.rand(b, generator=g)
    ids = torch.randint(0, max(1, b // 2), (b,), generator=g)
    times = []
    for _ in range(repeats + 1):
        q, a = q0.clone().requires_grad_(True), a0.clone().requires_grad_(True)
        start = time.perf_counter()
        fn(q, a, labels, ids).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # first call warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,256,4096")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model-repeats", type=int, default=3, help="model steps timed per size (median)")
    parser.add_argument("--chunk", type=int, default=256, help="pairs per encoder chunk in the model step")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_model("minilm", max_seq_length=90)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    sizes = [int(s) for s in args.sizes.split(",")]
    table: dict[int, dict[str, float]] = {}
    for b in sizes:
        s1, s2 = stsb_sentences(b)
        reps = args.model_repeats if b <= 1024 else 1
        step = statistics.median(time_model_step(model, s1, s2, args.chunk) for _ in range(reps))
        row = {"model step": step}
        for name, fn in LOSSES.items():
            row[name] = time_loss(fn, b, args.dim, args.repeats)
        table[b] = row
        print(f"B={b}: model step {step * 1000:.1f} ms", flush=True)

    header = "| loss | " + " | ".join(f"B={b} ms | B={b} ratio" for b in sizes) + " |"
    print()
    print(header)
    print("|" + "---|" * (1 + 2 * len(sizes)))
    print(
        "| MiniLM train step | "
        + " | ".join(f"{table[b]['model step'] * 1000:.1f} | 1" for b in sizes)
        + " |"
    )
    for name in LOSSES:
        cells = " | ".join(
            f"{table[b][name] * 1000:.2f} | {table[b][name] / table[b]['model step']:.2%}" for b in sizes
        )
        print(f"| {name} | {cells} |")
    worst = max(table[sizes[-1]][n] / table[sizes[-1]]["model step"] for n in LOSSES)
    print(f"\nworst loss / step ratio at B={sizes[-1]}: {worst:.2%} (target < 5%)")


if __name__ == "__main__":
    main()
