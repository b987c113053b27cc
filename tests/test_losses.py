"""Every loss against a naive loop version of its formula, gradcheck, degenerate batches, bad input."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import reference_losses as ref
from bscl.losses import functional as F
from bscl.losses.modules import (
    LOSSES,
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
    loss_options,
)

# representative cells (batch m, dimension d, tau, dtype): every batch size, dimension, tau and dtype
# appears once; the other cells run the same code path
GRID = [
    (1, 7, 0.1, torch.float32),
    (2, 1, 1.0, torch.float64),
    (5, 32, 0.05, torch.float32),
    (12, 7, 0.1, torch.float64),
    (12, 32, 1.0, torch.float32),
]
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


# the SoftCSE functions take their sharpness / slope explicitly: 0 is the InfoNCE setting
SOFTCSE_WEIGHT = functools.partial(F.softcse_weight_loss, beta=0.0)
SOFTCSE_TEMPERATURE = functools.partial(F.softcse_temperature_loss, gamma=0.0)


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


@pytest.mark.parametrize(("m", "d", "dtype"), [(m, d, dt) for m, d, _, dt in GRID])
def test_mse_and_pearson_match_reference(m, d, dtype):
    q, a, labels, _, _ = _batch(m, d, dtype, seed=4)
    np.testing.assert_allclose(
        F.mse_cosine_loss(q, a, labels).item(), ref.mse(_np(q), _np(a), _np(labels)), **_tol(dtype)
    )
    np.testing.assert_allclose(
        F.pearson_loss(q, a, labels).item(), ref.pearson(_np(q), _np(a), _np(labels)), **_tol(dtype)
    )


@pytest.mark.parametrize(("m", "d", "dtype"), [(m, d, dt) for m, d, _, dt in GRID])
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
    option = "beta" if fn is F.softcse_weight_loss else "gamma"
    neutral = fn(q, a, 0.05, **{option: 0.0})
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
    "fn",
    [F.bsc_loss, F.focal_infonce_loss, SOFTCSE_WEIGHT, SOFTCSE_TEMPERATURE],
    ids=["bsc", "focal", "w", "t"],
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
    "fn",
    [F.bsc_loss, F.focal_infonce_loss, SOFTCSE_WEIGHT, SOFTCSE_TEMPERATURE],
    ids=["bsc", "focal", "w", "t"],
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


# --------------------------------------------------------------------------------------------------
# positives are labeled positive *text pairs*; strict binarization; extra negatives
# --------------------------------------------------------------------------------------------------
def _authors_bsc(q, a, tau, labels, negatives=None, normalization="l2"):
    """aschern/BSC-loss lib/BSCLoss.py, restated: candidates torch.cat(reps[1:]) (answers, then each
    negative column), (-mean(diag(log_softmax dim 1) * y) - mean(diag(log_softmax dim 0) * y)) / 2."""
    cands = a if negatives is None else torch.cat([a, *negatives.unbind(1)])  # (m + m k, d)
    if normalization == "l2":
        qn, cn = q / q.norm(dim=1, keepdim=True), cands / cands.norm(dim=1, keepdim=True)
    else:  # the authors' norm_dim=0: max - min per coordinate
        qn = q / (q.max(0)[0] - q.min(0)[0])
        cn = cands / (cands.max(0)[0] - cands.min(0)[0])
    s = qn @ cn.T / tau  # (m, m + m k)
    y = labels.to(s.dtype)
    fwd = -torch.mean(torch.diag(torch.log_softmax(s, dim=1)) * y)
    bwd = -torch.mean(torch.diag(torch.log_softmax(s, dim=0)) * y)
    return (fwd + bwd) / 2


def _loop_bsc(q, a, tau, labels, threshold, q_ids, a_ids, negatives=None, neg_ids=None):
    """Straight from the definition, with loops: (q_i, c) positive iff some row r has q_r = q_i,
    a_r = c (texts) and y_r > t; rows with y_i <= t add nothing; candidates = answers + negatives."""
    m = q.shape[0]
    k = 0 if negatives is None else negatives.shape[1]
    qn = [v / v.norm() for v in q]
    cands = [v / v.norm() for v in a] + [
        negatives[i, j] / negatives[i, j].norm() for i in range(m) for j in range(k)
    ]
    cand_text = [int(t) for t in a_ids] + [int(neg_ids[i, j]) for i in range(m) for j in range(k)]
    pos = [float(y) > threshold for y in labels]
    pair_pos = {(int(q_ids[r]), int(a_ids[r])) for r in range(m) if pos[r]}

    def direction(rows, columns, is_pos):
        total = 0.0
        for i, row in enumerate(rows):
            logits = [float(row @ c) / tau for c in columns]
            lse = math.log(sum(math.exp(z) for z in logits))
            hits = [j for j in range(len(columns)) if is_pos(i, j)]
            if hits:
                total += -sum(logits[j] - lse for j in hits) / len(hits)
        return total / len(rows)

    fwd = direction(qn, cands, lambda i, c: pos[i] and (int(q_ids[i]), cand_text[c]) in pair_pos)
    bwd = direction(cands[:m], qn, lambda j, i: pos[j] and (int(q_ids[i]), int(a_ids[j])) in pair_pos)
    return (fwd + bwd) / 2


def _dup_batch(m, d, k, seed):
    g = torch.Generator().manual_seed(seed)
    q_ids = torch.randint(0, max(1, m // 2), (m,), generator=g)
    a_ids = torch.randint(0, max(1, m // 2), (m,), generator=g)
    neg_ids = torch.randint(0, max(1, m // 2) + 2, (m, k), generator=g)  # some negatives repeat answers
    texts = torch.randn(m + 3, d, generator=g, dtype=torch.float64)
    q = torch.randn(m, d, generator=g, dtype=torch.float64)[q_ids]  # equal text -> equal embedding
    a, n = texts[a_ids], texts[neg_ids]  # (m, d), (m, k, d): same text space for answers and negatives
    labels = torch.tensor([0.0, 1.0, 0.6, 0.3, 0.9])[torch.randint(0, 5, (m,), generator=g)].double()
    return q, a, n, labels, q_ids, a_ids, neg_ids


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("m", "k"), [(1, 0), (1, 2), (3, 0), (6, 1), (9, 3)])
def test_bsc_default_equals_the_loop_definition(seed, m, k):
    q, a, n, labels, q_ids, a_ids, neg_ids = _dup_batch(m, 5, k, seed)
    negatives, nids = (n, neg_ids) if k else (None, None)
    got = F.bsc_loss(
        q, a, 0.3, labels=labels, threshold=0.6, q_ids=q_ids, a_ids=a_ids, negatives=negatives, neg_ids=nids
    )
    want = _loop_bsc(q, a, 0.3, labels, 0.6, q_ids, a_ids, negatives, nids)
    np.testing.assert_allclose(got.item(), want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", [0, 1, 3])
@pytest.mark.parametrize("normalization", ["l2", "coordinate"])
@pytest.mark.parametrize("seed", range(4))
def test_without_duplicates_equals_the_authors_code(k, normalization, seed):
    g = torch.Generator().manual_seed(seed)
    m, d = 7, 6
    q, a = (
        torch.randn(m, d, generator=g, dtype=torch.float64),
        torch.randn(m, d, generator=g, dtype=torch.float64),
    )
    negatives = torch.randn(m, k, d, generator=g, dtype=torch.float64) if k else None
    labels = (torch.rand(m, generator=g) > 0.4).double()
    got = F.bsc_loss(q, a, 0.2, labels=labels, negatives=negatives, normalization=normalization)
    want = _authors_bsc(q, a, 0.2, labels, negatives, normalization)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # and through the module with its defaults (labels and duplicates on, distinct texts)
    module = BSCLoss(0.2, normalization=normalization)
    ids = torch.arange(m)
    neg_ids = None if k == 0 else 100 + torch.arange(m * k).view(m, k)
    got_module = module(q, a, labels, ids, ids, negatives, neg_ids)
    torch.testing.assert_close(got_module, want, rtol=1e-6, atol=1e-6)  # the fixed tau buffer is float32


def test_negative_row_of_a_duplicated_query_adds_nothing():
    """A label-0 row whose query also has a positive row must not take that row's answer as its
    positive: it adds 0 (but stays in every denominator, eq. 5)."""
    g = torch.Generator().manual_seed(3)
    q0 = torch.randn(1, 4, generator=g, dtype=torch.float64)
    q = torch.cat([q0, q0, torch.randn(1, 4, generator=g, dtype=torch.float64)])  # rows 0, 1: same query
    a = torch.randn(3, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    ids = torch.tensor([0, 0, 1])
    with_dups = F.bsc_loss(q, a, 0.1, labels=labels, q_ids=ids, a_ids=torch.arange(3), symmetric=False)
    s = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(a, dim=1).T / 0.1
    lp = torch.log_softmax(s, dim=1)
    want = -(lp[0, 0] + lp[2, 2]) / 3  # row 1 (label 0) adds nothing; the mean is over all 3 rows
    torch.testing.assert_close(with_dups, want)


def test_labels_exactly_at_the_threshold_are_negatives():
    labels = torch.tensor([0.6, 0.6000001, 0.59, 1.0])
    assert F.binarize(labels, 0.6).tolist() == [False, True, False, True]
    q, a = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    at = F.bsc_loss(q, a, 0.1, labels=torch.tensor([0.6, 1.0, 1.0, 0.0], dtype=torch.float64), threshold=0.6)
    below = F.bsc_loss(
        q, a, 0.1, labels=torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64), threshold=0.6
    )
    torch.testing.assert_close(at, below)
    # triplet binarizes with the same function: a label at the threshold is a negative
    ids = torch.zeros(2, dtype=torch.long)
    y = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert F.triplet_loss(q[:2], a[:2], y, q_ids=ids).item() == 0.0  # no positive: no triplet


def test_negative_sharing_the_answer_text_is_a_positive():
    # row 0's negative has the text of row 0's answer: it is a positive of row 0 (the same text pair)
    g = torch.Generator().manual_seed(5)
    q, a = (
        torch.randn(2, 3, generator=g, dtype=torch.float64),
        torch.randn(2, 3, generator=g, dtype=torch.float64),
    )
    negatives = torch.stack([a[0], a[1]]).view(2, 1, 3).flip(0)  # row 0's negative = a[1], row 1's = a[0]
    a_ids, neg_ids = torch.tensor([10, 11]), torch.tensor([[11], [10]])
    labels = torch.ones(2, dtype=torch.float64)
    got = F.bsc_loss(
        q, a, 0.5, labels=labels, a_ids=a_ids, negatives=negatives, neg_ids=neg_ids, symmetric=False
    )
    s = (
        torch.nn.functional.normalize(q, dim=1)
        @ torch.nn.functional.normalize(torch.cat([a, negatives[:, 0]]), dim=1).T
        / 0.5
    )  # (2, 4): columns a0, a1, n0 (= a1), n1 (= a0)
    lp = torch.log_softmax(s, dim=1)
    # row 0: positive pairs (q0, a0) only -> columns 0 and 3 (n1 has a0's text); row 1: columns 1, 2
    want = (-(lp[0, 0] + lp[0, 3]) / 2 - (lp[1, 1] + lp[1, 2]) / 2) / 2
    torch.testing.assert_close(got, want)


# --------------------------------------------------------------------------------------------------
# new variants against the naive formulas; gradcheck
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("m", "d", "tau", "dtype"), GRID, ids=GRID_IDS)
@pytest.mark.parametrize("mu", [0.0, 0.3, 1.0])
def test_pearson_combo_matches_reference(m, d, tau, dtype, mu):
    q, a, labels, q_ids, a_ids = _batch(m, d, dtype, seed=14, duplicates=m > 2)
    got = F.pearson_combo_loss(q, a, labels, tau, mu=mu, threshold=0.6, q_ids=q_ids, a_ids=a_ids)
    want = mu * ref.bsc(
        _np(q), _np(a), tau, labels=_np(labels), threshold=0.6, q_ids=_ids(q_ids), a_ids=_ids(a_ids)
    ) + (1 - mu) * ref.pearson(_np(q), _np(a), _np(labels))
    np.testing.assert_allclose(got.item(), want, **_tol(dtype))


def test_coordinate_l2_divides_each_column_by_its_batch_norm():
    x = torch.tensor([[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]], dtype=torch.float64)
    want = torch.tensor([[0.6, 0.0, 2**-0.5], [0.8, 0.0, -(2**-0.5)]], dtype=torch.float64)
    torch.testing.assert_close(F.normalize(x, "coordinate-l2"), want)


NEW_GRAD_CASES = {
    "bsc-coordinate-l2": lambda q, a, n, y, t, i: F.bsc_loss(q, a, t, normalization="coordinate-l2"),
    "pearson-combo": lambda q, a, n, y, t, i: F.pearson_combo_loss(q, a, y, t, mu=0.4, q_ids=i, a_ids=i),
    "bsc-negatives-dups-coordinate": lambda q, a, n, y, t, i: F.bsc_loss(
        q,
        a,
        t,
        labels=y,
        q_ids=i,
        a_ids=i,
        negatives=n,
        neg_ids=torch.stack([i + 1, i + 2], 1),
        normalization="coordinate",
    ),
    "bsc-negatives-zscore": lambda q, a, n, y, t, i: F.bsc_loss(q, a, t, negatives=n, normalization="zscore"),
    "focal-negatives": lambda q, a, n, y, t, i: F.focal_infonce_loss(
        q, a, t, labels=y, negatives=n, symmetric=True
    ),
    "softcse-temperature-negatives": lambda q, a, n, y, t, i: F.softcse_temperature_loss(
        q, a, t, gamma=0.0, negatives=n
    ),
    "combo-negatives": lambda q, a, n, y, t, i: F.combo_loss(q, a, y, t, negatives=n),
}


@pytest.mark.parametrize("name", list(NEW_GRAD_CASES))
def test_gradcheck_new_variants(name):
    g = torch.Generator().manual_seed(15)
    q, a, n = (
        torch.randn(6, 4, generator=g),
        torch.randn(6, 4, generator=g),
        torch.randn(6, 2, 4, generator=g),
    )
    labels = torch.tensor([1.0, 0.0, 1.0, 0.7, 0.2, 1.0], dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 2, 2, 3])
    q, a, n, tau = _leaf(q, a, n, torch.tensor(0.3))
    fn = NEW_GRAD_CASES[name]
    assert torch.autograd.gradcheck(lambda q_, a_, n_, t_: fn(q_, a_, n_, labels, t_, ids), (q, a, n, tau))


# --------------------------------------------------------------------------------------------------
# edge cases with defined values and finite gradients
# --------------------------------------------------------------------------------------------------
CONTRASTIVE = {
    "bsc": lambda q, a, **kw: F.bsc_loss(q, a, 0.1, **kw),
    "combo": lambda q, a, **kw: F.combo_loss(q, a, torch.ones(len(q), dtype=q.dtype), 0.1, mu=1.0, **kw),
    "pearson-combo": lambda q, a, **kw: F.pearson_combo_loss(
        q, a, torch.ones(len(q), dtype=q.dtype), 0.1, mu=1.0, **kw
    ),
}


@pytest.mark.parametrize("normalization", F.NORMALIZATIONS)
@pytest.mark.parametrize("name", list(CONTRASTIVE))
@pytest.mark.parametrize("m", [1, 2, 5])
def test_identical_rows_give_log_m(normalization, name, m):
    """Every candidate scores the same: each direction is log m, for every normalization, in float32."""
    q = torch.randn(1, 6).repeat(m, 1).requires_grad_(True)
    a = torch.randn(1, 6).repeat(m, 1).requires_grad_(True)
    loss = CONTRASTIVE[name](q, a, normalization=normalization)
    assert loss.item() == pytest.approx(math.log(m), abs=1e-5)
    loss.backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("method", ["coordinate", "coordinate-l2", "zscore"])
def test_zero_range_column_is_left_unscaled(method):
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]], dtype=torch.float64, requires_grad=True)
    out = F.normalize(x, method)
    # constant column: coordinate / coordinate-l2 keep it (coordinate-l2 only zeroes a zero column), zscore centres it
    want_col = {"coordinate": 5.0, "coordinate-l2": 5.0 / math.sqrt(75.0), "zscore": 0.0}[method]
    torch.testing.assert_close(out[:, 1], torch.full((3,), want_col, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    # the old clamp multiplied a constant column by 1e8
    assert out.abs().max() < 10


def test_pearson_gradient_is_finite_at_batch_one_and_constant_labels():
    for q, a, y in [
        (torch.randn(1, 4), torch.randn(1, 4), torch.ones(1)),
        (torch.randn(5, 4), torch.randn(5, 4), torch.full((5,), 0.7)),
        (torch.ones(5, 4), torch.ones(5, 4), torch.rand(5)),  # constant cosines
    ]:
        q, a = _leaf(q, a)
        loss = F.pearson_loss(q, a, y.double())
        assert loss.item() == pytest.approx(1.0)
        loss.backward()
        assert torch.isfinite(q.grad).all() and torch.isfinite(a.grad).all()


def test_huge_magnitudes_do_not_become_zero_vectors():
    x = torch.tensor([[3e19, 4e19], [1e30, 0.0]], dtype=torch.float32)
    torch.testing.assert_close(F.normalize(x, "l2"), torch.tensor([[0.6, 0.8], [1.0, 0.0]]))
    q, a = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    small = F.bsc_loss(q.float(), a.float(), 0.1)
    torch.testing.assert_close(F.bsc_loss(1e25 * q.float(), 1e25 * a.float(), 0.1), small)
    torch.testing.assert_close(
        F.diagonal_cosine(1e25 * q.float(), a.float()), F.diagonal_cosine(q.float(), a.float())
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    q, a = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64)
    got = F.bsc_loss(q.to(dtype), a.to(dtype), 0.05, normalization="zscore")
    assert got.dtype == torch.float32
    want = F.bsc_loss(q.to(dtype).double(), a.to(dtype).double(), 0.05, normalization="zscore")
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("fn", [F.bsc_loss, F.focal_infonce_loss, SOFTCSE_WEIGHT], ids=["bsc", "focal", "w"])
def test_all_rows_duplicates_of_one_pair(fn):
    """m copies of one labeled pair: every candidate is a positive of every row, all logits equal:
    -1/m sum_c log(1/m) = log m per row, and finite gradients."""
    m = 4
    q = torch.randn(1, 5, dtype=torch.float64).repeat(m, 1).requires_grad_(True)
    a = torch.randn(1, 5, dtype=torch.float64).repeat(m, 1).requires_grad_(True)
    ids = torch.zeros(m, dtype=torch.long)
    loss = fn(q, a, 0.1, labels=torch.ones(m, dtype=torch.float64), q_ids=ids, a_ids=ids)
    assert loss.item() == pytest.approx(math.log(m), abs=1e-9)
    loss.backward()
    assert torch.isfinite(q.grad).all()


def test_bad_negatives_shapes_and_tau_inf():
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"negatives must have shape \(3, k, 4\)"):
        F.bsc_loss(q, q, negatives=torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"neg_ids must have shape \(3, 2\)"):
        F.bsc_loss(q, q, negatives=torch.randn(3, 2, 4), neg_ids=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="neg_ids given without negatives"):
        F.bsc_loss(q, q, neg_ids=torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="tau must be > 0 and finite"):
        F.bsc_loss(q, q, float("inf"))
    with pytest.raises(ValueError, match="takes no extra negative"):
        MSELoss()(q, q, torch.ones(3), negatives=torch.randn(3, 1, 4))


# --------------------------------------------------------------------------------------------------
# options owned by each loss: LossConfig and the CLI derive from them
# --------------------------------------------------------------------------------------------------
def _cli_config(argv):
    from bscl.training import config as C

    # the generic task has no recipe: what remains are the CLI's own defaults
    return C.parse_command_line(["--data.task", "generic", *argv])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_resolved_cli_defaults_equal_the_constructor_defaults(name):
    import inspect

    from bscl.training.registry import resolve_loss_options

    cfg = _cli_config(["--loss.name", name])
    resolved = resolve_loss_options(cfg.loss)  # no task threshold: the loss's own
    signature = {p.name: p.default for p in inspect.signature(LOSSES[name]).parameters.values()}
    assert resolved == signature
    built = build_loss(name)
    for key, value in resolved.items():
        assert getattr(built.opts, key) == value
    # the task's threshold is the default when none is given, a given one wins
    if "threshold" in resolved:
        assert resolve_loss_options(cfg.loss, 0.6)["threshold"] == 0.6
        cfg = _cli_config(["--loss.name", name, "--loss.threshold", "0.3"])
        assert resolve_loss_options(cfg.loss, 0.6)["threshold"] == 0.3


def test_named_defaults():
    from bscl.training.registry import resolve_loss_options

    focal = resolve_loss_options(_cli_config(["--loss.name", "focal-infonce"]).loss)
    assert focal["margin"] == 0.3 and focal["tau"] == 0.05
    soft = resolve_loss_options(_cli_config(["--loss.name", "softcse-weight"]).loss)
    assert soft["symmetric"] is SoftCSEWeightLoss().opts.symmetric is False
    bsc = BSCLoss()
    assert bsc.opts.use_labels is True and bsc.opts.duplicates is True and bsc.opts.threshold == 0.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--loss.name", "bsc", "--loss.margin", "0.2"], "--loss.margin is not an option of --loss.name=bsc"),
        (["--loss.name", "mse", "--loss.tau", "0.2"], "--loss.tau is not an option of --loss.name=mse"),
        (["--loss.name", "nope"], "--loss.name='nope' is unknown"),
        (["--loss.tau", "0"], "--loss.tau must be > 0"),
        (["--loss.tau", "inf"], "--loss.tau must be > 0 and finite"),
        (["--loss.name", "combo", "--loss.mu", "2"], r"--loss.mu must lie in \[0, 1\]"),
        (["--loss.normalization", "max"], "--loss.normalization='max' is unknown"),
        (["--loss.combine", "max"], "--loss.combine='max' is unknown"),
        (["--loss.tau_parametrization", "exp"], "--loss.tau_parametrization='exp' is unknown"),
        (["--loss.name", "triplet", "--loss.margin", "-1"], "--loss.margin must be >= 0"),
    ],
)
def test_loss_options_are_validated_by_building_the_loss(argv, message):
    # through a config mapping (YAML / Python), which reaches validate(): the command line rejects
    # bad choices even earlier, in its parser (tests/test_config.py)
    from bscl.training import config as C

    values = {"data": {"task": "generic"}, "loss": dict(zip(argv[::2], argv[1::2], strict=True))}
    values["loss"] = {k.removeprefix("--loss."): v for k, v in values["loss"].items()}
    with pytest.raises(ValueError, match=message):
        C.from_dict(values).validate()


def test_loss_config_docstring_has_one_help_line_per_field():
    import dataclasses

    import docstring_parser

    from bscl.training.config import LossConfig

    params = {p.arg_name: p.description for p in docstring_parser.parse(LossConfig.__doc__).params}
    assert set(params) == {f.name for f in dataclasses.fields(LossConfig)}
    assert "triplet hinge margin" in params["margin"]  # the default: the chosen loss's, in bscl train --help
    assert all(params.values())


def test_unknown_constructor_option_is_a_clear_error():
    with pytest.raises(ValueError, match="margin is not an option of BSCLoss"):
        BSCLoss(margin=0.3)


def test_run_records_the_resolved_loss_options():
    from types import SimpleNamespace

    from bscl.run import loss_from_config, resolved_loss_options

    cfg = _cli_config(["--loss.name", "focal-infonce", "--loss.tau", "0.07"])
    task = SimpleNamespace(binarize_threshold=0.6)
    resolved = resolved_loss_options(cfg, task)
    assert resolved == {
        **loss_options("focal-infonce"),
        "name": "focal-infonce",
        "tau": 0.07,
        "threshold": 0.6,
    }
    loss = loss_from_config(cfg, task)
    assert isinstance(loss, FocalInfoNCELoss) and loss.opts.threshold == 0.6 and loss.opts.margin == 0.3
    assert resolved_loss_options(_cli_config(["--loss.name", "mse"]), task) == {"name": "mse"}
