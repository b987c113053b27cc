"""Task specs: every fact about a named task in one place.

A :class:`TaskSpec` holds the task's loader, its metrics (the primary one chooses the checkpoint on
dev), the label threshold, what is available on this machine (splits, what differs from the paper),
the paper's hyperparameters (:class:`PaperSettings`, whose :meth:`PaperSettings.recipe` is the paper's
recipe: the preset ``{section: {field: value}}`` over :class:`bscl.training.config.RunConfig` that
:func:`bscl.training.config.base_config` starts from) and the paper's numbers. The recipes tuned or
tried beyond the paper's are the experiment lab's (:mod:`bscl.experiments.recipes`).

The registry of specs is :data:`bscl.data.tasks.TASK_SPECS` (one module per task in
``bscl/data/tasks/``); everything else (evaluation, reporting, the lab's ``bscl reproduce`` and
``bscl compare``, ``benchmarks/zero_shot.py``) reads the spec instead of keeping its own copy.

Paper: Chernyavskiy, Ilvovsky, Kalinin, Nakov, "Batch-Softmax Contrastive Loss for Pairwise Sentence
Scoring Tasks", NAACL 2022 (hyperparameters: Sec. 5.2; numbers: Tables 2-4; ../shared/papers/NOTES.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bscl.data.task import Kind, Task

Recipe = dict[str, dict[str, Any]]  #: ``{section: {field: value}}`` over RunConfig's sections

_COMBO_FIELDS = ("tau", "normalization", "mu")

#: which of the paper's hyperparameters belong to which of its methods (Sec. 5.2): tau and the
#: normalization to the batch-softmax losses, mu to the combo (eq. 6), the margin to the triplet loss.
#: A recipe sets loss fields only for the loss it names.
PAPER_LOSS_FIELDS: dict[str, tuple[str, ...]] = {
    "bsc": ("tau", "normalization"),
    "combo": _COMBO_FIELDS,
    "pearson-combo": _COMBO_FIELDS,  # eq. 6 with Pearson in place of MSE (Sec. 7)
    "triplet": ("margin",),
    "mse": (),
    "pearson": (),
}


@dataclass(frozen=True)
class PaperSettings:
    """The paper's hyperparameters for one task (Sec. 5.2 of the BSC paper, NAACL 2022).

    Shared by all tasks: warm-up 10% of the steps, max length 90 tokens, AdamW; a checkpoint per epoch
    and the best on dev kept. ``epochs`` is the paper's range (5 to 7); it is recorded, not put in the
    recipe (the number of epochs is this machine's choice: ``--train.epochs``).
    """

    best_loss: str  #: the paper's best single-stage method for the task ("combo" or "bsc")
    tau: float
    mu: float
    group_size: int = 8
    normalization: str = "l2"  #: "coordinate" = the paper's min-max normalization over the batch axis
    learning_rate: float = 2e-5
    adam_bias_correction: bool = False  #: the paper turns it on only for CQA
    batch_size: int = 30
    margin: float = 0.5  #: triplet margin
    shuffle: str = "example"  #: batch construction (Algorithm 1, example-based kNN shuffling)
    epochs: tuple[int, int] = (5, 7)
    max_seq_length: int = 90
    warmup_ratio: float = 0.1
    loss_options: Mapping[str, Any] = field(default_factory=dict)  #: extra loss fields (wiki-unsup)
    source: str = "BSC paper (NAACL 2022), Sec. 5.2"

    def common(self) -> Recipe:
        """What every side of a comparison shares: learning rate, batch size, max length, warm-up."""
        return {
            "train": {
                "learning_rate": self.learning_rate,
                "batch_size": self.batch_size,
                "max_seq_length": self.max_seq_length,
                "warmup_ratio": self.warmup_ratio,
            }
        }

    def loss_section(self, loss: str) -> dict[str, Any]:
        """``loss.name`` plus the paper's values of the fields that loss takes (PAPER_LOSS_FIELDS)."""
        values = {"tau": self.tau, "normalization": self.normalization, "mu": self.mu, "margin": self.margin}
        section: dict[str, Any] = {"name": loss}
        section.update({k: values[k] for k in PAPER_LOSS_FIELDS.get(loss, ())})
        if loss == self.best_loss:
            section.update(self.loss_options)
        return section

    def recipe(self, loss: str | None = None) -> Recipe:
        """The paper's recipe: ``best_loss`` (or ``loss``), kNN example shuffling with the task's group
        size, its learning rate, batch size and bias correction."""
        out = {k: dict(v) for k, v in self.common().items()}
        out["train"]["adam_bias_correction"] = self.adam_bias_correction
        out["loss"] = self.loss_section(loss or self.best_loss)
        out["batching"] = {"strategy": self.shuffle, "group_size": self.group_size}
        return out


@dataclass(frozen=True)
class TaskSpec:
    """One named task.

    - ``threshold``: graded labels are binarized for the contrastive losses as **label > threshold is
      a positive** (strict; :func:`bscl.losses.functional.binarize`). 0.6 for STSb (score / 5) and
      ANTIQUE ((grade - 1) / 3), the paper's value; 0.5 for 0/1 labels.
    - ``metric``: the primary metric (model selection on dev, result tables); ``metrics``: every metric
      reported (ranking tasks compute exactly these); ``paper_metrics``: the ones the paper prints for
      the task, in its order (PFCC-S: HasPositive@1/5/50); ``table_metrics``: the test columns of the
      ``bscl reproduce`` table.
    - ``available``: whether the files are in the shared data folder (qqp and antique need the
      user's files); ``splits`` and ``differences``: what is used here and how it differs from the
      paper (docs/tasks.md has the reasons).
    - ``paper``: the paper's hyperparameters (None for tasks the paper does not have).
    - ``paper_results``: the paper's test numbers per method, as printed (scaled to [0, 1]).
    - ``split_version``: which split of the files the loader makes (1 unless a later loader split
      them otherwise); run folders and result records store it, and a record of another version is
      not a result of the current split (:func:`bscl.experiments.records.check_record_split`).
    """

    name: str
    loader: Callable[..., Task]
    kind: Kind
    metric: str
    metrics: tuple[str, ...]
    threshold: float = 0.5
    available: bool = True
    splits: str = ""
    differences: str = ""
    paper: PaperSettings | None = None
    paper_metrics: tuple[str, ...] = ()
    table_metrics: tuple[str, ...] = ()
    paper_results: Mapping[str, str] = field(default_factory=dict)
    split_version: int = 1

    def __post_init__(self) -> None:
        if self.metric not in self.metrics:
            raise ValueError(f"task spec {self.name!r}: primary metric {self.metric!r} not in metrics")
