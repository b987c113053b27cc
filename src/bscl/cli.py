"""The ``bscl`` command line.

    bscl train [--config run.yaml] [--data.task stsb] [--loss.tau=0.07] [--train.epochs 1] ...
    bscl eval --task stsb --model minilm [--split test]
    bscl reproduce stsb [--epochs 1 --train-subset 2000 --seeds 1 --model minilm]
    bscl compare stsb [--seeds 3 --recipes bscl-paper,st-cosent --epochs 1]; bscl results
    bscl encode / rank / report (see ``bscl COMMAND --help``)

``train`` options are generated from the config dataclasses (:mod:`bscl.training.config`): every field
``x`` of stage ``s`` is ``--s.x``. A YAML file (``--config``) gives the base; command-line options
override it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bscl.training import config as C


def _base(ns: argparse.Namespace) -> C.RunConfig:
    """The recipe of the task a ``bscl train`` names (command line, else YAML, else the default task),
    for the loss it names: the base under the YAML and the command line (issue 12)."""
    named = (
        C.load_yaml(ns.config, C.RunConfig(C.DataConfig(task=""), loss=C.LossConfig(name="")))
        if ns.config
        else None
    )
    task = getattr(ns, "data.task", None) or (named and named.data.task) or C.DataConfig().task
    return C.base_config(task, loss=getattr(ns, "loss.name", None) or (named and named.loss.name) or None)


def _train(ns: argparse.Namespace) -> int:
    from bscl.training import config as C

    cfg = C.load_yaml(ns.config, _base(ns)) if ns.config else _base(ns)
    cfg = C.from_args(ns, cfg)
    from bscl.run import run_training

    run_training(cfg)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from bscl.evaluation import command as eval_command
    from bscl.reporting import commands as reporting_commands
    from bscl.training import config as C

    parser = argparse.ArgumentParser(
        prog="bscl", description="Batch-softmax contrastive fine-tuning of sentence embeddings"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="fine-tune a bi-encoder on a task and evaluate it")
    train.add_argument("--config", help="YAML file with sections data, batching, loss, train, eval")
    C.add_arguments(train)
    train.set_defaults(func=_train)
    eval_command.register(sub)
    reporting_commands.register(sub)
    from bscl import reproduce

    reproduce.register(sub)
    from bscl import compare
    from bscl.reporting import records

    compare.register(sub)
    records.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    ns = parser.parse_args(argv)
    ns.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if ns.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return ns.func(ns) or 0
    except (ValueError, FileNotFoundError) as err:
        print(f"bscl {ns.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bscl {ns.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
