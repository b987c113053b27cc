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

Exit codes: 0 done; 2 bad input (an option, a data file, a model folder, an output that cannot be
used) or a run whose result is refused (a collapsed encoder, a model worse than its start, a NaN step);
1 the machine's fault during the work (disk full, a file that cannot be written or deleted:
:class:`bscl.paths.EnvironmentFault` and other ``OSError``); 130 interrupted. Each failure prints one
line naming the path or option and what to do; ``--debug`` (anywhere on the line) shows the traceback
instead.
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

    # the task's default recipe, or the one --recipe names, from the lab's recipes files
    cfg = C.parse_command_line(ns.options, recipe_lookup=recipes.recipe)
    from bscl.run import run_training

    run_training(cfg)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from bscl.evaluation import command as eval_command
    from bscl.reporting import commands as reporting_commands

    parser = Parser(prog="bscl", description="Batch-softmax contrastive fine-tuning of sentence embeddings")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the traceback (anywhere on the line)"
    )
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
    from bscl.experiments import compare, records, reproduce

    reproduce.register(sub)
    compare.register(sub)
    records.register(sub)
    return parser


def _take_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (accepted anywhere, also among ``train``'s options), and whether it
    was given."""
    return [a for a in argv if a != "--debug"], "--debug" in argv


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv, debug = _take_debug(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    # `train` hands all its options to the generated parser (:func:`bscl.training.config.parse_command_line`)
    ns, extra = parser.parse_known_args(argv)
    if ns.command == "train":
        ns.options = extra
    elif extra:  # the subcommand's own error, with suggestions from its options
        parser.commands.choices[ns.command].error(f"unrecognized arguments: {' '.join(extra)}")
    ns.argv = argv
    logging.basicConfig(
        level=logging.DEBUG if ns.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return ns.func(ns) or 0
    except KeyboardInterrupt:
        print(f"bscl {ns.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as err:
        if debug:
            raise
        print(f"bscl {ns.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the machine's fault: disk full, permissions, a read-only folder
        if debug:
            raise
        print(f"bscl {ns.command}: error: {describe_os_error(err)}", file=sys.stderr)
        return 1


def describe_os_error(err: OSError) -> str:
    """One line for an ``OSError``: its own message for bscl's :class:`~bscl.paths.EnvironmentFault`,
    else the reason and the path (``[Errno 13] Permission denied: 'x'`` -> ``x: Permission denied``)."""
    from bscl.paths import EnvironmentFault

    if isinstance(err, EnvironmentFault) or not err.strerror:
        return str(err)
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror}; check the path and free space / permissions, then run the command again"


if __name__ == "__main__":
    sys.exit(main())
