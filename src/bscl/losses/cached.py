"""Gradient caching (GradCache) for every in-batch loss: batch size bounded by compute, not memory.

GradCache (Gao, Zhang, Han and Callan, 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup", RepL4NLP) splits the backward pass at the embeddings. For a batch of ``m``
pairs, an encoder ``f_theta`` and a loss ``L(Q, A; tau)`` on the ``(m, d)`` embedding matrices:

1. embed the batch in mini-batches of ``k`` texts *without* a graph: ``Q = f(x_q)``, ``A = f(x_a)``;
   the RNG state before each mini-batch is recorded;
2. compute ``L`` once on the whole batch and its gradients ``G_Q = dL/dQ``, ``G_A = dL/dA`` (and
   ``dL/dtau`` for a trainable temperature) -- the "gradient cache";
3. re-embed each mini-batch *with* its graph under the recorded RNG state (same dropout masks) and
   back-propagate ``<f(x_mb), G_mb>``, whose gradient with respect to ``theta`` is the mini-batch's
   share of ``dL/dtheta``.

The parameter gradients equal the ones of the plain loss on the same batch (same dropout masks),
while only one mini-batch of activations is alive at a time. The price is a second forward pass
(about +1/3 of the step time for a transformer whose backward costs twice its forward).

Steps 1 and 3 reuse sentence-transformers' :class:`CachedLossMixin` (the machinery behind its
``CachedMultipleNegativesRankingLoss``: mini-batch slicing with padding trimmed, :class:`RandContext`
for dropout replay, DDP ``no_sync`` until the last mini-batch, the surrogate loss tensor whose
backward hook runs step 3, scaled by the outer gradient so gradient accumulation and fp16 scaling
reach every mini-batch). What the library does not do, and this module adds:

- any :class:`~bscl.losses.modules.EmbeddingLoss` (BSC with all options, combo, SoftCSE,
  Focal-InfoNCE, ...), with text ids for duplicates computed on the *full* batch, and extra
  negative text columns (``reps[2:]``, stacked to ``(m, k, d)``);
- gradients for the loss's own parameters (trainable temperature): step 2 computes ``dL/dtau``
  and the returned tensor carries it as ``tau * sg(dL/dtau) - sg(...)`` (value 0), so the trainer's
  backward scales it by the same outer gradient as the encoder's share (the library's losses have
  no parameters and leave this out);
- cross-process negatives (``gather_across_processes``, see :mod:`bscl.losses.distributed`): the
  step-2 loss is computed on the embeddings gathered from all ranks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.gradcache import CachedLossMixin, _get_batch_size
from torch import Tensor, nn

from bscl.losses.adapters import EmbeddingCallback, STLoss
from bscl.losses.distributed import is_distributed
from bscl.losses.modules import EmbeddingLoss


class CachedSTLoss(CachedLossMixin, STLoss):
    """:class:`~bscl.losses.adapters.STLoss` with gradient caching (GradCache; see the module docstring).

    A drop-in ``loss=`` for ``SentenceTransformerTrainer`` / :class:`bscl.training.BSCLTrainer`:
    same value and same parameter gradients as ``STLoss(model, loss)`` on the same batch, with the
    memory of a batch of ``mini_batch_size`` texts. In a single process, a batch whose columns fit in
    one mini-batch is computed the plain way (nothing to cache, no second forward).

    Args:
        model: the ``SentenceTransformer`` being trained.
        loss: the embedding loss (or its name, with ``**loss_kwargs``).
        mini_batch_size: texts per forward pass (memory bound); the batch size stays the trainer's.
        embedding_callback: as in :class:`STLoss` (this process's embeddings, step 1).
        gather_across_processes: cross-process negatives under DDP, as in :class:`STLoss`.
        mini_batch_num_tokens: optional token budget per mini-batch instead of a fixed count
            (sentence-transformers' option; ``mini_batch_size`` is then ignored).
        show_progress_bar: a progress bar over the mini-batches.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: EmbeddingLoss | str,
        mini_batch_size: int = 32,
        embedding_callback: EmbeddingCallback | None = None,
        *,
        gather_across_processes: bool = False,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
        **loss_kwargs: Any,
    ):
        super().__init__(
            model,
            loss,
            embedding_callback,
            gather_across_processes=gather_across_processes,
            **loss_kwargs,
        )
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1; got {mini_batch_size}")
        if mini_batch_num_tokens is not None and mini_batch_num_tokens < 1:
            raise ValueError(f"mini_batch_num_tokens must be >= 1; got {mini_batch_num_tokens}")
        self.mini_batch_size = int(mini_batch_size)
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        # set by forward() for calculate_loss(): ids of the full batch, gradients of the loss parameters
        self._ids: tuple[Tensor | None, Tensor | None] = (None, None)
        self._neg_ids: Tensor | None = None
        self._param_grads: list[tuple[nn.Parameter, Tensor]] = []

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """Step 2: the loss of the whole batch from the per-mini-batch embeddings ``reps[column][mb]``.

        With ``with_backward``, store ``dL/d(embeddings)`` in each embedding leaf's ``.grad`` (the
        cache read by step 3) and ``dL/d(loss parameters)`` for :meth:`forward`, and return the
        detached value.
        """
        q = torch.cat(reps[0])  # (m, d)
        a = torch.cat(reps[1])  # (m, d)
        negatives = self.stack_negatives([torch.cat(column) for column in reps[2:]])  # (m, k, d) or None
        self.record_embeddings(q, a)
        value = self.compute(q, a, self.prepare_labels(labels, q), *self._ids, negatives, self._neg_ids)
        if not with_backward:
            return value
        leaves = [leaf for column in reps for leaf in column]
        params = [p for p in self.loss.parameters() if p.requires_grad]
        grads = torch.autograd.grad(value, leaves + params, allow_unused=True)
        for leaf, grad in zip(leaves, grads[: len(leaves)], strict=True):
            leaf.grad = grad  # None for an unused column: the mixin raises a clear error
        self._param_grads = [
            (p, g) for p, g in zip(params, grads[len(leaves) :], strict=True) if g is not None
        ]
        return value.detach()

    def fits_one_mini_batch(self, features: list[dict[str, Any]]) -> bool:
        """Whether caching buys nothing: one process, and every column fits in one mini-batch."""
        return (
            not is_distributed()
            and self.mini_batch_num_tokens is None
            and all(_get_batch_size(f) <= self.mini_batch_size for f in features)
        )

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        self._check_columns(features)
        if self.fits_one_mini_batch(features):
            # the plain loss: same value, gradients and dropout masks, without the second forward.
            # (Not under DDP: every rank must take the same path, whatever its local batch size.)
            return STLoss.forward(self, features, labels)
        self._ids = self.ids(features)  # on the full batch, before any slicing
        self._neg_ids = self.neg_ids(features)
        self._param_grads = []
        try:
            loss = self.forward_cached(features, labels)  # value L, backward hook runs step 3
        finally:
            self._ids = (None, None)
            self._neg_ids = None
        if self._param_grads:
            # value 0, gradient dL/dtau for each loss parameter, scaled by the outer backward's gradient
            carry = sum((p * g).sum() for p, g in self._param_grads)
            loss = loss + (carry - carry.detach())
            self._param_grads = []
        return loss


def make_st_loss(
    model: nn.Module,
    loss: EmbeddingLoss | str,
    mini_batch_size: int | None = None,
    embedding_callback: EmbeddingCallback | None = None,
    *,
    gather_across_processes: bool = True,
    **loss_kwargs: Any,
) -> STLoss:
    """The trainer's ``loss=``: :class:`CachedSTLoss` if ``mini_batch_size`` is set, else :class:`STLoss`.

    ``gather_across_processes`` defaults to True: it only acts under an initialised multi-process
    group (``torchrun``), where it makes the contrastive batch the global one; a single process is
    unaffected.
    """
    if mini_batch_size is None:
        return STLoss(
            model, loss, embedding_callback, gather_across_processes=gather_across_processes, **loss_kwargs
        )
    return CachedSTLoss(
        model,
        loss,
        mini_batch_size,
        embedding_callback,
        gather_across_processes=gather_across_processes,
        **loss_kwargs,
    )
