"""The ``hf`` section: ``SentenceTransformerTrainingArguments`` options passed through by ``bscl train``.

:data:`HF_FROM_BSCL` lists the trainer fields that bscl sets from its own options (giving them under
``hf`` is an error naming the bscl option), :data:`HF_DEFAULTS` the defaults bscl gives to others, and
:func:`hf_cli_view` the ``--hf.NAME`` options of the command line (help from the fields' metadata).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from typing import Any

#: the name of the pass-through section (a plain mapping, not a dataclass)
HF_STAGE = "hf"

#: ``SentenceTransformerTrainingArguments`` fields that bscl sets from its own options: giving them
#: under ``hf`` is an error naming the bscl option (one place for each fact)
HF_FROM_BSCL: dict[str, str] = {
    "output_dir": "--train.output_dir (each seed trains in OUTPUT_DIR/seed-N)",
    "num_train_epochs": "--train.epochs",
    "max_steps": "--train.epochs",
    "per_device_train_batch_size": "--train.batch_size",
    "per_device_eval_batch_size": "--eval.batch_size",
    "learning_rate": "--train.learning_rate (the temperature: --loss.tau_learning_rate)",
    "warmup_steps": "--train.warmup_ratio",
    "warmup_ratio": "--train.warmup_ratio",
    "weight_decay": "--train.weight_decay",
    "seed": "--train.seed",
    "data_seed": "--train.seed",
    "logging_steps": "--train.logging_steps",
    "batch_sampler": "--batching.strategy",
    "metric_for_best_model": "the task's metric (bscl picks the best epoch on dev)",
    "greater_is_better": "the task's metric",
    "resume_from_checkpoint": "--train.resume",
}
#: the defaults bscl gives to other ``SentenceTransformerTrainingArguments`` fields; ``--hf.NAME`` overrides
#: them (e.g. ``--hf.save_total_limit 3``, ``--hf.eval_strategy steps --hf.eval_steps 100 --hf.save_strategy
#: steps --hf.save_steps 100``)
HF_DEFAULTS: dict[str, Any] = {
    "lr_scheduler_type": "linear",
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "load_best_model_at_end": True,
    "report_to": "none",
    "dataloader_drop_last": False,
    "disable_tqdm": False,
    "ddp_find_unused_parameters": True,  # BERT pooler weights get no gradient (mean pooling)
    "dataloader_pin_memory": False,
}


def hf_fields() -> dict[str, dataclasses.Field]:
    """The init fields of ``SentenceTransformerTrainingArguments`` (imports sentence-transformers)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    return {f.name: f for f in dataclasses.fields(SentenceTransformerTrainingArguments) if f.init}


def check_hf_options(options: dict[str, Any]) -> None:
    """Raise ValueError for an ``hf`` option that does not exist or that another bscl option sets."""
    if not options:
        return
    if not isinstance(options, dict):
        raise ValueError(f"the hf section must be a mapping of option: value (got {options!r})")
    known = hf_fields()
    for name in options:
        if name in HF_FROM_BSCL:
            raise ValueError(f"--hf.{name} conflicts with bscl's own option: use {HF_FROM_BSCL[name]}")
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"; did you mean --hf.{close[0]}?" if close else ""
            raise ValueError(f"--hf.{name} is not a SentenceTransformerTrainingArguments option{hint}")


_SIMPLE = (bool, int, float, str)


def _hf_cli_type(hint: Any) -> Any:
    """A parser type for a TrainingArguments field: enums as ``Literal`` of their values (choices in the
    help), plain and container types kept, anything else (callables, classes) as ``str``; always ``| None``
    (None = bscl's or HF's default)."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    args = tuple(a for a in args if a is not type(None))
    enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
    if enums:
        return typing.Literal[tuple(str(m.value) for m in enums[0])] | None  # type: ignore[valid-type]
    kept = tuple(a for a in args if a in _SIMPLE or typing.get_origin(a) in (list, dict) or a in (list, dict))
    if not kept:
        return str | None
    out: Any = kept[0]
    for a in kept[1:]:
        out = out | a
    return out | None


def hf_cli_view() -> type:
    """A dataclass with every settable ``SentenceTransformerTrainingArguments`` field (default None =
    bscl's value from :data:`HF_DEFAULTS`, else HF's own), its help taken from the field's metadata."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    fields = []
    docs = []
    hints = typing.get_type_hints(SentenceTransformerTrainingArguments)
    for name, f in hf_fields().items():
        if name in HF_FROM_BSCL:
            continue
        help_text = " ".join(str(f.metadata.get("help", "")).split())
        if name in HF_DEFAULTS:
            help_text += f" [bscl sets {HF_DEFAULTS[name]!r}]"
        docs.append(f"        {name}: {help_text or 'see transformers.TrainingArguments'}")
        fields.append((name, _hf_cli_type(hints[name]), dataclasses.field(default=None)))
    view = dataclasses.make_dataclass("HFConfig", fields)
    view.__doc__ = (
        "SentenceTransformerTrainingArguments passed through (e.g. --hf.bf16 true, --hf.report_to tensorboard).\n\n"
        "    Unset options keep bscl's value (shown in brackets) or the HF default. bscl sets "
        f"{', '.join(sorted(HF_FROM_BSCL))} from its own options.\n\n    Args:\n" + "\n".join(docs) + "\n"
    )
    return view


def training_arguments(own: dict[str, Any], hf: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    """``SentenceTransformerTrainingArguments``: bscl's defaults (:data:`HF_DEFAULTS`), then ``extra``
    (e.g. the CPU-only DDP backend), then the ``hf`` section, then bscl's own fields (:data:`HF_FROM_BSCL`,
    which ``hf`` may not override)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(**{**HF_DEFAULTS, **(extra or {}), **hf, **own})
