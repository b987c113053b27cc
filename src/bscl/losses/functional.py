"""Pure functional core of every loss in bscl.

Every function here takes embeddings (and labels / text ids), never a model, and returns a scalar
tensor. The ``nn.Module`` wrappers in :mod:`bscl.losses.modules` hold the hyper-parameters, their
defaults (and a trainable temperature); :mod:`bscl.losses.st` plugs them into sentence-transformers'
``SentenceTransformerTrainer``. The SoftCSE sharpness ``beta`` / slope ``gamma`` have no default here:
their defaults are the modules' (one place).

Batch layout (all losses)
-------------------------
``q``: ``(m, d)`` embeddings of the first texts of ``m`` pairs (queries / anchors / sentence 1).
``a``: ``(m, d)`` embeddings of the second texts (answers / positives / sentence 2).
``labels``: optional ``(m,)`` pair labels: binary, or graded in ``[0, 1]``, binarized for the
contrastive terms by :func:`binarize` (``y > threshold``, strict). ``q_ids`` / ``a_ids``: optional
``(m,)`` integer ids of the *texts* (equal id <=> identical text); without them each row is its own
text. They must come from the input text, never from equal embeddings (dropout makes equal texts
differ). ``negatives``: optional ``(m, k, d)`` embeddings of ``k`` extra negative texts per row (the
``(anchor, positive, negative_1..k)`` layout of sentence-transformers' ``mine_hard_negatives``), with
optional ``neg_ids`` ``(m, k)``.

Positives (Chernyavskiy et al., NAACL 2022, eqs. 3-5)
----------------------------------------------------
The *labeled positive text pairs* of a batch are ``{(text(q_k), text(a_k)) : y_k > t}`` (every row
without labels). A candidate pair ``(q_i, c)`` -- ``c`` an answer or a negative -- is a positive
exactly when its text pair is one of them. Row ``i`` of a direction adds a numerator term only when
its own label is positive (eq. 5); every row and every candidate stays in every denominator. With
no duplicate texts this is the authors' loss (``lib/BSCLoss.py`` of aschern/BSC-loss): the diagonal,
masked by the binarized labels.

The contrastive losses share one core, :func:`masked_contrastive_ce`: for a logit matrix ``Z`` and a
positive mask ``P`` (``P[i, c]`` = "candidate c is a positive of row i"),

    l_i = - 1/|P_i| * sum_{c in P_i} log( exp(Z_ic) / sum_k exp(Z_ik) )     (0 when P_i is empty)
    L   = 1/m * sum_i l_i

i.e. SupCon-style averaging over the positives *outside* the log (Khosla et al. 2020, "L_out"), and
the mean over *all* m rows, also those without positives (as in the authors' code).

Extra negatives: the query->answer softmax of every row runs over the ``m + m k`` candidates
(the m answers, then the negatives of all rows), as sentence-transformers'
MultipleNegativesRankingLoss and the authors' ``torch.cat(reps[1:])`` do. The answer->query
direction keeps the m answers as rows and the m queries as candidates (the authors' dim-0
``log_softmax`` reads only the diagonal of the first m columns): the negatives take no part in it.
Batch statistics of the coordinate normalizations of the candidate side are taken over the whole
candidate set (answers and negatives), as the authors' code does on ``torch.cat(reps[1:])``.

Numerics: half-precision inputs (float16 / bfloat16) are computed in float32 (as autocast does
for softmax and losses) and the loss is returned in float32. Normalizations divide by a
(detached) per-row or per-column max-abs first -- they are scale invariant, so values and
gradients are unchanged -- which keeps inputs of any finite magnitude from overflowing, and
square roots are taken only of positive values (finite gradients on constant columns, zero
vectors and one-row batches).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from bscl.losses.options import (  # noqa: F401  (the option checks and choices, torch-free)
    COMBINES,
    NORMALIZATIONS,
    Combine,
    LossOptionError,
    Normalization,
    check_choice,
    check_margin,
    check_unit,
)

LogitsFn = Callable[[Tensor, Tensor], Tensor]


# --------------------------------------------------------------------------------------------------
# argument checks (clear ValueErrors instead of shape errors deep inside torch): one per fact
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


def _check_negatives(negatives: Tensor | None, neg_ids: Tensor | None, m: int, d: int) -> int:
    """The number ``k`` of extra negatives per row (0 without)."""
    if negatives is None:
        if neg_ids is not None:
            raise ValueError("neg_ids given without negatives")
        return 0
    if negatives.dim() != 3 or negatives.shape[0] != m or negatives.shape[2] != d:
        raise ValueError(f"negatives must have shape ({m}, k, {d}); got {tuple(negatives.shape)}")
    k = negatives.shape[1]
    if neg_ids is not None and tuple(neg_ids.shape) != (m, k):
        raise ValueError(f"neg_ids must have shape ({m}, {k}) to match negatives; got {tuple(neg_ids.shape)}")
    return k


def check_tau(tau: float | Tensor) -> None:
    """``tau`` must be a finite number > 0 (a tensor: its smallest entry)."""
    value = float(tau.detach().min()) if isinstance(tau, Tensor) else float(tau)
    if not (value > 0 and math.isfinite(value)):
        raise LossOptionError("tau", f"must be > 0 and finite (got {value})")


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half-precision inputs, else the input's floating dtype."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


# --------------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------------
def _safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` for ``x >= 0`` with a finite (zero) gradient at 0 instead of ``inf * 0 = nan``."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def _max_abs(x: Tensor, dim: int) -> Tensor:
    """Detached max |x| along ``dim`` (kept), 1 where it is 0: a scale that prevents overflow."""
    scale = x.detach().abs().amax(dim=dim, keepdim=True)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _not_constant(stat: Tensor, scale: Tensor, n: int) -> Tensor:
    """Columns whose statistic is not numerically zero: ``(1, d)`` bool.

    ``stat`` is a per-column statistic (range, norm, std) of the columns divided by their ``scale``
    (``_max_abs``); in the input's units it is ``stat * scale``. A column counts as constant when
    that is at most ``max(n, d) * eps`` times the largest column's (numpy's ``matrix_rank``
    tolerance), or 0. Detached: the mask is a choice of formula, not a differentiable quantity.
    """
    stat = stat.detach()
    # the ratio to the largest column, computed without forming stat * scale (no overflow)
    log_size = torch.where(stat > 0, stat.log() + scale.log(), torch.full_like(stat, -math.inf))
    tol = max(n, scale.shape[1], 1) * torch.finfo(stat.dtype).eps
    return (stat > 0) & (log_size - log_size.max() > math.log(tol))


def normalize(x: Tensor, method: Normalization = "l2") -> Tensor:
    """Normalize a ``(n, d)`` batch of embeddings (Chernyavskiy et al. 2022, Sec. 3.5).

    - ``l2``: each row divided by its L2 norm (cosine similarities); a zero row stays zero.
    - ``coordinate``: the authors' "normalization over the zero dimension": each coordinate (column)
      divided by its ``max - min`` range over the batch, without centring. A column of range 0
      (one row, identical rows, a constant coordinate) is left **unscaled**.
    - ``coordinate-l2``: "L2 normalization by coordinates": each column divided by its L2 norm over
      the batch axis; a zero column stays zero (unscaled).
    - ``zscore``: each column centred and divided by its (population) standard deviation over the
      batch; a constant column becomes 0 (centred, unscaled).
    - ``none``: unchanged (dot products).

    Numerically constant columns: a column whose statistic (range, batch norm, std) is at most
    ``max(n, d) * eps`` times the largest column's (``eps`` of the computing dtype, the tolerance
    ``numpy.linalg.matrix_rank`` uses for singular values) is treated as constant and left
    unscaled, as a column of range 0 is. The paper's formula would blow such a column up to range 1
    with a gradient of ``1 / range``: all-MiniLM-L6-v2 has two dead coordinates of magnitude ~1e-33
    (and one of ~1e-8, against ~1e-1 for the others), whose ``1 / range`` ~ 1e32 overflows float32
    in the backward pass through the encoder (the PFCC-S paper recipe stopped at step 1 with an
    infinite gradient norm). Left unscaled they contribute ~0 to the scores, as they do to every
    cosine; the other columns get the paper's values exactly.

    Every method but ``none`` is scale invariant (per row, or per column), so the input is first
    divided by its detached per-row / per-column max |x|: same values and gradients, no overflow of
    the squares for inputs of any finite magnitude. Hand-written rather than ``F.normalize``, which
    computes the norm in the input dtype (inf above ~1e19 in float32, so the rows silently become
    zero vectors) and clamps with an ``eps`` that underflows in float16.
    """
    if method == "l2":
        xs = x / _max_abs(x, 1)  # (n, d), max |entry| per row = 1
        norm = _safe_sqrt(xs.pow(2).sum(dim=1, keepdim=True))  # (n, 1), >= 1 except for zero rows
        return xs / torch.where(norm > 0, norm, torch.ones_like(norm))
    if method == "coordinate":
        scale = _max_abs(x, 0)  # (1, d)
        xs = x / scale  # (n, d), max |entry| per column = 1
        span = xs.amax(dim=0, keepdim=True) - xs.amin(dim=0, keepdim=True)  # (1, d)
        ok = _not_constant(span, scale, x.shape[0])
        return torch.where(ok, xs / torch.where(ok, span, torch.ones_like(span)), x)
    if method == "coordinate-l2":
        scale = _max_abs(x, 0)  # (1, d)
        xs = x / scale  # (n, d)
        norm = _safe_sqrt(xs.pow(2).sum(dim=0, keepdim=True))  # (1, d)
        ok = _not_constant(norm, scale, x.shape[0])
        return torch.where(ok, xs / torch.where(ok, norm, torch.ones_like(norm)), x)
    if method == "zscore":
        scale = _max_abs(x, 0)  # (1, d)
        xs = x / scale  # (n, d)
        centred = xs - xs.mean(dim=0, keepdim=True)  # (n, d)
        std = _safe_sqrt(centred.pow(2).mean(dim=0, keepdim=True))  # (1, d)
        ok = _not_constant(std, scale, x.shape[0])
        return torch.where(ok, centred / torch.where(ok, std, torch.ones_like(std)), centred * scale)
    if method == "none":
        return x
    check_choice("normalization", method, NORMALIZATIONS)
    raise AssertionError("unreachable")


def binarize(labels: Tensor, threshold: float) -> Tensor:
    """``labels > threshold`` (strict) as a bool tensor: graded labels -> positive / negative pairs.

    Strict as the paper's ``1[y > t]`` and the authors' data reader (``score > thr``); note that the
    authors' ``ComboBSCLoss`` class binarizes with ``labels >= 0.5`` instead. A label exactly at the
    threshold is a negative. Every part of bscl that binarizes labels (contrastive losses, triplet,
    ``--data.positives_only``) calls this function.
    """
    return labels > threshold


def positive_pairs(
    m: int,
    *,
    positive: Tensor | None = None,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    neg_ids: Tensor | None = None,
    k: int = 0,
    device: torch.device | None = None,
) -> Tensor:
    """``(m, m + m k)`` bool: ``[i, c]`` = the text pair (q_i, candidate c) is a labeled positive pair.

    Candidates are the m answers, then the ``m k`` negatives in row-major order (row 0's k
    negatives first). ``[i, c]`` is True when some row ``r`` has ``text(q_r) = text(q_i)``,
    ``text(a_r) = text(c)`` and a positive label (``positive[r]``; every row without labels). Text
    identity: equal ids, or the row index without ids. A negative can only match an answer text when
    both ``a_ids`` and ``neg_ids`` are given (else it is never a positive). Computed as a lookup in a
    table of the positive text pairs: ``O(m (m + m k))``.
    """
    positive = torch.ones(m, dtype=torch.bool, device=device) if positive is None else positive
    if q_ids is None and a_ids is None and k == 0:
        return torch.diag(positive)  # no text repeats: the (label-masked) diagonal
    # text indices: queries 0..n_q-1; candidates (answers, then negatives) 0..n_c-1, equal text <=> equal index
    rows = torch.arange(m, device=device)
    q_text = rows if q_ids is None else torch.unique(q_ids, return_inverse=True)[1]  # (m,)
    if a_ids is None:  # answers distinct; negatives distinct from everything
        c_text = torch.arange(m + m * k, device=device)  # (m + m k,)
    elif k == 0:
        c_text = torch.unique(a_ids, return_inverse=True)[1]  # (m,)
    else:
        negs = neg_ids.reshape(-1) if neg_ids is not None else None
        if negs is None:  # negatives distinct from the answers and from each other
            a_text = torch.unique(a_ids, return_inverse=True)[1]  # (m,)
            c_text = torch.cat([a_text, m + torch.arange(m * k, device=device)])  # (m + m k,)
        else:
            c_text = torch.unique(torch.cat([a_ids, negs]), return_inverse=True)[1]  # (m + m k,)
    # table[qt, ct] > 0: the text pair (qt, ct) is a labeled positive pair (some positive row has it);
    # index_put_ with accumulate (no boolean indexing: no device sync); indices are < m and < m + m k
    table = torch.zeros((m, m + m * k), dtype=torch.int32, device=device)
    table.index_put_((q_text, c_text[:m]), positive.to(torch.int32), accumulate=True)
    return table[q_text][:, c_text] > 0  # (m, m + m k)


def masked_contrastive_ce(logits: Tensor, pos_mask: Tensor) -> Tensor:
    """SupCon-style cross-entropy averaged over all rows (see the module docstring).

    ``logits``: ``(m, n)``; ``pos_mask``: ``(m, n)`` bool. Rows without positives add 0 but count in
    the mean.
    """
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (m, n)
    n_pos = pos_mask.sum(dim=1)  # (m,)
    # where() rather than multiplication keeps -inf * 0 = nan out of masked entries
    pos_log_prob = torch.where(pos_mask, log_prob, torch.zeros_like(log_prob)).sum(dim=1)  # (m,)
    per_row = -pos_log_prob / n_pos.clamp_min(1).to(log_prob.dtype)  # (m,)
    return per_row.mean()


def _combine(forward: Tensor, backward: Tensor | None, combine: Combine) -> Tensor:
    if backward is None:
        return forward
    return (forward + backward) / 2 if combine == "mean" else forward + backward


def _contrastive(
    q: Tensor,
    a: Tensor,
    logits_fn: LogitsFn,
    *,
    labels: Tensor | None,
    threshold: float,
    q_ids: Tensor | None,
    a_ids: Tensor | None,
    negatives: Tensor | None,
    neg_ids: Tensor | None,
    symmetric: bool,
    combine: Combine,
    normalization: Normalization,
) -> Tensor:
    """The shared core: normalize, score ``(m, m + m k)``, build both directions' masks, average.

    ``logits_fn(scores, pos_mask)`` turns the similarity scores of one direction into logits.
    """
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    _check_vector("q_ids", q_ids, m)
    _check_vector("a_ids", a_ids, m)
    k = _check_negatives(negatives, neg_ids, m, q.shape[1])
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_choice("combine", combine, COMBINES)
    dtype = _compute_dtype(q)
    cands = a if negatives is None else torch.cat([a, negatives.reshape(m * k, -1)])  # (m + m k, d)
    qn = normalize(q.to(dtype), normalization)  # (m, d)
    cn = normalize(cands.to(dtype), normalization)  # (m + m k, d): statistics over all candidates
    scores = qn @ cn.transpose(0, 1)  # (m, m + m k)
    positive = None if labels is None else binarize(labels, threshold)
    pairs = positive_pairs(
        m, positive=positive, q_ids=q_ids, a_ids=a_ids, neg_ids=neg_ids, k=k, device=q.device
    )
    # q -> candidates: row i adds a term only when its own label is positive (eq. 5)
    mask_qa = pairs if positive is None else pairs & positive.view(-1, 1)  # (m, m + m k)
    loss_qa = masked_contrastive_ce(logits_fn(scores, mask_qa), mask_qa)
    loss_aq = None
    if symmetric:
        # answers -> queries: rows are the m answers, candidates the m queries; the same pairs
        pairs_aq = pairs[:, :m].transpose(0, 1)  # (m, m): [j, i] = (q_i, a_j) is a positive pair
        mask_aq = pairs_aq if positive is None else pairs_aq & positive.view(-1, 1)  # (m, m)
        scores_aq = scores[:, :m].transpose(0, 1)  # (m, m)
        loss_aq = masked_contrastive_ce(logits_fn(scores_aq, mask_aq), mask_aq)
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
    negatives: Tensor | None = None,
    neg_ids: Tensor | None = None,
    symmetric: bool = True,
    combine: Combine = "mean",
    normalization: Normalization = "l2",
) -> Tensor:
    """Batch-softmax contrastive loss (Chernyavskiy et al., NAACL 2022, eqs. 1-5).

    With ``S = norm(Q) norm(C)^T / tau`` (``(m, m + m k)``, ``C`` the answers then the negatives):

        L_qa = -1/m sum_i 1/|P_i| sum_{c in P_i} log softmax_row(S)_ic
        L_aq = the same on S[:, :m]^T (answers -> queries) with the same positive pairs
        L    = (L_qa + L_aq) / 2   (combine="mean", the authors' code)  or  L_qa + L_aq  (combine="sum", eq. 1)

    ``P_i`` (module docstring): ``{i}`` for plain BSC (eq. 1-2); empty for rows whose own label is not
    positive (eq. 5: they stay in every denominator); every candidate whose text pair with ``q_i`` is
    a labeled positive pair of the batch, with duplicate texts (eqs. 3-4). ``symmetric=False`` gives
    the one-direction loss of eq. 2 (SimCSE / MultipleNegativesRankingLoss). ``tau`` may be a tensor
    (trainable temperature).

    Defined values: a batch of one pair gives 0 (one candidate); identical rows give ``log m`` per
    direction under every normalization; a batch without positive rows gives 0 with zero gradient.
    Pair with :mod:`bscl.batching` example-based shuffling so that batches contain hard negatives.
    """
    check_tau(tau)
    return _contrastive(
        q,
        a,
        lambda s, _mask: s / tau,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization=normalization,
    )


def diagonal_cosine(q: Tensor, a: Tensor) -> Tensor:
    """``(m,)`` cosine similarity of each pair (row i of q with row i of a); 0 for a zero vector.

    Computed in float32 for half-precision inputs, on :func:`normalize`'s overflow-safe L2 rows.
    """
    dtype = _compute_dtype(q)
    return (normalize(q.to(dtype), "l2") * normalize(a.to(dtype), "l2")).sum(dim=1)


def mse_cosine_loss(q: Tensor, a: Tensor, labels: Tensor) -> Tensor:
    """Mean over pairs of ``(cos(q_i, a_i) - y_i)^2`` (SBERT's CosineSimilarityLoss).

    Only the diagonal is regressed: the other pairs of the batch are not pushed anywhere.
    """
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    cos = diagonal_cosine(q, a)
    return (cos - labels.to(cos.dtype)).pow(2).mean()


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
    negatives: Tensor | None = None,
    neg_ids: Tensor | None = None,
    symmetric: bool = True,
    combine: Combine = "mean",
    normalization: Normalization = "l2",
) -> Tensor:
    """Combo loss (eq. 6): ``mu * BSC + (1 - mu) * MSE``.

    The BSC term (:func:`bsc_loss`) uses binarized labels (labeled negatives, eq. 5) and the
    negatives; the MSE term regresses the cosine of the *un-normalized* embeddings of each pair
    ``(q_i, a_i)`` onto the graded label, as in the authors' code (so the coordinate normalization of
    the BSC term does not leak into it). The authors' class binarizes with ``>= 0.5``; here it is
    :func:`binarize` (strict).
    """
    check_unit("mu", mu)
    contrastive = bsc_loss(
        q,
        a,
        tau,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization=normalization,
    )
    return mu * contrastive + (1 - mu) * mse_cosine_loss(q, a, labels)


def pearson_combo_loss(
    q: Tensor,
    a: Tensor,
    labels: Tensor,
    tau: float | Tensor = 0.1,
    *,
    mu: float = 0.1,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    negatives: Tensor | None = None,
    neg_ids: Tensor | None = None,
    symmetric: bool = True,
    combine: Combine = "mean",
    normalization: Normalization = "l2",
) -> Tensor:
    """Pearson + BSC combo (Chernyavskiy et al. 2022, Sec. 7: F1 89.88 on MRPC).

        L = mu * BSC + (1 - mu) * (1 - Pearson(cos(q_i, a_i), y_i))

    eq. 6 with the Pearson term of :func:`pearson_loss` in place of the MSE term (the authors' code
    has it as a commented-out alternative, ``-pearsonr(cos, labels)``). The BSC term is
    :func:`bsc_loss` with binarized labels; the Pearson term uses the graded labels and the
    un-normalized embeddings.
    """
    check_unit("mu", mu)
    contrastive = bsc_loss(
        q,
        a,
        tau,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization=normalization,
    )
    return mu * contrastive + (1 - mu) * pearson_loss(q, a, labels)


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
    Every (positive j, negative k) combination inside a group (:func:`binarize`: ``y > threshold``)
    gives a triplet ``max(0, d(q_i, a_j) - d(q_i, a_k) + margin)`` with ``d = 1 - cos`` and ``q_i``
    the group's first row; the loss is the mean over all triplets of the batch, 0 when the batch has
    none. Pair with ``sequential`` batching (pairs of one anchor kept together) or a sampler that
    groups by the first text.
    """
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    _check_vector("q_ids", q_ids, m)
    check_margin(margin)
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
        return (q.sum() + a.sum()).to(dist.dtype) * 0.0  # keeps the graph, zero gradient
    return torch.where(valid, hinge, torch.zeros_like(hinge)).sum() / n


def pearson_loss(q: Tensor, a: Tensor, labels: Tensor, eps: float = 1e-8) -> Tensor:
    """``1 - Pearson(cos(q_i, a_i), y_i)`` over the batch (the paper's Sec. 7: 85.57 on STSb).

        r = sum_i x_i y_i / (||x|| ||y||),   x = cos - mean(cos),  y = labels - mean(labels)

    A batch of one pair, constant cosines or constant labels have no correlation: a centred vector
    is zero, so the loss is 1 with zero gradient (the square roots are taken only of positive values,
    and ``r`` is set to 0 where ``||x|| ||y|| <= eps`` rather than divided by it; float32 for
    half-precision inputs).
    """
    m = _check_pair(q, a)
    _check_vector("labels", labels, m)
    cos = diagonal_cosine(q, a)  # (m,)
    x = cos - cos.mean()
    y = labels.to(cos.dtype) - labels.to(cos.dtype).mean()
    den = _safe_sqrt(x.pow(2).sum()) * _safe_sqrt(y.pow(2).sum())
    # a zero centred vector: r = 0 with zero gradient (not (x . y) / eps, whose gradient y / eps is ~1e8);
    # the divisor is swapped for 1 there so the branch that where() drops has no inf / NaN gradient either
    positive = den > eps
    r = torch.where(
        positive, (x * y).sum() / torch.where(positive, den, torch.ones_like(den)), torch.zeros_like(den)
    )
    return 1 - r


# --------------------------------------------------------------------------------------------------
# SoftCSE (Zhuang et al., CIKM 2024) -- our reading of the abstract
# --------------------------------------------------------------------------------------------------
def softcse_weight_loss(
    q: Tensor,
    a: Tensor,
    tau: float | Tensor = 0.05,
    *,
    beta: float,
    labels: Tensor | None = None,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    negatives: Tensor | None = None,
    neg_ids: Tensor | None = None,
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
    ``log w_ij`` added to the negative logits, so positives, labels and extra negatives work as in
    :func:`bsc_loss` (module docstring).
    """
    check_tau(tau)

    def logits_fn(s: Tensor, pos_mask: Tensor) -> Tensor:
        neg = ~pos_mask
        if beta == 0.0:
            return s / tau
        sd = s.detach()
        tau_d = tau.detach() if isinstance(tau, Tensor) else tau  # weights are constants: no gradient
        # finfo.min rather than -inf: a row without negatives must not turn into NaN
        w_logits = torch.where(
            neg, beta * sd / tau_d, torch.full_like(sd, torch.finfo(sd.dtype).min)
        )  # (m, n)
        n_neg = neg.sum(1, keepdim=True).clamp_min(1).to(s.dtype)  # (m, 1)
        log_w = torch.log_softmax(w_logits, dim=1) + torch.log(n_neg)  # (m, n): weights average to 1
        return s / tau + torch.where(neg, log_w, torch.zeros_like(log_w))

    return _contrastive(
        q,
        a,
        logits_fn,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization="l2",
    )


def softcse_temperature_loss(
    q: Tensor,
    a: Tensor,
    tau: float | Tensor = 0.05,
    *,
    gamma: float,
    labels: Tensor | None = None,
    threshold: float = 0.5,
    q_ids: Tensor | None = None,
    a_ids: Tensor | None = None,
    negatives: Tensor | None = None,
    neg_ids: Tensor | None = None,
    symmetric: bool = False,
    combine: Combine = "mean",
) -> Tensor:
    """SoftCSE, per-negative *temperature* variant (our parametrisation; only the abstract is available).

    Each negative pair gets its own temperature from its detached cosine similarity:

        tau_ij = tau * exp(gamma * sg(s_ij))   for negatives,   tau for positives

    ``gamma = 0`` is exactly InfoNCE. ``gamma > 0`` gives similar (possibly false) negatives a higher
    temperature, softening their push; ``gamma < 0`` sharpens it. ``tau_ij > 0`` always. Positives,
    labels and extra negatives as in :func:`bsc_loss`.
    """
    check_tau(tau)

    def logits_fn(s: Tensor, pos_mask: Tensor) -> Tensor:
        if gamma == 0.0:
            return s / tau
        pair_tau = torch.where(pos_mask, torch.ones_like(s), torch.exp(gamma * s.detach())) * tau  # (m, n)
        return s / pair_tau

    return _contrastive(
        q,
        a,
        logits_fn,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization="l2",
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
    negatives: Tensor | None = None,
    neg_ids: Tensor | None = None,
    symmetric: bool = False,
    combine: Combine = "mean",
) -> Tensor:
    """Focal-InfoNCE (Hou and Li, 2023, arXiv:2310.06918).

    With cosine similarities ``s``: positive logits ``s_ip^2 / tau``, negative logits
    ``s_ij (s_ij + m) / tau``, cross-entropy over the row. Hard (high-s) negatives are amplified and
    easy ones damped. Paper defaults: ``m = 0.3``, ``tau = 0.05``, one direction (SimCSE).
    Positives, labels and extra negatives as in :func:`bsc_loss`.
    """
    check_tau(tau)

    def logits_fn(s: Tensor, pos_mask: Tensor) -> Tensor:
        return torch.where(pos_mask, s * s, s * (s + margin)) / tau

    return _contrastive(
        q,
        a,
        logits_fn,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization="l2",
    )
