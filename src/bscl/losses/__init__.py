"""Losses for sentence-transformers: the model-first classes, :class:`STLoss`, and two submodules.

- ``bscl.losses.BSCLoss(model, tau=0.1)``, ``ComboLoss``, ... (:data:`ST_LOSSES`): the losses at the
  sentence-transformers level, for ``SentenceTransformerTrainer(loss=...)``; :class:`STLoss` wraps any
  embedding loss (optionally with gradient caching); see :mod:`bscl.losses.st`.
- :mod:`bscl.losses.modules`: the same losses on embeddings (``nn.Module``), their options, defaults,
  names (``LOSSES``) and citations.
- :mod:`bscl.losses.functional`: the pure functional core on ``(m, d)`` tensors.
"""

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
