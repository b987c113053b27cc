"""``SentenceTransformerTrainer`` with what the paper's training needs on top.

- The temperature of a contrastive loss (any parameter whose name contains ``temperature``) gets
  its own learning rate (``tau_learning_rate``) and no weight decay.
- A trainable temperature's current value is logged with the loss (``tau`` in the logs / ``trainer.state.log_history``).
- A model-based batch sampler (:class:`~bscl.batching.samplers.BatchSamplerFactory`) without an encoder
  encodes with the model being trained (``set_model``).
- ``adam_bias_correction=False`` swaps the optimizer for :class:`bscl.training.optim.AdamW` without
  bias correction (the paper's setting for all tasks but CQA), keeping sentence-transformers' parameter
  groups (loss parameters, learning-rate mapping).
- A non-finite training loss or gradient norm stops the run with :class:`NonFiniteError`, naming the
  step and the batch, before the optimizer applies the step (so no NaN model is ever saved).
- A checkpoint is *complete* only once :data:`COMPLETE_FILE` is in it: ``_save_checkpoint`` writes
  HF's files (model, optimizer, RNG, ``trainer_state.json``), then every callback's own state
  (``save_checkpoint_state(folder)``: the loss's temperature, the embedding cache), then the marker,
  last. A kill anywhere before the marker leaves a checkpoint that resume ignores
  (:func:`bscl.reporting.runfolder.last_checkpoint`). A write that fails for want of space or
  permission raises :class:`bscl.paths.EnvironmentFault` naming the checkpoint folder.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformerTrainer
from torch import nn
from transformers import TrainerCallback

from bscl.batching.cache import EmbeddingCache
from bscl.batching.samplers import BatchSamplerFactory
from bscl.losses.st import TEMPERATURE_LR_REGEX, checkpoint_folder
from bscl.paths import write_fault
from bscl.training.optim import AdamW

#: the file written last into a checkpoint: without it the checkpoint is incomplete and never resumed
COMPLETE_FILE = "bscl_checkpoint_complete"


class NonFiniteError(FloatingPointError, ValueError):
    """A training step produced a NaN / inf loss or gradient norm (the step was not applied).

    A ``ValueError`` too, so that ``bscl``'s command line prints it as one line and exits 2.
    """


def _batch_texts(inputs: dict[str, Any], tokenizer: Any, limit: int = 2, chars: int = 60) -> list[str]:
    """The first texts of a collated batch, decoded from the first text column's token ids."""
    keys = [k for k in inputs if k.endswith("input_ids")]
    if not keys or tokenizer is None:
        return []
    try:
        texts = tokenizer.batch_decode(inputs[keys[0]][:limit], skip_special_tokens=True)
    except Exception:  # noqa: BLE001 - the batch description must never hide the real error
        return []
    return [t if len(t) <= chars else t[: chars - 3] + "..." for t in texts]


class EmbeddingCacheCallback(TrainerCallback):
    """Save the :class:`~bscl.batching.cache.EmbeddingCache` with each checkpoint, restore it on resume.

    Reuse mode groups an epoch by the embeddings the previous epoch's steps recorded; they are not
    part of HF's checkpoint, so without this a resumed run would group its next epoch by a fresh
    encode pass and diverge. ``on_train_begin`` of a resumed run loads the cache back and tells it
    how many of the resumed epoch's batches the trainer skips (:meth:`EmbeddingCache.skip_batches`).
    """

    FILE = "bscl_embedding_cache.npz"

    def __init__(self, cache: EmbeddingCache):
        self.cache = cache

    def before_checkpoint_save(self) -> None:
        """On every rank (collective): merge the ranks' rows, so that rank 0 saves all of them."""
        self.cache.synchronize()

    def save_checkpoint_state(self, folder: Path) -> None:
        tmp = folder / (self.FILE + ".tmp.npz")  # np.savez appends .npz to other names
        np.savez(tmp, **self.cache.state_dict())
        tmp.replace(folder / self.FILE)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 0:
            return
        path = checkpoint_folder(args.output_dir, state.global_step) / self.FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the embedding cache of the resumed checkpoint is missing")
        with np.load(path) as data:
            self.cache.load_state_dict(dict(data))
        loader = kwargs.get("train_dataloader")
        ga = max(1, args.gradient_accumulation_steps)
        if loader is not None and not args.ignore_data_skip:
            n = len(loader)
            per_epoch = max(n // ga + int(n % ga > 0), 1)
            self.cache.skip_batches((state.global_step % per_epoch) * ga)  # HF's skip_first_batches


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
            and TEMPERATURE_LR_REGEX not in args_obj.learning_rate_mapping
        ):
            args_obj.learning_rate_mapping = {
                **args_obj.learning_rate_mapping,
                TEMPERATURE_LR_REGEX: tau_learning_rate,
            }
        self.adam_bias_correction = adam_bias_correction
        super().__init__(*args, **kwargs)
        self._temperature = temperature
        factory = getattr(self.args, "batch_sampler", None)
        if isinstance(factory, BatchSamplerFactory) and factory.needs_encoder and factory.encoder is None:
            # a model-based batch sampler encodes with the model being trained
            factory.set_model(self.model, batch_size=self.args.per_device_eval_batch_size)

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
        return [n for n in names if not re.search(TEMPERATURE_LR_REGEX, n)]

    # ---- non-finite guard ------------------------------------------------------------------------

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        self._guard_inputs = inputs  # for the error message only
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            self._non_finite(f"the training loss is {loss.item()}")
        return loss

    def _get_grad_norm(self, model: nn.Module, grad_norm: Any = None) -> Any:
        """HF computes the gradient norm right before ``optimizer.step()``: check it (and the loss's
        own parameters' gradients, e.g. the temperature's) there."""
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        value = float(grad_norm) if grad_norm is not None else 0.0
        if not math.isfinite(value):
            self._non_finite(f"the gradient norm is {value}")
        loss = getattr(self, "loss", None)
        if isinstance(loss, nn.Module):
            for name, p in loss.named_parameters():
                if not name.startswith("model.") and p.grad is not None and not torch.isfinite(p.grad).all():
                    self._non_finite(f"the gradient of the loss parameter {name} is not finite")
        return grad_norm

    def _non_finite(self, what: str) -> None:
        step = self.state.global_step + 1  # the step being computed (global_step counts finished ones)
        texts = _batch_texts(getattr(self, "_guard_inputs", {}) or {}, getattr(self.model, "tokenizer", None))
        batch = f" on the batch starting with {texts}" if texts else ""
        raise NonFiniteError(
            f"training step {step} (epoch {self.state.epoch or 0:.2f}): {what}{batch}; the step was not "
            "applied and nothing of it was saved. Lower --train.learning_rate, check the data of that "
            "batch, or use another --loss.normalization (zscore / pearson need rows that vary)"
        )

    # ---- complete checkpoints --------------------------------------------------------------------

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        folder = checkpoint_folder(self._get_output_dir(trial=trial), self.state.global_step)
        if self.args.should_save:
            (folder / COMPLETE_FILE).unlink(missing_ok=True)  # a folder re-saved after a crash
        for callback in self.callback_handler.callbacks:
            prepare = getattr(callback, "before_checkpoint_save", None)
            if callable(prepare):
                prepare()  # every rank (collectives allowed)
        try:
            super()._save_checkpoint(model, trial)
            if not self.args.should_save:
                return
            for callback in self.callback_handler.callbacks:
                save = getattr(callback, "save_checkpoint_state", None)
                if callable(save):
                    save(folder)
            (folder / COMPLETE_FILE).write_text(
                f"{self.state.global_step}\n"
            )  # last: the checkpoint is whole
        except Exception as err:  # torch / safetensors wrap a full disk in their own errors
            fault = write_fault(
                err, folder, "re-run the same command: it resumes from the last complete checkpoint"
            )
            if fault is None:
                raise
            raise fault from err

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._temperature is not None and self._temperature.trainable and "loss" in logs:
            logs = {**logs, "tau": round(self._temperature.value, 6)}
        super().log(logs, start_time)
