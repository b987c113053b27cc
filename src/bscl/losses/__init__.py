"""Losses on embeddings: functional core, ``nn.Module`` wrappers, sentence-transformers adapters."""

from bscl.losses import functional
from bscl.losses.adapters import STLoss, text_ids
from bscl.losses.modules import (
    LOSSES,
    BSCLoss,
    ComboLoss,
    EmbeddingLoss,
    FocalInfoNCELoss,
    MSELoss,
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
    "ComboLoss",
    "EmbeddingLoss",
    "FocalInfoNCELoss",
    "MSELoss",
    "PearsonLoss",
    "STLoss",
    "SoftCSETemperatureLoss",
    "SoftCSEWeightLoss",
    "Temperature",
    "TripletLoss",
    "build_loss",
    "functional",
    "text_ids",
]
