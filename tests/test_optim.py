"""AdamW with switchable bias correction against a NumPy loop of its update rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainingArguments

from bscl.losses import STLoss
from bscl.losses.modules import build_loss
from bscl.models import load_model
from bscl.training import BSCLTrainer
from bscl.training.optim import AdamW


def _numpy_adamw(p, grads, lr, betas, eps, wd, correct_bias):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = (m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)) if correct_bias else (m, v)
        p = p - lr * wd * p
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("correct_bias", [True, False])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adamw_matches_numpy(correct_bias, wd, fused):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    param = torch.nn.Parameter(torch.tensor(p0))
    opt = AdamW(
        [param],
        lr=0.01,
        betas=(0.9, 0.999),
        eps=1e-6,
        weight_decay=wd,
        correct_bias=correct_bias,
        fused=fused,
    )
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    want = _numpy_adamw(p0, grads, 0.01, (0.9, 0.999), 1e-6, wd, correct_bias)
    np.testing.assert_allclose(param.detach().numpy(), want, rtol=1e-12, atol=1e-12)


def test_bias_correction_changes_the_first_steps():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt_a, opt_b = AdamW([a], lr=0.1, correct_bias=True), AdamW([b], lr=0.1, correct_bias=False)
    a.grad = b.grad = torch.tensor([1.0, -1.0])
    opt_a.step()
    opt_b.step()
    # first step: corrected moves by ~lr, uncorrected by lr * (1 - b1) / sqrt(1 - b2) ~ 3.16 lr
    assert torch.allclose(1 - a.detach()[0], torch.tensor(0.1), atol=1e-4)
    assert torch.allclose(1 - b.detach()[0], torch.tensor(0.1 * 0.1 / 0.001**0.5), atol=1e-3)


def test_trainer_uses_it_and_keeps_the_temperature_group(tmp_path):
    model = load_model("tiny", seed=0)
    loss = STLoss(model, build_loss("bsc", tau=0.1, trainable_tau=True))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), report_to="none", learning_rate=2e-5
    )
    data = Dataset.from_dict({"anchor": ["a b", "c d"], "positive": ["a b c", "c d e"]})
    trainer = BSCLTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=loss,
        adam_bias_correction=False,
        tau_learning_rate=0.01,
    )
    opt = trainer.create_optimizer()
    inner = getattr(opt, "optimizer", opt)
    assert isinstance(inner, AdamW)
    assert all(g["correct_bias"] is False for g in inner.param_groups)
    tau = loss.loss.temperature.log_tau
    assert any(any(p is tau for p in g["params"]) and g["lr"] == 0.01 for g in inner.param_groups)


def test_the_fused_kernel_runs_on_the_cpu():
    opt = AdamW([torch.nn.Parameter(torch.zeros(2))])
    assert "cpu" in opt._fused
    assert not AdamW([torch.nn.Parameter(torch.zeros(2))], fused=False)._fused


def test_with_bias_correction_it_is_torch_adamw():
    gen = torch.Generator().manual_seed(0)
    init = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    ours, ref = torch.nn.Parameter(init.clone()), torch.nn.Parameter(init.clone())
    kw = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01}
    opt, opt_ref = AdamW([ours], correct_bias=True, **kw), torch.optim.AdamW([ref], foreach=False, **kw)
    for _ in range(4):
        g = torch.randn(5, 3, generator=gen, dtype=torch.float64)
        ours.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        opt_ref.step()
    torch.testing.assert_close(ours, ref, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("correct_bias", [True, False])
def test_fused_and_foreach_paths_agree(correct_bias):
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (7,), (2, 2, 2), (5,)]
    dtypes = [torch.float32, torch.float32, torch.float64, torch.float32]  # two buckets
    init = [torch.randn(s, generator=gen, dtype=d) for s, d in zip(shapes, dtypes, strict=True)]
    ours = [torch.nn.Parameter(t.clone()) for t in init]
    ref = [torch.nn.Parameter(t.clone()) for t in init]
    kw = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01, "correct_bias": correct_bias}
    opt, opt_ref = AdamW(ours, **kw), AdamW(ref, fused=False, **kw)
    for step in range(6):
        for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
            if step == 2 and i == 1:  # a parameter without a gradient this step is skipped
                a.grad = b.grad = None
                continue
            g = torch.randn(a.shape, generator=gen, dtype=a.dtype)
            a.grad, b.grad = g.clone(), g.clone()
        opt.step()
        opt_ref.step()
    for a, b in zip(ours, ref, strict=True):
        tol = 1e-14 if a.dtype == torch.float64 else 1e-6
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
        assert opt.state[a]["step"] == opt_ref.state[b]["step"]
