"""Adapters that plug the embedding losses into sentence-transformers' ``SentenceTransformerTrainer``.

The trainer calls ``loss(sentence_features, labels)`` with one tokenized feature dict per text column.
:class:`STLoss` embeds the two columns with the model, derives text ids from the tokens (equal token
sequences <=> identical texts, so duplicates are found from the input, never from equal embeddings),
and calls the wrapped :class:`~bscl.losses.modules.EmbeddingLoss`.

Expected dataset layout: two text columns (query / first sentence, then answer / second sentence) and
an optional ``label`` (or ``score``) column. For the unsupervised (SimCSE) setting use the same
sentence in both columns: the two columns are encoded in separate forward passes, so dropout makes
the two views differ.

Example::

    from sentence_transformers import SentenceTransformerTrainer
    from bscl.losses import BSCLoss, STLoss
    loss = STLoss(model, BSCLoss(tau=0.1, use_labels=True, threshold=0.6))
    SentenceTransformerTrainer(model=model, train_dataset=ds, loss=loss).train()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn

from bscl.losses.modules import EmbeddingLoss, build_loss

EmbeddingCallback = Callable[[Tensor, Tensor], None]


def text_ids(features: dict[str, Any]) -> Tensor:
    """``(m,)`` ids such that rows with identical token sequences (identical texts) share an id.

    Padding positions are zeroed through the attention mask so that padding length does not matter.
    Texts that only differ after the truncation length get the same id: the model sees them as equal.
    """
    input_ids = features["input_ids"]
    mask = features.get("attention_mask")
    tokens = input_ids if mask is None else input_ids * mask  # (m, L)
    _, inverse = torch.unique(tokens, dim=0, return_inverse=True)  # (m,)
    return inverse


class STLoss(nn.Module):
    """Wrap an :class:`EmbeddingLoss` for ``SentenceTransformerTrainer``.

    Args:
        model: the ``SentenceTransformer`` being trained.
        loss: the embedding loss (or its name, with ``**loss_kwargs``).
        embedding_callback: optional ``f(q_emb, a_emb)`` called once per training batch with the
            detached embeddings, in batch order (used by the batch samplers to reuse embeddings that
            training already computed).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: EmbeddingLoss | str,
        embedding_callback: EmbeddingCallback | None = None,
        **loss_kwargs: Any,
    ):
        super().__init__()
        self.model = model
        self.loss = build_loss(loss, **loss_kwargs) if isinstance(loss, str) else loss
        self.embedding_callback = embedding_callback

    @property
    def temperature(self) -> nn.Module | None:
        return getattr(self.loss, "temperature", None)

    def embed(self, sentence_features: Iterable[dict[str, Any]]) -> tuple[Tensor, Tensor]:
        features = list(sentence_features)
        if len(features) != 2:
            raise ValueError(
                f"{type(self.loss).__name__} expects exactly two text columns (query, answer); got {len(features)}. "
                "Put the label in a column named 'label' or 'score'."
            )
        q, a = embed_columns(self.model, features)
        return q, a

    def ids(self, sentence_features: list[dict[str, Any]]) -> tuple[Tensor | None, Tensor | None]:
        if not self.loss.uses_ids:
            return None, None
        return text_ids(sentence_features[0]), text_ids(sentence_features[1])

    def loss_from_embeddings(
        self, q: Tensor, a: Tensor, labels: Tensor | None, sentence_features: list[dict[str, Any]]
    ) -> Tensor:
        if labels is not None and labels.dim() == 0:
            labels = None
        if labels is None and self.loss.requires_labels:
            raise ValueError(
                f"{type(self.loss).__name__} needs a 'label' or 'score' column in the training data"
            )
        if labels is not None:
            labels = labels.to(device=q.device, dtype=q.dtype)
        q_ids, a_ids = self.ids(sentence_features)
        return self.loss(q, a, labels, q_ids, a_ids)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        q, a = self.embed(features)
        if self.embedding_callback is not None and self.training:
            self.embedding_callback(q.detach(), a.detach())
        return self.loss_from_embeddings(q, a, labels, features)

    @property
    def citation(self) -> str:
        return (
            "@inproceedings{chernyavskiy-etal-2022-batch,\n"
            "  title = {Batch-Softmax Contrastive Loss for Pairwise Sentence Scoring Tasks},\n"
            "  author = {Chernyavskiy, Anton and Ilvovsky, Dmitry and Kalinin, Pavel and Nakov, Preslav},\n"
            "  booktitle = {Proceedings of NAACL-HLT 2022},\n"
            "  year = {2022}\n}"
        )
