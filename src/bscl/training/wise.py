"""Weight-space ensembling of the fine-tuned model with the model training started from (WiSE-FT).

Wortsman et al., *Robust fine-tuning of zero-shot models*, CVPR 2022: the kept weights are

    theta = (1 - alpha) * theta_start + alpha * theta_fine_tuned,        0 < alpha <= 1,

one model (no ensemble at inference). Fine-tuning on a small training set moves a strong pretrained
bi-encoder towards the training distribution and away from what it already did well elsewhere (PFCC-S:
720 training pairs, a test pool of 10,381 claims that training never sees); interpolating keeps part of
both. Their paper's fixed choice without an out-of-distribution validation set is alpha = 0.5.

Written here because neither sentence-transformers nor transformers has it: it is two lines over
``state_dict`` once the starting weights are kept. Only floating-point tensors are interpolated;
integer buffers (BERT's ``position_ids``) are the fine-tuned model's, which equal the start's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s weights (the starting point of :func:`interpolate_`)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def interpolate_(model: nn.Module, start: Mapping[str, torch.Tensor], alpha: float) -> nn.Module:
    """Set ``model``'s weights to ``(1 - alpha) * start + alpha * model`` in place; returns ``model``.

    ``start`` must have exactly ``model``'s state-dict keys and shapes (a snapshot of the same
    architecture), else ValueError naming the first mismatch.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"interpolation weight alpha must be in (0, 1] (got {alpha})")
    state = model.state_dict()
    missing = sorted(set(state) ^ set(start))
    if missing:
        raise ValueError(f"starting weights do not match the model: {missing[0]!r} is in only one of them")
    with torch.no_grad():
        for name, tensor in state.items():
            ref = start[name]
            if ref.shape != tensor.shape:
                raise ValueError(
                    f"starting weights do not match the model: {name!r} {tuple(ref.shape)} "
                    f"vs {tuple(tensor.shape)}"
                )
            if tensor.is_floating_point() and alpha != 1.0:
                # torch.lerp(a, b, w) = a + w * (b - a): the start plus alpha of the way to the fine-tuned
                tensor.copy_(torch.lerp(ref.to(tensor.device, tensor.dtype), tensor, alpha))
    return model
