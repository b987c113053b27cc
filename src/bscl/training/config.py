"""Typed run configuration (training layer): one dataclass per section, loadable from YAML, overridable
from the command line.

The ``bscl train`` parser is generated from these dataclasses (:mod:`bscl.training.options`): every
field ``x`` of section ``s`` becomes ``--s.x VALUE``; ``--hf.NAME`` passes any
``SentenceTransformerTrainingArguments`` option through (:mod:`bscl.training.hf`). Layers
(:func:`parse_command_line`): :func:`base_config` of the task -> ``--config`` YAML -> options. A run
writes its resolved config as ``config.yaml`` next to its outputs. :meth:`RunConfig.validate` asks each
component to check its own section, before any model is loaded, with messages that say what to change.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bscl.training.hf import HF_STAGE, check_hf_options
from bscl.training.options import (
    HELP,
    HELP_HF,
    PRINT_CONFIG,
    _float_spellings,
    _none_to_null,
    _pre_scan,
    _suggest,
    _task_threshold,
    choices,
    coerce,
    float_options,
    hf_help,
    train_parser,
)
from bscl.training.registry import loss_entry

__all__ = [
    "STAGES",
    "BatchingConfig",
    "DataConfig",
    "EvalConfig",
    "LossConfig",
    "RunConfig",
    "TrainConfig",
    "base_config",
    "from_dict",
    "load_yaml",
    "parse_command_line",
]


@dataclass
class DataConfig:
    """Which task and data to train on.

    Args:
        task: the task; its default recipe gives the other defaults (``base_config``)
        data_root: folder with stsb/, mrpc/, ... (default: BSCL_DATA_ROOT or ../shared/data)
        train_subset: use only the first N training pairs (after a seeded shuffle)
        eval_subset: use only the first N dev items for the per-epoch dev metric
        unsupervised: SimCSE: pair each first text with itself (dropout as augmentation)
        positives_only: drop training pairs whose label is below the binarization threshold
        negatives: pfcc only: "ranked" adds SBERT-ranked negatives (for MSE / triplet)
        hard_negatives: mine K hard negatives per anchor with the pretrained model (as st-mnrl-hard) from the
            task's pool or the training answers, as extra softmax negatives (contrastive losses only)
        train_file: generic task: CSV/TSV/JSONL with a header, .parquet, .arrow or a datasets folder
        dev_file: generic task (default: 9:1 split of train)
        test_file: generic task
        text1: generic task: first text column
        text2: generic task: second text column
        label: generic task: label column
        label_type: generic task: the label kind (default: inferred from the labels)
        label_max: generic task: scores lie in [0, label_max] and are divided by it (e.g. 5 for 0-5 scores)
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

    def own_sampler(self) -> bool:
        """True when bscl builds the batch sampler (any strategy or option beyond plain random batches)."""
        return self.strategy != "random" or self.reuse_embeddings or self.pack_by_length


def _make_loss_config() -> type:
    """``LossConfig``, derived from the losses' options dataclasses (:mod:`bscl.losses.modules`).

    Fields: ``name``, the union of every loss's options (each defaulting to ``None`` = "the chosen
    loss's own default"), and ``tau_learning_rate`` (the trainer's). The docstring's ``Args:``
    section has one help line per field, with each loss's default.
    """
    from bscl.losses.options import option_descriptions, option_types

    helps = option_descriptions()
    fields: list[tuple[str, Any, Any]] = [("name", str, field(default="bsc"))]
    fields += [(key, typ | None, field(default=None)) for key, typ in option_types().items()]
    fields.append(("tau_learning_rate", float, field(default=1e-3)))
    lines = ["    name: the loss: one of bscl's, or a sentence-transformers recipe (st-*)"]
    lines += [f"    {key}: {text}" for key, text in helps.items()]
    lines.append("    tau_learning_rate: learning rate of a trainable temperature")
    doc = (
        "The loss and its options (see ``bscl.losses``).\n\nAn unset option takes the chosen loss's own "
        "default, and ``threshold`` the task's binarization threshold.\n\nArgs:\n" + "\n".join(lines) + "\n"
    )
    return dataclasses.make_dataclass(
        "LossConfig", fields, namespace={"__doc__": doc, "__module__": __name__}
    )


LossConfig = _make_loss_config()


@dataclass
class TrainConfig:
    """Optimisation and run control.

    Args:
        model: minilm | mpnet | tiny | a local folder
        output_dir: run folder (config, metrics, checkpoints, the chosen model)
        epochs: training epochs (fractions allowed)
        batch_size: pairs per batch and process (the in-batch negatives of the contrastive losses)
        learning_rate: peak learning rate of the encoder (linear warm-up and decay; > 0)
        warmup_ratio: the share of steps spent warming up, in [0, 1] (paper: 0.1), then linear decay
        weight_decay: decoupled AdamW weight decay (>= 0)
        adam_bias_correction: the paper turns it off except for CQA
        max_seq_length: paper: 90 sub-tokens (>= 1 and at most the model's position limit)
        seed: random seed of the first (or only) seed
        seeds: seed optimisation: train this many seeds, keep the best on dev
        mini_batch_size: gradient caching: encode the batch in chunks of this size
        logging_steps: log the training loss every N steps (a run of fewer than 50 N steps: about 50 times)
        resume: continue from the last checkpoint in output_dir
        overwrite: delete the previous run in output_dir first (instead of resuming / refusing)
        if_worse: when the chosen model is worse on dev than the start (needs --eval.before true): fail
            (exit 2, nothing saved as model/; re-run with warn to keep it without training again) or warn
            (keep it, say so in the log, report.md and metrics.json); a collapsed encoder is an error either way
        padding_free: compute only the real tokens (BERT family; bscl.padding_free): same outputs, fewer FLOPs
        one_forward: with padding_free, embed all text columns of a batch in one forward pass (~8% faster)
        keep_checkpoints: keep a finished seed's trainer checkpoints (resuming and the chosen model need none)
        interpolate: WiSE-FT (bscl.training.wise): save (1 - a) * start + a * fine-tuned weights, evaluated as
            such; 1 = the fine-tuned weights, 0.5 = Wortsman et al.'s choice
        device: where the before-training evaluation runs (cpu, cuda, mps; default: CUDA when available);
            training runs where the HF trainer puts it (--hf.use_cpu true: the CPU)
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
    if_worse: str = "fail"
    padding_free: bool = True
    one_forward: bool = True
    keep_checkpoints: bool = False
    interpolate: float = 1.0
    device: str | None = None


@dataclass
class EvalConfig:
    """Evaluation.

    Args:
        split: final split to report (dev is used to choose the checkpoint)
        batch_size: encode batch size of the evaluations and of the sampler's encode pass (>= 1): batches of
            texts of similar token length holding up to batch_size x 32 real tokens
        before: also evaluate the model before training (the start the trained model must beat, see
            --train.if_worse)
    """

    split: str = "test"
    batch_size: int = 64
    before: bool = True


def check_data_section(da: DataConfig, loss: Any) -> None:
    """Raise ValueError naming the ``--data.X`` option that cannot work (``loss``: the loss's registry
    entry, which says whether hard negatives apply to it)."""
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
        loss.check_hard_negatives()
        if da.negatives or da.unsupervised:
            raise ValueError(
                "--data.hard_negatives cannot be combined with --data.negatives or --data.unsupervised"
            )
    for name in ("train_subset", "eval_subset"):
        value = getattr(da, name)
        if value is not None and value < 1:
            raise ValueError(f"--data.{name} must be >= 1 (got {value})")


def _in_range(option: str, value: float, low: float | None, high: float | None, why: str) -> None:
    """ValueError naming ``option`` unless ``value`` is finite and in ``[low, high]``."""
    if not (math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)):
        bounds = f"in [{low:g}, {high:g}]" if low is not None and high is not None else f">= {low:g}"
        raise ValueError(f"{option} must be {bounds} ({why}; got {value})")


def check_train_section(tr: TrainConfig) -> None:
    """Raise ValueError naming the ``--train.X`` option that cannot work."""
    if tr.batch_size < 1:
        raise ValueError(f"--train.batch_size must be >= 1 (got {tr.batch_size})")
    if not (math.isfinite(tr.epochs) and tr.epochs > 0):
        raise ValueError(f"--train.epochs must be > 0 and finite (got {tr.epochs})")
    if tr.seeds < 1:
        raise ValueError(f"--train.seeds must be >= 1 (got {tr.seeds})")
    if not (math.isfinite(tr.learning_rate) and tr.learning_rate > 0):
        raise ValueError(
            f"--train.learning_rate must be > 0 and finite (the step size of the optimizer; got "
            f"{tr.learning_rate}; the paper uses 2e-5 to 5e-5)"
        )
    _in_range("--train.warmup_ratio", tr.warmup_ratio, 0.0, 1.0, "a share of the training steps")
    _in_range("--train.weight_decay", tr.weight_decay, 0.0, None, "a negative decay grows the weights")
    if tr.max_seq_length < 1:
        raise ValueError(
            f"--train.max_seq_length must be >= 1 (tokens kept per text; got {tr.max_seq_length})"
        )
    if tr.logging_steps < 1:
        raise ValueError(f"--train.logging_steps must be >= 1 (got {tr.logging_steps})")
    if not 0.0 < tr.interpolate <= 1.0:
        raise ValueError(
            f"--train.interpolate must be in (0, 1] (got {tr.interpolate}; 1 = no interpolation)"
        )
    if tr.mini_batch_size is not None and tr.mini_batch_size < 1:
        raise ValueError(f"--train.mini_batch_size must be >= 1 (got {tr.mini_batch_size})")
    allowed = choices()[("train", "if_worse")]
    if tr.if_worse not in allowed:
        raise ValueError(f"--train.if_worse must be one of {', '.join(allowed)} (got {tr.if_worse!r})")


def check_eval_section(ev: EvalConfig) -> None:
    """Raise ValueError naming the ``--eval.X`` option that cannot work."""
    if ev.batch_size < 1:
        raise ValueError(f"--eval.batch_size must be >= 1 (got {ev.batch_size})")
    allowed = choices()[("eval", "split")]
    if ev.split not in allowed:
        raise ValueError(f"--eval.split must be one of {', '.join(allowed)} (got {ev.split!r})")


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
        entry = loss_entry(self.loss.name)
        entry.check(
            self.loss,
            default_batching=not self.batching.own_sampler(),
            mini_batch_size=self.train.mini_batch_size,
        )
        check_hf_options(self.hf)
        check_data_section(self.data, entry)
        check_train_section(self.train)
        check_eval_section(self.eval)
        from bscl.batching import check_options

        # the batching layer owns its checks (a group must fit into a batch)
        check_options(**dataclasses.asdict(self.batching), batch_size=self.train.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self, threshold: float) -> dict[str, Any]:
        """:meth:`to_dict` with the loss section as the loss runs it: every option it takes with its
        value (an unset one: the loss's own default; the threshold: ``threshold``, the task's), the
        options it does not take left out (a sentence-transformers recipe takes none: its library's
        defaults)."""
        out = self.to_dict()
        options = loss_entry(self.loss.name).options(self.loss, threshold)
        out["loss"] = {**options, "tau_learning_rate": self.loss.tau_learning_rate}
        return out

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


def _field_type(cls: type, name: str) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[name]


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
            setattr(section, key, coerce(raw, _field_type(type(section), key), f"{source}: {stage}.{key}"))
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

    argv = _float_spellings(_none_to_null(list(argv)), float_options(STAGES))
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
    if HELP_HF in argv:
        print(hf_help(prog))
        raise SystemExit(0)
    base = base_config(task, recipe=overlay, loss=loss)  # the task's recipe, for the loss the run names
    if config_path:
        base = from_dict(data, base, source=str(config_path))
    if any(a in HELP for a in argv):
        # a generic task's default recipe depends on the label kind of its data: with no training file
        # given, the defaults that recipe sets are shown as such, not as one value
        from bscl.data import get_spec

        generic = get_spec(base.data.task).name == "generic" and recipe is None
        unknown_kind = generic and not (_pre_scan(argv, "--data.train_file") or base.data.train_file)
        per_kind = frozenset(
            (section, name) for section, fields in (overlay or {}).items() for name in fields if unknown_kind
        )
        train_parser(base, prog=prog, hf=False, per_label_kind=per_kind).print_help()
        raise SystemExit(0)
    print_config = PRINT_CONFIG in argv
    argv = [a for a in argv if a != PRINT_CONFIG]
    parser = train_parser(base, prog=prog)
    try:
        ns = parser.parse_args(argv)
    except argparse.ArgumentError as err:
        options = [s for a in parser._actions for s in a.option_strings]
        raise ValueError(_suggest(str(err), options)) from None
    parsed = ns.as_dict()
    for key in ("config", "recipe", HELP_HF.lstrip("-").replace("-", "_")):
        parsed.pop(key, None)
    parsed[HF_STAGE] = {k: v for k, v in (parsed.get(HF_STAGE) or {}).items() if v is not None}
    cfg = from_dict(parsed, base, source="command line")
    if print_config:
        # jsonargparse's own --print_config would show the loss options unset (null): this prints the
        # values the run uses, as config.yaml will hold them
        cfg.validate()
        print(yaml.safe_dump(cfg.resolved(_task_threshold(cfg.data.task)), sort_keys=False), end="")
        raise SystemExit(0)
    return cfg
