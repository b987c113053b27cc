"""The losses against references written from the papers, in float64 to 1e-9.

Two independent references (``reference_losses``): plain loops over rows and candidates from eqs. 1-6,
Sec. 3.5 and Sec. 7 (with the text-pair semantics of positives), and a transcription of the authors'
``BSCLoss`` / ``ComboBSCLoss`` forward (aschern/BSC-loss, ``lib/BSCLoss.py``) for batches without
duplicate texts. Plus hand-computed fixtures for the cases that were misread before.
"""

from __future__ import annotations

import math

import pytest
import torch

import reference_losses as ref
from bscl.losses import functional as F

NORMALIZATIONS = ["l2", "coordinate", "coordinate-l2", "zscore", "none"]
TOL = {"rel": 1e-9, "abs": 1e-9}


# --------------------------------------------------------------------------------------------------
# scenarios: random float64 batches: labels, duplicate texts, extra negatives, degenerate batches
# --------------------------------------------------------------------------------------------------
def _embed(g: torch.Generator, ids: torch.Tensor, d: int, noise: float = 0.05) -> torch.Tensor:
    """Rows for texts ``ids``: equal texts get close (not equal: dropout) embeddings."""
    base = torch.randn(int(ids.max()) + 1, d, generator=g, dtype=torch.float64)
    return base[ids] + noise * torch.randn(len(ids), d, generator=g, dtype=torch.float64)


def _scenario(name: str, seed: int = 0) -> dict:
    """A batch as keyword arguments of the losses (``None`` entries are dropped before the call)."""
    g = torch.Generator().manual_seed(1000 * seed + sum(map(ord, name)))
    d = 5
    t = 0.5
    labels = negatives = neg_ids = q_ids = a_ids = None
    if name == "plain":
        m = 6
        qi, ai = torch.arange(m), torch.arange(m)
    elif name == "labels":
        m = 6
        qi, ai = torch.arange(m), torch.arange(m)
        labels = torch.tensor([1.0, 0.0, 0.7, 0.2, 1.0, 0.0], dtype=torch.float64)
    elif name == "dup_q_mixed":  # duplicate queries, each with positive and negative answers
        qi = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
        ai = torch.arange(8)
        labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
        q_ids, a_ids = qi, ai
    elif name == "dup_q":  # eqs. 3-4 without labels: every answer of a repeated query is a positive
        qi = torch.tensor([0, 1, 0, 2, 1, 0])
        ai = torch.arange(6)
        q_ids, a_ids = qi, ai
    elif name == "dup_a":  # one short answer shared by several queries
        qi = torch.arange(7)
        ai = torch.tensor([0, 0, 1, 0, 2, 3, 1])
        labels = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
        q_ids, a_ids = qi, ai
    elif name == "dup_both":  # duplicate pairs with opposite labels, and repeated answers
        qi = torch.tensor([0, 0, 1, 1, 0, 2])
        ai = torch.tensor([0, 1, 0, 2, 0, 3])
        labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
        q_ids, a_ids = qi, ai
    elif name == "at_threshold":  # graded labels, some exactly at t (strict: 1[y > t])
        t = 0.6
        qi = torch.tensor([0, 0, 1, 2, 2, 3])
        ai = torch.arange(6)
        labels = torch.tensor([0.6, 0.8, 0.6, 0.61, 0.6, 0.2], dtype=torch.float64)
        q_ids, a_ids = qi, ai
    elif name == "negatives":  # extra columns, one negative is the text of another row's positive answer
        qi = torch.tensor([0, 0, 1, 2, 3])
        ai = torch.arange(5)
        labels = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
        neg_ids = torch.tensor([[10, 2], [11, 0], [12, 13], [14, 3], [0, 15]])  # 2 = a_2, 0 = a_0, 3 = a_3
        q_ids, a_ids = qi, ai
    elif name == "negatives_plain":
        qi, ai = torch.arange(4), torch.arange(4)
        neg_ids = torch.arange(12).view(4, 3) + 4
    elif name == "m1":
        qi, ai = torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
        labels = torch.tensor([0.9], dtype=torch.float64)
    elif name == "m1_negatives":
        qi, ai = torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
        neg_ids = torch.tensor([[1, 2]])
        q_ids, a_ids = qi, ai
    elif name == "all_dup":  # every row the same text pair
        qi, ai = torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long)
        labels = torch.ones(5, dtype=torch.float64)
        q_ids, a_ids = qi, ai
    elif name == "all_dup_q":  # one query, many answers of mixed labels
        qi, ai = torch.zeros(6, dtype=torch.long), torch.arange(6)
        labels = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
        q_ids, a_ids = qi, ai
    elif name == "no_positive":
        qi, ai = torch.tensor([0, 0, 1, 2]), torch.arange(4)
        labels = torch.tensor([0.0, 0.5, 0.3, 0.0], dtype=torch.float64)
        q_ids, a_ids = qi, ai
    elif name == "cqa":  # 3 questions x 4 comments, a repeated comment, one hard negative per row
        qi = torch.arange(3).repeat_interleave(4)
        ai = torch.tensor([0, 1, 2, 3, 4, 5, 1, 6, 7, 8, 9, 10])
        labels = torch.tensor([1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0], dtype=torch.float64)
        neg_ids = torch.tensor([[20], [21], [3], [22], [23], [24], [25], [26], [27], [28], [5], [29]])
        q_ids, a_ids = qi, ai
    else:
        raise KeyError(name)
    q = _embed(g, qi, d)
    a = 0.6 * q + _embed(g, ai, d)  # answers related to their queries, so the positives score high
    if neg_ids is not None:
        all_ids = torch.cat([ai, neg_ids.reshape(-1)])
        rows = _embed(g, all_ids, d)
        negatives = rows[len(ai) :].view(neg_ids.shape[0], neg_ids.shape[1], d)  # (m, k, d)
        if name == "negatives_plain":
            neg_ids = None  # new texts: exercises the no-ids path
    tau = [0.05, 0.3, 1.5][seed % 3]
    return {
        "q": q,
        "a": a,
        "tau": tau,
        "labels": labels,
        "threshold": t,
        "q_ids": q_ids,
        "a_ids": a_ids,
        "negatives": negatives,
        "neg_ids": neg_ids,
    }


SCENARIOS = [
    "plain",
    "labels",
    "dup_q",
    "dup_q_mixed",
    "dup_a",
    "dup_both",
    "at_threshold",
    "negatives",
    "negatives_plain",
    "m1",
    "m1_negatives",
    "all_dup",
    "all_dup_q",
    "no_positive",
    "cqa",
]
# the directions: (symmetric, combine); every scenario runs the authors' (True, "mean") and one other
DIRECTIONS = [(True, "mean"), (True, "sum"), (False, "mean")]


def _seed(scenario: str) -> int:
    """A seed per scenario: the scenarios cycle through the three temperatures of :func:`_scenario`."""
    return SCENARIOS.index(scenario)


def _direction(scenario: str) -> tuple[bool, str]:
    """The second direction setting of a scenario (the scenarios cycle through sum and one-direction)."""
    return DIRECTIONS[1 + SCENARIOS.index(scenario) % 2]


def _cells() -> list[tuple[str, bool, str]]:
    """(scenario, symmetric, combine): each scenario with the authors' setting and one other."""
    return [(sc, *d) for sc in SCENARIOS for d in (DIRECTIONS[0], _direction(sc))]


def _impl_kwargs(s: dict, **extra) -> dict:
    """Keyword arguments for ``F.*``: the batch's optional tensors (absent ones not passed) + ``extra``."""
    out = {k: s[k] for k in ("labels", "q_ids", "a_ids", "negatives", "neg_ids") if s[k] is not None}
    out["threshold"] = s["threshold"]
    out.update(extra)
    return out


def _ref_kwargs(s: dict, **extra) -> dict:
    out = {k: s[k] for k in ("labels", "threshold", "q_ids", "a_ids", "negatives", "neg_ids")}
    out.update(extra)
    return out


def _graded(s: dict) -> torch.Tensor:
    """Labels for the losses that need them (combo, MSE, Pearson): the batch's, or graded ones."""
    if s["labels"] is not None:
        return s["labels"]
    m = s["q"].shape[0]
    return torch.linspace(0.1, 0.9, m, dtype=torch.float64)


# --------------------------------------------------------------------------------------------------
# the implementation == the loop reference
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("scenario", "symmetric", "combine"), _cells())
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_bsc_equals_loop_reference(scenario, normalization, symmetric, combine):
    s = _scenario(scenario, _seed(scenario))
    opts = {"symmetric": symmetric, "combine": combine, "normalization": normalization}
    got = F.bsc_loss(s["q"], s["a"], s["tau"], **_impl_kwargs(s, **opts))
    want = ref.bsc(s["q"], s["a"], s["tau"], **_ref_kwargs(s, **opts))
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(want, **TOL)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_combo_equals_loop_reference(scenario, normalization):
    # mu cycles through 0, 0.3 and 1 and the direction setting through the three, over the scenarios
    i = SCENARIOS.index(scenario)
    mu = [0.0, 0.3, 1.0][i % 3]
    symmetric, combine = DIRECTIONS[(i + NORMALIZATIONS.index(normalization)) % 3]
    s = _scenario(scenario, 1)
    s["labels"] = _graded(s)
    opts = {"symmetric": symmetric, "combine": combine, "normalization": normalization}
    impl = _impl_kwargs(s, mu=mu, **opts)
    labels = impl.pop("labels")
    got = F.combo_loss(s["q"], s["a"], labels, s["tau"], **impl)
    rk = _ref_kwargs(s, **opts)
    rk.pop("labels")
    threshold = rk.pop("threshold")
    want = ref.combo(s["q"], s["a"], labels, s["tau"], mu, threshold=threshold, **rk)
    assert got.item() == pytest.approx(want, **TOL)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_pearson_combo_equals_loop_reference(scenario, normalization):
    i = SCENARIOS.index(scenario)
    mu = [0.3, 1.0, 0.0][i % 3]
    symmetric, combine = DIRECTIONS[(i + NORMALIZATIONS.index(normalization) + 1) % 3]
    fn = F.pearson_combo_loss
    s = _scenario(scenario, 2)
    s["labels"] = _graded(s)
    opts = {"symmetric": symmetric, "combine": combine, "normalization": normalization}
    impl = _impl_kwargs(s, mu=mu, **opts)
    labels = impl.pop("labels")
    got = fn(s["q"], s["a"], labels, s["tau"], **impl)
    rk = _ref_kwargs(s, **opts)
    rk.pop("labels")
    threshold = rk.pop("threshold")
    want = ref.pearson_combo(s["q"], s["a"], labels, s["tau"], mu, threshold=threshold, **rk)
    assert got.item() == pytest.approx(want, **TOL)


@pytest.mark.parametrize(("scenario", "symmetric", "combine"), _cells())
def test_focal_equals_loop_reference(scenario, symmetric, combine):
    s = _scenario(scenario, _seed(scenario))
    got = F.focal_infonce_loss(
        s["q"], s["a"], s["tau"], **_impl_kwargs(s, margin=0.3, symmetric=symmetric, combine=combine)
    )
    rk = _ref_kwargs(s, symmetric=symmetric, combine=combine)
    want = ref.focal(s["q"], s["a"], s["tau"], 0.3, **rk)
    assert got.item() == pytest.approx(want, **TOL)


@pytest.mark.parametrize(("scenario", "symmetric", "combine"), _cells())
@pytest.mark.parametrize("beta", [1.5, -2.0])
def test_softcse_weight_equals_loop_reference(scenario, beta, symmetric, combine):
    s = _scenario(scenario, 0)
    got = F.softcse_weight_loss(
        s["q"], s["a"], s["tau"], **_impl_kwargs(s, beta=beta, symmetric=symmetric, combine=combine)
    )
    want = ref.softcse_weight(
        s["q"], s["a"], s["tau"], beta, **_ref_kwargs(s, symmetric=symmetric, combine=combine)
    )
    assert got.item() == pytest.approx(want, **TOL)


@pytest.mark.parametrize(("scenario", "symmetric", "combine"), _cells())
@pytest.mark.parametrize("gamma", [0.7, -1.0])
def test_softcse_temperature_equals_loop_reference(scenario, gamma, symmetric, combine):
    s = _scenario(scenario, 1)
    got = F.softcse_temperature_loss(
        s["q"], s["a"], s["tau"], **_impl_kwargs(s, gamma=gamma, symmetric=symmetric, combine=combine)
    )
    want = ref.softcse_temperature(
        s["q"], s["a"], s["tau"], gamma, **_ref_kwargs(s, symmetric=symmetric, combine=combine)
    )
    assert got.item() == pytest.approx(want, **TOL)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mse_equals_loop_reference(scenario):
    s = _scenario(scenario, 0)
    labels = _graded(s)
    got = F.mse_cosine_loss(s["q"], s["a"], labels)
    assert got.item() == pytest.approx(ref.mse(s["q"], s["a"], labels), **TOL)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pearson_equals_loop_reference(scenario):
    s = _scenario(scenario, 1)
    labels = _graded(s)
    got = F.pearson_loss(s["q"], s["a"], labels)
    assert got.item() == pytest.approx(ref.pearson(s["q"], s["a"], labels), **TOL)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_triplet_equals_loop_reference(scenario, margin):
    s = _scenario(scenario, 0)
    labels = _graded(s)
    kw = {"q_ids": s["q_ids"]} if s["q_ids"] is not None else {}
    got = F.triplet_loss(s["q"], s["a"], labels, margin=margin, threshold=s["threshold"], **kw)
    want = ref.triplet(s["q"], s["a"], labels, margin, threshold=s["threshold"], q_ids=s["q_ids"])
    assert got.item() == pytest.approx(want, **TOL)


def _finite_difference(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central differences of the float function ``f`` at every entry of ``x`` (float64)."""
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for n in range(flat.numel()):
        keep = flat[n].item()
        flat[n] = keep + h
        up = f()
        flat[n] = keep - h
        down = f()
        flat[n] = keep
        gflat[n] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("scenario", ["cqa", "negatives", "dup_both", "at_threshold"])
@pytest.mark.parametrize("loss", ["bsc-l2", "bsc-coordinate", "bsc-coordinate-l2", "bsc-zscore", "focal"])
def test_gradient_equals_finite_differences_of_the_loop_reference(scenario, loss):
    # the reference is plain floats: its finite differences are a gradient independent of autograd
    s = _scenario(scenario, 1)
    leaves = {k: s[k].clone() for k in ("q", "a", "negatives") if s[k] is not None}
    name, _, normalization = loss.partition("-")

    def reference() -> float:
        rk = _ref_kwargs(s, negatives=leaves.get("negatives"))
        if name == "bsc":
            return ref.bsc(leaves["q"], leaves["a"], s["tau"], normalization=normalization, **rk)
        return ref.focal(leaves["q"], leaves["a"], s["tau"], 0.3, symmetric=True, **rk)

    want = {k: _finite_difference(reference, v) for k, v in leaves.items()}
    tensors = {k: v.clone().requires_grad_(True) for k, v in leaves.items()}
    kw = _impl_kwargs(s, **({"negatives": tensors["negatives"]} if "negatives" in tensors else {}))
    if name == "bsc":
        got = F.bsc_loss(tensors["q"], tensors["a"], s["tau"], normalization=normalization, **kw)
    else:
        got = F.focal_infonce_loss(tensors["q"], tensors["a"], s["tau"], margin=0.3, symmetric=True, **kw)
    got.backward()
    for k, t in tensors.items():
        torch.testing.assert_close(t.grad, want[k], rtol=1e-5, atol=1e-6, msg=f"d loss / d {k}")


# --------------------------------------------------------------------------------------------------
# the references agree with each other (these pass whatever the implementation does)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_loop_reference_one_direction_is_eq2(seed):
    s = _scenario("plain", seed)
    want = ref.bsc_eq2(s["q"], s["a"], s["tau"])
    assert ref.bsc(s["q"], s["a"], s["tau"], symmetric=False) == pytest.approx(want, **TOL)
    assert F.bsc_loss(s["q"], s["a"], s["tau"], symmetric=False).item() == pytest.approx(want, **TOL)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_loop_reference_softcse_neutral_is_infonce(scenario):
    s = _scenario(scenario, 0)
    infonce = ref.bsc(s["q"], s["a"], s["tau"], **_ref_kwargs(s, symmetric=False, normalization="l2"))
    w = ref.softcse_weight(s["q"], s["a"], s["tau"], 0.0, **_ref_kwargs(s))
    t = ref.softcse_temperature(s["q"], s["a"], s["tau"], 0.0, **_ref_kwargs(s))
    assert w == pytest.approx(infonce, **TOL)
    assert t == pytest.approx(infonce, **TOL)


# --------------------------------------------------------------------------------------------------
# the authors' formula (no duplicate texts, binary labels)
# --------------------------------------------------------------------------------------------------
AUTHORS_NORM = {"l2": 1, "coordinate": 0, "none": None}


def _authors_batch(seed: int, m: int, k: int, labeled: bool):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(m, 6, generator=g, dtype=torch.float64)
    a = 0.5 * q + torch.randn(m, 6, generator=g, dtype=torch.float64)
    negatives = torch.randn(m, k, 6, generator=g, dtype=torch.float64) if k else None
    labels = (torch.rand(m, generator=g, dtype=torch.float64) > 0.4).double() if labeled else None
    return q, a, labels, negatives


# the authors divide by max - min without a guard (0 / 0 for a one-row query side): no m = 1 there
AUTHORS_GRID = [
    (seed, m, k, norm)
    for seed in range(2)
    for m, k in [(1, 0), (2, 0), (7, 0), (5, 1), (6, 3), (1, 2)]
    for norm in AUTHORS_NORM
    if not (norm == "coordinate" and m == 1)
]


@pytest.mark.parametrize(("seed", "m", "k", "normalization"), AUTHORS_GRID)
@pytest.mark.parametrize("labeled", [False, True])
@pytest.mark.parametrize("with_ids", [False, True])
def test_bsc_equals_authors_code(seed, m, k, normalization, labeled, with_ids):
    q, a, labels, negatives = _authors_batch(seed, m, k, labeled)
    tau = [0.1, 1.2, 0.05][seed]
    want = ref.authors_bsc(
        q, a, torch.ones(m) if labels is None else labels, tau, AUTHORS_NORM[normalization], negatives
    )
    # the loop reference agrees with the authors (checks the reference itself)
    loop = ref.bsc(q, a, tau, labels=labels, negatives=negatives, normalization=normalization)
    assert loop == pytest.approx(want.item(), **TOL)
    kw: dict = {"normalization": normalization, "combine": "mean", "symmetric": True}
    if labels is not None:
        kw["labels"] = labels
    if negatives is not None:
        kw["negatives"] = negatives
    if with_ids:  # distinct texts, given explicitly: must change nothing
        kw["q_ids"], kw["a_ids"] = torch.arange(m), torch.arange(m)
        if negatives is not None:
            kw["neg_ids"] = torch.arange(m * k).view(m, k) + m
    got = F.bsc_loss(q, a, tau, **kw)
    assert got.item() == pytest.approx(want.item(), **TOL)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("normalization", ["l2", "coordinate"])
@pytest.mark.parametrize("mu", [0.1, 0.9])
def test_combo_equals_authors_code(seed, normalization, mu):
    q, a, labels, _ = _authors_batch(seed, 8, 0, True)
    tau = [0.1, 1.2, 0.05][seed]
    want = ref.authors_combo(q, a, labels, tau, mu, AUTHORS_NORM[normalization]).item()
    assert ref.combo(q, a, labels, tau, mu, normalization=normalization) == pytest.approx(want, **TOL)
    got = F.combo_loss(q, a, labels, tau, mu=mu, threshold=0.5, normalization=normalization)
    assert got.item() == pytest.approx(want, **TOL)


# --------------------------------------------------------------------------------------------------
# hand-computed fixtures (tau = 1, normalization none, d = 1, so z_ij = q_i * c_j)
# --------------------------------------------------------------------------------------------------
def _t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


E = math.e


def _cqa_fixture():
    # CQA-like: row 0 (question 0, good comment), row 1 (question 0 again, bad comment, y = 0),
    # row 2 (question 1, good comment). q = [1, 1, 0], a = [1, 0, 1] -> S = q a^T =
    #   [[1, 0, 1],
    #    [1, 0, 1],
    #    [0, 0, 0]]
    # positive text pairs: (q0, a0), (q1', a2) where q1' is question 1.
    # q->a:  row 0: P = {a0}           l0 = log(e + 1 + e) - 1 = log(2e + 1) - 1
    #        row 1: y = 0 -> adds 0 (today's bug: it takes a0 through its duplicate query text)
    #        row 2: P = {a2}, all z = 0  l2 = log 3
    #        L_qa = (log(2e + 1) - 1 + log 3) / 3 = (1.861995 - 1 + 1.098612) / 3 = 0.653536
    # a->q:  answer a0: candidates q0, q1, q2 with z = [1, 1, 0]; q0 and q1 are the same text, so both
    #        are positives: l = log(2e + 1) - (1 + 1) / 2 = log(2e + 1) - 1
    #        answer a1: y = 0 -> 0
    #        answer a2: z = [1, 1, 0], P = {q2}: l = log(2e + 1) - 0
    #        L_aq = (2 log(2e + 1) - 1) / 3 = (3.723990 - 1) / 3 = 0.907997
    # mean: (0.653536 + 0.907997) / 2 = 0.780766; sum: 1.561532
    q = _t([[1.0], [1.0], [0.0]])
    a = _t([[1.0], [0.0], [1.0]])
    kw = {
        "labels": _t([1.0, 0.0, 1.0]),
        "q_ids": torch.tensor([0, 0, 1]),
        "a_ids": torch.tensor([0, 1, 2]),
        "normalization": "none",
    }
    l_qa = (math.log(2 * E + 1) - 1 + math.log(3)) / 3
    l_aq = (2 * math.log(2 * E + 1) - 1) / 3
    return q, a, kw, l_qa, l_aq


def test_hand_cqa_label0_row_with_a_positive_query_text_adds_nothing():
    q, a, kw, l_qa, l_aq = _cqa_fixture()
    assert l_qa == pytest.approx(0.653536, abs=1e-6) and l_aq == pytest.approx(0.907997, abs=1e-6)
    assert ref.bsc(q, a, 1.0, **kw) == pytest.approx((l_qa + l_aq) / 2, **TOL)
    assert F.bsc_loss(q, a, 1.0, **kw).item() == pytest.approx((l_qa + l_aq) / 2, **TOL)
    assert F.bsc_loss(q, a, 1.0, combine="sum", **kw).item() == pytest.approx(l_qa + l_aq, **TOL)
    assert F.bsc_loss(q, a, 1.0, symmetric=False, **kw).item() == pytest.approx(l_qa, **TOL)


def test_hand_cqa_label0_query_gets_zero_gradient_in_the_query_to_answer_direction():
    # eq. 5: in the q->a direction the label-0 row's query q1 is the row of a term that is dropped and
    # a candidate of no row (candidates are answers), so d L_qa / d q1 must be exactly 0.
    q, a, kw, _, _ = _cqa_fixture()
    q = q.clone().requires_grad_(True)
    F.bsc_loss(q, a, 1.0, symmetric=False, **kw).backward()
    assert q.grad[1].abs().max().item() == 0.0
    assert q.grad[0].abs().max().item() > 0.0


def test_hand_negative_identical_to_a_positive_answer():
    # q = [1, 1] (two different query texts), a = [1, 0], one extra negative per row: n = [[2], [0]].
    # neg_ids: the negative of row 0 is the text of a1 (id 1). No labels: both rows positive.
    # q->a candidates [a0, a1, n0, n1], z = q_i * c = [1, 0, 2, 0] for both rows.
    #   row 0 (query text 0): P = {a0}:      l0 = log(e + 1 + e^2 + 1) - 1
    #   row 1 (query text 1): P = {a1, n0}:  l1 = log(e^2 + e + 2) - (0 + 2) / 2   (n0 is text a1)
    #   L_qa = log(e^2 + e + 2) - 1 = log(12.107338) - 1 = 1.493812
    # a->q (negatives ignored): a0: z = [1, 1], P = {q0}: log 2; a1: z = [0, 0], P = {q1}: log 2.
    #   L_aq = log 2 = 0.693147; mean = 1.093479
    q = _t([[1.0], [1.0]])
    a = _t([[1.0], [0.0]])
    negatives = _t([[[2.0]], [[0.0]]])  # (m=2, k=1, d=1)
    kw = {
        "q_ids": torch.tensor([0, 1]),
        "a_ids": torch.tensor([0, 1]),
        "negatives": negatives,
        "neg_ids": torch.tensor([[1], [7]]),
        "normalization": "none",
    }
    l_qa = math.log(E * E + E + 2) - 1
    l_aq = math.log(2)
    assert l_qa == pytest.approx(1.493812, abs=1e-6)
    assert ref.bsc(q, a, 1.0, **kw) == pytest.approx((l_qa + l_aq) / 2, **TOL)
    assert F.bsc_loss(q, a, 1.0, **kw).item() == pytest.approx((l_qa + l_aq) / 2, **TOL)
    assert F.bsc_loss(q, a, 1.0, symmetric=False, **kw).item() == pytest.approx(l_qa, **TOL)


def test_hand_label_exactly_at_threshold_is_negative():
    # labels [0.6, 0.9], t = 0.6: row 0 is NOT positive (1[y > t]). q = [1, 0], a = [1, 1]:
    # S = [[1, 1], [0, 0]]. q->a: row 1: log 2; a->q: answer a1 with z = [1, 0], P = {q1}:
    # log(e + 1) - 0. L = (log 2 / 2 + log(e + 1) / 2) / 2 = (0.346574 + 0.656630) / 2 = 0.501602
    q = _t([[1.0], [0.0]])
    a = _t([[1.0], [1.0]])
    kw = {"labels": _t([0.6, 0.9]), "threshold": 0.6, "normalization": "none"}
    want = (math.log(2) / 2 + math.log(E + 1) / 2) / 2
    assert want == pytest.approx(0.501602, abs=1e-6)
    assert ref.bsc(q, a, 1.0, **kw) == pytest.approx(want, **TOL)
    assert F.bsc_loss(q, a, 1.0, **kw).item() == pytest.approx(want, **TOL)
    # the combo's BSC term binarizes the same way
    got = F.combo_loss(q, a, kw["labels"], 1.0, mu=1.0, threshold=0.6, normalization="none")
    assert got.item() == pytest.approx(want, **TOL)


def test_hand_coordinate_normalization_zero_range_leaves_the_column_unscaled():
    # column 0 of q is constant (range 0): unscaled; column 1 has range 2 -> divided by 2.
    # q = [[3, 0], [3, 2]] -> [[3, 0], [3, 1]];  a = [[1, 1], [1, 3]]: column 0 unscaled, column 1 / 2
    # -> [[1, 0.5], [1, 1.5]]. S = [[3, 3], [3.5, 4.5]] (tau = 1).
    # L_qa = 1/2 (log(2 e^3) - 3 + log(e^3.5 + e^4.5) - 4.5)
    # L_aq: columns of S: a0: [3, 3.5], P = {q0}; a1: [3, 4.5], P = {q1}
    q = _t([[3.0, 0.0], [3.0, 2.0]])
    a = _t([[1.0, 1.0], [1.0, 3.0]])
    l_qa = (math.log(2 * E**3) - 3 + math.log(E**3.5 + E**4.5) - 4.5) / 2
    l_aq = (math.log(E**3 + E**3.5) - 3 + math.log(E**3 + E**4.5) - 4.5) / 2
    want = (l_qa + l_aq) / 2
    assert ref.bsc(q, a, 1.0, normalization="coordinate") == pytest.approx(want, **TOL)
    assert F.bsc_loss(q, a, 1.0, normalization="coordinate").item() == pytest.approx(want, **TOL)
