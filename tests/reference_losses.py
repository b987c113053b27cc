"""Loop references of every loss, written from the papers, NOT from ``bscl.losses.functional``.

Nothing here imports bscl or shares a helper with it: each loss is a plain Python loop over rows and
candidates, on Python floats (IEEE float64), straight from the formulas:

- BSC: Chernyavskiy, Ilvovsky, Kalinin, Nakov, "Batch-Softmax Contrastive Loss for Pairwise Sentence
  Scoring Tasks", NAACL 2022: eq. 1 (symmetric), eq. 2 (one direction), eqs. 3-4 (duplicate texts,
  SupCon "L_out": the mean over the positives is taken *outside* the log, Khosla et al. 2020), eq. 5
  (labeled negatives: a row with y_i = 0 adds nothing, neither the numerator nor its log-sum-exp, but its
  texts stay in every denominator; the mean is over all m rows), eq. 6 (combo), Sec. 3.4 (1[y > t]),
  Sec. 3.5 (normalization: L2 per row, by coordinates in a min-max scale, L2 by coordinates), Sec. 7
  (Pearson correlation combined with BSC).
- Focal-InfoNCE: Hou and Li 2023 (arXiv:2310.06918): positive logit s^2 / tau, negative s (s + m) / tau.
- SoftCSE: bscl's own parametrisation of the CIKM 2024 abstract (the docstrings of
  ``softcse_weight_loss`` / ``softcse_temperature_loss`` state it; the paper's functions are unknown).

Semantics of the positives, for every contrastive loss here:

    text pairs T+ = {(text(q_k), text(a_k)) : y_k > t}      (all k when there are no labels)
    row i is *active* iff y_i > t (every row without labels); an inactive row adds 0 but counts in 1/m
    query -> answer: candidates of row i are the m answers, then the m*k extra negatives
                     (row-major: negatives[0, 0], negatives[0, 1], ..., negatives[m-1, k-1]);
                     candidate c is a positive of row i iff (text(q_i), text(c)) in T+
    answer -> query: row j is answer a_j (active iff y_j > t), candidates the m queries;
                     query q_i is a positive of row j iff (text(q_i), text(a_j)) in T+;
                     the extra negatives do not take part
    l_i = -1/|P_i| sum_{p in P_i} log( exp(z_ip) / sum_c exp(z_ic) ),   L_dir = 1/m sum_i l_i
    combine "mean": (L_qa + L_aq) / 2 (the authors' code);  "sum": L_qa + L_aq (eq. 1)

Texts are compared by ids: ``q_ids`` for queries; ``a_ids`` for answers and ``neg_ids`` ((m, k)) for
the extra negatives share one id space (a negative with the id of an answer is that answer's text).
Without ids each text is its own (identity = row index; negatives without ``neg_ids`` are new texts).

Normalization of a side (rows x_1..x_n, n = m for queries, m + m*k for answers + negatives: the
authors normalise ``torch.cat(reps[1:])``, so batch statistics of the answer side include negatives):

    l2:            x_r / ||x_r||_2                      (a zero row stays zero)
    coordinate:    x_rc / (max_r x_rc - min_r x_rc)     (no centring; zero range -> unscaled)
    coordinate-l2: x_rc / sqrt(sum_r x_rc^2)            (zero norm -> unscaled)
    zscore:        (x_rc - mean_r x_rc) / std_r x_rc    (population std; a constant column -> 0)
    none:          x_rc

The authors' forward is transcribed separately (``authors_bsc``, ``authors_combo``) as a second,
independent reference for batches without duplicate texts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Rows = list[list[float]]


# --------------------------------------------------------------------------------------------------
# plumbing: inputs (numpy arrays, torch tensors or lists) -> Python floats
# --------------------------------------------------------------------------------------------------
def _rows(x) -> Rows:
    if hasattr(x, "detach"):
        x = x.detach().double()
    if hasattr(x, "tolist"):
        x = x.tolist()
    return [[float(v) for v in row] for row in x]


def _floats(x) -> list[float] | None:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().double()
    if hasattr(x, "tolist"):
        x = x.tolist()
    return [float(v) for v in x]


def _ints(x) -> list | None:
    if x is None:
        return None
    if hasattr(x, "tolist"):
        x = x.tolist()
    return list(x)


def _negative_rows(negatives) -> list[Rows]:
    """``(m, k, d)`` -> a list of m lists of k rows."""
    if negatives is None:
        return []
    if hasattr(negatives, "detach"):
        negatives = negatives.detach().double()
    if hasattr(negatives, "tolist"):
        negatives = negatives.tolist()
    return [[[float(v) for v in row] for row in per_row] for per_row in negatives]


def dot(u: Sequence[float], v: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(u, v, strict=True))


def cosine(u: Sequence[float], v: Sequence[float]) -> float:
    """u.v / (|u| |v|); 0 when either vector is zero (no direction)."""
    nu, nv = math.sqrt(dot(u, u)), math.sqrt(dot(v, v))
    if nu == 0.0 or nv == 0.0:
        return 0.0
    return dot(u, v) / (nu * nv)


def logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


# --------------------------------------------------------------------------------------------------
# normalization (Sec. 3.5)
# --------------------------------------------------------------------------------------------------
def normalize(rows, method: str) -> Rows:
    """One side of the batch normalised by ``method`` (see the module docstring)."""
    x = _rows(rows)
    n = len(x)
    d = len(x[0]) if n else 0
    if method == "none":
        return [list(r) for r in x]
    if method == "l2":
        out = []
        for r in x:
            norm = math.sqrt(sum(v * v for v in r))
            out.append([v / norm for v in r] if norm > 0 else [0.0] * d)
        return out
    out = [list(r) for r in x]
    for c in range(d):
        col = [x[r][c] for r in range(n)]
        if method == "coordinate":
            scale = max(col) - min(col)
            centre = 0.0
        elif method == "coordinate-l2":
            scale = math.sqrt(sum(v * v for v in col))
            centre = 0.0
        elif method == "zscore":
            if max(col) == min(col):  # no variance: exactly 0 (a rounded mean would leave ulp noise)
                for r in range(n):
                    out[r][c] = 0.0
                continue
            centre = sum(col) / n
            scale = math.sqrt(sum((v - centre) ** 2 for v in col) / n)
        else:
            raise ValueError(f"unknown normalization {method!r}")
        for r in range(n):
            shifted = x[r][c] - centre
            out[r][c] = shifted / scale if scale > 0 else shifted
    return out


# --------------------------------------------------------------------------------------------------
# the batch: texts, positive pairs, candidates
# --------------------------------------------------------------------------------------------------
class _Batch:
    """Texts and positives of a batch of m pairs (+ m*k extra negatives), by the text-pair semantics."""

    def __init__(self, m, labels, threshold, q_ids, a_ids, negatives, neg_ids):
        self.m = m
        y = _floats(labels)
        q_ids, a_ids = _ints(q_ids), _ints(a_ids)
        neg_ids = None if neg_ids is None else [_ints(r) for r in _ints(neg_ids)]
        self.neg = _negative_rows(negatives)
        self.k = len(self.neg[0]) if self.neg else 0
        # a text is a hashable key; answers and negatives share the ("t", id) space when both have ids
        self.q_text = [("q", q_ids[i]) if q_ids is not None else ("q-row", i) for i in range(m)]
        self.a_text = [("t", a_ids[j]) if a_ids is not None else ("a-row", j) for j in range(m)]
        self.n_text = [
            [("t", neg_ids[i][r]) if neg_ids is not None else ("neg", i, r) for r in range(self.k)]
            for i in range(m)
        ]
        self.active = [True] * m if y is None else [y[i] > threshold for i in range(m)]  # strict: 1[y > t]
        self.positive_pairs = {(self.q_text[k], self.a_text[k]) for k in range(m) if self.active[k]}

    def candidate_texts(self) -> list:
        """Texts of the query->answer candidates: the m answers, then the negatives row-major."""
        return self.a_text + [t for per_row in self.n_text for t in per_row]

    def candidate_rows(self, a: Rows) -> Rows:
        return a + [r for per_row in self.neg for r in per_row]


def _direction(
    m: int,
    active: list[bool],
    n_candidates: int,
    is_positive: Callable[[int, int], bool],
    logit: Callable[[int, int, bool, list[bool]], float],
) -> float:
    """1/m sum_i -1/|P_i| sum_{p in P_i} log softmax_c(z_i)_p over the active rows (SupCon L_out).

    ``logit(i, c, c_is_positive, positives_of_i)`` gives z_ic.
    """
    total = 0.0
    for i in range(m):
        if not active[i]:
            continue  # eq. 5: a row with y_i = 0 adds nothing (it still counts in 1/m)
        pos = [is_positive(i, c) for c in range(n_candidates)]
        z = [logit(i, c, pos[c], pos) for c in range(n_candidates)]
        lse = logsumexp(z)
        p_idx = [c for c in range(n_candidates) if pos[c]]
        total += -sum(z[p] - lse for p in p_idx) / len(p_idx)
    return total / m


def _combine(forward: float, backward: float | None, combine: str) -> float:
    if backward is None:
        return forward
    if combine == "mean":
        return (forward + backward) / 2
    if combine == "sum":
        return forward + backward
    raise ValueError(f"unknown combine {combine!r}")


def _contrastive(
    q,
    a,
    similarity: Callable[[list[float], list[float]], float],
    make_logit: Callable[[Callable[[int, int], float]], Callable[[int, int, bool, list[bool]], float]],
    *,
    labels,
    threshold: float,
    q_ids,
    a_ids,
    negatives,
    neg_ids,
    symmetric: bool,
    combine: str,
    normalization: str,
) -> float:
    """Both directions of a batch-softmax loss; ``make_logit(sim)`` turns similarities into logits."""
    q_rows, a_rows = _rows(q), _rows(a)
    m = len(q_rows)
    batch = _Batch(m, labels, threshold, q_ids, a_ids, negatives, neg_ids)
    qn = normalize(q_rows, normalization)
    cn = normalize(batch.candidate_rows(a_rows), normalization)  # answers + negatives together
    an = cn[:m]
    cand_text = batch.candidate_texts()

    def fwd_sim(i: int, c: int) -> float:
        return similarity(qn[i], cn[c])

    forward = _direction(
        m,
        batch.active,
        len(cn),
        lambda i, c: (batch.q_text[i], cand_text[c]) in batch.positive_pairs,
        make_logit(fwd_sim),
    )
    backward = None
    if symmetric:

        def bwd_sim(j: int, i: int) -> float:
            return similarity(an[j], qn[i])

        backward = _direction(
            m,
            batch.active,
            m,
            lambda j, i: (batch.q_text[i], batch.a_text[j]) in batch.positive_pairs,
            make_logit(bwd_sim),
        )
    return _combine(forward, backward, combine)


# --------------------------------------------------------------------------------------------------
# BSC (eqs. 1-5), combo (eq. 6), Pearson combo (Sec. 7)
# --------------------------------------------------------------------------------------------------
def bsc(
    q,
    a,
    tau: float,
    *,
    labels=None,
    threshold: float = 0.5,
    q_ids=None,
    a_ids=None,
    negatives=None,
    neg_ids=None,
    symmetric: bool = True,
    combine: str = "mean",
    normalization: str = "l2",
) -> float:
    """BSC: z_ic = norm(q_i) . norm(c) / tau, SupCon positives, labeled negatives (eqs. 1-5)."""

    def make_logit(sim):
        return lambda i, c, _is_pos, _pos: sim(i, c) / tau

    return _contrastive(
        q,
        a,
        dot,
        make_logit,
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


def bsc_eq2(q, a, tau: float) -> float:
    """Eq. 2 literally, on L2-normalised rows: -1/(m tau) sum_i q_i.a_i + 1/m sum_i log sum_j e^{q_i.a_j/tau}."""
    qn, an = normalize(q, "l2"), normalize(a, "l2")
    m = len(qn)
    first = -sum(dot(qn[i], an[i]) for i in range(m)) / (m * tau)
    second = sum(logsumexp([dot(qn[i], an[j]) / tau for j in range(m)]) for i in range(m)) / m
    return first + second


def mse(q, a, labels) -> float:
    """L_MSE = 1/m sum_i (cos(q_i, a_i) - y_i)^2 on the raw (un-normalised) embeddings, diagonal only."""
    q_rows, a_rows, y = _rows(q), _rows(a), _floats(labels)
    return sum((cosine(q_rows[i], a_rows[i]) - y[i]) ** 2 for i in range(len(q_rows))) / len(q_rows)


def pearson_r(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0 when x or y has no variance (one row, all values equal).

    "No variance" is tested exactly (max == min): a rounded mean of equal values can leave ulp noise
    whose correlation would be arbitrary.
    """
    n = len(x)
    if max(x) == min(x) or max(y) == min(y):
        return 0.0
    mx, my = sum(x) / n, sum(y) / n
    cx, cy = [v - mx for v in x], [v - my for v in y]
    nx, ny = math.sqrt(dot(cx, cx)), math.sqrt(dot(cy, cy))
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return dot(cx, cy) / (nx * ny)


def pearson(q, a, labels) -> float:
    """1 - Pearson(cos(q_i, a_i), y_i) over the batch (Sec. 7), raw embeddings."""
    q_rows, a_rows, y = _rows(q), _rows(a), _floats(labels)
    cos = [cosine(q_rows[i], a_rows[i]) for i in range(len(q_rows))]
    return 1.0 - pearson_r(cos, y)


def combo(q, a, labels, tau: float, mu: float, threshold: float = 0.5, **bsc_options) -> float:
    """Eq. 6: mu * L_BSC(1[y > t]) + (1 - mu) * L_MSE(graded y)."""
    return mu * bsc(q, a, tau, labels=labels, threshold=threshold, **bsc_options) + (1 - mu) * mse(
        q, a, labels
    )


def pearson_combo(q, a, labels, tau: float, mu: float, threshold: float = 0.5, **bsc_options) -> float:
    """Sec. 7: mu * L_BSC + (1 - mu) * (1 - Pearson(cos, y)), eq. 6 with Pearson in place of MSE."""
    return mu * bsc(q, a, tau, labels=labels, threshold=threshold, **bsc_options) + (1 - mu) * pearson(
        q, a, labels
    )


# --------------------------------------------------------------------------------------------------
# Focal-InfoNCE, SoftCSE (cosine similarities, L2 per row)
# --------------------------------------------------------------------------------------------------
def focal(
    q,
    a,
    tau: float,
    margin: float,
    labels=None,
    threshold: float = 0.5,
    q_ids=None,
    a_ids=None,
    symmetric: bool = False,
    *,
    negatives=None,
    neg_ids=None,
    combine: str = "mean",
) -> float:
    """Focal-InfoNCE: z = s^2 / tau for positives, s (s + margin) / tau for negatives (s = cosine)."""

    def make_logit(sim):
        def logit(i, c, is_pos, _pos):
            s = sim(i, c)
            return s * s / tau if is_pos else s * (s + margin) / tau

        return logit

    return _contrastive(
        q,
        a,
        cosine,
        make_logit,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization="none",
    )


def softcse_weight(
    q,
    a,
    tau: float,
    beta: float,
    labels=None,
    threshold: float = 0.5,
    q_ids=None,
    a_ids=None,
    symmetric: bool = False,
    *,
    negatives=None,
    neg_ids=None,
    combine: str = "mean",
) -> float:
    """SoftCSE weights: z = s/tau (+ log w for negatives), w_ic = n_i softmax_{c not in P_i}(beta s_ic / tau)."""

    def make_logit(sim):
        def logit(i, c, is_pos, pos):
            s = sim(i, c)
            if is_pos:
                return s / tau
            negatives_of_i = [c2 for c2 in range(len(pos)) if not pos[c2]]
            lse = logsumexp([beta * sim(i, c2) / tau for c2 in negatives_of_i])
            log_w = math.log(len(negatives_of_i)) + beta * s / tau - lse
            return s / tau + log_w

        return logit

    return _contrastive(
        q,
        a,
        cosine,
        make_logit,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization="none",
    )


def softcse_temperature(
    q,
    a,
    tau: float,
    gamma: float,
    labels=None,
    threshold: float = 0.5,
    q_ids=None,
    a_ids=None,
    symmetric: bool = False,
    *,
    negatives=None,
    neg_ids=None,
    combine: str = "mean",
) -> float:
    """SoftCSE temperatures: z = s / tau for positives, s / (tau exp(gamma s)) for negatives."""

    def make_logit(sim):
        def logit(i, c, is_pos, _pos):
            s = sim(i, c)
            return s / tau if is_pos else s / (tau * math.exp(gamma * s))

        return logit

    return _contrastive(
        q,
        a,
        cosine,
        make_logit,
        labels=labels,
        threshold=threshold,
        q_ids=q_ids,
        a_ids=a_ids,
        negatives=negatives,
        neg_ids=neg_ids,
        symmetric=symmetric,
        combine=combine,
        normalization="none",
    )


# --------------------------------------------------------------------------------------------------
# triplet (SBERT's TripletLoss with cosine distance, anchors grouped by the first text)
# --------------------------------------------------------------------------------------------------
def triplet(q, a, labels, margin: float, threshold: float = 0.5, q_ids=None) -> float:
    """Mean over all (positive j, negative k) of one anchor group of max(0, d(q_g, a_j) - d(q_g, a_k) + margin).

    d = 1 - cos; q_g is the first row of the group (rows with equal ``q_ids``; each row alone without
    ids); positive means y > t. 0 when the batch holds no triplet.
    """
    q_rows, a_rows, y = _rows(q), _rows(a), _floats(labels)
    m = len(q_rows)
    ids = _ints(q_ids) if q_ids is not None else list(range(m))
    terms = []
    for g in dict.fromkeys(ids):  # groups in order of first appearance
        members = [i for i in range(m) if ids[i] == g]
        anchor = q_rows[members[0]]
        for j in members:
            if not y[j] > threshold:
                continue
            for k in members:
                if y[k] > threshold:
                    continue
                d_pos = 1 - cosine(anchor, a_rows[j])
                d_neg = 1 - cosine(anchor, a_rows[k])
                terms.append(max(0.0, d_pos - d_neg + margin))
    return sum(terms) / len(terms) if terms else 0.0


# --------------------------------------------------------------------------------------------------
# the authors' code (aschern/BSC-loss, lib/BSCLoss.py), transcribed by reading
# --------------------------------------------------------------------------------------------------
def _authors_norm(rep: torch.Tensor, norm_dim: int | None) -> torch.Tensor:
    if norm_dim == 1:
        return rep / torch.norm(rep, p=2, dim=1, keepdim=True)
    if norm_dim == 0:
        return rep / (rep.max(axis=0)[0] - rep.min(axis=0)[0])
    return rep


def authors_bsc(q, a, labels, tau: float, norm_dim: int | None = 1, negatives=None) -> torch.Tensor:
    """``BSCLoss.forward`` of the authors: reps = [q, a, neg_1, ..., neg_k], rep_b = cat(reps[1:]),

    loss = ( -mean(diag(log_softmax(S, dim=1)) * y) - mean(diag(log_softmax(S, dim=0)) * y) ) / 2,
    S = norm(rep_a) norm(rep_b)^T * (1 / tau); norm_dim 1 = L2 per row, 0 = max - min range per
    coordinate, anything else = none. Extra negatives (m, k, d) are the reps[2:] columns: column r of
    the authors' data holds negatives[:, r].
    """
    rep_a = torch.as_tensor(q, dtype=torch.float64)
    reps_b = [torch.as_tensor(a, dtype=torch.float64)]
    if negatives is not None:
        neg = torch.as_tensor(negatives, dtype=torch.float64)
        reps_b += [neg[:, r] for r in range(neg.shape[1])]
    rep_b = torch.cat(reps_b)  # ((1 + k) m, d)
    rep_an, rep_bn = _authors_norm(rep_a, norm_dim), _authors_norm(rep_b, norm_dim)
    y = torch.as_tensor(labels, dtype=torch.float64)
    dot_pr_mat = torch.mm(rep_an, rep_bn.T) * (1 / tau)  # (m, (1 + k) m)
    loss_fct = -torch.mean(torch.diag(torch.log_softmax(dot_pr_mat, dim=1)) * y) - torch.mean(
        torch.diag(torch.log_softmax(dot_pr_mat, dim=0)) * y
    )
    return loss_fct / 2


def authors_combo(q, a, labels, tau: float, mu: float, norm_dim: int | None = 1) -> torch.Tensor:
    """``ComboBSCLoss.forward``: mu * BSC(1[y >= 0.5]) + (1 - mu) * mse(cos(rep_a, rep_b), y), raw cosine."""
    rep_a = torch.as_tensor(q, dtype=torch.float64)
    rep_b = torch.as_tensor(a, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    bin_labels = (y >= 0.5).double()
    loss_fps = authors_bsc(rep_a, rep_b, bin_labels, tau, norm_dim)
    loss_fct = torch.nn.functional.mse_loss(torch.cosine_similarity(rep_a, rep_b), y.view(-1))
    return mu * loss_fps + (1 - mu) * loss_fct
