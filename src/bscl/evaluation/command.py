"""``bscl eval --task TASK --model NAME_OR_PATH [--split test]``: print a table, write JSON."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from bscl.data import TASKS, load_task
from bscl.paths import ensure_writable

DEFAULT_OUTPUT_DIR = Path("runs") / "eval"


def _load_model(name_or_path: str, device: str | None = None) -> Any:
    from bscl.models import load_model

    return load_model(name_or_path, device=device, padding_free=True)  # same outputs as padded, fewer FLOPs


def model_tag(model: str) -> str:
    """A file-name-safe tag that tells model folders apart: a run's chosen model (``runs/a/model``)
    and a seed's (``runs/a/seed-1/best-model``) are named after their run folder (``a``, ``a-seed-1``),
    since every run saves into a folder called ``model``; other folders and names by their own name."""
    path = Path(model)
    parts = [path.name]
    if path.name in ("model", "best-model") and path.parent.name:
        parts = [path.parent.name]
        if path.parent.name.startswith("seed-") and path.parent.parent.name:
            parts.insert(0, path.parent.parent.name)
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(p for p in parts if p) or model).strip("_")
    return tag or "model"


def default_output(task: str, model: str, split: str) -> Path:
    """``runs/eval/{task}-{model}-{split}.json`` (model: :func:`model_tag`)."""
    return DEFAULT_OUTPUT_DIR / f"{task}-{model_tag(model)}-{split}.json"


def model_identity(model: str) -> str:
    """What tells one evaluated model from another in a result file: a local folder's absolute path,
    else the name (``minilm``)."""
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


def check_default_output(output: Path, model: str) -> None:
    """Refuse to replace a default-named result of *another* model (two run folders of one name in
    different places): ValueError naming ``--output``. The same model's result is replaced."""
    if not output.is_file():
        return
    try:
        previous = json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    owner = previous.get("model_path", previous.get("model")) if isinstance(previous, dict) else None
    if owner != model_identity(model):
        raise ValueError(
            f"{output} holds the result of another model ({owner or 'unreadable'}); pass --output FILE to "
            "keep both (or delete that file)"
        )


def format_table(result: dict[str, Any]) -> str:
    """A two-column text table of the metrics, headed by task / model / split."""
    rows = [(k, f"{v:.4f}") for k, v in result["metrics"].items()]
    width = max([len(k) for k, _ in rows] + [6])
    head = f"task {result['task']}  model {result['model']}  split {result['split']}  (n = {result['n']})"
    lines = [head, f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def run_eval(
    task: str,
    model: str | Any,
    split: str = "test",
    data_root: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 64,
    seed: int = 0,
    device: str | None = None,
    task_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (a name/path for :func:`bscl.models.load_model`, or a loaded model) on a task.

    ``task_options`` go to :func:`bscl.data.load_task` (``generic``: ``train``/``dev``/``test`` files,
    column names, ``label_type``, ``score_range``; see :func:`generic_options`).

    Returns (and writes as JSON to ``output``, if given) ``{task, model, split, n, metrics, primary,
    seconds, seed, data_root, versions}``.
    """
    from bscl.evaluation.evaluators import evaluate

    if output is not None:
        ensure_writable(Path(output).parent, "--output")  # before the model and the data load
    start = time.perf_counter()
    t = load_task(task, data_root, seed=seed, **(task_options or {}))
    t.check_scorable(split)  # constant labels, one row: no metric, said before the model loads
    model_name = model if isinstance(model, str) else type(model).__name__
    loaded = _load_model(model, device) if isinstance(model, str) else model
    metrics = evaluate(loaded, t, split, batch_size=batch_size)
    value = metrics.get(t.metric)
    if not (isinstance(value, float | int) and math.isfinite(value)):
        raise ValueError(f"{t.name} {split}: the {t.metric} of {model_name} is {value}; no result is written")
    result: dict[str, Any] = {
        "task": t.name,
        "model": model_name,
        "model_path": model_identity(model) if isinstance(model, str) else model_name,
        "split": split,
        "n": len(t.split(split)),
        "primary": t.metric,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - start, 2),
        "seed": seed,
        "data_root": str(data_root) if data_root is not None else None,
        "skipped": t.skipped,
        "versions": _versions(),
    }
    if output is not None:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _versions() -> dict[str, str]:
    import sentence_transformers
    import torch

    import bscl

    return {
        "bscl": bscl.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
    }


#: the generic task's data options of ``bscl eval``: ``bscl train``'s ``--data.*`` spelling and meaning
GENERIC_OPTIONS = ("dev_file", "test_file", "text1", "text2", "label", "label_type", "label_max")


def generic_options(args: argparse.Namespace) -> dict[str, Any]:
    """``bscl eval --data.task generic``: the file of the evaluated split (``--data.test_file`` /
    ``--data.dev_file``) and the columns, as ``bscl train`` names them."""
    if args.task != "generic":
        given = [o for o in (*GENERIC_OPTIONS, "file") if getattr(args, o)]
        if given:
            raise ValueError(f"--data.{given[0]} applies to --data.task generic only")
        return {}
    path = args.file or getattr(args, f"{args.split}_file")
    if not path:
        raise ValueError(
            f"--data.task generic --split {args.split} needs --data.{args.split}_file (CSV/TSV/JSONL with a "
            "header, .parquet, .arrow or a datasets folder)"
        )
    return {
        "train": path,  # the generic loader reads a training file; here it is the evaluated file too
        "dev": path,
        "test": path,
        "text1": args.text1,
        "text2": args.text2,
        "label": args.label,
        "label_type": args.label_type,
        **({"score_range": (0.0, args.label_max)} if args.label_max else {}),
    }


def _cmd(args: argparse.Namespace) -> int:
    if args.task is None:  # not required by argparse: the earlier spelling --task may give it
        raise ValueError("--data.task is required (a named task, or generic with --data.test_file)")
    task_options = generic_options(args)
    name = Path(task_options["test"]).stem if args.task == "generic" else args.task
    output = Path(args.output) if args.output else default_output(name, args.model, args.split)
    if not args.output:
        check_default_output(output, args.model)
    result = run_eval(
        args.task,
        args.model,
        args.split,
        args.data_root,
        output,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        task_options=task_options,
    )
    print(format_table(result))
    print(f"wrote {output}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an argparse ``subparsers`` object (sets ``func``). The data options
    are ``bscl train``'s (``--data.task``, ``--data.label_max``, ...); the earlier spellings
    (``--task``, ``--label-max``, ...) still work and are not shown."""
    p = subparsers.add_parser(
        "eval",
        description="Evaluate a bi-encoder (cosine similarity) on a task's dev or test split; print a "
        "table and write JSON.",
    )
    hidden = argparse.SUPPRESS
    p.add_argument(
        "--data.task",
        dest="task",
        choices=TASKS,
        metavar="TASK",
        help=f"the task (required): {', '.join(TASKS)}; generic: your own file (--data.test_file)",
    )
    p.add_argument("--model", required=True, help="model name (minilm, mpnet, tiny) or a local folder")
    p.add_argument("--split", default="test", choices=["dev", "test"])
    p.add_argument(
        "--data.data_root",
        dest="data_root",
        default=None,
        help="data folder (default: $BSCL_DATA_ROOT or ../shared/data)",
    )
    p.add_argument("--output", default=None, help="JSON file (default: runs/eval/TASK-MODEL-SPLIT.json)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seed of the task's splits (MRPC/PFCC/CQA-B 9:1)")
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, mps, ... (default: CUDA when available)"
    )
    g = p.add_argument_group("your own data (--data.task generic; the options of bscl train)")
    g.add_argument(
        "--data.test_file",
        dest="test_file",
        default=None,
        help="the file evaluated with --split test: CSV/TSV/JSONL with a header, .parquet, .arrow "
        "or a datasets folder",
    )
    g.add_argument(
        "--data.dev_file", dest="dev_file", default=None, help="the file evaluated with --split dev"
    )
    g.add_argument(
        "--data.text1",
        dest="text1",
        default=None,
        help="first text column (default: anchor, sentence1, ...)",
    )
    g.add_argument(
        "--data.text2",
        dest="text2",
        default=None,
        help="second text column (default: positive, sentence2, ...)",
    )
    g.add_argument(
        "--data.label",
        dest="label",
        default=None,
        help="label column (default: label, score, is_duplicate)",
    )
    g.add_argument(
        "--data.label_type",
        dest="label_type",
        default=None,
        choices=["score", "binary", "positive"],
        help="the label kind (default: inferred)",
    )
    g.add_argument(
        "--data.label_max",
        dest="label_max",
        type=float,
        default=None,
        help="scores lie in [0, LABEL_MAX] and are divided by it (e.g. 5 for 0-5 STS scores)",
    )
    # the earlier spellings, still parsed, not shown (--file: the file of every split)
    p.add_argument("--file", dest="file", help=hidden)
    p.add_argument("--task", dest="task", choices=TASKS, help=hidden)
    p.add_argument("--data-root", dest="data_root", help=hidden)
    p.add_argument("--text1", dest="text1", help=hidden)
    p.add_argument("--text2", dest="text2", help=hidden)
    p.add_argument("--label", dest="label", help=hidden)
    p.add_argument("--label-type", dest="label_type", choices=["score", "binary", "positive"], help=hidden)
    p.add_argument("--label-max", dest="label_max", type=float, help=hidden)
    p.set_defaults(func=_cmd)
    return p


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m bscl.evaluation.command eval ...``) until cli.py wires it."""
    parser = argparse.ArgumentParser(prog="bscl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
