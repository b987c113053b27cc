"""Side-by-side timings of two cuts in a padding-free training run, each against what it replaced.

- **optimizer**: ``bscl.training.optim.AdamW`` (the paper's update without bias correction) on
  all-MiniLM-L6-v2's parameters: PyTorch's fused kernel against the ``torch._foreach_*`` path
  (``fused=False``), the same update;
- **one forward**: forward + backward of STSb batches (32 pairs, train mode) with both columns in one
  padding-free pass (``STLoss(one_forward=True)``) against one pass per column.

Each pair alternates for ``--rounds`` rounds in one process; medians and the ratio are printed (and
written to ``--out`` as JSON). Run on an otherwise idle machine::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/step_parts.py --out runs/step_parts.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def alternate(sides: dict[str, Callable[[], None]], rounds: int) -> dict[str, Any]:
    """Median seconds of each side over ``rounds`` alternating calls (after one warm-up call each)."""
    for fn in sides.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for rnd in range(rounds):
        for name in list(sides)[:: 1 if rnd % 2 == 0 else -1]:
            t0 = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - t0)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    old, new = list(sides)
    return {"seconds": times, "median_s": medians, "speedup": medians[old] / medians[new]}


def optimizer_part(model: Any, steps: int, rounds: int) -> dict[str, Any]:
    from bscl.training.optim import AdamW

    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opts = {
        "foreach": AdamW(params, lr=2e-5, weight_decay=0.01, correct_bias=False, fused=False),
        "fused": AdamW(params, lr=2e-5, weight_decay=0.01, correct_bias=False),
    }

    def run(opt: Any) -> Callable[[], None]:
        def go() -> None:
            for _ in range(steps):
                opt.step()

        return go

    out = alternate({name: run(opt) for name, opt in opts.items()}, rounds)
    out["per_step_ms"] = {k: 1e3 * v / steps for k, v in out["median_s"].items()}
    return out


def one_forward_part(model: Any, pairs: list[tuple[str, str]], batches: int, rounds: int) -> dict[str, Any]:
    from bscl.losses import STLoss
    from bscl.losses.modules import build_loss

    rng = random.Random(0)
    chosen = [rng.sample(pairs, 32) for _ in range(batches)]
    features = [[dict(model.preprocess([p[i] for p in b])) for i in (0, 1)] for b in chosen]
    keys = tuple(features[0][0])
    model.train()

    def run(one_forward: bool) -> Callable[[], None]:
        loss = STLoss(model, build_loss("bsc", tau=0.1), one_forward=one_forward)

        def go() -> None:
            torch.manual_seed(0)
            for cols in features:
                value = loss([{k: c[k] for k in keys} for c in cols])  # fresh dicts: the forward adds keys
                value.backward()
                model.zero_grad(set_to_none=True)

        return go

    out = alternate({"one pass per column": run(False), "one forward": run(True)}, rounds)
    out["per_batch_ms"] = {k: 1e3 * v / batches for k, v in out["median_s"].items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    ns = parser.parse_args()

    from bscl.data import load_task
    from bscl.models import load_model

    task = load_task("stsb")
    first, second = task.train.column_names[:2]
    pairs = list(zip(task.train[first], task.train[second], strict=True))
    model = load_model("minilm", max_seq_length=90, padding_free=True)
    result = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "optimizer": optimizer_part(model, steps=20, rounds=ns.rounds),
        "one_forward": one_forward_part(model, pairs, batches=12, rounds=ns.rounds),
    }
    opt, fwd = result["optimizer"], result["one_forward"]
    print(
        f"optimizer step (22.7M parameters): foreach {opt['per_step_ms']['foreach']:.1f} ms, fused "
        f"{opt['per_step_ms']['fused']:.1f} ms: {opt['speedup']:.2f}x\n"
        f"forward + backward per 32-pair batch: one pass per column {fwd['per_batch_ms']['one pass per column']:.1f} ms, "
        f"one forward {fwd['per_batch_ms']['one forward']:.1f} ms: {fwd['speedup']:.2f}x"
    )
    if ns.out is not None:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {ns.out}")


if __name__ == "__main__":
    main()
