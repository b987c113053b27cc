"""One loss registry for ``--loss.name``: bscl's losses and sentence-transformers' own recipes (peers).

Each entry knows its options and how to check them (a bscl loss: by building it once from the given
options; a peer: it takes none), whether it is contrastive, which data it trains on (``"pairs"``: all
pairs, ``"positives"``, ``"mined"``: positives with a mined negative), what the training data must
offer, and how to build the trainer's loss together with its batch sampler and training data
(:class:`~bscl.training.peers.PeerSetup`). Builders take plain values (model, data, task, threshold,
batch size), not a run config.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any

from bscl.training.peers import PEER_LOSSES, GuideLoader, PeerLoss, PeerSetup, peer_setup

if TYPE_CHECKING:
    from bscl.data import Task

#: the LossConfig fields that are no loss option
LOSS_CONFIG_EXTRA: tuple[str, ...] = ("name", "tau_learning_rate")


def given_loss_options(lo: Any) -> dict[str, Any]:
    """The loss options set in a LossConfig (not None), without ``name`` / ``tau_learning_rate``."""
    return {
        f.name: getattr(lo, f.name)
        for f in dataclasses.fields(lo)
        if f.name not in LOSS_CONFIG_EXTRA and getattr(lo, f.name) is not None
    }


def check_tau_learning_rate(lo: Any) -> None:
    """``--loss.tau_learning_rate`` (the trainer's step size for a trainable temperature) is > 0 and
    finite; ValueError naming the option otherwise."""
    value = lo.tau_learning_rate
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"--loss.tau_learning_rate must be > 0 and finite (the step size of a trainable temperature; "
            f"got {value}; default 0.001)"
        )


class LossEntry:
    """One ``--loss.name``: a bscl loss (:class:`BsclEntry`) or a sentence-transformers recipe
    (:class:`PeerEntry`)."""

    name: str
    #: the data it trains on: "pairs" (all pairs) | "positives" | "mined" (positives + a mined negative)
    data: str = "pairs"
    #: True: the trainer saves and restores the loss's state (a trainable temperature) with checkpoints
    loss_state: bool = True

    @property
    def contrastive(self) -> bool:
        """In-batch negatives in a softmax (a batch of one pair learns nothing)."""
        raise NotImplementedError

    def check(self, lo: Any, *, default_batching: bool, mini_batch_size: int | None) -> None:
        """Raise ValueError naming the option for a loss section (``lo``, a LossConfig) that cannot work;
        ``default_batching``: the batching section is the plain random sampler."""
        raise NotImplementedError

    def check_hard_negatives(self) -> None:
        """Raise ValueError when ``--data.hard_negatives`` cannot apply to this loss."""
        if not self.contrastive:
            raise ValueError(
                f"--data.hard_negatives needs a contrastive loss (extra negatives join its softmax "
                f"denominators); --loss.name {self.name} takes none"
            )

    def options(self, lo: Any, default_threshold: float | None = None) -> dict[str, Any]:
        """``{"name": ..., option: value}``: every option the loss runs with (recorded in metrics.json)."""
        raise NotImplementedError

    def check_data(
        self,
        labels: list[float] | None,
        *,
        options: dict[str, Any],
        world_batch: int,
        unlabeled: bool,
        source: str,
    ) -> None:
        """Raise ValueError naming the option when the training data cannot train this loss."""

    def setup(
        self,
        model: Any,
        train: Any,
        task: Task,
        *,
        options: dict[str, Any],
        threshold: float,
        batch_size: int,
        mini_batch_size: int | None,
        guide: GuideLoader,
    ) -> PeerSetup:
        """The trainer's loss on ``model``, its batch sampler (None: bscl's, from the batching section)
        and the training data."""
        raise NotImplementedError


class BsclEntry(LossEntry):
    """A bscl loss of :data:`bscl.losses.modules.LOSSES`, wrapped for the trainer (gradient caching when
    ``--train.mini_batch_size`` is set)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def contrastive(self) -> bool:
        from bscl.losses.modules import is_contrastive

        return is_contrastive(self.name)

    def _given(self, lo: Any) -> dict[str, Any]:
        from bscl.losses.options import loss_options

        options = loss_options(self.name)
        given = given_loss_options(lo)
        for key in given:
            if key not in options:
                raise ValueError(
                    f"--loss.{key} is not an option of --loss.name={self.name}; its options: "
                    f"{', '.join(options) or 'none'}"
                )
        return given

    def check(self, lo: Any, *, default_batching: bool = True, mini_batch_size: int | None = None) -> None:
        """The given options are the loss's, and its constructor accepts them (built once)."""
        from bscl.losses.functional import LossOptionError
        from bscl.losses.modules import build_loss

        check_tau_learning_rate(lo)
        try:
            build_loss(self.name, **self._given(lo))
        except LossOptionError as err:
            raise ValueError(err.named("--loss.")) from None

    def options(self, lo: Any, default_threshold: float | None = None) -> dict[str, Any]:
        """The given options, the task's threshold (``default_threshold``) where none is given, else the
        loss's own defaults."""
        from bscl.losses.options import loss_options

        options = loss_options(self.name)
        given = self._given(lo)
        if "threshold" in options and "threshold" not in given and default_threshold is not None:
            given["threshold"] = default_threshold
        return {"name": self.name, **options, **given}

    def check_data(
        self,
        labels: list[float] | None,
        *,
        options: dict[str, Any],
        world_batch: int,
        unlabeled: bool,
        source: str,
    ) -> None:
        """A contrastive loss needs two pairs per batch and (with ``use_labels``) one positive; a loss that
        requires labels needs graded or binary ones (``unlabeled``: every pair is a positive)."""
        import torch

        from bscl.losses.functional import binarize
        from bscl.losses.modules import LOSSES

        contrastive = self.contrastive
        if contrastive and world_batch < 2:
            raise ValueError(
                f"--train.batch_size=1 with --loss.name {self.name}: a batch of one pair has no in-batch "
                "negatives, the loss is constant and nothing is learned; use --train.batch_size >= 2"
            )
        if LOSSES[self.name].requires_labels and (labels is None or unlabeled):
            raise ValueError(
                f"--loss.name {self.name} needs graded or binary labels, but the training pairs of {source} "
                "have none (every pair is a positive); use --loss.name bsc, or data with a label column"
            )
        threshold = options.get("threshold")
        if (
            contrastive
            and options.get("use_labels")
            and labels is not None
            and len(labels)
            and not bool(binarize(torch.tensor(labels, dtype=torch.float64), threshold).any())
        ):
            raise ValueError(
                f"no training pair of {source} has a label above the threshold {threshold}: with "
                "--loss.use_labels true none is a positive and nothing is learned; lower --loss.threshold "
                "or pass --loss.use_labels false"
            )

    def build(self, options: dict[str, Any]) -> Any:
        """The embedding-level loss with ``options`` (as :meth:`options` returns them)."""
        from bscl.losses.modules import build_loss

        values = dict(options)
        return build_loss(values.pop("name"), **values)

    def setup(
        self,
        model: Any,
        train: Any,
        task: Task,
        *,
        options: dict[str, Any],
        threshold: float,
        batch_size: int,
        mini_batch_size: int | None,
        guide: GuideLoader,
    ) -> PeerSetup:
        from bscl.losses import ST_LOSSES

        # the model-first class of the loss (the model card names it and cites its paper);
        # cross-process negatives: only act under an initialised process group (torchrun)
        values = {k: v for k, v in options.items() if k != "name"}
        loss = ST_LOSSES[self.name](
            model, **values, mini_batch_size=mini_batch_size, gather_across_processes=True
        )
        return PeerSetup(loss, None, train)


class PeerEntry(LossEntry):
    """A sentence-transformers recipe (:data:`bscl.training.peers.PEER_LOSSES`): its library's own loss
    class with its defaults, its own batch sampler and data; it checks its data itself."""

    loss_state = False  # no loss state: GIST's guide model would be saved with every checkpoint

    def __init__(self, name: str, peer: PeerLoss) -> None:
        self.name = name
        self.peer = peer
        self.data = peer.data

    @property
    def contrastive(self) -> bool:
        return self.data != "pairs"

    def check(self, lo: Any, *, default_batching: bool = True, mini_batch_size: int | None = None) -> None:
        check_tau_learning_rate(lo)
        if not default_batching:
            raise ValueError(
                f"--loss.name={self.name} brings sentence-transformers' own batch sampler: drop "
                "--batching.strategy / reuse_embeddings / pack_by_length (or choose a bscl loss)"
            )
        if mini_batch_size is not None:
            raise ValueError(
                f"--train.mini_batch_size applies to bscl losses, not {self.name} (try st-cached-mnrl)"
            )
        given = list(given_loss_options(lo))
        if given:
            raise ValueError(
                f"--loss.{given[0]} is not an option of --loss.name={self.name} "
                "(a sentence-transformers recipe runs with its library's defaults)"
            )

    def check_hard_negatives(self) -> None:
        raise ValueError(
            f"--data.hard_negatives does not apply to the sentence-transformers recipe {self.name} "
            "(st-mnrl-hard mines its own)"
        )

    def options(self, lo: Any, default_threshold: float | None = None) -> dict[str, Any]:
        return {"name": self.name}  # its library's own defaults

    def setup(
        self,
        model: Any,
        train: Any,
        task: Task,
        *,
        options: dict[str, Any],
        threshold: float,
        batch_size: int,
        mini_batch_size: int | None,
        guide: GuideLoader,
    ) -> PeerSetup:
        return peer_setup(
            self.name, model, train, task, threshold=threshold, batch_size=batch_size, guide=guide
        )


@functools.cache
def loss_registry() -> dict[str, LossEntry]:
    """Every ``--loss.name``: bscl's losses, then sentence-transformers' recipes."""
    from bscl.losses.options import LOSS_OPTIONS

    entries: dict[str, LossEntry] = {name: BsclEntry(name) for name in LOSS_OPTIONS}
    entries.update({name: PeerEntry(name, peer) for name, peer in PEER_LOSSES.items()})
    return entries


def loss_names() -> tuple[str, ...]:
    """The ``--loss.name`` choices, bscl's losses first."""
    return tuple(loss_registry())


def loss_entry(name: str) -> LossEntry:
    """The registry entry of ``--loss.name``; ValueError listing the choices for an unknown name."""
    entry = loss_registry().get(name)
    if entry is None:
        from bscl.losses.options import LOSS_OPTIONS

        raise ValueError(
            f"--loss.name={name!r} is unknown; choose one of {sorted(LOSS_OPTIONS)} "
            f"or a sentence-transformers recipe {sorted(PEER_LOSSES)}"
        )
    return entry


def resolve_loss_options(lo: Any, default_threshold: float | None = None) -> dict[str, Any]:
    """Every option of the chosen bscl loss with the value it runs with: the given ones, the task's
    threshold (``default_threshold``) where none is given, else the loss's own defaults.

    Raises ValueError naming the ``--loss.X`` option: unknown loss, an option that the loss does not
    take, or a value its constructor rejects (validation by building the loss).
    """
    from bscl.losses.functional import LossOptionError
    from bscl.losses.modules import loss_options

    try:
        loss_options(lo.name)
    except LossOptionError as err:
        raise ValueError(err.named("--loss.")) from None
    entry = BsclEntry(lo.name)
    entry.check(lo)
    options = entry.options(lo, default_threshold)
    options.pop("name")
    return options
