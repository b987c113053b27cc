"""The ``bscl`` command line.

    bscl train [--config run.yaml] [--data.task stsb] [--loss.tau=0.07] [--train.epochs 1] [--hf.bf16 true] ...
    bscl eval --task stsb --model minilm [--split test] [--device cuda]
    bscl reproduce stsb [--epochs 1 --train-subset 2000 --seeds 1 --model minilm]
    bscl compare stsb [--seeds 3 --recipes bscl-paper,st-cosent --epochs 1]; bscl results
    bscl encode / rank / report (see ``bscl COMMAND --help``)

``train`` options are generated from the config dataclasses (:mod:`bscl.training.config`) by
jsonargparse: every field ``x`` of stage ``s`` is ``--s.x``, its help comes from the stage's ``Args:``
docstring, choice options list their values, and ``--hf.NAME`` reaches every
``SentenceTransformerTrainingArguments`` option. Layers: the task's base config, then ``--config``
YAML, then the options. No option is matched by a prefix (``--train.epoch`` is an error that suggests
``--train.epochs``), in every subcommand.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bscl.training import config as C


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching (``allow_abbrev=False``) for the subcommands."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        import difflib

        if message.startswith("unrecognized arguments:"):
            options = [s for a in self._actions for s in a.option_strings]
            for word in message.split()[2:]:
                close = difflib.get_close_matches(word.split("=", 1)[0], options, n=1)
                if close:
                    message += f"\n{word}: did you mean {close[0]}?"
        super().error(message)


def _train(ns: argparse.Namespace) -> int:
    from bscl.experiments import recipes

    # the task's default recipe, or the one --recipe names, from the lab's recipes files (on the user's
    # own pairs, those of the kind of labels the training file has)
    cfg = C.parse_command_line(ns.options, recipe_lookup=recipes.command_line_lookup(ns.options))
    from bscl.run import run_training

    run_training(cfg)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from bscl.evaluation import command as eval_command
    from bscl.reporting import commands as reporting_commands

    parser = Parser(prog="bscl", description="Batch-softmax contrastive fine-tuning of sentence embeddings")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    parser.commands = sub  # type: ignore[attr-defined]
    train = sub.add_parser(
        "train",
        help="fine-tune a bi-encoder on a task and evaluate it (bscl train --help lists every option)",
        add_help=False,  # `bscl train --help` is the generated parser's help
    )
    train.set_defaults(func=_train)
    eval_command.register(sub)
    reporting_commands.register(sub)
    from bscl.experiments import compare, pages, reproduce

    reproduce.register(sub)
    compare.register(sub)
    pages.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    # `train` hands all its options to the generated parser (:func:`bscl.training.config.parse_command_line`)
    ns, extra = parser.parse_known_args(argv)
    if ns.command == "train":
        ns.options = extra
    elif extra:  # the subcommand's own error, with suggestions from its options
        parser.commands.choices[ns.command].error(f"unrecognized arguments: {' '.join(extra)}")
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
