"""Where the time of one default-recipe training run goes: wall-clock spans plus ``torch.profiler``.

The run is one cell of ``bscl compare`` (by default ``make run``'s ``bscl-paper`` cell: STSb, the
paper's recipe -- combo loss, kNN example shuffling re-encoded every epoch, tau 0.1, mu 0.1 -- on the
1,500-pair subset for 2 epochs), built exactly as ``bscl compare`` / ``bscl train`` build it
(:func:`bscl.experiments.compare.cell_config`, :func:`bscl.training.builder.build_trainer`), and timed
like ``train_seed``: ``trainer.train()`` (what the records call ``train_seconds``), then the final
dev + test evaluation of the chosen model.

Wall-clock spans (``time.perf_counter``; each span's *own* time, children subtracted) split it into:

================================  =====================================================================
part                              what is timed
================================  =====================================================================
sampler grouping                  ``ContrastiveBatchSampler.epoch_order`` without its encode pass (kNN,
                                  Algorithm 1)
sampler encode pass               the sampler's encoder (one forward pass over the grouping texts)
collation + tokenization          the trainer's data collator (tokenizes each batch)
encoder forward                   the sentence-transformers ``Transformer`` module in training,
                                  attention excluded
attention forward                 the attention function (padding-free: one SDPA call per sentence)
loss (+ pooling)                  the loss module's forward without the encoder: pooling, normalisation,
                                  the loss itself
backward                          ``accelerator.backward`` (attention's share from the profiler window)
grad norm + clipping              ``_clip_grad_norm`` / ``_get_grad_norm`` (incl. the non-finite guard)
optimizer                         ``optimizer.step()`` (between the pre/post optimizer-step callbacks)
dev evaluation                    ``trainer.evaluate`` (the per-epoch dev evaluator)
checkpointing                     ``_save_checkpoint`` and loading the best model at the end
rest                              everything else inside ``trainer.train()`` (the loop, logging,
                                  callbacks, learning-rate schedule, dataloader plumbing)
final evaluation                  dev + test of the chosen model, after ``trainer.train()``
================================  =====================================================================

``torch.profiler`` runs over a window of training steps only (``--profile-steps``; profiling a whole
run slows it down several-fold): it gives the operator table (self CPU time) and the share of
``backward`` spent in attention's backward (SDPA backward plus its split/cat), which is applied to the
whole run's backward time. Each span also opens a ``record_function`` range, so the exported trace
(``--trace``) shows the same parts.

Output: a Markdown table (for the results page) on stdout and in ``--markdown``, the numbers in
``--out`` (JSON).

Usage (the default cell takes ~2 minutes on 2 idle cores; timings on a shared machine are not
measurements)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/profile_run.py --out runs/logs/profile_run.json \\
        --markdown runs/logs/profile_run.md
    # the MNRL cell of the same compare, for the per-step comparison
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/profile_run.py --recipe st-mnrl --out runs/logs/profile_mnrl.json
    # smoke run (seconds): tiny model, 64 pairs, 1 epoch
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/profile_run.py --model tiny --train-subset 64 --epochs 1 \\
        --profile-steps 2
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

#: the parts of the table, in order (``rest`` and ``final evaluation`` are computed)
PARTS = (
    "sampler grouping",
    "sampler encode pass",
    "collation + tokenization",
    "encoder forward",
    "attention forward",
    "loss (+ pooling)",
    "backward (without attention)",
    "attention backward",
    "grad norm + clipping",
    "optimizer",
    "dev evaluation",
    "checkpointing",
    "rest",
)


#: the profiler's matrix-multiply operators (their FLOPs are counted with ``with_flops``)
MATMULS = ("aten::mm", "aten::addmm", "aten::bmm")


class Spans:
    """Nested wall-clock spans; each part accumulates its own time (children subtracted) and calls."""

    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[Any]] = []  # [name, start, children's time, record_function]

    def start(self, name: str) -> None:
        rf = torch.profiler.record_function(name)
        rf.__enter__()
        self._stack.append([name, time.perf_counter(), 0.0, rf])

    def stop(self, name: str) -> None:
        if not self._stack or self._stack[-1][0] != name:
            raise RuntimeError(f"span {name!r} closed out of order (open: {[s[0] for s in self._stack]})")
        _, start, children, rf = self._stack.pop()
        rf.__exit__(None, None, None)
        total = time.perf_counter() - start
        self.own[name] += total - children
        self.calls[name] += 1
        if self._stack:
            self._stack[-1][2] += total

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        self.start(name)
        try:
            yield
        finally:
            self.stop(name)

    def wrap(
        self, fn: Callable[..., Any], name: str, when: Callable[[], bool] | None = None
    ) -> Callable[..., Any]:
        """``fn`` timed as ``name`` (only while ``when()`` holds, if given)."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if when is not None and not when():
                return fn(*args, **kwargs)
            with self.span(name):
                return fn(*args, **kwargs)

        return timed

    def patch(self, obj: Any, attr: str, name: str, when: Callable[[], bool] | None = None) -> None:
        setattr(obj, attr, self.wrap(getattr(obj, attr), name, when))


def training_forward() -> bool:
    """A forward with autograd on: a training step (encode passes and evaluation run without)."""
    return torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


def instrument(trainer: Any, factory: Any, spans: Spans) -> None:
    """Wrap the parts of ``trainer`` (and its batch-sampler ``factory``) in spans."""
    from transformers import AttentionInterface, TrainerCallback

    from bscl.padding_free import ATTENTION_NAME, is_padding_free

    model = trainer.model
    transformer = model[0]
    transformer.register_forward_pre_hook(
        lambda *_: spans.start("encoder forward") if training_forward() else None
    )
    transformer.register_forward_hook(
        lambda *_: spans.stop("encoder forward") if training_forward() else None
    )
    if is_padding_free(model):
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        AttentionInterface.register(
            ATTENTION_NAME,
            spans.wrap(ALL_ATTENTION_FUNCTIONS[ATTENTION_NAME], "attention forward", training_forward),
        )
    loss = trainer.loss
    loss.forward = spans.wrap(loss.forward, "loss (+ pooling)", training_forward)
    spans.patch(trainer.accelerator, "backward", "backward (without attention)")
    spans.patch(trainer, "_clip_grad_norm", "grad norm + clipping")
    spans.patch(trainer, "_get_grad_norm", "grad norm + clipping")
    spans.patch(trainer, "evaluate", "dev evaluation")
    spans.patch(trainer, "_save_checkpoint", "checkpointing")
    spans.patch(trainer, "_load_best_model", "checkpointing")
    collator = trainer.data_collator
    collator.__class__ = type(
        "Timed" + type(collator).__name__,
        (type(collator),),
        {"__call__": spans.wrap(type(collator).__call__, "collation + tokenization")},
    )

    class OptimizerSpan(TrainerCallback):
        def on_pre_optimizer_step(self, *args: Any, **kwargs: Any) -> None:
            spans.start("optimizer")

        def on_optimizer_step(self, *args: Any, **kwargs: Any) -> None:
            spans.stop("optimizer")

    trainer.add_callback(OptimizerSpan())
    if factory is None:
        return
    make = trainer.get_batch_sampler

    def build_sampler(*args: Any, **kwargs: Any) -> Any:
        sampler = make(*args, **kwargs)
        if sampler in factory.samplers:  # bscl's sampler (not an evaluation dataset's)
            spans.patch(sampler, "epoch_order", "sampler grouping")
            if sampler.encoder is not None:
                sampler.encoder = spans.wrap(sampler.encoder, "sampler encode pass")
        return sampler

    trainer.get_batch_sampler = build_sampler


def attention_backward(events: list[Any]) -> tuple[float, float]:
    """(seconds of attention's backward, seconds of the whole backward) in profiler ``events``.

    The backward of an operator is the autograd node it created, which the profiler records as
    ``autograd::engine::evaluate_function: ...`` with the forward operator's ``sequence_nr``: the
    attention backward is the nodes whose forward operator ran inside an ``attention forward`` range
    (with dropout, SDPA on the CPU decomposes into bmm / softmax / dropout, so names alone cannot tell).
    """
    ranges = [(e.time_range.start, e.time_range.end) for e in events if e.name == "attention forward"]
    ranges.sort()
    starts = [r[0] for r in ranges]
    import bisect

    def inside(t: float) -> bool:
        i = bisect.bisect_right(starts, t) - 1
        return i >= 0 and ranges[i][0] <= t <= ranges[i][1]

    node = "autograd::engine::evaluate_function: "
    forward_nrs = {
        e.sequence_nr
        for e in events
        if e.sequence_nr >= 0 and not e.name.startswith(node) and inside(e.time_range.start)
    }
    attention = sum(
        e.cpu_time_total for e in events if e.name.startswith(node) and e.sequence_nr in forward_nrs
    )
    backward = sum(e.cpu_time_total for e in events if e.name == "backward (without attention)")
    return attention / 1e6, backward / 1e6


class ProfilerWindow:
    """``torch.profiler`` over training steps ``[start, start + steps)`` (a trainer callback)."""

    def __init__(self, start: int, steps: int, trace: Path | None) -> None:
        from transformers import TrainerCallback

        self.result: Any = None
        self.overhead_s = 0.0  # the profiler's own calls, outside the training steps' parts
        self.trace = trace
        self.steps = steps
        window = self
        schedule = torch.profiler.schedule(wait=max(0, start - 1), warmup=1, active=steps, repeat=1)

        def ready(prof: Any) -> None:
            window.result = prof
            if window.trace is not None:
                prof.export_chrome_trace(str(window.trace))

        self.profiler = torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]
            + ([torch.profiler.ProfilerActivity.CUDA] if torch.cuda.is_available() else []),
            schedule=schedule,
            on_trace_ready=ready,
            with_flops=True,
        )

        class Step(TrainerCallback):
            # the profiler's own start / step / stop (collecting its window's events) is timed apart:
            # it is measurement, not training
            def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
                with window.timed():
                    window.profiler.__enter__()

            def on_step_end(self, *args: Any, **kwargs: Any) -> None:
                with window.timed():
                    window.profiler.step()

            def on_train_end(self, *args: Any, **kwargs: Any) -> None:
                with window.timed():
                    window.profiler.__exit__(None, None, None)

        self.callback = Step()

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.overhead_s += time.perf_counter() - t0

    def summary(self, top: int = 15) -> dict[str, Any]:
        """The top operators by self CPU time and attention's share of the backward in the window."""
        if self.result is None:
            return {}
        events = self.result.key_averages()
        total_self = sum(e.self_cpu_time_total for e in events) or 1.0
        ops = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
        rows = [
            {
                "op": e.key,
                "self_cpu_s": e.self_cpu_time_total / 1e6,
                "share": e.self_cpu_time_total / total_self,
                "calls": e.count,
            }
            for e in ops
            if not e.key.startswith(tuple(PARTS)) and e.key not in ("ProfilerStep*",)
        ][:top]
        attention_bwd, backward = attention_backward(self.result.events())
        matmuls = [e for e in events if e.key in MATMULS]
        matmul_s = sum(e.self_cpu_time_total for e in matmuls) / 1e6
        matmul_flops = float(sum(e.flops for e in matmuls))
        return {
            "window_self_cpu_s": total_self / 1e6,
            "matmul_self_cpu_s": matmul_s,
            "matmul_flops": matmul_flops,
            "matmul_gflops_per_s": matmul_flops / matmul_s / 1e9 if matmul_s else 0.0,
            "matmul_share": matmul_s / (total_self / 1e6),
            "top_ops": rows,
            "window_backward_s": backward,
            "window_attention_backward_s": attention_bwd,
            "attention_share_of_backward": attention_bwd / backward if backward else 0.0,
        }


def markdown(result: dict[str, Any]) -> str:
    """The results-page table of :func:`profile` 's result."""
    parts = result["parts"]
    train_s = result["train_seconds"]
    steps = result["steps"]
    lines = [
        f"| part | seconds | share of train() | ms per step ({steps} steps) | calls |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in PARTS:
        p = parts[name]
        lines.append(
            f"| {name} | {p['seconds']:.2f} | {p['seconds'] / train_s:.1%} | {1e3 * p['seconds'] / steps:.1f} "
            f"| {p['calls'] if p['calls'] is not None else '–'} |"
        )
    lines.append(f"| **trainer.train()** | **{train_s:.2f}** | 100% | {1e3 * train_s / steps:.1f} | |")
    lines.append(f"| final evaluation (dev + test) | {result['final_evaluation_s']:.2f} | – | – | 1 |")
    lines.append(
        f"| (torch.profiler's own calls, left out of train()) | {result.get('profiler_overhead_s', 0.0):.2f} "
        "| – | – | |"
    )
    prof = result.get("profiler") or {}
    if prof.get("top_ops"):
        lines += [
            "",
            f"torch.profiler, steps {result['config']['profile_start']}..."
            f"{result['config']['profile_start'] + result['config']['profile_steps'] - 1}: attention is "
            f"{prof['attention_share_of_backward']:.1%} of the backward. Matrix multiplies "
            f"({', '.join(f'`{m}`' for m in MATMULS)}) take {prof['matmul_share']:.1%} of the window's self CPU "
            f"time, at {prof['matmul_gflops_per_s']:.1f} GFLOP/s = "
            f"{prof['matmul_gflops_per_s'] / result['peak_gflops']:.2f} of the fp32 peak measured in the same run "
            f"({result['peak_gflops']:.1f} GFLOP/s, one 2048 x 2048 matmul). Top operators by self CPU time:",
            "",
            "| operator | self CPU (s) | share | calls |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| `{r['op']}` | {r['self_cpu_s']:.3f} | {r['share']:.1%} | {r['calls']} |"
            for r in prof["top_ops"]
        ]
    return "\n".join(lines)


def profile(ns: argparse.Namespace) -> dict[str, Any]:
    """Build the cell's trainer, instrument it, run ``train()`` and the final evaluation."""
    import transformers

    from bscl.experiments.compare import cell_config
    from bscl.models import load_model
    from bscl.paths import data_root
    from bscl.run import final_evaluation, prepare_task
    from bscl.training.builder import build_trainer

    transformers.logging.set_verbosity_error()
    from train_throughput import peak_matmul_gflops  # benchmarks/ (this script's folder)

    peak = peak_matmul_gflops(2048, 10)
    with tempfile.TemporaryDirectory() as tmp:
        cell = argparse.Namespace(
            data_root=ns.data_root,
            train_subset=ns.train_subset,
            model=ns.model,
            epochs=ns.epochs,
            output_dir=tmp,
            batch_size=ns.batch_size,
        )
        cfg = cell_config(ns.task, ns.recipe, 0, cell)
        cfg.hf = {**cfg.hf, "disable_tqdm": True}
        cfg.validate()
        task = prepare_task(cfg, data_root(cfg.data.data_root))
        tr = cfg.train
        model = load_model(tr.model, seed=0, max_seq_length=tr.max_seq_length, padding_free=tr.padding_free)
        spans = Spans()
        window = ProfilerWindow(ns.profile_start, ns.profile_steps, ns.trace)
        built = build_trainer(cfg, task, model, Path(tmp) / "seed-0", seed=0)
        trainer = built.trainer
        instrument(trainer, built.factory, spans)
        if ns.profile_steps > 0:
            trainer.add_callback(window.callback)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0 - window.overhead_s  # without the profiler's own calls
        t1 = time.perf_counter()
        final_evaluation(model, task, cfg.eval.batch_size)
        final_s = time.perf_counter() - t1
        steps = int(trainer.state.global_step)

    prof = window.summary() if ns.profile_steps > 0 else {}
    own = dict(spans.own)
    backward = own.pop("backward (without attention)", 0.0)
    share = prof.get("attention_share_of_backward", 0.0)
    parts: dict[str, dict[str, Any]] = {}
    for name in PARTS:
        if name == "backward (without attention)":
            seconds, calls = backward * (1 - share), spans.calls.get(name, 0)
        elif name == "attention backward":
            seconds, calls = backward * share, None
        elif name == "rest":
            seconds, calls = train_s - sum(own.values()) - backward, None
        else:
            seconds, calls = own.get(name, 0.0), spans.calls.get(name, 0)
        parts[name] = {"seconds": seconds, "calls": calls}
    return {
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(ns).items()},
            "run": cfg.to_dict(),
        },
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_avg_1min_start": load0,
            "load_avg_1min_end": os.getloadavg()[0],
        },
        "peak": peak,
        "peak_gflops": peak["gflops"],
        "steps": steps,
        "train_seconds": train_s,
        "final_evaluation_s": final_s,
        "profiler_overhead_s": window.overhead_s,
        "parts": parts,
        "profiler": prof,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="stsb")
    parser.add_argument("--recipe", default="bscl-paper", help="a bscl compare recipe of the task")
    parser.add_argument("--train-subset", type=int, default=1500)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--model", default="minilm", help="bscl.models.load_model name (tiny: smoke run)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--profile-start", type=int, default=3, help="first profiled step (1-based)")
    parser.add_argument("--profile-steps", type=int, default=5, help="profiled steps (0: no torch.profiler)")
    parser.add_argument("--trace", type=Path, default=None, help="write the window's Chrome trace here")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the Markdown table here")
    ns = parser.parse_args()
    result = profile(ns)
    table = markdown(result)
    m = result["machine"]
    print(
        f"{ns.task} / {ns.recipe}: {result['steps']} steps, train() {result['train_seconds']:.1f} s, "
        f"{m['threads']} threads, load {m['load_avg_1min_start']:.1f} -> {m['load_avg_1min_end']:.1f}\n"
    )
    print(table)
    for path, text in ((ns.out, json.dumps(result, indent=2)), (ns.markdown, table + "\n")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
