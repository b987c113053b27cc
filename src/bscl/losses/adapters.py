"""Adapters that plug the embedding losses into sentence-transformers' ``SentenceTransformerTrainer``.

The trainer calls ``loss(sentence_features, labels)`` with one tokenized feature dict per text column.
:class:`STLoss` embeds the two columns with the model, derives text ids from the tokens (equal token
sequences <=> identical texts, so duplicates are found from the input, never from equal embeddings),
and calls the wrapped :class:`~bscl.losses.modules.EmbeddingLoss`.

Expected dataset layout: two text columns (query / first sentence, then answer / second sentence),
optionally followed by ``k`` negative text columns (``(anchor, positive, negative_1..k)``, the layout
that sentence-transformers' ``mine_hard_negatives`` writes; contrastive losses only: the negatives
join the candidates of every row's query->answer softmax), and an optional ``label`` (or ``score``)
column. For the unsupervised (SimCSE) setting use the same
sentence in both columns: the two columns are encoded in separate forward passes, so dropout makes
the two views differ.

Example::

    from sentence_transformers import SentenceTransformerTrainer
    from bscl.losses import BSCLoss, STLoss
    loss = STLoss(model, BSCLoss(tau=0.1, use_labels=True, threshold=0.6))
    SentenceTransformerTrainer(model=model, train_dataset=ds, loss=loss).train()

Multi-process training (DDP, ``torchrun``): ``STLoss(..., gather_across_processes=True)`` scores every
rank's pairs against the pairs of all ranks (see :mod:`bscl.losses.distributed`). Large batches on
bounded memory: :class:`bscl.losses.cached.CachedSTLoss`. Resuming a run restores the loss's own
parameters (trainable temperature) only with :class:`LossStateCallback` among the trainer's callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns, merge_feature_batches
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from bscl.losses.distributed import gather_batch, gather_negatives
from bscl.losses.hashing import text_ids  # on the tokens' device
from bscl.losses.modules import EmbeddingLoss, build_loss

logger = logging.getLogger(__name__)

EmbeddingCallback = Callable[[Tensor, Tensor], None]


class STLoss(nn.Module):
    """Wrap an :class:`EmbeddingLoss` for ``SentenceTransformerTrainer``.

    Args:
        model: the ``SentenceTransformer`` being trained.
        loss: the embedding loss (or its name, with ``**loss_kwargs``).
        embedding_callback: optional ``f(q_emb, a_emb)`` called once per training batch with the
            detached embeddings of *this process's* pairs, in batch order (used by the batch
            samplers to reuse embeddings that training already computed). Not called for
            evaluation batches (no gradient).
        gather_across_processes: under DDP, compute the loss on the batch concatenated over all
            ranks (cross-process negatives; see :mod:`bscl.losses.distributed`). The loss value and
            the gradients equal those of one process on the concatenated batch. No effect without
            an initialised multi-process group.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: EmbeddingLoss | str,
        embedding_callback: EmbeddingCallback | None = None,
        *,
        gather_across_processes: bool = False,
        **loss_kwargs: Any,
    ):
        super().__init__()
        self.model = model
        self.loss = build_loss(loss, **loss_kwargs) if isinstance(loss, str) else loss
        self.embedding_callback = embedding_callback
        self.gather_across_processes = gather_across_processes

    @property
    def temperature(self) -> nn.Module | None:
        return getattr(self.loss, "temperature", None)

    def _check_columns(self, features: list[dict[str, Any]]) -> None:
        name = type(self.loss).__name__
        if len(features) < 2:
            raise ValueError(
                f"{name} needs two text columns (first text, second text), optionally followed by negative "
                f"text columns; the data has {len(features)} text column(s)"
            )
        if len(features) > 2 and not self.loss.accepts_negatives:
            raise ValueError(
                f"{name} takes exactly two text columns (first text, second text); the data has "
                f"{len(features)}. Extra text columns are hard negatives, which only the contrastive losses "
                "take (bsc, combo, pearson-combo, softcse-*, focal-infonce); drop them for this loss. "
                "(sentence-transformers reads every column except one named 'label' or 'score' as text.)"
            )

    def embed(self, sentence_features: Iterable[dict[str, Any]]) -> list[Tensor]:
        """The ``(m, d)`` embeddings of every text column: query, answer, then the negative columns."""
        features = list(sentence_features)
        self._check_columns(features)
        if isinstance(self.model, DistributedDataParallel):
            # DDP (with find_unused_parameters=True, HF Trainer's default for a SentenceTransformer)
            # allows one forward per backward: embed both columns in one padded, merged forward
            if merge_feature_batches(features) is None:
                raise ValueError(
                    "under DDP the two columns must be embedded in one forward pass, but their features "
                    "cannot be merged; use CachedSTLoss (one forward/backward per mini-batch) instead"
                )
            return list(embed_columns(self.model, features, separate_first=False))
        return list(embed_columns(self.model, features))

    def ids(self, sentence_features: list[dict[str, Any]]) -> tuple[Tensor | None, Tensor | None]:
        """Text ids of the query and answer columns (``None`` when the loss uses none)."""
        if not self.loss.uses_ids:
            return None, None
        return text_ids(sentence_features[0]), text_ids(sentence_features[1])

    def neg_ids(self, sentence_features: list[dict[str, Any]]) -> Tensor | None:
        """``(m, k)`` text ids of the negative columns (``None`` without negatives or ids)."""
        if not self.loss.uses_ids or len(sentence_features) <= 2:
            return None
        return torch.stack([text_ids(f) for f in sentence_features[2:]], dim=1)  # (m, k)

    @staticmethod
    def stack_negatives(columns: list[Tensor]) -> Tensor | None:
        """The negative columns ``[(m, d)] * k`` as ``(m, k, d)``; ``None`` without any."""
        return torch.stack(columns, dim=1) if columns else None  # (m, k, d)

    def prepare_labels(self, labels: Tensor | None, like: Tensor) -> Tensor | None:
        """Labels as ``(m,)`` in the embeddings' dtype; ``None`` (or the trainer's 0-dim dummy) when absent."""
        if labels is not None and labels.dim() == 0:
            labels = None
        if labels is None and self.loss.requires_labels:
            raise ValueError(
                f"{type(self.loss).__name__} needs a 'label' or 'score' column in the training data"
            )
        if labels is not None:
            labels = labels.to(device=like.device, dtype=like.dtype)
        return labels

    def compute(
        self,
        q: Tensor,
        a: Tensor,
        labels: Tensor | None,
        q_ids: Tensor | None,
        a_ids: Tensor | None,
        negatives: Tensor | None = None,
        neg_ids: Tensor | None = None,
    ) -> Tensor:
        """The wrapped loss on this process's batch, or on the global batch with ``gather_across_processes``."""
        if self.gather_across_processes:
            q, a, labels, q_ids, a_ids = gather_batch(q, a, labels, q_ids, a_ids)  # (M, d), (M, d), (M,)...
            negatives, neg_ids = gather_negatives(negatives, neg_ids)  # (M, k, d), (M, k)
        if negatives is None:
            return self.loss(q, a, labels, q_ids, a_ids)
        return self.loss(q, a, labels, q_ids, a_ids, negatives=negatives, neg_ids=neg_ids)

    def loss_from_embeddings(
        self,
        q: Tensor,
        a: Tensor,
        labels: Tensor | None,
        sentence_features: list[dict[str, Any]],
        negatives: Tensor | None = None,
    ) -> Tensor:
        """The loss from the embeddings of the columns (``negatives``: ``(m, k, d)`` of columns 3..)."""
        labels = self.prepare_labels(labels, q)
        q_ids, a_ids = self.ids(sentence_features)
        neg_ids = self.neg_ids(sentence_features) if negatives is not None else None
        return self.compute(q, a, labels, q_ids, a_ids, negatives, neg_ids)

    def record_embeddings(self, q: Tensor, a: Tensor) -> None:
        """Hand this process's detached training embeddings to :attr:`embedding_callback`."""
        if self.embedding_callback is not None and self.training and torch.is_grad_enabled():
            self.embedding_callback(q.detach(), a.detach())

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        q, a, *negatives = self.embed(features)
        self.record_embeddings(q, a)
        return self.loss_from_embeddings(q, a, labels, features, self.stack_negatives(negatives))

    # model card (cli branch): the wrapped loss's name, settings and paper (see bscl.losses.st)
    def get_config_dict(self) -> dict[str, Any]:
        from bscl.losses.st import embedding_loss_config, loss_name

        return {"loss": loss_name(self.loss) or type(self.loss).__name__, **embedding_loss_config(self.loss)}

    @property
    def citation(self) -> str:
        from bscl.losses.st import citation_of

        return citation_of(self.loss)


class LossStateCallback(TrainerCallback):
    """Save the loss's own parameters (trainable temperature) with each checkpoint; restore them on resume.

    HF's checkpoints hold the model, the optimizer state, the scheduler and the RNG states, but not
    the parameters of a loss module outside the model: without this callback a resumed run restarts
    the temperature from its initial value (while its Adam moments are restored). ``on_save`` writes
    the loss's state dict without the encoder (``model.*``) to ``checkpoint-N/bscl_loss_state.pt``;
    ``on_train_begin`` of a resumed run (``global_step > 0``) loads it back from
    ``output_dir/checkpoint-<global_step>`` (HF's naming), warning if it is missing.

    Usage: ``trainer.add_callback(LossStateCallback(loss))`` (or ``callbacks=[...]``).
    """

    FILE = "bscl_loss_state.pt"

    def __init__(self, loss: nn.Module):
        self.loss = loss

    def loss_state(self) -> dict[str, Tensor]:
        return {
            k: v.detach().cpu().clone()
            for k, v in self.loss.state_dict().items()
            if not k.startswith("model.")
        }

    @staticmethod
    def checkpoint_dir(output_dir: str, global_step: int) -> Path:
        return Path(output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{global_step}"

    def save_checkpoint_state(self, folder: Path) -> None:
        """Write the loss state into ``folder``. :class:`bscl.training.BSCLTrainer` calls it inside its
        checkpoint save, before it marks the checkpoint complete; ``on_save`` (after HF's
        ``trainer_state.json``) is the fallback for other trainers."""
        tmp = folder / (self.FILE + ".tmp")
        torch.save(self.loss_state(), tmp)
        tmp.replace(folder / self.FILE)  # atomic: a kill leaves either no file or a whole one
        self._saved = folder

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = self.checkpoint_dir(args.output_dir, state.global_step)
        if getattr(self, "_saved", None) == folder:  # already written inside the checkpoint save
            return
        if state.is_world_process_zero and folder.is_dir():
            self.save_checkpoint_state(folder)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 0:
            return
        path = self.checkpoint_dir(args.output_dir, state.global_step) / self.FILE
        if not path.is_file():
            if self.loss_state():
                logger.warning(
                    "resumed at step %d without %s: the loss parameters restart from their initial values",
                    state.global_step,
                    path,
                )
            return
        saved = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = self.loss.load_state_dict(saved, strict=False)
        unexpected = [k for k in unexpected if not k.startswith("model.")]
        if unexpected:
            raise RuntimeError(f"{path} holds loss parameters this loss does not have: {unexpected}")
