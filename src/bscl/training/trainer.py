"""``SentenceTransformerTrainer`` with what the paper's training needs on top.

- The temperature of a contrastive loss (any parameter whose name contains ``temperature``) gets
  its own learning rate (``tau_learning_rate``) and no weight decay.
- A trainable temperature's current value is logged with the loss (``tau`` in the logs / ``trainer.state.log_history``).
- ``adam_bias_correction=False`` swaps the optimizer for :class:`bscl.training.optim.AdamW` without
  bias correction (the paper's setting for all tasks but CQA), keeping sentence-transformers' parameter
  groups (loss parameters, learning-rate mapping).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from sentence_transformers import SentenceTransformerTrainer
from torch import nn

from bscl.training.optim import AdamW

TEMPERATURE_PATTERN = r"temperature\."


def _find_temperature(loss: nn.Module) -> nn.Module | None:
    for name, module in loss.named_modules():
        if name.endswith("temperature") and hasattr(module, "value"):
            return module
    return None


class BSCLTrainer(SentenceTransformerTrainer):
    """SentenceTransformerTrainer + temperature learning rate / no decay / logging.

    Args:
        adam_bias_correction: False for the paper's AdamW without bias correction.
        tau_learning_rate: learning rate of the trainable temperature (BSC authors: 1e-3 by default);
            ``None`` keeps the model's learning rate. Ignored for a fixed temperature.
    """

    def __init__(
        self,
        *args: Any,
        tau_learning_rate: float | None = 1e-3,
        adam_bias_correction: bool = True,
        **kwargs: Any,
    ):
        loss = kwargs.get("loss")
        args_obj = kwargs.get("args")
        temperature = _find_temperature(loss) if isinstance(loss, nn.Module) else None
        if (
            temperature is not None
            and temperature.trainable
            and tau_learning_rate is not None
            and args_obj is not None
            and TEMPERATURE_PATTERN not in args_obj.learning_rate_mapping
        ):
            args_obj.learning_rate_mapping = {
                **args_obj.learning_rate_mapping,
                TEMPERATURE_PATTERN: tau_learning_rate,
            }
        self.adam_bias_correction = adam_bias_correction
        super().__init__(*args, **kwargs)
        self._temperature = temperature

    def get_optimizer_cls_and_kwargs(self, args: Any, model: nn.Module | None = None) -> tuple[Any, Any]:
        optimizer_cls, optimizer_kwargs = super().get_optimizer_cls_and_kwargs(args, model)
        if self.adam_bias_correction:
            return optimizer_cls, optimizer_kwargs
        if optimizer_cls is not torch.optim.AdamW:
            raise ValueError(
                f"adam_bias_correction=False needs the adamw_torch optimizer; got {optimizer_cls.__name__}"
            )
        keep = {
            k: v
            for k, v in optimizer_kwargs.items()
            if k in ("lr", "betas", "eps", "weight_decay", "optimizer_dict")
        }
        return AdamW, {**keep, "correct_bias": False}

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        names = super().get_decay_parameter_names(model)
        return [n for n in names if not re.search(TEMPERATURE_PATTERN, n)]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._temperature is not None and self._temperature.trainable and "loss" in logs:
            logs = {**logs, "tau": round(self._temperature.value, 6)}
        super().log(logs, start_time)
