"""AdamW with the bias correction switchable off, as in the paper's training (Sec. 5.2).

The paper trains with "AdamW with the bias correction for the CQA tasks, and without bias correction
for the rest" (the old ``transformers.AdamW(correct_bias=False)``, BERT's original optimizer).
``torch.optim.AdamW`` always corrects the bias and transformers 5 no longer ships its own AdamW, so
this small optimizer is written here. Update for each parameter ``p`` with gradient ``g``::

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    step = lr * sqrt(1 - beta2^t) / (1 - beta1^t)   if correct_bias else lr
    p <- p - step * m / (sqrt(v) + eps)
    p <- p - lr * weight_decay * p                 (decoupled weight decay)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch


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
    ):
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

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter with a gradient, with ``torch._foreach_*`` ops on the tensors of
        each (device, dtype): a few fused kernel launches per group instead of a Python loop over the
        parameters, and no host sync (the step counts are Python ints)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            buckets: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    buckets.setdefault((p.device, p.dtype), []).append(p)
            for params in buckets.values():
                for p in params:
                    state = self.state[p]
                    if not state:
                        state["step"] = 0
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    state["step"] += 1
                grads = [p.grad for p in params]
                exp_avgs = [self.state[p]["exp_avg"] for p in params]
                exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
                torch._foreach_mul_(exp_avgs, beta1)
                torch._foreach_add_(exp_avgs, grads, alpha=1 - beta1)
                torch._foreach_mul_(exp_avg_sqs, beta2)
                torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
                if group["correct_bias"]:
                    steps = [self.state[p]["step"] for p in params]
                    sizes = [-lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) for t in steps]
                else:
                    sizes = [-lr] * len(params)
                denom = torch._foreach_sqrt(exp_avg_sqs)
                torch._foreach_add_(denom, group["eps"])
                torch._foreach_addcdiv_(params, exp_avgs, denom, sizes)
                if wd > 0:
                    torch._foreach_add_(params, params, alpha=-lr * wd)
        return loss
