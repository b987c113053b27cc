"""Cross-process negatives: gather a batch from every rank so the loss sees the global batch.

Under PyTorch DDP each rank holds ``m_r`` pairs. :func:`gather_batch` concatenates the embeddings,
labels and text ids of all ranks in rank order (rank 0's rows first), so every rank computes the
loss of the *concatenated* batch of ``M = sum_r m_r`` pairs, exactly as a single process would:
positives sit on the diagonal of the ``(M, M)`` score matrix (the "labels offset by rank" of
MNRL-style gathering fall out of the concatenation), duplicate and label masks are built on the
global batch, and batch statistics (coordinate normalization) are global.

Why every rank computes the whole loss rather than only its own rows: the loss functions stay
untouched (symmetric directions, coordinate normalization, duplicate masks, SoftCSE weights and
Focal-InfoNCE all need the global batch anyway), and the ``(M, M)`` score matrix costs
``O(M^2 d)`` -- negligible next to the encoder (``M`` = 2048, ``d`` = 768: ~3 GFLOP against
~20 TFLOP for BERT-base on 1024 sequences of 90 tokens).

Gradient bookkeeping (verified numerically in ``tests/test_distributed.py``): every rank computes
the same loss ``L``. The backward of ``torch.distributed.nn.all_gather`` *sums* the gradients of
all ranks for each rank's slice, so rank ``r``'s embeddings receive ``W * dL/dx_r``; DDP then
*averages* the parameter gradients over the ``W`` ranks, which gives exactly ``dL/dtheta``. The
loss's own parameters (a trainable temperature) are outside DDP's module but receive the same
``dL/dtau`` on every rank, so they stay in sync without any reduction. No loss scaling is needed.

Extra negative columns (:func:`gather_negatives`) are gathered the same way: the global row ``i``
keeps its own ``k`` negatives, and every row's softmax sees the negatives of all ranks.

Ranks may hold different numbers of rows (the last batch of an epoch): rows are padded to the
largest rank before the collective and the padding is dropped afterwards.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_sizes(m: int, device: torch.device) -> list[int]:
    """The number of rows of every rank, in rank order (one small collective)."""
    _, world = rank_and_world_size()
    local = torch.tensor([m], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(local) for _ in range(world)]
    dist.all_gather(sizes, local)
    return [int(s) for s in sizes]


def gather_rows(x: Tensor, sizes: list[int], *, with_grad: bool) -> Tensor:
    """Concatenate the ``(m_r, ...)`` tensors of all ranks along dim 0 -> ``(sum_r m_r, ...)``.

    ``with_grad=True`` keeps autograd through the collective (``torch.distributed.nn.all_gather``,
    whose backward sums the gradients of all ranks, see the module docstring); ``False`` gathers
    plain values (labels, ids). ``sizes`` comes from :func:`gather_sizes`; every rank must call this
    with the same ``with_grad`` and dtype.
    """
    m_max = max(sizes)
    pad = m_max - x.shape[0]
    padded = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))]) if pad else x  # (m_max, ...)
    if with_grad:
        parts = list(dist_fn.all_gather(padded.contiguous()))
    else:
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:s] for part, s in zip(parts, sizes, strict=True)])  # (M, ...)


def gather_batch(
    q: Tensor,
    a: Tensor,
    labels: Tensor | None,
    q_ids: Tensor | None,
    a_ids: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """The global batch: ``q``, ``a`` gathered with autograd; labels and text ids without.

    Identity without an active multi-process group. Every rank must pass labels / ids or ``None``
    consistently (they do: all ranks run the same loss on the same dataset columns).
    """
    if not is_distributed():
        return q, a, labels, q_ids, a_ids
    sizes = gather_sizes(q.shape[0], q.device)
    q_all = gather_rows(q, sizes, with_grad=True)  # (M, d)
    a_all = gather_rows(a, sizes, with_grad=True)  # (M, d)
    labels_all = None if labels is None else gather_rows(labels, sizes, with_grad=False)  # (M,)
    q_ids_all = None if q_ids is None else gather_rows(q_ids, sizes, with_grad=False)  # (M,)
    a_ids_all = None if a_ids is None else gather_rows(a_ids, sizes, with_grad=False)  # (M,)
    return q_all, a_all, labels_all, q_ids_all, a_ids_all


def gather_negatives(negatives: Tensor | None, neg_ids: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """The global extra negatives: ``(m_r, k, d)`` with autograd and ``(m_r, k)`` ids without, in rank
    order like :func:`gather_batch` (so the global row ``i`` keeps its own negatives). Identity
    without an active multi-process group; every rank has the same ``k`` (the dataset's columns)."""
    if not is_distributed() or negatives is None:
        return negatives, neg_ids
    sizes = gather_sizes(negatives.shape[0], negatives.device)
    negatives_all = gather_rows(negatives, sizes, with_grad=True)  # (M, k, d)
    neg_ids_all = None if neg_ids is None else gather_rows(neg_ids, sizes, with_grad=False)  # (M, k)
    return negatives_all, neg_ids_all
