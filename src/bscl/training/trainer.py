"""``SentenceTransformerTrainer`` with what the paper's training needs on top.

- The temperature of a contrastive loss (any parameter whose name contains ``temperature``) gets
  its own learning rate (``tau_learning_rate``) and no weight decay.
- The current temperature is logged with the loss (``tau`` in the logs / ``trainer.state.log_history``).
"""

from __future__ import annotations

import re
from typing import Any

from sentence_transformers import SentenceTransformerTrainer
from torch import nn

TEMPERATURE_PATTERN = r"temperature\."


def _find_temperature(loss: nn.Module) -> nn.Module | None:
    for name, module in loss.named_modules():
        if name.endswith("temperature") and hasattr(module, "value"):
            return module
    return None


class BSCLTrainer(SentenceTransformerTrainer):
    """SentenceTransformerTrainer + temperature learning rate / no decay / logging.

    Args:
        tau_learning_rate: learning rate of the trainable temperature (BSC authors: 1e-3 by default);
            ``None`` keeps the model's learning rate. Ignored for a fixed temperature.
    """

    def __init__(self, *args: Any, tau_learning_rate: float | None = 1e-3, **kwargs: Any):
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
        super().__init__(*args, **kwargs)
        self._temperature = temperature

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        names = super().get_decay_parameter_names(model)
        return [n for n in names if not re.search(TEMPERATURE_PATTERN, n)]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._temperature is not None and "loss" in logs:
            logs = {**logs, "tau": round(self._temperature.value, 6)}
        super().log(logs, start_time)
