"""The ``bscl`` command line.

    bscl train [--config run.yaml] [--data.task stsb] [--loss.tau=0.07] [--train.epochs 1] [--hf.bf16 true] ...
    bscl eval --data.task stsb --model minilm [--split test] [--device cuda]
    bscl reproduce stsb [--epochs 1 --train-subset 2000 --seeds 1 --model minilm]
    bscl compare stsb [--seeds 3 --recipes bscl-paper,st-cosent --epochs 1]; bscl results
    bscl compare --data.train_file pairs.csv [--data.test_file test.csv] [--output-dir runs/compare]
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
import importlib
import logging
import os
import sys

import bscl

#: every subcommand: the module whose ``register(subparsers)`` adds it, and its one-line summary. Only
#: the module of the command being run is imported, so ``bscl --help`` and ``bscl train --help`` start
#: without torch, transformers or sentence-transformers.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("bscl.cli", "fine-tune a bi-encoder on a task and evaluate it (options: bscl train --help)"),
    "eval": ("bscl.evaluation.command", "evaluate a model on a task split with the task's own metric"),
    "encode": ("bscl.reporting.commands", "encode texts from a file into a float32 .npy matrix"),
    "rank": ("bscl.reporting.commands", "rank a pool of texts for each query by cosine similarity"),
    "report": ("bscl.reporting.commands", "(re)write report.md and plots for a training run folder"),
    "reproduce": ("bscl.experiments.reproduce", "run the paper's method grid for a task beside its numbers"),
    "compare": (
        "bscl.experiments.compare",
        "bscl's recipes against sentence-transformers' own, several seeds",
    ),
    "results": ("bscl.experiments.pages", "regenerate the result tables from the records"),
}


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


class _Subparsers:
    """The subparsers object handed to a module's ``register``: each command it adds gets its summary
    from :data:`COMMANDS` (the one place of the command list)."""

    def __init__(self, sub: argparse._SubParsersAction) -> None:
        self._sub = sub

    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
        kwargs["help"] = COMMANDS[name][1]
        return self._sub.add_parser(name, **kwargs)  # type: ignore[arg-type]


def _train(ns: argparse.Namespace) -> int:
    from bscl.experiments import recipes
    from bscl.training import config as C

    # the task's default recipe, or the one --recipe names, from the lab's recipes files (on the user's
    # own pairs, those of the kind of labels the training file has)
    cfg = C.parse_command_line(ns.options, recipe_lookup=recipes.command_line_lookup(ns.options))
    from bscl.run import run_training

    run_training(cfg)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand: its options go to the generated parser
    (:func:`bscl.training.config.parse_command_line`), which prints its own help."""
    train = subparsers.add_parser("train", add_help=False)
    train.set_defaults(func=_train)


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``bscl`` parser. Every command is listed; only the one named in ``argv`` gets its options
    (its module is imported), the others are placeholders (all of them when ``argv`` is None)."""
    parser = Parser(prog="bscl", description="Batch-softmax contrastive fine-tuning of sentence embeddings")
    parser.add_argument("--version", action="version", version=f"bscl {bscl.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the traceback (anywhere on the line)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    parser.commands = sub  # type: ignore[attr-defined]
    if argv is None:
        wanted = {module for module, _ in COMMANDS.values()}
    else:
        command = _command_of(argv)
        wanted = {COMMANDS[command][0]} if command else set()
    proxy = _Subparsers(sub)
    for name, (module, summary) in COMMANDS.items():
        if module in wanted:  # its register adds all of the module's commands, with their options
            importlib.import_module(module).register(proxy)
            wanted.discard(module)
        elif name not in sub.choices:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def _take_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (accepted anywhere, also among ``train``'s options), and whether it
    was given."""
    return [a for a in argv if a != "--debug"], "--debug" in argv


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv, debug = _take_debug(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(argv)
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
