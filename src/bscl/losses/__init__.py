"""Losses for sentence-transformers: the model-first classes, :class:`STLoss`, and two submodules.

- ``bscl.losses.BSCLoss(model, tau=0.1)``, ``ComboLoss``, ... (:data:`ST_LOSSES`): the losses at the
  sentence-transformers level, for ``SentenceTransformerTrainer(loss=...)``; :class:`STLoss` wraps any
  embedding loss (optionally with gradient caching); see :mod:`bscl.losses.st`.
- :mod:`bscl.losses.modules`: the same losses on embeddings (``nn.Module``), their options, defaults,
  names (``LOSSES``) and citations.
- :mod:`bscl.losses.functional`: the pure functional core on ``(m, d)`` tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bscl._lazy import attach

if TYPE_CHECKING:
    from bscl.losses import functional, modules
    from bscl.losses.hashing import text_ids
    from bscl.losses.st import (
        ST_LOSSES,
        TEMPERATURE_LR_REGEX,
        BSCLoss,
        ComboLoss,
        FocalInfoNCELoss,
        LossStateCallback,
        MSELoss,
        PearsonComboLoss,
        PearsonLoss,
        SoftCSETemperatureLoss,
        SoftCSEWeightLoss,
        STLoss,
        TripletLoss,
    )

#: each public name and the module it comes from, imported on first use (:mod:`bscl._lazy`)
_LAZY: dict[str, str] = {
    "functional": "bscl.losses.functional",
    "modules": "bscl.losses.modules",
    "text_ids": "bscl.losses.hashing",
    "ST_LOSSES": "bscl.losses.st",
    "TEMPERATURE_LR_REGEX": "bscl.losses.st",
    "BSCLoss": "bscl.losses.st",
    "ComboLoss": "bscl.losses.st",
    "FocalInfoNCELoss": "bscl.losses.st",
    "LossStateCallback": "bscl.losses.st",
    "MSELoss": "bscl.losses.st",
    "PearsonComboLoss": "bscl.losses.st",
    "PearsonLoss": "bscl.losses.st",
    "SoftCSETemperatureLoss": "bscl.losses.st",
    "SoftCSEWeightLoss": "bscl.losses.st",
    "STLoss": "bscl.losses.st",
    "TripletLoss": "bscl.losses.st",
}

__all__ = [
    "ST_LOSSES",
    "TEMPERATURE_LR_REGEX",
    "BSCLoss",
    "ComboLoss",
    "FocalInfoNCELoss",
    "LossStateCallback",
    "MSELoss",
    "PearsonComboLoss",
    "PearsonLoss",
    "STLoss",
    "SoftCSETemperatureLoss",
    "SoftCSEWeightLoss",
    "TripletLoss",
    "functional",
    "modules",
    "text_ids",
]


__getattr__, __dir__ = attach(__name__, _LAZY)
