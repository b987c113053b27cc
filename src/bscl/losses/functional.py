"""Pure functional core of every loss in bscl.

Every function here takes embeddings (and labels / text ids), never a model, and returns a scalar
tensor. The ``nn.Module`` wrappers in :mod:`bscl.losses.modules` hold the hyper-parameters (and a
trainable temperature); the adapters in :mod:`bscl.losses.adapters` plug them into
sentence-transformers' ``SentenceTransformerTrainer``.

Batch layout (all losses)
-------------------------
``q``: ``(m, d)`` embeddings of the first texts of ``m`` pairs (queries / anchors / sentence 1).
``a``: ``(m, d)`` embeddings of the second texts (answers / positives / sentence 2).
``labels``: optional ``(m,)`` pair labels: binary, or graded in ``[0, 1]`` (binarized at ``threshold``
for the contrastive terms). ``q_ids`` / ``a_ids``: optional ``(m,)`` integer ids of the *texts*
(equal id <=> identical text); they switch on duplicate-aware positives. They must come from the input
text, never from equal embeddings (dropout makes equal texts differ).

The contrastive losses share one core, :func:`masked_contrastive_ce`: for a logit matrix ``Z`` and a
positive mask ``P`` (``P[i, j]`` = "column j is a positive of row i"),

    l_i = - 1/|P_i| * sum_{j in P_i} log( exp(Z_ij) / sum_k exp(Z_ik) )     (0 when P_i is empty)
    L   = 1/m * sum_i l_i

i.e. SupCon-style averaging over the positives *outside* the log (Khosla et al. 2020, "L_out"), and
the mean over *all* m rows, also those without positives (as in the BSC authors' code). This single
definition covers BSC eq. 1-2 (P = identity), labeled negatives eq. 5 (rows of label 0 have no
positive but stay in every denominator) and duplicate-aware positives eq. 3-4 (P from equal text ids).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Normalization = Literal["l2", "coordinate", "zscore", "none"]
Combine = Literal["mean", "sum"]
NORMALIZATIONS: tuple[str, ...] = ("l2", "coordinate", "zscore", "none")
_EPS = 1e-12


# --------------------------------------------------------------------------------------------------
# argument checks (clear ValueErrors instead of shape errors deep inside torch)
# --------------------------------------------------------------------------------------------------
def _check_pair(q: Tensor, a: Tensor) -> int:
    if q.dim() != 2 or a.dim() != 2:
        raise ValueError(
            f"embeddings must be 2-D (batch, dim); got q {tuple(q.shape)} and a {tuple(a.shape)}"
        )
    if q.shape != a.shape:
        raise ValueError(f"q and a must have the same shape; got q {tuple(q.shape)} and a {tuple(a.shape)}")
    if q.shape[0] == 0:
        raise ValueError("empty batch: q and a have 0 rows")
    return q.shape[0]


def _check_vector(name: str, v: Tensor | None, m: int) -> None:
    if v is None:
        return
    if v.dim() != 1 or v.shape[0] != m:
        raise ValueError(f"{name} must have shape ({m},) to match the batch; got {tuple(v.shape)}")


def _check_tau(tau: float | Tensor) -> None:
    value = float(tau.detach().min()) if isinstance(tau, Tensor) else float(tau)
    if not value > 0 or math.isnan(value):
        raise ValueError(f"temperature tau must be > 0; got {value}")


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value}")


# --------------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------------
def normalize(x: Tensor, method: Normalization = "l2", eps: float = 1e-8) -> Tensor:
    """Normalise a ``(m, d)`` batch of embeddings.

    - ``l2``: each row to unit length (cosine similarities).
    - ``coordinate``: the BSC authors' "normalization over the zero dimension": each coordinate
      (column) divided by its max - min range over the batch, without centring (Sec. 3.5).
    - ``zscore``: each coordinate centred and divided by its standard deviation over the batch.
    - ``none``: unchanged (dot products).

    Coordinate methods are batch statistics: with one row (or constant columns) the range / std is 0
    and is clamped to ``eps`` so the result stays finite.
    """
    if method == "l2":
        return F.normalize(x, p=2, dim=1, eps=eps)
    if method == "coordinate":
        span = x.amax(dim=0, keepdim=True) - x.amin(dim=0, keepdim=True)  # (1, d)
        return x / span.clamp_min(eps)
    if method == "zscore":
        centred = x - x.mean(dim=0, keepdim=True)  # (m, d)
        std = centred.pow(2).mean(dim=0, keepdim=True).sqrt()  # (1, d), population std
        return centred / std.clamp_min(eps)
    if method == "none":
        return x
    raise ValueError(f"unknown normalization {method!r}; choose one of {NORMALIZATIONS}")


def binarize(labels: Tensor, threshold: float) -> Tensor:
    """``labels >= threshold`` as a bool tensor (graded labels -> positive / negative pairs)."""
    return labels >= threshold


def positive_mask(
    m: int,
    *,
    row_ids: Tensor | None = None,
    positive: Tensor | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """``(m, m)`` bool mask of the positives of each row for one direction.

    Column ``j`` is a positive of row ``i`` when the anchor texts of rows ``i`` and ``j`` are identical
    (``row_ids[i] == row_ids[j]``; only ``j == i`` without ids) and pair ``j`` is a positive pair
    (``positive[j]``; always without labels).
    """
    if row_ids is None:
        mask = torch.eye(m, dtype=torch.bool, device=device)
    else:
        mask = row_ids.view(-1, 1) == row_ids.view(1, -1)  # (m, m)
    if positive is not None:
        mask = mask & positive.view(1, -1)  # (m, m): keep only positive pairs as columns
    return mask


def masked_contrastive_ce(logits: Tensor, pos_mask: Tensor) -> Tensor:
    """SupCon-style cross-entropy averaged over all rows (see the module docstring).

    ``logits``: ``(m, m)``; ``pos_mask``: ``(m, m)`` bool. Rows without positives add 0 but count in
    the mean.
    """
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (m, m)
    n_pos = pos_mask.sum(dim=1)  # (m,)
    # where() rather than multiplication keeps -inf * 0 = nan out of masked entries
    pos_log_prob = torch.where(pos_mask, log_prob, torch.zeros_like(log_prob)).sum(dim=1)  # (m,)
    per_row = -pos_log_prob / n_pos.clamp_min(1).to(log_prob.dtype)  # (m,)
    return per_row.mean()


def _combine(forward: Tensor, backward: Tensor | None, combine: Combine) -> Tensor:
    if backward is None:
        return forward
    if combine == "mean":
        return (forward + backward) / 2
    if combine == "sum":
        return forward + backward
    raise ValueError(f"combine must be 'mean' or 'sum'; got {combine!r}")


def _prepare(
    q: Tensor,
    a: Tensor,
    labels: Tensor | None,
    q_ids: Tensor | None,
    a_ids: Tensor | None,
    threshold: float,
) -> tuple[int, Tensor | None]:
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    _check_vector("q_ids", q_ids, m)
    _check_vector("a_ids", a_ids, m)
    positive = None if labels is None else binarize(labels, threshold)
    return m, positive


def _directions(
    scores: Tensor,
    logits_fn,
    *,
    m: int,
    positive: Tensor | None,
    q_ids: Tensor | None,
    a_ids: Tensor | None,
    symmetric: bool,
    combine: Combine,
) -> Tensor:
    """Apply ``logits_fn(scores, pos_mask)`` in the q->a direction and, if symmetric, a->q."""
    mask_qa = positive_mask(m, row_ids=q_ids, positive=positive, device=scores.device)
    loss_qa = masked_contrastive_ce(logits_fn(scores, mask_qa), mask_qa)
    loss_aq = None
    if symmetric:
        scores_t = scores.transpose(0, 1)  # (m, m): rows are answers, columns queries
        mask_aq = positive_mask(m, row_ids=a_ids, positive=positive, device=scores.device)
        loss_aq = masked_contrastive_ce(logits_fn(scores_t, mask_aq), mask_aq)
    return _combine(loss_qa, loss_aq, combine)


# --------------------------------------------------------------------------------------------------
# BSC family
# --------------------------------------------------------------------------------------------------
def bsc_loss(
    q: Tensor,
    a: Tensor,
    tau: float | Tensor = 0.1,
    *,
    labels: Tensor | None = None,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    symmetric: bool = True,
    combine: Combine = "mean",
    normalization: Normalization = "l2",
) -> Tensor:
    """Batch-softmax contrastive loss (Chernyavskiy et al., NAACL 2022, eqs. 1-5).

    With ``S = norm(Q) norm(A)^T / tau`` (``(m, m)``):

        L_qa = -1/m sum_i 1/|P_i| sum_{j in P_i} log softmax_row(S)_ij
        L_aq = the same on S^T with the answer-side positives
        L    = (L_qa + L_aq) / 2   (combine="mean", the authors' code)  or  L_qa + L_aq  (combine="sum", eq. 1)

    ``P_i`` is ``{i}`` for plain BSC, empty for rows with a negative label (eq. 5: they stay in every
    denominator), and all rows with the same anchor text for duplicate-aware positives (eqs. 3-4).
    ``symmetric=False`` gives the one-direction loss of eq. 2 (SimCSE / MultipleNegativesRankingLoss).
    ``tau`` may be a tensor (trainable temperature).

    Pair with :class:`bscl.batching` example-based shuffling so that batches contain hard negatives.
    """
    _check_tau(tau)
    m, positive = _prepare(q, a, labels, q_ids, a_ids, threshold)
    qn, an = normalize(q, normalization), normalize(a, normalization)
    scores = qn @ an.transpose(0, 1) / tau  # (m, m)
    return _directions(
        scores,
        lambda s, _mask: s,
        m=m,
        positive=positive,
        q_ids=q_ids,
        a_ids=a_ids,
        symmetric=symmetric,
        combine=combine,
    )


def diagonal_cosine(q: Tensor, a: Tensor) -> Tensor:
    """``(m,)`` cosine similarity of each pair (row i of q with row i of a)."""
    return F.cosine_similarity(q, a, dim=1, eps=1e-8)


def mse_cosine_loss(q: Tensor, a: Tensor, labels: Tensor) -> Tensor:
    """Mean over pairs of ``(cos(q_i, a_i) - y_i)^2`` (SBERT's CosineSimilarityLoss).

    Only the diagonal is regressed: the other pairs of the batch are not pushed anywhere.
    """
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    return (diagonal_cosine(q, a) - labels.to(q.dtype)).pow(2).mean()


def combo_loss(
    q: Tensor,
    a: Tensor,
    labels: Tensor,
    tau: float | Tensor = 0.1,
    *,
    mu: float = 0.1,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    symmetric: bool = True,
    combine: Combine = "mean",
    normalization: Normalization = "l2",
) -> Tensor:
    """Combo loss (eq. 6): ``mu * BSC + (1 - mu) * MSE``.

    The BSC term uses binarized labels (labeled negatives, eq. 5); the MSE term regresses the
    cosine of the *un-normalised* embeddings of each pair onto the graded label, as in the authors'
    code (so the coordinate normalization of the BSC term does not leak into it).
    """
    _check_unit("mu", mu)
    _check_tau(tau)
    contrastive = bsc_loss(
        q,
        a,
        tau,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        symmetric=symmetric,
        combine=combine,
        normalization=normalization,
    )
    return mu * contrastive + (1 - mu) * mse_cosine_loss(q, a, labels)


# --------------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------------
def triplet_loss(
    q: Tensor,
    a: Tensor,
    labels: Tensor,
    *,
    margin: float = 0.5,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
) -> Tensor:
    """Triplet loss with cosine distance for pair data with labeled negatives ("anchor grouping").

    Rows with the same anchor text (``q_ids``; each row its own anchor without ids) form a group.
    Every (positive j, negative k) combination inside a group gives a triplet
    ``max(0, d(q_i, a_j) - d(q_i, a_k) + margin)`` with ``d = 1 - cos`` and ``q_i`` the group's first
    row; the loss is the mean over all triplets of the batch, 0 when the batch has none. Pair with ``sequential`` batching (pairs of one
    anchor kept together) or a sampler that groups by the first text.
    """
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    _check_vector("q_ids", q_ids, m)
    if margin < 0:
        raise ValueError(f"margin must be >= 0; got {margin}")
    positive = binarize(labels, threshold)
    ids = torch.arange(m, device=q.device) if q_ids is None else q_ids
    same = ids.view(-1, 1) == ids.view(1, -1)  # (m, m) same anchor text
    anchor_row = same.to(torch.int8).argmax(dim=1)  # (m,) first row of each row's group
    # distance from each pair's group anchor to its answer: d_j = 1 - cos(q_{g(j)}, a_j)
    dist = 1 - diagonal_cosine(q[anchor_row], a)  # (m,)
    # (m, m) hinge over (positive j, negative k) of the same group
    hinge = (dist.view(-1, 1) - dist.view(1, -1) + margin).clamp_min(0)
    valid = same & positive.view(-1, 1) & ~positive.view(1, -1)
    n = valid.sum()
    if n == 0:
        return (q.sum() + a.sum()) * 0.0  # keeps the graph, zero gradient
    return torch.where(valid, hinge, torch.zeros_like(hinge)).sum() / n


def pearson_loss(q: Tensor, a: Tensor, labels: Tensor, eps: float = 1e-8) -> Tensor:
    """``1 - Pearson(cos(q_i, a_i), y_i)`` over the batch (the paper's Sec. 7: 85.57 on STSb).

    A batch of one pair (or constant labels) has no correlation: the centred vectors are zero, so the
    loss is 1 with zero gradient rather than NaN.
    """
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    cos = diagonal_cosine(q, a)
    x = cos - cos.mean()
    y = labels.to(cos.dtype) - labels.to(cos.dtype).mean()
    r = (x * y).sum() / (x.pow(2).sum().sqrt() * y.pow(2).sum().sqrt() + eps)
    return 1 - r


# --------------------------------------------------------------------------------------------------
# SoftCSE (Zhuang et al., CIKM 2024) -- our reading of the abstract
# --------------------------------------------------------------------------------------------------
def _cosine_scores(q: Tensor, a: Tensor) -> Tensor:
    return F.normalize(q, dim=1, eps=1e-8) @ F.normalize(a, dim=1, eps=1e-8).transpose(0, 1)  # (m, m)


def softcse_weight_loss(
    q: Tensor,
    a: Tensor,
    tau: float | Tensor = 0.05,
    *,
    beta: float = 0.0,
    labels: Tensor | None = None,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    symmetric: bool = False,
    combine: Combine = "mean",
) -> Tensor:
    """SoftCSE, per-negative *weight* variant (our parametrisation; only the abstract is available).

    InfoNCE with a weight on each negative inside the denominator:

        l_i = -log( e^{s_ip/tau} / ( e^{s_ip/tau} + sum_{j not in P_i} w_ij e^{s_ij/tau} ) )
        w_ij = (n_i) * softmax_{j not in P_i}( beta * sg(s_ij) / tau )

    where ``s`` are cosine similarities, ``sg`` stops gradients and ``n_i`` is the number of
    negatives of row i, so the weights average to 1. ``beta = 0`` gives ``w = 1``: exactly InfoNCE.
    ``beta < 0`` down-weights negatives that are very similar to the anchor (likely false negatives:
    "not all negatives are equally negative"); ``beta > 0`` emphasises hard negatives. Implemented as
    ``log w_ij`` added to the negative logits, so duplicate / labeled positives work as in BSC.
    """
    _check_tau(tau)
    m, positive = _prepare(q, a, labels, q_ids, a_ids, threshold)
    cos = _cosine_scores(q, a)  # (m, m)

    def logits_fn(s: Tensor, pos_mask: Tensor) -> Tensor:
        neg = ~pos_mask
        if beta == 0.0:
            return s / tau
        sd = s.detach()
        tau_d = tau.detach() if isinstance(tau, Tensor) else tau  # weights are constants: no gradient
        # finfo.min rather than -inf: a row without negatives must not turn into NaN
        w_logits = torch.where(
            neg, beta * sd / tau_d, torch.full_like(sd, torch.finfo(sd.dtype).min)
        )  # (m, m)
        n_neg = neg.sum(1, keepdim=True).clamp_min(1).to(s.dtype)  # (m, 1)
        log_w = torch.log_softmax(w_logits, dim=1) + torch.log(n_neg)  # (m, m): weights average to 1
        return s / tau + torch.where(neg, log_w, torch.zeros_like(log_w))

    return _directions(
        cos, logits_fn, m=m, positive=positive, q_ids=q_ids, a_ids=a_ids, symmetric=symmetric, combine=combine
    )


def softcse_temperature_loss(
    q: Tensor,
    a: Tensor,
    tau: float | Tensor = 0.05,
    *,
    gamma: float = 0.0,
    labels: Tensor | None = None,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    symmetric: bool = False,
    combine: Combine = "mean",
) -> Tensor:
    """SoftCSE, per-negative *temperature* variant (our parametrisation; only the abstract is available).

    Each negative pair gets its own temperature from its detached cosine similarity:

        tau_ij = tau * exp(gamma * sg(s_ij))   for negatives,   tau for positives

    ``gamma = 0`` is exactly InfoNCE. ``gamma > 0`` gives similar (possibly false) negatives a higher
    temperature, softening their push; ``gamma < 0`` sharpens it. ``tau_ij > 0`` always.
    """
    _check_tau(tau)
    m, positive = _prepare(q, a, labels, q_ids, a_ids, threshold)
    cos = _cosine_scores(q, a)  # (m, m)

    def logits_fn(s: Tensor, pos_mask: Tensor) -> Tensor:
        if gamma == 0.0:
            return s / tau
        pair_tau = torch.where(pos_mask, torch.ones_like(s), torch.exp(gamma * s.detach())) * tau  # (m, m)
        return s / pair_tau

    return _directions(
        cos, logits_fn, m=m, positive=positive, q_ids=q_ids, a_ids=a_ids, symmetric=symmetric, combine=combine
    )


# --------------------------------------------------------------------------------------------------
# Focal-InfoNCE (Hou and Li, 2023)
# --------------------------------------------------------------------------------------------------
def focal_infonce_loss(
    q: Tensor,
    a: Tensor,
    tau: float | Tensor = 0.05,
    *,
    margin: float = 0.3,
    labels: Tensor | None = None,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    symmetric: bool = False,
    combine: Combine = "mean",
) -> Tensor:
    """Focal-InfoNCE (Hou and Li, 2023, arXiv:2310.06918).

    With cosine similarities ``s``: positive logits ``s_ip^2 / tau``, negative logits
    ``s_ij (s_ij + m) / tau``, cross-entropy over the row. Hard (high-s) negatives are amplified and
    easy ones damped. Paper defaults: ``m = 0.3``, ``tau = 0.05``, one direction (SimCSE).
    """
    _check_tau(tau)
    m, positive = _prepare(q, a, labels, q_ids, a_ids, threshold)
    cos = _cosine_scores(q, a)  # (m, m)

    def logits_fn(s: Tensor, pos_mask: Tensor) -> Tensor:
        return torch.where(pos_mask, s * s, s * (s + margin)) / tau

    return _directions(
        cos, logits_fn, m=m, positive=positive, q_ids=q_ids, a_ids=a_ids, symmetric=symmetric, combine=combine
    )
