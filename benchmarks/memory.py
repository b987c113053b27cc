"""Peak memory and time per pair of a training step, plain vs gradient-cached loss; 1 vs 2 processes.

Part 1 -- for each batch size B (default 32, 256, 1024) and each loss wrapper:
- ``plain``: :class:`bscl.losses.STLoss` (the whole batch's activations are alive at once);
- ``cached``: :class:`bscl.losses.STLoss` with ``mini_batch_size`` = ``--mini-batch`` texts per forward (GradCache);
a fresh subprocess loads all-MiniLM-L6-v2 (max 90 tokens), runs one untimed warm-up step (batches up to
``--warmup-max-batch``) and ``--steps``
timed training steps (forward, symmetric BSC loss, backward, AdamW step) on B real STSb pairs, and
reports its peak resident set size (``ru_maxrss``: the whole process, Python + torch + model
included) and, for reference, the peak above the RSS measured just before the first step.

Part 2 -- time per step of the same global batch (``--ddp-batch`` pairs, plain loss with
cross-process negatives) in 1 process vs 2 processes (DDP, gloo, loopback; each process gets
``--threads / world`` threads).

Targets: cached peak at 1024 <= 1.5 x plain peak at 32; cached time per pair within 15%
of plain. Usage::

    python benchmarks/memory.py --sizes 32,256,1024 --mini-batch 32 --steps 1 --ddp-batch 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

import torch


def stsb_pairs(n: int, offset: int = 0) -> tuple[list[str], list[str], list[float]]:
    """n STSb training pairs starting at ``offset`` (wrapping around), labels scaled to [0, 1]."""
    from bscl.data import load_task
    from bscl.paths import data_root

    train = load_task("stsb", data_root()).train
    s1, s2, y = train["anchor"], train["positive"], train["label"]
    idx = [(offset + i) % len(s1) for i in range(n)]
    return [s1[i] for i in idx], [s2[i] for i in idx], [y[i] for i in idx]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_loss(model, mode: str, mini_batch: int, gather: bool = False):
    from bscl.losses import STLoss
    from bscl.losses.modules import BSCLoss

    inner = BSCLoss(tau=0.1)
    if mode == "cached":
        return STLoss(model, inner, mini_batch_size=mini_batch, gather_across_processes=gather)
    return STLoss(model, inner, gather_across_processes=gather)


def train_steps(
    model, loss, batch: int, steps: int, rank: int = 0, world: int = 1, warmup: int = 1
) -> list[float]:
    """``warmup`` untimed steps + ``steps`` timed steps; returns the timed step durations (seconds)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    inner = model.module if hasattr(model, "module") else model
    inner.train()
    times = []
    for step in range(warmup + steps):
        # every step sees the same pairs in every configuration: global batch `step`, this rank's slice
        q, a, y = stsb_pairs(batch // world, offset=step * batch + rank * (batch // world))
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        start = time.perf_counter()
        features = [inner.preprocess(q), inner.preprocess(a)]
        value = loss(features, torch.tensor(y))
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return times


def child(ns: argparse.Namespace) -> None:
    torch.set_num_threads(ns.threads)
    torch.manual_seed(0)
    from bscl.models import load_model

    model = load_model("minilm", max_seq_length=90)
    loss = make_loss(model, ns.mode, ns.mini_batch)
    before = rss_mb()
    warmup = 1 if ns.batch <= ns.warmup_max_batch else 0
    times = train_steps(model, loss, ns.batch, ns.steps, warmup=warmup)
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "mode": ns.mode,
                "batch": ns.batch,
                "peak_rss_mb": round(peak, 1),
                "peak_above_start_mb": round(peak - before, 1),
                "s_per_step": round(sum(times) / len(times), 3),
                "ms_per_pair": round(1000 * sum(times) / len(times) / ns.batch, 3),
            }
        )
    )


def ddp_worker(rank: int, world: int, port: int, ns: argparse.Namespace, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from bscl.models import load_model

    torch.set_num_threads(max(1, ns.threads // world))
    torch.manual_seed(0)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        # find_unused_parameters=True as HF Trainer sets it for a SentenceTransformer (the pooler is unused)
        model = DistributedDataParallel(load_model("minilm", max_seq_length=90), find_unused_parameters=True)
        loss = make_loss(model, "plain", ns.mini_batch, gather=True)
        times = train_steps(model, loss, ns.ddp_batch, ns.steps, rank=rank, world=world)
        if rank == 0:
            with open(out, "w") as f:
                json.dump(
                    {"processes": world, "global_batch": ns.ddp_batch, "s_per_step": sum(times) / len(times)},
                    f,
                )
    finally:
        dist.destroy_process_group()


def ddp_child(ns: argparse.Namespace) -> None:
    import tempfile

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        mp.spawn(ddp_worker, args=(ns.world, port, ns, tmp.name), nprocs=ns.world, join=True)
        with open(tmp.name) as f:
            result = json.load(f)
    result["s_per_step"] = round(result["s_per_step"], 3)
    print(json.dumps(result))


def run_child(*args: str) -> dict:
    cmd = [sys.executable, __file__, *args]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="32,256,1024")
    p.add_argument("--mini-batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--warmup-max-batch",
        type=int,
        default=256,
        help="one untimed warm-up step for batches up to this size (larger steps amortise the start-up)",
    )
    p.add_argument(
        "--ddp-batch", type=int, default=64, help="global batch of the 1-vs-2-process timing (0: skip)"
    )
    p.add_argument("--json", default=None, help="also write the results here")
    # internal: one measurement per subprocess (ru_maxrss only grows)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ddp-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="plain", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    p.add_argument("--world", type=int, default=1, help=argparse.SUPPRESS)
    ns = p.parse_args()
    if ns.child:
        return child(ns)
    if ns.ddp_child:
        return ddp_child(ns)

    common = ["--mini-batch", str(ns.mini_batch), "--steps", str(ns.steps), "--threads", str(ns.threads)]
    common += ["--warmup-max-batch", str(ns.warmup_max_batch)]
    rows = []
    for batch in [int(b) for b in ns.sizes.split(",") if b]:
        for mode in ("plain", "cached"):
            row = run_child("--child", "--mode", mode, "--batch", str(batch), *common)
            print(json.dumps(row), flush=True)
            rows.append(row)
    ddp = []
    if ns.ddp_batch:
        for world in (1, 2):
            row = run_child("--ddp-child", "--world", str(world), "--ddp-batch", str(ns.ddp_batch), *common)
            print(json.dumps(row), flush=True)
            ddp.append(row)

    print(
        f"\nminilm, STSb pairs, max 90 tokens, mini-batch {ns.mini_batch}, {ns.steps} timed steps, {ns.threads} threads"
    )
    print("| batch | loss | peak RSS (MB) | peak above start (MB) | s / step | ms / pair |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['batch']} | {r['mode']} | {r['peak_rss_mb']:.0f} | {r['peak_above_start_mb']:.0f} | "
            f"{r['s_per_step']:.2f} | {r['ms_per_pair']:.2f} |"
        )
    by = {(r["mode"], r["batch"]): r for r in rows}
    if ("plain", 32) in by and ("cached", 1024) in by:
        ratio = by[("cached", 1024)]["peak_rss_mb"] / by[("plain", 32)]["peak_rss_mb"]
        print(f"\ncached peak @1024 / plain peak @32 = {ratio:.2f} (target <= 1.5)")
    for batch in sorted({r["batch"] for r in rows}):
        if ("plain", batch) in by and ("cached", batch) in by:
            t = by[("cached", batch)]["ms_per_pair"] / by[("plain", batch)]["ms_per_pair"]
            print(f"time per pair cached / plain @{batch} = {t:.2f} (target <= 1.15)")
    if ddp:
        print("\n| processes | global batch | s / step |\n|---|---|---|")
        for r in ddp:
            print(f"| {r['processes']} | {r['global_batch']} | {r['s_per_step']:.2f} |")
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"memory": rows, "ddp": ddp}, f, indent=1)


if __name__ == "__main__":
    main()
