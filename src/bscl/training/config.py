"""Typed run configuration (training layer): one dataclass per stage, loadable from YAML, overridable from the command line.

The ``bscl train`` parser is generated from these dataclasses by jsonargparse (:func:`train_parser`):
every field ``x`` of stage ``s`` becomes ``--s.x VALUE`` (or ``--s.x=VALUE``), its help is the
stage's Google-style ``Args:`` docstring entry, choice fields list their values (from the registry
that owns each list, :func:`choices`), and no option is matched by a prefix. ``--hf.NAME`` passes any
``SentenceTransformerTrainingArguments`` option through (:data:`HF_FROM_BSCL`, :data:`HF_DEFAULTS`).
Layers (:func:`parse_command_line`): :func:`base_config` of the task -> ``--config`` YAML -> options.
A run writes its resolved config as ``config.yaml`` next to its outputs. Validation happens here,
before any model is loaded, with messages that say what to change.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    """Which task and data to train on.

    Args:
        task: task name (see ``bscl.data.TASKS``); its recipe gives the base settings (``base_config``)
        data_root: folder with stsb/, mrpc/, ... (default: BSCL_DATA_ROOT or ../shared/data)
        train_subset: use only the first N training pairs (after a seeded shuffle)
        eval_subset: use only the first N dev items for the per-epoch dev metric
        unsupervised: SimCSE: pair each first text with itself (dropout as augmentation)
        positives_only: drop training pairs whose label is below the binarization threshold
        negatives: pfcc only: "ranked" adds SBERT-ranked negatives (for MSE / triplet)
        hard_negatives: mine K hard negatives per anchor with the pretrained model (sentence-transformers'
            ``mine_hard_negatives``, as st-mnrl-hard: top-scoring, 5% relative margin) from the task's
            pool (PFCC-S: all verified claims) or the training answers; keeps the positive pairs and adds
            columns negative_1..K to every softmax denominator (contrastive losses only)
        train_file: generic task: CSV/TSV/JSONL with a header, a .parquet / .arrow file, or a folder
            saved by ``datasets`` (``save_to_disk``) or readable by ``datasets.load_dataset``
        dev_file: generic task (default: 9:1 split of train)
        test_file: generic task
        text1: generic task: first text column
        text2: generic task: second text column
        label: generic task: label column
        label_type: generic task: score | binary | positive (default: inferred)
        label_max: generic task: scores lie in [0, label_max] and are divided by it (e.g. 5 for 0-5
            STS scores; default: scores already in [0, 1])
    """

    task: str = "stsb"
    data_root: str | None = None
    train_subset: int | None = None
    eval_subset: int | None = None
    unsupervised: bool = False
    positives_only: bool = False
    negatives: str | None = None
    hard_negatives: int | None = None
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text1: str | None = None
    text2: str | None = None
    label: str | None = None
    label_type: str | None = None
    label_max: float | None = None


@dataclass
class BatchingConfig:
    """How training batches are built (see ``bscl.batching``).

    Args:
        strategy: random | sequential | no-duplicates | example | words | clusters | neighbours
        group_size: examples per kNN / shingle group (paper: 8; 4 MRPC; 5 CQA-B)
        group_by: group by the first or the second text of each pair
        reuse_embeddings: reuse the previous epoch's training embeddings for grouping
        cold_start: with reuse: group epoch 1 by one encode pass, or by "words" / "random"
        pack_by_length: put groups of similar length into one batch (less padding)
        pack_window: batches per packing window
    """

    strategy: str = "random"
    group_size: int = 8
    group_by: str = "first"
    reuse_embeddings: bool = False
    cold_start: str = "encode"
    pack_by_length: bool = False
    pack_window: int = 64


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
    """Optimisation and run control.

    Args:
        model: minilm | mpnet | tiny | a local folder
        output_dir: run folder (config, metrics, checkpoints, the chosen model)
        epochs: training epochs (fractions allowed)
        batch_size: pairs per batch and process (the in-batch negatives of the contrastive losses)
        learning_rate: peak learning rate of the encoder (linear warm-up and decay)
        warmup_ratio: paper: 10% of steps, then linear decay
        weight_decay: decoupled AdamW weight decay
        adam_bias_correction: the paper turns it off except for CQA
        max_seq_length: paper: 90 sub-tokens
        seed: random seed of the first (or only) seed
        seeds: seed optimisation: train this many seeds, keep the best on dev
        mini_batch_size: gradient caching: encode the batch in chunks of this size
        logging_steps: log the training loss every N steps
        resume: continue from the last checkpoint in output_dir
        overwrite: delete the previous run in output_dir first (instead of resuming / refusing)
        padding_free: padding-free encoder forward where supported (BERT family; see bscl.padding_free):
            the same outputs and gradients, no FLOPs spent on padding
        keep_checkpoints: keep a finished seed's trainer checkpoints (default: deleted once its result is
            in metrics.json; resume and the chosen model do not need them)
        interpolate: WiSE-FT (:mod:`bscl.training.wise`): keep ``(1 - a) * start + a * fine-tuned``
            weights of the dev-chosen checkpoint and the model training started from; 1 = the
            fine-tuned weights (default), 0.5 = Wortsman et al.'s fixed choice. Dev and test are
            evaluated on the interpolated model, which is the one saved
        device: where the before-training evaluation and the ranked-negatives encode run (cpu, cuda,
            cuda:1, mps; default: CUDA when available). Training itself runs where the HF trainer puts it
            (``--hf.use_cpu true`` forces the CPU)
    """

    model: str = "minilm"
    output_dir: str = "runs/default"
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    adam_bias_correction: bool = True
    max_seq_length: int = 90
    seed: int = 0
    seeds: int = 1
    mini_batch_size: int | None = None
    logging_steps: int = 10
    resume: bool = True
    overwrite: bool = False
    padding_free: bool = True
    keep_checkpoints: bool = False
    interpolate: float = 1.0
    device: str | None = None


@dataclass
class EvalConfig:
    """Evaluation.

    Args:
        split: final split to report (dev is used to choose the checkpoint)
        batch_size:
        before: also evaluate the model before training
    """

    split: str = "test"
    batch_size: int = 64
    before: bool = True


@dataclass
class RunConfig:
    """One ``bscl train`` run: a section per stage, plus ``hf``, the pass-through options of
    ``SentenceTransformerTrainingArguments`` (see :data:`HF_FROM_BSCL` for the ones bscl sets itself)."""

    data: DataConfig = field(default_factory=DataConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    hf: dict[str, Any] = field(default_factory=dict)

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
        check_hf_options(self.hf)
        da = self.data
        if da.label_max is not None and not da.label_max > 0:
            raise ValueError(f"--data.label_max must be > 0 (got {da.label_max})")
        if da.label_max is not None and da.task != "generic":
            raise ValueError(
                "--data.label_max applies to --data.task generic only (named tasks know their scale)"
            )
        if da.task == "generic" and not da.train_file:
            raise ValueError("--data.task generic needs --data.train_file (CSV/TSV/JSONL with a header)")
        if da.negatives not in (None, "ranked"):
            raise ValueError(f"--data.negatives must be 'ranked' or unset (got {da.negatives!r})")
        if da.negatives and da.task != "pfcc":
            raise ValueError("--data.negatives=ranked only applies to --data.task pfcc")
        if da.hard_negatives is not None:
            if da.hard_negatives < 1:
                raise ValueError(f"--data.hard_negatives must be >= 1 (got {da.hard_negatives})")
            if lo.name in PEER_LOSSES:
                raise ValueError(
                    f"--data.hard_negatives does not apply to the sentence-transformers recipe {lo.name} "
                    "(st-mnrl-hard mines its own)"
                )
            from bscl.losses.modules import is_contrastive

            if not is_contrastive(lo.name):
                raise ValueError(
                    f"--data.hard_negatives needs a contrastive loss (extra negatives join its softmax "
                    f"denominators); --loss.name {lo.name} takes none"
                )
            if da.negatives or da.unsupervised:
                raise ValueError(
                    "--data.hard_negatives cannot be combined with --data.negatives or --data.unsupervised"
                )
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
        if not 0.0 < tr.interpolate <= 1.0:
            raise ValueError(
                f"--train.interpolate must be in (0, 1] (got {tr.interpolate}; 1 = no interpolation)"
            )
        if tr.mini_batch_size is not None and tr.mini_batch_size < 1:
            raise ValueError(f"--train.mini_batch_size must be >= 1 (got {tr.mini_batch_size})")
        from bscl.batching import check_options

        bc = self.batching
        check_options(
            strategy=bc.strategy,
            group_size=bc.group_size,
            group_by=bc.group_by,
            reuse_embeddings=bc.reuse_embeddings,
            cold_start=bc.cold_start,
            pack_by_length=bc.pack_by_length,
            pack_window=bc.pack_window,
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


#: the dataclass of each section (``hf`` is a plain mapping, checked by :func:`check_hf_options`)
STAGES: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(RunConfig)
    if dataclasses.is_dataclass(f.default_factory)
}
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
    if origin is typing.Literal:
        allowed = typing.get_args(typ)
        if raw not in allowed:
            raise ValueError(f"{where}: expected one of {list(allowed)}, got {raw!r}")
        return raw
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
        raise ValueError(f"{where}: expected {getattr(typ, '__name__', typ)}, got {raw!r}") from None


def from_dict(data: dict[str, Any], base: RunConfig | None = None, source: str = "config") -> RunConfig:
    """Build a RunConfig from a nested dict (unknown keys are an error naming the key)."""
    cfg = base or RunConfig()
    for stage, values in (data or {}).items():
        if stage == HF_STAGE:
            if not isinstance(values, dict | None):
                raise ValueError(f"{source}: section hf must be a mapping of option: value")
            cfg.hf = {**cfg.hf, **(values or {})}
            continue
        if stage not in STAGES:
            raise ValueError(f"{source}: unknown section {stage!r}; sections are {[*STAGES, HF_STAGE]}")
        section = getattr(cfg, stage)
        known = {f.name for f in dataclasses.fields(section)}
        for key, raw in (values or {}).items():
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {stage}.{close[0]}?)" if close else ""
                raise ValueError(f"{source}: unknown option {stage}.{key}{hint}; options are {sorted(known)}")
            setattr(
                section, key, _parse_value(raw, _field_type(type(section), key), f"{source}: {stage}.{key}")
            )
    return cfg


def base_config(
    task: str | None = None, loss: str | None = None, recipe: dict[str, dict[str, Any]] | None = None
) -> RunConfig:
    """RunConfig defaults with ``data.task = task`` and a recipe applied.

    ``recipe``: a ``{section: {field: value}}`` overlay (the experiment lab's named recipes,
    :mod:`bscl.experiments.recipes`, are such dicts); None = the spec's paper recipe
    (:meth:`bscl.data.spec.PaperSettings.recipe`: the paper's loss with its tau / mu / normalization,
    kNN example shuffling with the task's group size, learning rate, batch size and bias correction),
    ``{}`` for tasks without one (generic). ``bscl train`` starts from it; a YAML file and the command
    line override it. ``loss``: the loss the run will train, when it is not the recipe's; the recipe's
    loss fields are then replaced by the paper's values of the fields *that* loss takes (the
    triplet margin, ...), so no field of another loss lingers.
    """
    from bscl.data import get_spec

    spec = get_spec(task if task is not None else DataConfig().task)
    if recipe is None:
        recipe = spec.paper.recipe() if spec.paper is not None else {}
    values = {section: dict(fields) for section, fields in recipe.items()}
    values["data"] = {**values.get("data", {}), "task": spec.name}  # a recipe may set data fields too
    if loss is not None and loss != values.get("loss", {}).get("name", loss):
        values["loss"] = spec.paper.loss_section(loss) if spec.paper is not None else {"name": loss}
    return from_dict(values, source=f"task {spec.name!r} recipe")


def _read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections (data, loss, train, ...)")
    return data


def load_yaml(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    return from_dict(_read_yaml(path), base, source=str(path))


# -- command line (jsonargparse: ``--stage.field``, help from the Args docstrings, typed values) ------
def choices() -> dict[tuple[str, str], tuple[str, ...]]:
    """The allowed values of each choice option, each taken from the registry that owns the list."""
    from bscl.batching import COLD_STARTS, STRATEGIES
    from bscl.data import TASKS
    from bscl.losses.functional import NORMALIZATIONS
    from bscl.losses.modules import LOSSES
    from bscl.training.peers import PEER_LOSSES

    return {
        ("data", "task"): tuple(TASKS),
        ("data", "negatives"): ("ranked",),
        ("data", "label_type"): ("score", "binary", "positive"),
        ("batching", "strategy"): tuple(STRATEGIES),
        ("batching", "group_by"): ("first", "second"),
        ("batching", "cold_start"): tuple(COLD_STARTS),
        ("loss", "name"): tuple(LOSSES) + tuple(PEER_LOSSES),
        ("loss", "normalization"): tuple(NORMALIZATIONS),
        ("loss", "combine"): ("mean", "sum"),
        ("loss", "tau_parametrization"): ("log", "alpha"),
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


def _cli_view(stage: str, cls: type, section: Any) -> type:
    """A copy of a stage dataclass for the parser: defaults = the base config's values, choice fields as
    ``Literal`` types (the stored config keeps plain ``str``), the same docstring (help text)."""
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


_SIMPLE = (bool, int, float, str)


def _hf_cli_type(hint: Any) -> Any:
    """A parser type for a TrainingArguments field: enums as ``Literal`` of their values (choices in the
    help), plain and container types kept, anything else (callables, classes) as ``str``; always ``| None``
    (None = bscl's or HF's default)."""
    import enum

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
    fields = []
    docs = []
    hints = typing.get_type_hints(__import__("sentence_transformers").SentenceTransformerTrainingArguments)
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


def _pre_scan(argv: list[str], option: str) -> str | None:
    """The value of ``--option VALUE`` / ``--option=VALUE`` in ``argv`` (the last one wins), else None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value


def train_parser(base: RunConfig | None = None, prog: str = "bscl train") -> Any:
    """The ``bscl train`` parser (jsonargparse): ``--config`` plus ``--stage.field`` for every field of
    every stage, and ``--hf.NAME`` for the trainer options; defaults shown are those of ``base``."""
    from jsonargparse import ArgumentParser

    base = base or base_config()
    parser = ArgumentParser(
        prog=prog,
        description="Fine-tune a bi-encoder on a task and evaluate it. Values are layered: the task's "
        "base config, then --config YAML, then these options.",
        allow_abbrev=False,  # no prefix matching: --train.epoch is an error, not --train.epochs
        exit_on_error=False,
        default_meta=False,
    )
    parser.add_argument(
        "--config",
        type=str | None,
        default=None,
        help=f"YAML file with sections {', '.join([*STAGES, HF_STAGE])} (options given here override it)",
    )
    parser.add_argument(
        "--recipe",
        type=str | None,
        default=None,
        help="the task's recipe to start from (default: the task's default recipe; 'paper' = the "
        "paper's best method and settings, 'ours' = the best measured here; see docs/tasks.md)",
    )
    for stage, cls in STAGES.items():
        parser.add_class_arguments(_cli_view(stage, cls, getattr(base, stage)), nested_key=stage)
    parser.add_class_arguments(hf_cli_view(), nested_key=HF_STAGE)
    return parser


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


def _suggest(message: str, options: list[str]) -> str:
    """Add "did you mean --x.y?" to jsonargparse's "unrecognized arguments" message."""
    unknown = [w.split("=", 1)[0] for w in message.split() if w.startswith("--")]
    hints = []
    for opt in unknown:
        close = difflib.get_close_matches(opt, options, n=1, cutoff=0.6)
        if close:
            hints.append(f"{opt}: did you mean {close[0]}?")
    return message + ("\n" + "\n".join(hints) if hints else "")


def parse_command_line(
    argv: list[str],
    prog: str = "bscl train",
    recipe_lookup: Callable[[str, str | None], dict[str, dict[str, Any]]] | None = None,
) -> RunConfig:
    """``bscl train`` options -> RunConfig. Layers: ``base_config(task, recipe=...)`` (task from
    ``--data.task`` or the YAML's ``data.task``) -> ``--config`` YAML -> the other options. Raises
    ValueError with a message naming the bad option (and the closest known one for a typo).

    ``recipe_lookup(task, name)``: the recipe ``--recipe NAME`` names (None: the task's default
    recipe), as a ``{section: {field: value}}`` dict; the ``bscl`` command passes the experiment lab's
    (:func:`bscl.experiments.recipes.recipe`). Without it the run starts from the spec's paper recipe
    and ``--recipe`` is refused."""
    import argparse

    argv = _none_to_null(list(argv))
    config_path = _pre_scan(argv, "--config")
    task = _pre_scan(argv, "--data.task")
    recipe = _pre_scan(argv, "--recipe")
    data: dict[str, Any] = {}
    if config_path:
        data = _read_yaml(config_path)
        if task is None:
            task = (data.get("data") or {}).get("task")
    loss = _pre_scan(argv, "--loss.name") or (data.get("loss") or {}).get("name")
    known_losses = choices()[("loss", "name")]
    if loss is not None and loss not in known_losses:  # before the recipe is built for it
        import difflib

        close = difflib.get_close_matches(str(loss), known_losses, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"--loss.name={loss!r} is unknown; choose one of {', '.join(known_losses)}{hint}")
    if recipe_lookup is not None:
        from bscl.data import get_spec

        overlay = recipe_lookup(get_spec(task if task is not None else DataConfig().task).name, recipe)
    elif recipe is not None:
        raise ValueError(f"--recipe {recipe}: named recipes come with the bscl command (bscl train --recipe)")
    else:
        overlay = None
    base = base_config(task, recipe=overlay, loss=loss)  # the task's recipe, for the loss the run names
    if config_path:
        base = from_dict(data, base, source=str(config_path))
    parser = train_parser(base, prog=prog)
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        raise SystemExit(0)
    try:
        ns = parser.parse_args(argv)
    except argparse.ArgumentError as err:
        options = [s for a in parser._actions for s in a.option_strings]
        raise ValueError(_suggest(str(err), options)) from None
    parsed = ns.as_dict()
    parsed.pop("config", None)
    parsed.pop("recipe", None)
    parsed[HF_STAGE] = {k: v for k, v in (parsed.get(HF_STAGE) or {}).items() if v is not None}
    return from_dict(parsed, base, source="command line")
