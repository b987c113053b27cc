"""Every loss against a naive loop version of its formula, gradcheck, degenerate batches, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import reference_losses as ref
from bscl.losses import functional as F
from bscl.losses.modules import (
    BSCLoss,
    ComboLoss,
    FocalInfoNCELoss,
    MSELoss,
    PearsonComboLoss,
    PearsonLoss,
    SoftCSETemperatureLoss,
    SoftCSEWeightLoss,
    Temperature,
    TripletLoss,
    build_loss,
)

BATCHES = [1, 2, 5, 12]
DIMS = [1, 7, 32]
TAUS = [0.05, 0.1, 1.0]
DTYPES = [torch.float32, torch.float64]
GRID = list(itertools.product(BATCHES, DIMS, TAUS, DTYPES))
GRID_IDS = [f"m{m}-d{d}-tau{t}-{str(dt)[6:]}" for m, d, t, dt in GRID]


def _batch(m: int, d: int, dtype: torch.dtype, seed: int = 0, duplicates: bool = False):
    """Random embeddings, graded labels in [0, 1] and text ids (with repeats when duplicates=True)."""
    g = torch.Generator().manual_seed(seed * 1000 + m * 10 + d)
    q = torch.randn(m, d, generator=g, dtype=torch.float64)
    a = q + 0.8 * torch.randn(m, d, generator=g, dtype=torch.float64)
    labels = torch.rand(m, generator=g, dtype=torch.float64)
    if duplicates:
        q_ids = torch.randint(0, max(1, m // 2), (m,), generator=g)
        a_ids = torch.randint(0, max(1, m // 2), (m,), generator=g)
        # identical texts have identical embeddings up to noise: make the duplicates really close
        q = q[q_ids] + 1e-3 * torch.randn(m, d, generator=g, dtype=torch.float64)
        a = a[a_ids] + 1e-3 * torch.randn(m, d, generator=g, dtype=torch.float64)
    else:
        q_ids = a_ids = None
    return q.to(dtype), a.to(dtype), labels.to(dtype), q_ids, a_ids


def _np(t):
    return None if t is None else t.detach().double().numpy()


def _ids(t):
    return None if t is None else t.tolist()


def _tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-9}


# --------------------------------------------------------------------------------------------------
# against the naive formulas, over the grid
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
@pytest.mark.parametrize("normalization", ["l2", "coordinate", "coordinate-l2", "zscore", "none"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_bsc_plain_matches_reference(m, d, tau, dtype, normalization, symmetric):
    q, a, _, _, _ = _batch(m, d, dtype)
    got = F.bsc_loss(q, a, tau, symmetric=symmetric, normalization=normalization)
    want = ref.bsc(_np(q), _np(a), tau, symmetric=symmetric, normalization=normalization)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
@pytest.mark.parametrize("duplicates", [False, True])
@pytest.mark.parametrize("combine", ["mean", "sum"])
def test_bsc_labels_and_duplicates_match_reference(m, d, tau, dtype, duplicates, combine):
    q, a, labels, q_ids, a_ids = _batch(m, d, dtype, seed=1, duplicates=duplicates)
    got = F.bsc_loss(q, a, tau, labels=labels, threshold=0.6, q_ids=q_ids, a_ids=a_ids, combine=combine)
    want = ref.bsc(
        _np(q),
        _np(a),
        tau,
        labels=_np(labels),
        threshold=0.6,
        q_ids=_ids(q_ids),
        a_ids=_ids(a_ids),
        combine=combine,
    )
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
def test_bsc_one_direction_is_eq2(m, d, tau, dtype):
    q, a, _, _, _ = _batch(m, d, dtype, seed=2)
    got = F.bsc_loss(q, a, tau, symmetric=False)
    np.testing.assert_allclose(got.item(), ref.bsc_eq2(_np(q), _np(a), tau), **_tol(dtype))


def test_combine_sum_is_twice_mean():
    q, a, _, _, _ = _batch(6, 5, torch.float64)
    assert torch.allclose(F.bsc_loss(q, a, 0.1, combine="sum"), 2 * F.bsc_loss(q, a, 0.1, combine="mean"))


@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
@pytest.mark.parametrize("mu", [0.0, 0.1, 0.9, 1.0])
def test_combo_matches_reference(m, d, tau, dtype, mu):
    q, a, labels, _, _ = _batch(m, d, dtype, seed=3)
    got = F.combo_loss(q, a, labels, tau, mu=mu, threshold=0.6, normalization="coordinate")
    want = ref.combo(_np(q), _np(a), _np(labels), tau, mu, threshold=0.6, normalization="coordinate")
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


@pytest.mark.parametrize(("m", "d", "dtype"), [(m, d, dt) for m, d, _, dt in GRID[::3]])
def test_mse_and_pearson_match_reference(m, d, dtype):
    q, a, labels, _, _ = _batch(m, d, dtype, seed=4)
    np.testing.assert_allclose(
        F.mse_cosine_loss(q, a, labels).item(), ref.mse(_np(q), _np(a), _np(labels)), **_tol(dtype)
    )
    np.testing.assert_allclose(
        F.pearson_loss(q, a, labels).item(), ref.pearson(_np(q), _np(a), _np(labels)), **_tol(dtype)
    )


@pytest.mark.parametrize(("m", "d", "dtype"), [(m, d, dt) for m, d, _, dt in GRID[::3]])
@pytest.mark.parametrize("margin", [0.0, 0.5])
@pytest.mark.parametrize("duplicates", [False, True])
def test_triplet_matches_reference(m, d, dtype, margin, duplicates):
    q, a, labels, q_ids, _ = _batch(m, d, dtype, seed=5, duplicates=duplicates)
    got = F.triplet_loss(q, a, labels, margin=margin, q_ids=q_ids)
    want = ref.triplet(_np(q), _np(a), _np(labels), margin, q_ids=_ids(q_ids))
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


def test_triplet_hand_computed():
    # one anchor (id 0) with a positive at cos 1 and a negative at cos 0: d_pos = 0, d_neg = 1
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([1.0, 0.0])
    ids = torch.tensor([0, 0])
    assert F.triplet_loss(q, a, labels, margin=0.5, q_ids=ids).item() == pytest.approx(0.0)
    assert F.triplet_loss(q, a, labels, margin=1.5, q_ids=ids).item() == pytest.approx(0.5)
    # swapped labels: d_pos = 1, d_neg = 0 -> 1 + margin
    assert F.triplet_loss(q, a, 1 - labels, margin=0.5, q_ids=ids).item() == pytest.approx(1.5)


@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_focal_matches_reference(m, d, tau, dtype, symmetric):
    q, a, labels, q_ids, a_ids = _batch(m, d, dtype, seed=6, duplicates=m > 2)
    got = F.focal_infonce_loss(
        q, a, tau, margin=0.3, labels=labels, q_ids=q_ids, a_ids=a_ids, symmetric=symmetric
    )
    want = ref.focal(_np(q), _np(a), tau, 0.3, _np(labels), 0.5, _ids(q_ids), _ids(a_ids), symmetric)
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
@pytest.mark.parametrize("beta", [-2.0, 0.0, 1.0])
def test_softcse_weight_matches_reference(m, d, tau, dtype, beta):
    q, a, labels, q_ids, a_ids = _batch(m, d, dtype, seed=7, duplicates=m > 2)
    got = F.softcse_weight_loss(q, a, tau, beta=beta, labels=labels, q_ids=q_ids, a_ids=a_ids, symmetric=True)
    want = ref.softcse_weight(_np(q), _np(a), tau, beta, _np(labels), 0.5, _ids(q_ids), _ids(a_ids), True)
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
@pytest.mark.parametrize("gamma", [-1.0, 0.0, 0.5])
def test_softcse_temperature_matches_reference(m, d, tau, dtype, gamma):
    q, a, labels, q_ids, a_ids = _batch(m, d, dtype, seed=8, duplicates=m > 2)
    got = F.softcse_temperature_loss(q, a, tau, gamma=gamma, labels=labels, q_ids=q_ids, a_ids=a_ids)
    want = ref.softcse_temperature(_np(q), _np(a), tau, gamma, _np(labels), 0.5, _ids(q_ids), _ids(a_ids))
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


@pytest.mark.parametrize("fn", [F.softcse_weight_loss, F.softcse_temperature_loss])
def test_softcse_neutral_setting_is_infonce(fn):
    q, a, _, _, _ = _batch(9, 16, torch.float64, seed=9)
    neutral = fn(q, a, 0.05)  # beta = 0 / gamma = 0
    infonce = F.bsc_loss(q, a, 0.05, symmetric=False, normalization="l2")
    assert torch.allclose(neutral, infonce, rtol=1e-12, atol=1e-12)


def test_focal_without_margin_and_positive_square_differs_from_infonce():
    # focal modulation really changes the loss (guards against a silent fallback to InfoNCE)
    q, a, _, _, _ = _batch(8, 16, torch.float64, seed=10)
    assert not torch.allclose(F.focal_infonce_loss(q, a, 0.05), F.bsc_loss(q, a, 0.05, symmetric=False))


# --------------------------------------------------------------------------------------------------
# gradcheck in float64, including the trainable temperature
# --------------------------------------------------------------------------------------------------
def _leaf(*tensors):
    return [t.detach().double().requires_grad_(True) for t in tensors]


GRAD_CASES = {
    "bsc-l2": lambda q, a, y, t, i: F.bsc_loss(q, a, t),
    "bsc-coordinate": lambda q, a, y, t, i: F.bsc_loss(q, a, t, normalization="coordinate"),
    "bsc-zscore": lambda q, a, y, t, i: F.bsc_loss(q, a, t, normalization="zscore"),
    "bsc-none-onedir": lambda q, a, y, t, i: F.bsc_loss(q, a, t, normalization="none", symmetric=False),
    "bsc-labels-dups": lambda q, a, y, t, i: F.bsc_loss(q, a, t, labels=y, q_ids=i, a_ids=i),
    "combo": lambda q, a, y, t, i: F.combo_loss(q, a, y, t, mu=0.3),
    "mse": lambda q, a, y, t, i: F.mse_cosine_loss(q, a, y) + 0 * t,
    "pearson": lambda q, a, y, t, i: F.pearson_loss(q, a, y) + 0 * t,
    "triplet": lambda q, a, y, t, i: F.triplet_loss(q, a, y, margin=0.5, q_ids=i) + 0 * t,
    "focal": lambda q, a, y, t, i: F.focal_infonce_loss(q, a, t, symmetric=True),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradcheck(name):
    g = torch.Generator().manual_seed(11)
    q, a = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.7, 0.2, 1.0], dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 2, 2, 3])
    q, a, tau = _leaf(q, a, torch.tensor(0.3))
    assert torch.autograd.gradcheck(lambda q_, a_, t_: GRAD_CASES[name](q_, a_, labels, t_, ids), (q, a, tau))


def _softcse_frozen(q, a, tau, w_or_tau, variant):
    """Explicit SoftCSE (one direction, positives on the diagonal) with constant per-pair weights / taus."""
    s = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(a, dim=1).T  # (m, m)
    eye = torch.eye(len(q), dtype=torch.bool)
    if variant == "weight":
        exps = torch.where(eye, torch.exp(s / tau), w_or_tau * torch.exp(s / tau))
    else:
        exps = torch.exp(s / torch.where(eye, tau * torch.ones_like(s), w_or_tau))
    return -(torch.log(torch.diagonal(exps) / exps.sum(1))).mean()


@pytest.mark.parametrize("variant", ["weight", "temperature"])
def test_softcse_gradient_treats_weights_as_constants(variant):
    """SoftCSE computes its weights / temperatures from detached similarities (stop-gradient), which
    finite differences cannot see. Check instead: (1) the explicit formula with the weights frozen at
    the current point passes gradcheck, (2) the library's analytic gradient equals its gradient."""
    g = torch.Generator().manual_seed(13)
    q, a = _leaf(torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g))
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        s = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(a, dim=1).T
        off = ~torch.eye(6, dtype=torch.bool)
        if variant == "weight":
            beta = -1.0
            w = torch.zeros_like(s)
            w[off] = torch.softmax((beta * s / tau).masked_fill(~off, -torch.inf), dim=1)[off] * 5
            frozen = w
        else:
            gamma = 0.5
            frozen = tau * torch.exp(gamma * s)
    if variant == "weight":
        got = F.softcse_weight_loss(q, a, tau, beta=-1.0)
    else:
        # the per-pair temperatures scale with tau: freeze exp(gamma s) but keep tau live
        got = F.softcse_temperature_loss(q, a, tau, gamma=0.5)
        frozen = frozen / tau.detach()
    if variant == "weight":
        explicit = _softcse_frozen(q, a, tau, frozen, variant)
    else:
        explicit = _softcse_frozen(q, a, tau, tau * frozen, variant)
    assert torch.allclose(got, explicit)
    grads = torch.autograd.grad(got, (q, a, tau))
    want = torch.autograd.grad(explicit, (q, a, tau))
    for g1, g2 in zip(grads, want, strict=True):
        assert torch.allclose(g1, g2, rtol=1e-8, atol=1e-10)
    if variant == "weight":
        assert torch.autograd.gradcheck(
            lambda q_, a_, t_: _softcse_frozen(q_, a_, t_, frozen, variant), (q, a, tau)
        )
    else:
        assert torch.autograd.gradcheck(
            lambda q_, a_, t_: _softcse_frozen(q_, a_, t_, t_ * frozen, variant), (q, a, tau)
        )


@pytest.mark.parametrize("parametrization", ["log", "alpha"])
def test_gradcheck_through_trainable_temperature_module(parametrization):
    loss = BSCLoss(0.2, trainable_tau=True, tau_parametrization=parametrization).double()
    param = next(loss.temperature.parameters())
    q, a = _leaf(torch.randn(5, 3), torch.randn(5, 3))

    def f(q_, a_, p_):
        with torch.no_grad():
            param.copy_(p_)
        # re-express tau through p_ so gradcheck sees the dependency
        tau = p_.exp() if parametrization == "log" else 1.0 / p_
        return F.bsc_loss(q_, a_, tau)

    p = param.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (q, a, p))
    # and the module's own parameter receives the same gradient as the functional path
    value = loss(q, a)
    value.backward()
    expected = torch.autograd.grad(f(q, a, p), p)[0]
    assert torch.allclose(param.grad, expected)


# --------------------------------------------------------------------------------------------------
# degenerate batches
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn", [F.bsc_loss, F.focal_infonce_loss, F.softcse_weight_loss, F.softcse_temperature_loss]
)
def test_no_positive_rows_gives_zero_loss_and_zero_grad(fn):
    q, a = _leaf(torch.randn(4, 3), torch.randn(4, 3))
    loss = fn(q, a, 0.1, labels=torch.zeros(4, dtype=torch.float64))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(q.grad) == 0


def test_all_rows_duplicates():
    # every query the same text: every answer is a positive of every query
    m = 5
    q, a = _leaf(torch.randn(1, 8).repeat(m, 1), torch.randn(m, 8))
    ids = torch.zeros(m, dtype=torch.long)
    loss = F.bsc_loss(q, a, 0.1, q_ids=ids, a_ids=torch.arange(m), symmetric=False)
    want = ref.bsc(_np(q), _np(a), 0.1, q_ids=[0] * m, symmetric=False)
    assert torch.isfinite(loss)
    np.testing.assert_allclose(loss.item(), want, rtol=1e-9)
    loss.backward()
    assert torch.isfinite(q.grad).all()
    # all answers positives of one anchor: -mean_j log softmax_j = log m - mean_j s_j + ... >= 0
    assert loss.item() >= 0


@pytest.mark.parametrize(
    "fn", [F.bsc_loss, F.focal_infonce_loss, F.softcse_weight_loss, F.softcse_temperature_loss]
)
def test_tiny_tau_with_large_similarities_is_finite(fn):
    q = 100 * torch.randn(16, 8, dtype=torch.float64)
    a = 100 * torch.randn(16, 8, dtype=torch.float64)
    q, a = _leaf(q, a)
    kwargs = {"normalization": "none"} if fn is F.bsc_loss else {}
    loss = fn(q, a, 0.01, **kwargs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(q.grad).all() and torch.isfinite(a.grad).all()


def test_batch_of_one_is_zero_for_contrastive_losses():
    q, a = torch.randn(1, 4), torch.randn(1, 4)
    for norm in ("l2", "coordinate", "zscore", "none"):
        assert F.bsc_loss(q, a, 0.1, normalization=norm).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------------------------------
# invalid arguments
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.0, -0.1, float("nan")])
def test_invalid_tau(tau):
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match="tau"):
        F.bsc_loss(q, q, tau)
    with pytest.raises(ValueError, match="tau"):
        BSCLoss(tau)


@pytest.mark.parametrize("mu", [-0.1, 1.5])
def test_invalid_mu(mu):
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match="mu"):
        F.combo_loss(q, q, torch.ones(3), mu=mu)
    with pytest.raises(ValueError, match="mu"):
        ComboLoss(mu=mu)


def test_mismatched_shapes_and_labels():
    with pytest.raises(ValueError, match="same shape"):
        F.bsc_loss(torch.randn(3, 4), torch.randn(4, 4))
    with pytest.raises(ValueError, match="2-D"):
        F.bsc_loss(torch.randn(3), torch.randn(3))
    with pytest.raises(ValueError, match="labels"):
        F.bsc_loss(torch.randn(3, 4), torch.randn(3, 4), labels=torch.ones(2))
    with pytest.raises(ValueError, match="q_ids"):
        F.bsc_loss(torch.randn(3, 4), torch.randn(3, 4), q_ids=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        F.mse_cosine_loss(torch.randn(3, 4), torch.randn(3, 4), torch.ones(5))
    with pytest.raises(ValueError, match="normalization"):
        F.bsc_loss(torch.randn(3, 4), torch.randn(3, 4), normalization="max")
    with pytest.raises(ValueError, match="'nope' is unknown"):
        build_loss("nope")
    with pytest.raises(ValueError, match="margin"):
        TripletLoss(margin=-1)


@pytest.mark.parametrize("cls", [MSELoss, PearsonLoss, TripletLoss, ComboLoss])
def test_label_losses_require_labels(cls):
    with pytest.raises(ValueError, match="labels"):
        cls()(torch.randn(3, 4), torch.randn(3, 4))


# --------------------------------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "functional"),
    [
        (
            BSCLoss(0.1, normalization="coordinate", use_labels=False),
            lambda q, a, y: F.bsc_loss(q, a, 0.1, normalization="coordinate"),
        ),
        (
            BSCLoss(0.1, use_labels=True, threshold=0.6, duplicates=True),
            lambda q, a, y: F.bsc_loss(
                q, a, 0.1, labels=y, threshold=0.6, q_ids=torch.arange(6), a_ids=torch.arange(6)
            ),
        ),
        (ComboLoss(0.1, mu=0.4), lambda q, a, y: F.combo_loss(q, a, y, 0.1, mu=0.4)),
        (
            ComboLoss(0.1, mu=0.4, use_labels=False),
            lambda q, a, y: 0.4 * F.bsc_loss(q, a, 0.1) + 0.6 * F.mse_cosine_loss(q, a, y),
        ),
        # defaults: labeled negatives on (the CLI's defaults)
        (FocalInfoNCELoss(), lambda q, a, y: F.focal_infonce_loss(q, a, 0.05, margin=0.3, labels=y)),
        (
            SoftCSEWeightLoss(beta=-1.0, use_labels=False),
            lambda q, a, y: F.softcse_weight_loss(q, a, 0.05, beta=-1.0),
        ),
        (
            SoftCSETemperatureLoss(gamma=0.5),
            lambda q, a, y: F.softcse_temperature_loss(q, a, 0.05, gamma=0.5, labels=y),
        ),
        (BSCLoss(0.1), lambda q, a, y: F.bsc_loss(q, a, 0.1, labels=y)),
        (
            PearsonComboLoss(0.2, mu=0.3, normalization="coordinate-l2"),
            lambda q, a, y: F.pearson_combo_loss(q, a, y, 0.2, mu=0.3, normalization="coordinate-l2"),
        ),
    ],
)
def test_modules_call_functional(module, functional):
    q, a, labels, _, _ = _batch(6, 5, torch.float32, seed=12)
    ids = torch.arange(6)
    assert torch.allclose(module(q, a, labels, ids, ids), functional(q, a, labels))


@pytest.mark.parametrize("parametrization", ["log", "alpha"])
def test_temperature_module(parametrization):
    fixed = Temperature(0.07)
    assert fixed.value == pytest.approx(0.07) and not list(fixed.parameters())
    trainable = Temperature(0.07, trainable=True, parametrization=parametrization)
    assert trainable.value == pytest.approx(0.07, rel=1e-6)
    assert len(list(trainable.parameters())) == 1
    with pytest.raises(ValueError):
        Temperature(0.1, trainable=True, parametrization="exp")
