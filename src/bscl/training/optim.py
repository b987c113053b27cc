"""AdamW with the bias correction switchable off, as in the paper's training (Sec. 5.2).

The paper trains with "AdamW with the bias correction for the CQA tasks, and without bias correction
for the rest" (BERT's original optimizer, the old ``transformers.AdamW(correct_bias=False)``).
``torch.optim.AdamW`` always corrects the bias and transformers 5 no longer ships its own AdamW, so
this small optimizer is written here. Update for each parameter ``p`` with gradient ``g`` at step ``t``::

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    p <- p - lr * weight_decay * p                 (decoupled weight decay, on the old p)
    p <- p - lr * m / (sqrt(v) + eps)                            without bias correction
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)                    with it: m_hat = m / (1 - beta1^t),
                                                                          v_hat = v / (1 - beta2^t)

The weight decay acts on the parameter before the Adam step, as in ``torch.optim.AdamW`` and in BERT's
``AdamWeightDecay`` (``p - lr (m / (sqrt(v) + eps) + weight_decay p)``); the old transformers
``AdamW`` applied it after the step, which differs by ``lr * weight_decay`` times the step (at the
paper's lr 2e-5 and weight decay 0.01, ~1e-11 for a step of 2e-5: below float32 resolution).

The step runs PyTorch's fused AdamW kernel (``torch._fused_adamw_``: one pass over each tensor instead
of eight ``torch._foreach_*`` passes; ~6x faster for all-MiniLM-L6-v2 on a 2-core CPU,
``benchmarks/step_parts.py``). That kernel always corrects the bias with the step count it is given,
as ``1 - beta^t``; the uncorrected update is the corrected one at ``t = inf``, where both
factors are exactly 1, so it is given an infinite step count (the state keeps the true count). Devices
without the fused kernel take the ``torch._foreach_*`` path of the same update.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices


def _fused_devices() -> frozenset[str]:
    return (
        frozenset(_get_fused_kernels_supported_devices()) if hasattr(torch, "_fused_adamw_") else frozenset()
    )


class AdamW(torch.optim.Optimizer):
    """AdamW with ``correct_bias`` (see the module docstring for the update)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        fused: bool | None = None,
    ):
        """``fused``: None (default) uses the fused kernel where the device has one; False always takes
        the ``torch._foreach_*`` path (the reference the fused path is tested against)."""
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0; got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must lie in [0, 1); got {betas}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0; got {eps}")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "correct_bias": correct_bias,
        }
        super().__init__(params, defaults)
        self._fused = _fused_devices() if fused is None or fused else frozenset()
        if fused and not self._fused:
            raise ValueError("fused=True: this PyTorch has no fused AdamW kernel")

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter with a gradient: per (device, dtype) one fused kernel call, or
        a few ``torch._foreach_*`` calls; no host sync (the step counts are Python ints)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            buckets: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    buckets.setdefault((p.device, p.dtype), []).append(p)
            for (device, _), params in buckets.items():
                for p in params:
                    state = self.state[p]
                    if not state:
                        state["step"] = 0
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    state["step"] += 1
                if device.type in self._fused:
                    self._fused_step(group, params, device)
                else:
                    self._foreach_step(group, params)
        return loss

    def _fused_step(self, group: dict[str, Any], params: list[torch.Tensor], device: torch.device) -> None:
        beta1, beta2 = group["betas"]
        if group["correct_bias"]:
            steps = [torch.tensor(float(self.state[p]["step"]), device=device) for p in params]
        else:
            steps = [torch.tensor(math.inf, device=device)] * len(params)  # bias factors 1 - beta^inf = 1
        torch._fused_adamw_(
            params,
            [p.grad for p in params],
            [self.state[p]["exp_avg"] for p in params],
            [self.state[p]["exp_avg_sq"] for p in params],
            [],
            steps,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )

    def _foreach_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        grads = [p.grad for p in params]
        exp_avgs = [self.state[p]["exp_avg"] for p in params]
        exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        if wd > 0:
            torch._foreach_mul_(params, 1 - lr * wd)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        if group["correct_bias"]:
            steps = [self.state[p]["step"] for p in params]
            torch._foreach_div_(denom, [math.sqrt(1 - beta2**t) for t in steps])
            sizes = [-lr / (1 - beta1**t) for t in steps]
        else:
            sizes = [-lr] * len(params)
        torch._foreach_add_(denom, group["eps"])
        torch._foreach_addcdiv_(params, exp_avgs, denom, sizes)
