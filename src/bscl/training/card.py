"""What a ``bscl train`` run writes into the model card beyond sentence-transformers' own: the batch
sampler with its options and the optimizer as it ran.

sentence-transformers fills ``model.model_card_data`` while training (the loss class, its
``get_config_dict()`` and ``citation``, the training arguments as hyperparameters) and renders it on
``save``. The training arguments cannot say what bscl changed: a bscl batch sampler is an object
(``batch_sampler`` is left out of the card) and the optimizer is bscl's AdamW without bias correction
while ``optim`` still names ``adamw_torch_fused``. :class:`TrainingCardCallback` writes both into the
card data's hyperparameters, after sentence-transformers' own callback has filled them.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


def optimizer_description(optimizer: Any) -> str:
    """The optimizer that runs, e.g. ``AdamW without bias correction (bscl.training.optim.AdamW)``."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
    cls = type(inner)
    name = f"{cls.__name__} ({cls.__module__}.{cls.__qualname__})"
    if getattr(inner, "defaults", {}).get("correct_bias") is False:
        return f"{cls.__name__} without bias correction ({cls.__module__}.{cls.__qualname__})"
    return name


def sampler_description(strategy: str | None, options: dict[str, Any] | None = None) -> str:
    """``bscl example batching (group_size=8, ...)`` for a bscl sampler, or the trainer's default."""
    if strategy is None:
        return "random batches (sentence-transformers' BatchSampler)"
    given = ", ".join(f"{k}={v}" for k, v in (options or {}).items())
    return f"bscl {strategy} batching ({given})" if given else f"bscl {strategy} batching"


class TrainingCardCallback(TrainerCallback):
    """Write the bscl loss name, the batch sampler and the optimizer as run into the model card data.

    Add it after the trainer is built (``trainer.add_callback``), so that it runs after
    sentence-transformers' model card callback, which sets the hyperparameters at the start of
    training.
    """

    def __init__(self, loss: str, sampler: str) -> None:
        self.entries = {"bscl_loss": loss, "batch_sampler": sampler}

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        card = getattr(model, "model_card_data", None)
        if card is None:
            return
        entries = dict(self.entries)
        if kwargs.get("optimizer") is not None:
            entries["optim"] = optimizer_description(kwargs["optimizer"])
        card.all_hyperparameters = {
            **entries,
            **{k: v for k, v in card.all_hyperparameters.items() if k not in entries},
        }
        card.non_default_hyperparameters = {
            **entries,
            **{k: v for k, v in card.non_default_hyperparameters.items() if k not in entries},
        }
