"""Naive NumPy / Python-loop versions of the papers' formulas, written independently of
``bscl.losses.functional`` (no shared helpers) to test it against.

Everything runs in float64 with explicit loops over rows and columns.
"""

from __future__ import annotations

import math

import numpy as np


def normalize(x: np.ndarray, method: str, eps: float = 1e-8) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    m, d = x.shape
    out = np.zeros_like(x)
    if method == "l2":
        for i in range(m):
            norm = math.sqrt(sum(v * v for v in x[i]))
            out[i] = x[i] / max(norm, eps)
    elif method == "coordinate":
        for c in range(d):
            span = max(x[:, c]) - min(x[:, c])
            out[:, c] = x[:, c] / span if span > 0 else x[:, c]  # zero range: unscaled
    elif method == "coordinate-l2":
        for c in range(d):
            norm = math.sqrt(sum(v * v for v in x[:, c]))
            out[:, c] = x[:, c] / norm if norm > 0 else x[:, c]
    elif method == "zscore":
        for c in range(d):
            mean = sum(x[:, c]) / m
            std = math.sqrt(sum((v - mean) ** 2 for v in x[:, c]) / m)
            out[:, c] = (x[:, c] - mean) / max(std, eps)
    else:
        out = x
    return out


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    nu = math.sqrt(sum(t * t for t in u))
    nv = math.sqrt(sum(t * t for t in v))
    return float(sum(s * t for s, t in zip(u, v, strict=True)) / max(nu * nv, 1e-16))


def positive_sets(m: int, q_ids, a_ids, positive):
    """(q->a, a->q) positive matrices of the duplicate semantics (issue 11): the text pair (q_i, a_j)
    is positive iff some row r has text(q_r) = text(q_i), text(a_r) = text(a_j) and y_r > t; a row
    adds a term only when its own label is positive. Text identity: ids, else the row index."""
    qi = list(range(m)) if q_ids is None else list(q_ids)
    ai = list(range(m)) if a_ids is None else list(a_ids)
    ok = [True] * m if positive is None else list(positive)
    pair = [
        [any(qi[r] == qi[i] and ai[r] == ai[j] and ok[r] for r in range(m)) for j in range(m)]
        for i in range(m)
    ]
    qa = [[pair[i][j] and ok[i] for j in range(m)] for i in range(m)]
    aq = [[pair[i][j] and ok[j] for i in range(m)] for j in range(m)]
    return qa, aq


def _positives(i: int, m: int, pos) -> list[int]:
    return [j for j in range(m) if pos[i][j]]


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def supcon_direction(logit, m: int, pos) -> float:
    """-1/m sum_i 1/|P_i| sum_{p in P_i} log( e^{z_ip} / sum_k e^{z_ik} ), logit(i, k, is_pos) -> z."""
    total = 0.0
    for i in range(m):
        pos_i = _positives(i, m, pos)
        if not pos_i:
            continue
        row = [logit(i, k, k in pos_i) for k in range(m)]
        lse = _logsumexp(row)
        total += -sum(row[p] - lse for p in pos_i) / len(pos_i)
    return total / m


def _combine(fwd: float, bwd: float | None, combine: str) -> float:
    if bwd is None:
        return fwd
    return (fwd + bwd) / 2 if combine == "mean" else fwd + bwd


def bsc(
    q,
    a,
    tau,
    labels=None,
    threshold=0.5,
    q_ids=None,
    a_ids=None,
    symmetric=True,
    combine="mean",
    normalization="l2",
) -> float:
    """Eq. 1 (symmetric) / eq. 2 (one direction) with eq. 3-4 (duplicates) and eq. 5 (labeled negatives)."""
    qn, an = normalize(q, normalization), normalize(a, normalization)
    m = qn.shape[0]
    positive = None if labels is None else [y > threshold for y in labels]

    def s(i, j):
        return sum(qn[i, k] * an[j, k] for k in range(qn.shape[1])) / tau

    qa, aq = positive_sets(m, q_ids, a_ids, positive)
    fwd = supcon_direction(lambda i, k, _p: s(i, k), m, qa)
    bwd = supcon_direction(lambda i, k, _p: s(k, i), m, aq) if symmetric else None
    return _combine(fwd, bwd, combine)


def bsc_eq2(q, a, tau) -> float:
    """Eq. 2 literally: -(1/(m tau)) sum_i q_i.a_i + (1/m) sum_i log sum_j exp(q_i.a_j / tau) (L2-normalised)."""
    qn, an = normalize(q, "l2"), normalize(a, "l2")
    m = qn.shape[0]
    first = -sum(float(qn[i] @ an[i]) for i in range(m)) / (m * tau)
    second = sum(_logsumexp([float(qn[i] @ an[j]) / tau for j in range(m)]) for i in range(m)) / m
    return first + second


def mse(q, a, labels) -> float:
    m = len(labels)
    return sum((cosine(q[i], a[i]) - labels[i]) ** 2 for i in range(m)) / m


def combo(q, a, labels, tau, mu, threshold=0.5, **kw) -> float:
    return mu * bsc(q, a, tau, labels=labels, threshold=threshold, **kw) + (1 - mu) * mse(q, a, labels)


def triplet(q, a, labels, margin, threshold=0.5, q_ids=None) -> float:
    m = len(labels)
    ids = list(range(m)) if q_ids is None else list(q_ids)
    seen, terms = set(), []
    for i in range(m):
        if ids[i] in seen:
            continue
        seen.add(ids[i])
        group = [j for j in range(m) if ids[j] == ids[i]]
        for p in group:
            for n in group:
                if labels[p] > threshold and labels[n] <= threshold:
                    d_pos = 1 - cosine(q[i], a[p])
                    d_neg = 1 - cosine(q[i], a[n])
                    terms.append(max(0.0, d_pos - d_neg + margin))
    return sum(terms) / len(terms) if terms else 0.0


def pearson(q, a, labels) -> float:
    cos = np.array([cosine(q[i], a[i]) for i in range(len(labels))])
    y = np.array(labels, dtype=np.float64)
    x, y = cos - cos.mean(), y - y.mean()
    denom = math.sqrt((x * x).sum()) * math.sqrt((y * y).sum())
    return 1 - float((x * y).sum() / (denom + 1e-8))


def _cos_matrix(q, a):
    m = len(q)
    return [[cosine(q[i], a[j]) for j in range(m)] for i in range(m)]


def focal(
    q, a, tau, margin=0.3, labels=None, threshold=0.5, q_ids=None, a_ids=None, symmetric=False, combine="mean"
):
    """Focal-InfoNCE: positive logits s^2/tau, negative logits s(s+m)/tau."""
    c = _cos_matrix(q, a)
    m = len(q)
    positive = None if labels is None else [y > threshold for y in labels]

    def z(s, is_pos):
        return s * s / tau if is_pos else s * (s + margin) / tau

    qa, aq = positive_sets(m, q_ids, a_ids, positive)
    fwd = supcon_direction(lambda i, k, p: z(c[i][k], p), m, qa)
    bwd = supcon_direction(lambda i, k, p: z(c[k][i], p), m, aq) if symmetric else None
    return _combine(fwd, bwd, combine)


def softcse_weight(
    q, a, tau, beta, labels=None, threshold=0.5, q_ids=None, a_ids=None, symmetric=False, combine="mean"
):
    """Weighted negatives: w_ij = n_i * exp(beta s_ij / tau) / sum_{k neg} exp(beta s_ik / tau)."""
    c = _cos_matrix(q, a)
    m = len(q)
    positive = None if labels is None else [y > threshold for y in labels]

    qa, aq = positive_sets(m, q_ids, a_ids, positive)

    def direction(sim, sets):
        total = 0.0
        for i in range(m):
            pos = _positives(i, m, sets)
            if not pos:
                continue
            neg = [k for k in range(m) if k not in pos]
            norm = sum(math.exp(beta * sim(i, k) / tau) for k in neg)
            den = sum(math.exp(sim(i, p) / tau) for p in pos)
            den += sum(
                len(neg) * math.exp(beta * sim(i, k) / tau) / norm * math.exp(sim(i, k) / tau) for k in neg
            )
            total += -sum(sim(i, p) / tau - math.log(den) for p in pos) / len(pos)
        return total / m

    fwd = direction(lambda i, k: c[i][k], qa)
    bwd = direction(lambda i, k: c[k][i], aq) if symmetric else None
    return _combine(fwd, bwd, combine)


def softcse_temperature(
    q, a, tau, gamma, labels=None, threshold=0.5, q_ids=None, a_ids=None, symmetric=False, combine="mean"
):
    """Per-negative temperature tau_ij = tau * exp(gamma * s_ij)."""
    c = _cos_matrix(q, a)
    m = len(q)
    positive = None if labels is None else [y > threshold for y in labels]

    def z(s, is_pos):
        return s / tau if is_pos else s / (tau * math.exp(gamma * s))

    qa, aq = positive_sets(m, q_ids, a_ids, positive)
    fwd = supcon_direction(lambda i, k, p: z(c[i][k], p), m, qa)
    bwd = supcon_direction(lambda i, k, p: z(c[k][i], p), m, aq) if symmetric else None
    return _combine(fwd, bwd, combine)
