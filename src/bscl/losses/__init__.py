"""Losses on embeddings: functional core, ``nn.Module`` wrappers, sentence-transformers adapters."""

from bscl.losses import functional
from bscl.losses.adapters import LossStateCallback, STLoss, text_ids
from bscl.losses.cached import CachedSTLoss, make_st_loss
from bscl.losses.modules import (
    LOSSES,
    BSCLoss,
    ComboLoss,
    EmbeddingLoss,
    FocalInfoNCELoss,
    MSELoss,
    PearsonComboLoss,
    PearsonLoss,
    SoftCSETemperatureLoss,
    SoftCSEWeightLoss,
    Temperature,
    TripletLoss,
    build_loss,
)

__all__ = [
    "LOSSES",
    "BSCLoss",
    "CachedSTLoss",
    "ComboLoss",
    "EmbeddingLoss",
    "FocalInfoNCELoss",
    "LossStateCallback",
    "MSELoss",
    "PearsonComboLoss",
    "PearsonLoss",
    "STLoss",
    "SoftCSETemperatureLoss",
    "SoftCSEWeightLoss",
    "Temperature",
    "TripletLoss",
    "build_loss",
    "functional",
    "make_st_loss",
    "text_ids",
]
