"""Zero-shot numbers of pretrained bi-encoders on every available task.

    python benchmarks/zero_shot.py --models minilm [mpnet] [--splits dev test] [--out runs/zero_shot]

Loads each model once, runs :func:`bscl.evaluation.command.run_eval` for every task in
``bscl.data.AVAILABLE_TASKS`` and split, writes one JSON per (model, task, split) under ``--out``
and prints a Markdown table (the one pasted into benchmarks/RESULTS.md, section "Zero-shot").
``wiki-unsup`` is evaluated on STSb dev/test, so it duplicates the stsb row and is left out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from bscl.data import AVAILABLE_TASKS, get_spec
from bscl.evaluation.command import run_eval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["minilm"])
    parser.add_argument("--tasks", nargs="+", default=[t for t in AVAILABLE_TASKS if t != "wiki-unsup"])
    parser.add_argument("--splits", nargs="+", default=["dev", "test"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="runs/zero_shot")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from bscl.models import load_model

    out = Path(args.out)
    rows = []
    for model_name in args.models:
        model = load_model(model_name)
        for task in args.tasks:
            for split in args.splits:
                t0 = time.perf_counter()
                res = run_eval(
                    task,
                    model,
                    split,
                    args.data_root,
                    out / f"{task}-{model_name}-{split}.json",
                    batch_size=args.batch_size,
                )
                res["model"] = model_name
                (out / f"{task}-{model_name}-{split}.json").write_text(json.dumps(res, indent=2) + "\n")
                logging.info(
                    "%s %s %s: %s (%.0fs)", model_name, task, split, res["metrics"], time.perf_counter() - t0
                )
                rows.append(res)

    print("| model | task | split | n | metrics |")
    print("|---|---|---|---|---|")
    for r in rows:
        keys = get_spec(r["task"]).metrics
        cells = ", ".join(f"{k} {r['metrics'][k]:.4f}" for k in keys if k in r["metrics"])
        print(f"| {r['model']} | {r['task']} | {r['split']} | {r['n']} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
