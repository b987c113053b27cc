"""sentence-transformers' own recipes as config values: ``--loss.name st-cosent`` etc.

``bscl compare`` runs bscl's recipes against these, through the same ``bscl train`` path (same model,
data, epochs, batch size, learning rate, max length, dev evaluator and dev-chosen checkpoint). A peer
recipe uses sentence-transformers' *own* loss class and batch sampler, with the class's default
hyperparameters, and sentence-transformers' trainer with standard AdamW (``BSCLTrainer`` with its
defaults adds nothing to ``SentenceTransformerTrainer``: no temperature, bias correction on):

============================ ====================================== ============= ======================
``--loss.name``              class                                  data          batch sampler
============================ ====================================== ============= ======================
``st-cosine``                CosineSimilarityLoss                   all pairs     BATCH_SAMPLER (random)
``st-cosent``                CoSENTLoss (Su, 2022)                  all pairs     BATCH_SAMPLER
``st-angle``                 AnglELoss (Li and Li, 2023)            all pairs     BATCH_SAMPLER
``st-online-contrastive``    OnlineContrastiveLoss                  all pairs     BATCH_SAMPLER
``st-mnrl``                  MultipleNegativesRankingLoss           positives     NO_DUPLICATES
``st-cached-mnrl``           CachedMultipleNegativesRankingLoss     positives     NO_DUPLICATES, batch 128
                             (GradCache; Gao et al., 2021)
``st-gist``                  GISTEmbedLoss, the pretrained model    positives     NO_DUPLICATES
                             as guide (Solatorio, 2024)
``st-mnrl-hard``             MultipleNegativesRankingLoss           positives +   NO_DUPLICATES
                                                                    1 mined hard
                                                                    negative
============================ ====================================== ============= ======================

"positives": the training pairs with label > threshold (the task's, or ``--loss.threshold``), label
column dropped (in-batch negatives need no label). Hard negatives: one per anchor from
``sentence_transformers.util.mine_hard_negatives`` with the *pretrained* model (before training),
``relative_margin=0.05`` (a candidate scoring within 5% of the positive is skipped as a likely false
negative, the library's documented guard), from the task's candidate pool where it has one (PFCC-S:
all verified claims), else from the training positives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bscl.data import Task

#: ``() -> SentenceTransformer``: loads the pretrained model again (GIST's fixed guide)
GuideLoader = Callable[[], Any]


def _st_losses() -> Any:
    from sentence_transformers.sentence_transformer import losses

    return losses


@dataclass(frozen=True)
class PeerLoss:
    """One sentence-transformers recipe: its loss builder, the data it trains on, its batch sampler."""

    build: Callable[[Any, GuideLoader], Any]  #: (model, guide loader) -> sentence-transformers loss
    data: str  #: "pairs" (all labeled pairs) | "positives" | "mined" (positives + a mined negative)
    sampler: str  #: a ``sentence_transformers.base.sampler.BatchSamplers`` member name
    train: Mapping[str, Any] = field(default_factory=dict)  #: the recipe's own train settings

    def recipe(self, name: str) -> dict[str, dict[str, Any]]:
        """``{section: {field: value}}`` of this peer, as ``bscl compare`` applies it."""
        out: dict[str, dict[str, Any]] = {"loss": {"name": name}}
        if self.train:
            out["train"] = dict(self.train)
        return out


PEER_LOSSES: dict[str, PeerLoss] = {
    "st-cosine": PeerLoss(lambda m, g: _st_losses().CosineSimilarityLoss(m), "pairs", "BATCH_SAMPLER"),
    "st-cosent": PeerLoss(lambda m, g: _st_losses().CoSENTLoss(m), "pairs", "BATCH_SAMPLER"),
    "st-angle": PeerLoss(lambda m, g: _st_losses().AnglELoss(m), "pairs", "BATCH_SAMPLER"),
    "st-online-contrastive": PeerLoss(
        lambda m, g: _st_losses().OnlineContrastiveLoss(m), "pairs", "BATCH_SAMPLER"
    ),
    "st-mnrl": PeerLoss(
        lambda m, g: _st_losses().MultipleNegativesRankingLoss(m), "positives", "NO_DUPLICATES"
    ),
    "st-cached-mnrl": PeerLoss(
        lambda m, g: _st_losses().CachedMultipleNegativesRankingLoss(m, mini_batch_size=32),
        "positives",
        "NO_DUPLICATES",
        train={"batch_size": 128},
    ),
    "st-gist": PeerLoss(lambda m, g: _st_losses().GISTEmbedLoss(m, guide=g()), "positives", "NO_DUPLICATES"),
    "st-mnrl-hard": PeerLoss(
        lambda m, g: _st_losses().MultipleNegativesRankingLoss(m), "mined", "NO_DUPLICATES"
    ),
}


#: mine_hard_negatives options of st-mnrl-hard: one negative per anchor, the top-scoring candidate that
#: scores below 95% of the positive (the library's documented false-negative guard)
MINING: dict[str, Any] = {"num_negatives": 1, "sampling_strategy": "top", "relative_margin": 0.05}


@dataclass
class PeerSetup:
    """What ``bscl train`` needs from a peer recipe: the loss, the batch sampler, the training data."""

    loss: Any
    batch_sampler: Any
    train: Any  #: datasets.Dataset


def positives(train: Any, threshold: float) -> Any:
    """The pairs with label > ``threshold``, without the label column; an error when none is left."""
    kept = train.filter(lambda row: row["label"] > threshold)
    if len(kept) == 0:
        raise ValueError(f"peer recipe: no training pair has label > {threshold} (the positives)")
    return kept.remove_columns("label")


def mined(train: Any, model: Any, task: Task, batch_size: int, num_negatives: int = 1) -> Any:
    """``(anchor, positive, negative_1..K)`` (K = 1: ``(anchor, positive, negative)``): hard negatives
    per anchor mined with ``model`` (:data:`MINING`), from the task's pool where it has one (PFCC-S: all
    verified claims), else from the training answers. Anchors with fewer than K are dropped (the
    library's n-tuple rule)."""
    from sentence_transformers.util import mine_hard_negatives

    pool = task.extras.get("pool")
    options = {**MINING, "num_negatives": num_negatives}
    if num_negatives > 1:
        options["output_format"] = "n-tuple"
    out = mine_hard_negatives(
        train,
        model,
        anchor_column_name="anchor",
        positive_column_name="positive",
        corpus=list(pool) if pool is not None else None,
        batch_size=batch_size,
        verbose=False,
        **options,
    )
    if len(out) == 0:
        raise ValueError("mine_hard_negatives found no hard negative for any anchor")
    return out


def with_hard_negatives(train: Any, model: Any, task: Task, k: int, threshold: float, batch_size: int) -> Any:
    """bscl's ``--data.hard_negatives K``: the positive pairs of ``train`` (label > ``threshold``) with
    K mined negatives each (:func:`mined`, the pretrained ``model``) and a label column of 1.0, the
    layout :class:`bscl.losses.STLoss` reads as extra negative columns."""
    out = mined(positives(train, threshold), model, task, batch_size, num_negatives=k)
    return out.add_column("label", [1.0] * len(out))


def peer_setup(
    name: str, model: Any, train: Any, task: Task, *, threshold: float, batch_size: int, guide: GuideLoader
) -> PeerSetup:
    """The peer recipe ``name``: its sentence-transformers loss on ``model``, its batch sampler and its
    training data (``train``: the task's training pairs after the subset; ``threshold``: labels above it
    are the positives; ``batch_size``: of the mining encode pass; ``guide``: loads GIST's guide model)."""
    from sentence_transformers.base.sampler import BatchSamplers

    if name not in PEER_LOSSES:
        raise ValueError(
            f"--loss.name={name!r} is not a sentence-transformers recipe; choose {sorted(PEER_LOSSES)}"
        )
    peer = PEER_LOSSES[name]
    if peer.data in ("positives", "mined"):
        train = positives(train, threshold)
    if peer.data == "mined":
        train = mined(train, model, task, batch_size)
    return PeerSetup(peer.build(model, guide), getattr(BatchSamplers, peer.sampler), train)
