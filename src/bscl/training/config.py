"""Typed run configuration (training layer): one dataclass per stage, loadable from YAML, overridable from the command line.

The CLI is generated from these dataclasses: every field ``x`` of stage ``s`` becomes ``--s.x VALUE``
(or ``--s.x=VALUE``). A run writes its resolved config as ``config.yaml`` next to its outputs.
Validation happens here, before any model is loaded, with messages that say what to change.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    """Which task and data to train on."""

    task: str = "stsb"  #: task name (see ``bscl.data.TASKS``)
    data_root: str | None = None  #: folder with stsb/, mrpc/, ... (default: BSCL_DATA_ROOT or ../shared/data)
    train_subset: int | None = None  #: use only the first N training pairs (after a seeded shuffle)
    eval_subset: int | None = None  #: use only the first N dev items for the per-epoch dev metric
    unsupervised: bool = False  #: SimCSE: pair each first text with itself (dropout as augmentation)
    positives_only: bool = False  #: drop training pairs whose label is below the binarization threshold
    negatives: str | None = None  #: pfcc only: "ranked" adds SBERT-ranked negatives (for MSE / triplet)
    train_file: str | None = None  #: generic task: CSV/TSV/JSONL with a header
    dev_file: str | None = None  #: generic task (default: 9:1 split of train)
    test_file: str | None = None  #: generic task
    text1: str | None = None  #: generic task: first text column
    text2: str | None = None  #: generic task: second text column
    label: str | None = None  #: generic task: label column
    label_type: str | None = None  #: generic task: score | binary | positive (default: inferred)


@dataclass
class BatchingConfig:
    """How training batches are built (see ``bscl.batching``)."""

    strategy: str = "random"  #: random | sequential | no-duplicates | example | words | clusters | neighbours
    group_size: int = 8  #: examples per kNN / shingle group (paper: 8; 4 MRPC; 5 CQA-B)
    group_by: str = "first"  #: group by the first or the second text of each pair
    reuse_embeddings: bool = False  #: reuse the previous epoch's training embeddings for grouping
    cold_start: str = "encode"  #: with reuse: group epoch 1 by one encode pass, or by "words" / "random"
    pack_by_length: bool = False  #: put groups of similar length into one batch (less padding)
    pack_window: int = 64  #: batches per packing window


def _make_loss_config() -> type:
    """``LossConfig``, derived from the losses' options dataclasses (:mod:`bscl.losses.modules`).

    Fields: ``name``, the union of every loss's options (each defaulting to ``None`` = "the chosen
    loss's own default"), and ``tau_learning_rate`` (the trainer's). The docstring's ``Args:``
    section has one help line per field, with each loss's default.
    """
    from bscl.losses.modules import LOSSES, option_help, option_types

    helps = option_help()
    fields: list[tuple[str, Any, Any]] = [("name", str, field(default="bsc"))]
    fields += [(key, typ | None, field(default=None)) for key, typ in option_types().items()]
    fields.append(("tau_learning_rate", float, field(default=1e-3)))
    lines = [f"    name: the loss: {' | '.join(LOSSES)} (default bsc)"]
    lines += [f"    {key}: {text}" for key, text in helps.items()]
    lines.append("    tau_learning_rate: learning rate of a trainable temperature (default 0.001)")
    doc = (
        "The loss and its options (see ``bscl.losses``).\n\nAn unset option takes the chosen loss's own "
        "default, and ``threshold`` the task's binarization threshold.\n\nArgs:\n" + "\n".join(lines) + "\n"
    )
    return dataclasses.make_dataclass(
        "LossConfig", fields, namespace={"__doc__": doc, "__module__": __name__}
    )


LossConfig = _make_loss_config()

#: the LossConfig fields that are no loss option
LOSS_CONFIG_EXTRA: tuple[str, ...] = ("name", "tau_learning_rate")


def given_loss_options(lo: Any) -> dict[str, Any]:
    """The loss options set in a LossConfig (not None), without ``name`` / ``tau_learning_rate``."""
    return {
        f.name: getattr(lo, f.name)
        for f in dataclasses.fields(lo)
        if f.name not in LOSS_CONFIG_EXTRA and getattr(lo, f.name) is not None
    }


def resolve_loss_options(lo: Any, default_threshold: float | None = None) -> dict[str, Any]:
    """Every option of the chosen loss with the value it runs with: the given ones, the task's
    threshold (``default_threshold``) where none is given, else the loss's own defaults.

    Raises ValueError naming the ``--loss.X`` option: unknown loss, an option that the loss does not
    take, or a value its constructor rejects (validation by building the loss).
    """
    from bscl.losses.functional import LossOptionError
    from bscl.losses.modules import build_loss, loss_options

    try:
        options = loss_options(lo.name)
    except LossOptionError as err:
        raise ValueError(err.named("--loss.")) from None
    given = given_loss_options(lo)
    for key in given:
        if key not in options:
            raise ValueError(
                f"--loss.{key} is not an option of --loss.name={lo.name}; its options: "
                f"{', '.join(options) or 'none'}"
            )
    if "threshold" in options and "threshold" not in given and default_threshold is not None:
        given["threshold"] = default_threshold
    try:
        build_loss(lo.name, **given)
    except LossOptionError as err:
        raise ValueError(err.named("--loss.")) from None
    return {**options, **given}


@dataclass
class TrainConfig:
    """Optimisation and run control."""

    model: str = "minilm"  #: minilm | mpnet | tiny | a local folder
    output_dir: str = "runs/default"
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1  #: paper: 10% of steps, then linear decay
    weight_decay: float = 0.01
    adam_bias_correction: bool = True  #: the paper turns it off except for CQA
    max_seq_length: int = 90  #: paper: 90 sub-tokens
    seed: int = 0
    seeds: int = 1  #: seed optimisation: train this many seeds, keep the best on dev
    mini_batch_size: int | None = None  #: gradient caching: encode the batch in chunks of this size
    logging_steps: int = 10
    resume: bool = True  #: continue from the last checkpoint in output_dir
    overwrite: bool = False  #: delete the previous run in output_dir first (instead of resuming / refusing)
    padding_free: bool = True  #: padding-free encoder forward where supported (BERT); see bscl.padding_free


@dataclass
class EvalConfig:
    """Evaluation."""

    split: str = "test"  #: final split to report (dev is used to choose the checkpoint)
    batch_size: int = 64
    before: bool = True  #: also evaluate the model before training


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        """Raise ValueError for values that cannot work, naming the option to change."""
        from bscl.losses.modules import LOSSES
        from bscl.training.peers import PEER_LOSSES

        lo = self.loss
        if lo.name in PEER_LOSSES:
            bc = self.batching
            if bc.strategy != "random" or bc.reuse_embeddings or bc.pack_by_length:
                raise ValueError(
                    f"--loss.name={lo.name} brings sentence-transformers' own batch sampler: drop "
                    "--batching.strategy / reuse_embeddings / pack_by_length (or choose a bscl loss)"
                )
            if self.train.mini_batch_size is not None:
                raise ValueError(
                    f"--train.mini_batch_size applies to bscl losses, not {lo.name} (try st-cached-mnrl)"
                )
            given = [k for k, v in given_loss_options(lo).items() if v is not None]
            if given:
                raise ValueError(
                    f"--loss.{given[0]} is not an option of --loss.name={lo.name} "
                    "(a sentence-transformers recipe runs with its library's defaults)"
                )
        elif lo.name not in LOSSES:
            raise ValueError(
                f"--loss.name={lo.name!r} is unknown; choose one of {sorted(LOSSES)} "
                f"or a sentence-transformers recipe {sorted(PEER_LOSSES)}"
            )
        else:
            resolve_loss_options(self.loss)  # builds the loss: its own checks, naming --loss.X
        da = self.data
        if da.task == "generic" and not da.train_file:
            raise ValueError("--data.task generic needs --data.train_file (CSV/TSV/JSONL with a header)")
        if da.negatives not in (None, "ranked"):
            raise ValueError(f"--data.negatives must be 'ranked' or unset (got {da.negatives!r})")
        if da.negatives and da.task != "pfcc":
            raise ValueError("--data.negatives=ranked only applies to --data.task pfcc")
        for name in ("train_subset", "eval_subset"):
            value = getattr(da, name)
            if value is not None and value < 1:
                raise ValueError(f"--data.{name} must be >= 1 (got {value})")
        tr = self.train
        if tr.batch_size < 1:
            raise ValueError(f"--train.batch_size must be >= 1 (got {tr.batch_size})")
        if tr.epochs <= 0:
            raise ValueError(f"--train.epochs must be > 0 (got {tr.epochs})")
        if tr.seeds < 1:
            raise ValueError(f"--train.seeds must be >= 1 (got {tr.seeds})")
        if tr.mini_batch_size is not None and tr.mini_batch_size < 1:
            raise ValueError(f"--train.mini_batch_size must be >= 1 (got {tr.mini_batch_size})")
        from bscl.batching.samplers import COLD_STARTS, UNPACKABLE_STRATEGIES, normalize_strategy

        try:
            normalize_strategy(self.batching.strategy)
        except ValueError as err:
            raise ValueError(f"--batching.strategy: {err}") from None
        if self.batching.group_size < 1:
            raise ValueError(f"--batching.group_size must be >= 1 (got {self.batching.group_size})")
        if self.batching.cold_start not in COLD_STARTS:
            raise ValueError(
                f"--batching.cold_start must be one of {', '.join(COLD_STARTS)} "
                f"(got {self.batching.cold_start!r})"
            )
        if (
            self.batching.pack_by_length
            and normalize_strategy(self.batching.strategy) in UNPACKABLE_STRATEGIES
        ):
            raise ValueError(
                f"--batching.pack_by_length would break the {self.batching.strategy!r} order; "
                "drop it or use another --batching.strategy"
            )
        if self.batching.pack_window < 1:
            raise ValueError(f"--batching.pack_window must be >= 1 (got {self.batching.pack_window})")
        if self.batching.group_by not in ("first", "second"):
            raise ValueError(
                f"--batching.group_by must be 'first' or 'second' (got {self.batching.group_by!r})"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(path)


STAGES: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(RunConfig)}  # type: ignore[misc]


def _field_type(cls: type, name: str) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[name]


def _parse_value(raw: Any, typ: Any, where: str) -> Any:
    """Convert a YAML / command-line value to the field's type."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [t for t in typing.get_args(typ) if t is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null", "")):
            return None
        return _parse_value(raw, args[0], where)
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{where}: expected true/false, got {raw!r}")
    try:
        return typ(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected {typ.__name__}, got {raw!r}") from None


def from_dict(data: dict[str, Any], base: RunConfig | None = None, source: str = "config") -> RunConfig:
    """Build a RunConfig from a nested dict (unknown keys are an error naming the key)."""
    cfg = base or RunConfig()
    for stage, values in (data or {}).items():
        if stage not in STAGES:
            raise ValueError(f"{source}: unknown section {stage!r}; sections are {list(STAGES)}")
        section = getattr(cfg, stage)
        known = {f.name for f in dataclasses.fields(section)}
        for key, raw in (values or {}).items():
            if key not in known:
                raise ValueError(f"{source}: unknown option {stage}.{key}; options are {sorted(known)}")
            setattr(
                section, key, _parse_value(raw, _field_type(type(section), key), f"{source}: {stage}.{key}")
            )
    return cfg


def base_config(task: str, recipe: str | None = None, loss: str | None = None) -> RunConfig:
    """RunConfig defaults with ``data.task = task`` and the task's recipe applied (issue 12).

    The recipe (default: the spec's ``default_recipe``, "paper" for the paper's tasks) is one dict
    ``{section: {field: value}}`` on the task's :class:`~bscl.data.spec.TaskSpec`: the paper's loss
    with its tau / mu / normalization, kNN example shuffling with the task's group size, learning
    rate, batch size and bias correction. ``bscl train`` starts from it; a YAML file and the command
    line override it. ``loss``: the loss the run will train, when it is not the recipe's; the recipe's
    loss fields are then replaced by the paper's values of the fields *that* loss takes (the
    triplet margin, ...), so no field of another loss lingers. Tasks without a recipe (generic) get
    the plain defaults.
    """
    from bscl.data import get_spec

    spec = get_spec(task)
    values = {"data": {"task": spec.name}, **spec.recipe(recipe)}
    if loss is not None and loss != values.get("loss", {}).get("name", loss):
        values["loss"] = spec.paper.loss_section(loss) if spec.paper is not None else {"name": loss}
    name = recipe if recipe is not None else spec.default_recipe
    return from_dict(values, source=f"task {spec.name!r} recipe {name!r}")


def load_yaml(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections (data, loss, train, ...)")
    return from_dict(data, base, source=str(path))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--stage.field`` options for every config field (default: unset, so YAML values survive)."""
    for stage, cls in STAGES.items():
        group = parser.add_argument_group(stage, (cls.__doc__ or "").strip().splitlines()[0])
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            group.add_argument(
                f"--{stage}.{f.name}",
                dest=f"{stage}.{f.name}",
                default=argparse.SUPPRESS,
                metavar=str(_field_type(cls, f.name))
                .replace("typing.", "")
                .replace("<class '", "")
                .replace("'>", ""),
                help=f"default: {default}",
            )


def from_args(ns: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """Apply the ``--stage.field`` options present in ``ns`` over ``base``."""
    nested: dict[str, dict[str, Any]] = {}
    for key, value in vars(ns).items():
        if "." in key:
            stage, name = key.split(".", 1)
            nested.setdefault(stage, {})[name] = value
    return from_dict(nested, base, source="command line")
