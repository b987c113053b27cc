"""The ``bscl train`` command line and value typing (jsonargparse), generated from the config dataclasses.

Every field ``x`` of section ``s`` becomes ``--s.x VALUE`` (or ``--s.x=VALUE``), its help is the
section's Google-style ``Args:`` docstring entry, choice fields list their values (from the registry
that owns each list, :func:`choices`), and no option is matched by a prefix. ``--hf.NAME`` passes any
``SentenceTransformerTrainingArguments`` option through (:mod:`bscl.training.hf`). A YAML or Python
value of one field is typed by the same jsonargparse machinery (:func:`coerce`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from typing import Any

from bscl.training.hf import HF_FROM_BSCL, HF_STAGE, hf_cli_view


def choices() -> dict[tuple[str, str], tuple[str, ...]]:
    """The allowed values of each choice option, each taken from the registry that owns the list."""
    from bscl.batching import COLD_STARTS, STRATEGIES
    from bscl.data import TASKS
    from bscl.data.tasks.generic import LABEL_TYPES
    from bscl.losses.options import NORMALIZATIONS
    from bscl.training.registry import loss_names

    return {
        ("data", "task"): tuple(TASKS),
        ("data", "negatives"): ("ranked",),
        ("data", "label_type"): LABEL_TYPES,
        ("batching", "strategy"): tuple(STRATEGIES),
        ("batching", "group_by"): ("first", "second"),
        ("batching", "cold_start"): tuple(COLD_STARTS),
        ("loss", "name"): loss_names(),
        ("loss", "normalization"): tuple(NORMALIZATIONS),
        ("loss", "combine"): ("mean", "sum"),
        ("loss", "tau_parametrization"): ("log", "alpha"),
        ("train", "if_worse"): ("fail", "warn"),
        ("eval", "split"): ("dev", "test"),
    }


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _with_choices(hint: Any, values: tuple[str, ...]) -> Any:
    """``str`` -> ``Literal[values]`` (``str | None`` -> ``Literal[values] | None``); other hints unchanged."""
    literal = typing.Literal[values]  # type: ignore[valid-type]
    if hint is str:
        return literal
    if _optional(hint) and [a for a in typing.get_args(hint) if a is not type(None)] == [str]:
        return literal | None
    return hint


def sections(cfg: Any) -> dict[str, Any]:
    """The dataclass sections of a run config instance, by name (``hf`` is a plain mapping)."""
    return {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if dataclasses.is_dataclass(getattr(cfg, f.name))
    }


def _cli_view(stage: str, section: Any) -> type:
    """A copy of a section's dataclass for the parser: defaults = ``section``'s values, choice fields as
    ``Literal`` types (the stored config keeps plain ``str``), the same docstring (help text)."""
    cls = type(section)
    hints = typing.get_type_hints(cls)
    allowed = choices()
    fields = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if (stage, f.name) in allowed:
            hint = _with_choices(hint, allowed[(stage, f.name)])
        fields.append((f.name, hint, dataclasses.field(default=getattr(section, f.name))))
    view = dataclasses.make_dataclass(cls.__name__, fields)
    view.__doc__ = cls.__doc__
    return view


#: the options that print help and exit (the trainer pass-through has its own, it is long)
HELP, HELP_HF, PRINT_CONFIG = ("-h", "--help"), "--help-hf", "--print_config"
#: the shown default of an option whose value the generic task's recipe picks from the data
PER_LABEL_KIND = "per label kind"


def _help_formatter() -> type:
    """jsonargparse's help formatter with each default stated once: the value this run would use
    (``action.shown_default``, set by :func:`train_parser`), without the type line, in wide columns."""
    from jsonargparse import DefaultHelpFormatter

    class TrainHelpFormatter(DefaultHelpFormatter):
        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 32, width=None):  # noqa: ANN001
            import shutil

            width = width or min(shutil.get_terminal_size().columns, 120)
            super().__init__(prog, indent_increment, max_help_position, width)

        def _split_lines(self, text: str, width: int) -> list[str]:
            import textwrap

            # never split a value such as focal-infonce at its hyphen
            return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

        def _get_help_string(self, action: Any) -> str:
            if getattr(action, "_jsonargparse_preexpanded_help", False):
                return action.help or ""
            text = _plain(action.help or "")
            shown = getattr(action, "shown_default", None)
            return f"{text} [default: {shown.replace('%', '%%')}]" if shown is not None else text

    return TrainHelpFormatter


def _plain(text: str) -> str:
    """Docstring text without its reStructuredText markup (``code``, :mod:`x`)."""
    return re.sub(r":\w+:`~?([^`]*)`", r"\1", text).replace("``", "")


def _summary(text: str) -> str:
    """The part of an option's docstring help before its first top-level ``; `` (the details after it
    are in the config dataclasses' docstrings and the docs)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(ch, 0)
        if depth == 0 and text.startswith("; ", i):
            return text[:i]
    return text


def _shown(value: Any) -> str | None:
    """A default as the command line spells it (None: nothing to show, the help says what unset means)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _shown_defaults(
    base: Any, per_label_kind: frozenset[tuple[str, str]]
) -> dict[str, tuple[str | None, str | None]]:
    """``dest -> (note added to the help, shown default)`` where the shown default is not the field's:
    a loss option shows the chosen loss's own value (or that the loss does not take it), and a default
    that a generic task's recipe picks from the data shows :data:`PER_LABEL_KIND`."""
    from bscl.losses.options import option_types
    from bscl.training.registry import loss_entry

    lo = base.loss
    resolved = loss_entry(lo.name).options(lo, _task_threshold(base.data.task))
    out: dict[str, tuple[str | None, str | None]] = {}
    for key in option_types():
        if key in resolved:
            out[f"loss.{key}"] = (None, _shown(resolved[key]))
        else:
            out[f"loss.{key}"] = (f"(--loss.name {lo.name} takes no {key})", None)
    for stage, name in per_label_kind:
        out[f"{stage}.{name}"] = (None, PER_LABEL_KIND)
    return out


def _task_threshold(task: str) -> float:
    """The binarization threshold a task gives the losses that take one (the task spec's)."""
    from bscl.data import get_spec

    return get_spec(task).threshold


def train_parser(
    base: Any,
    prog: str = "bscl train",
    *,
    hf: bool = True,
    per_label_kind: frozenset[tuple[str, str]] = frozenset(),
) -> Any:
    """The ``bscl train`` parser (jsonargparse): ``--config`` plus ``--stage.field`` for every field of
    every section of the run config ``base``, and (``hf``) ``--hf.NAME`` for the trainer options; the
    defaults are those of ``base``, and its help states each once: the value this run would use (a loss
    option: the chosen loss's; ``per_label_kind``: the ``(section, field)`` defaults that a generic
    task's recipe picks from the label kind of the data)."""
    from jsonargparse import SUPPRESS, ArgumentParser

    parts = sections(base)
    parser = ArgumentParser(
        prog=prog,
        usage=f"{prog} [--config FILE] [--recipe NAME] [--SECTION.OPTION VALUE ...] [--hf.NAME VALUE ...]",
        description="Fine-tune a bi-encoder on a task and evaluate it. Values are layered: the task's "
        "default recipe, then --config YAML, then these options. The defaults shown are this command's: "
        "give --data.task / --loss.name / --recipe with --help to see theirs.",
        epilog=f"{HELP_HF} lists the --hf.NAME options (any SentenceTransformerTrainingArguments field); "
        f"{PRINT_CONFIG} prints the resolved configuration (what config.yaml will hold) and exits.",
        allow_abbrev=False,  # no prefix matching: --train.epoch is an error, not --train.epochs
        exit_on_error=False,
        default_meta=False,
        formatter_class=_help_formatter(),
    )
    parser.add_argument(
        "--config",
        type=str | None,
        default=None,
        help=f"YAML file with sections {', '.join([*parts, HF_STAGE])} (options given here override it)",
    )
    parser.add_argument(
        "--recipe",
        type=str | None,
        default=None,
        help="the task's recipe to start from (default: the task's default recipe; 'paper' = the "
        "paper's best method and settings; see docs/tasks.md)",
    )
    parser.add_argument(HELP_HF, action="store_true", help="list the --hf.NAME trainer options and exit")
    for stage, section in parts.items():
        parser.add_class_arguments(_cli_view(stage, section), nested_key=stage)
    if hf:
        parser.add_class_arguments(hf_cli_view(), nested_key=HF_STAGE)
    shown = _shown_defaults(base, per_label_kind)
    for group in parser._action_groups:
        group.title = _plain(group.title or "") or group.title
    for action in parser._actions:
        dest = action.dest
        if dest in parts or dest == HF_STAGE:  # jsonargparse's --SECTION CONFIG: --config does this
            action.help = SUPPRESS
            continue
        if "." in dest and not dest.startswith("loss."):  # a loss option's clauses each name a loss
            action.help = _summary(action.help or "")
        if dest in shown:
            note, action.shown_default = shown[dest]
            action.help = f"{action.help or ''} {note}".strip() if note else action.help
        elif "." in dest and dest.split(".", 1)[0] in parts:
            action.shown_default = _shown(action.default)
        _compact_metavar(action)
    return parser


def _compact_metavar(action: Any) -> None:
    """Short option columns: a flag is ``{true,false}`` (unset is not offered as a value), a few choices
    are listed as ``{a,b}``, a long list of choices moves into the help text (``NAME``), and other
    values are named by their type (``N``, ``X``, ``TEXT``)."""
    if not action.option_strings or action.nargs == 0:
        return
    members = _members(getattr(action, "_typehint", str))  # jsonargparse's type of the option
    values = [str(v) for m in members if typing.get_origin(m) is typing.Literal for v in typing.get_args(m)]
    if bool in members:
        action.metavar = "{true,false}"
    elif values and len(",".join(values)) <= 30:
        action.metavar = "{" + ",".join(values) + "}"
    elif values:
        action.metavar = "NAME"
        text = action.help or ""
        if not all(re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", text) for v in values):  # not yet listed
            action.help = f"{text} (one of: {', '.join(values)})".lstrip()
    else:
        action.metavar = "N" if int in members else "X" if float in members else "TEXT"


def hf_help(prog: str = "bscl train") -> str:
    """The help of the ``--hf.NAME`` options (``bscl train --help-hf``)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(
        prog=prog,
        usage=f"{prog} [--hf.NAME VALUE ...]",
        description="SentenceTransformerTrainingArguments options passed through to the trainer. bscl sets "
        f"{', '.join(sorted(HF_FROM_BSCL))} from its own options (bscl train --help).",
        default_meta=False,
        formatter_class=_help_formatter(),
    )
    parser.add_class_arguments(hf_cli_view(), nested_key=HF_STAGE)
    for action in parser._actions:
        if action.dest == HF_STAGE:
            action.help = __import__("jsonargparse").SUPPRESS
    return parser.format_help()


def _pre_scan(argv: list[str], option: str) -> str | None:
    """The value of ``--option VALUE`` / ``--option=VALUE`` in ``argv`` (the last one wins), else None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value


def _none_to_null(argv: list[str]) -> list[str]:
    """Accept ``none`` / ``None`` for unset values (YAML's and jsonargparse's spelling is ``null``)."""
    out = []
    for arg in argv:
        if arg in ("none", "None"):
            arg = "null"
        elif arg.startswith("--") and "=" in arg and arg.split("=", 1)[1] in ("none", "None"):
            arg = arg.split("=", 1)[0] + "=null"
        out.append(arg)
    return out


#: ways of writing a non-finite float on the command line, and YAML's spelling of each (jsonargparse
#: reads option values as YAML, where ``inf`` is a string and ``.inf`` the number)
_FLOAT_SPELLINGS = {"inf": ".inf", "+inf": ".inf", "infinity": ".inf", "-inf": "-.inf", "-infinity": "-.inf",
                    "nan": ".nan"}  # fmt: skip


def float_options(stages: dict[str, type]) -> set[str]:
    """The ``--stage.field`` options of the float fields of the section dataclasses ``stages``."""
    return {
        f"--{stage}.{name}"
        for stage, cls in stages.items()
        for name, hint in typing.get_type_hints(cls).items()
        if float in _members(hint)
    }


def _float_spellings(argv: list[str], floats: set[str]) -> list[str]:
    """``--loss.tau inf`` / ``nan`` / ``-inf`` for a float option: the number, so that the option's owner
    rejects it with the option's range (the parser would say "Expected a float", and read ``-inf`` after
    a space as an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in floats and eq and value.strip().lower() in _FLOAT_SPELLINGS:
            arg = f"{name}={_FLOAT_SPELLINGS[value.strip().lower()]}"
        elif arg in floats and i + 1 < len(argv) and argv[i + 1].strip().lower() in _FLOAT_SPELLINGS:
            arg = f"{arg}={_FLOAT_SPELLINGS[argv[i + 1].strip().lower()]}"
            i += 1
        out.append(arg)
        i += 1
    return out


def _suggest(message: str, options: list[str]) -> str:
    """Add "did you mean --x.y?" to jsonargparse's "unrecognized arguments" message."""
    unknown = [w.split("=", 1)[0] for w in message.split() if w.startswith("--")]
    hints = []
    for opt in unknown:
        close = difflib.get_close_matches(opt, options, n=1, cutoff=0.6)
        if close:
            hints.append(f"{opt}: did you mean {close[0]}?")
    return message + ("\n" + "\n".join(hints) if hints else "")


# -- typing one value (YAML / Python mappings) ---------------------------------------------------------
_NONE_SPELLINGS = ("none", "null", "")


@functools.cache
def _value_parser(typ: Any) -> Any:
    """A one-option jsonargparse parser that types a value as ``typ``."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--value", type=typ)
    return parser


def _members(typ: Any) -> tuple[Any, ...]:
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(typ) if a is not type(None))
    return (typ,)


def _expected(typ: Any) -> str:
    """What a value of ``typ`` looks like, for the error message."""
    first = _members(typ)[0]
    if typing.get_origin(first) is typing.Literal:
        return f"one of {list(typing.get_args(first))}"
    if first is bool:
        return "true/false"
    return getattr(first, "__name__", str(first))


def _scalar_spelling(raw: Any, typ: Any) -> Any:
    """YAML scalars that name a value of ``typ`` in another type: a number for a text field, ``0`` / ``1``
    for a flag, ``inf`` / ``nan`` for a float."""
    members = _members(typ)
    if str in members and isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(raw)
    if bool in members and isinstance(raw, int) and not isinstance(raw, bool) and raw in (0, 1):
        return bool(raw)
    if float in members and isinstance(raw, str) and raw.strip().lower() in ("inf", "+inf", "-inf", "nan"):
        return float(raw)
    return raw


def coerce(raw: Any, typ: Any, where: str) -> Any:
    """``raw`` typed as ``typ`` by jsonargparse (``none`` / ``null`` / empty = None for optional fields);
    ValueError ``"{where}: expected ..., got ..."`` otherwise."""
    if _optional(typ) and (raw is None or (isinstance(raw, str) and raw.lower() in _NONE_SPELLINGS)):
        return None
    from jsonargparse import ArgumentError

    try:
        return _value_parser(typ).parse_object({"value": _scalar_spelling(raw, typ)}).value
    except ArgumentError:
        raise ValueError(f"{where}: expected {_expected(typ)}, got {raw!r}") from None
