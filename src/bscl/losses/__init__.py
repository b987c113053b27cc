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

# --- sentence-transformers-style losses (cli branch): the public BSCLoss, ComboLoss, ... are model-first
# (``BSCLoss(model, tau=0.1)``); the embedding-level classes stay in bscl.losses.modules ---------------
from bscl.losses.st import (  # noqa: F811 (replaces the embedding-level names above)
    ST_LOSSES,
    TEMPERATURE_LR_REGEX,
    BSCLoss,
    ComboLoss,
    FocalInfoNCELoss,
    MSELoss,
    PearsonLoss,
    SoftCSETemperatureLoss,
    SoftCSEWeightLoss,
    STStyleLoss,
    TripletLoss,
)

# --- end of the sentence-transformers-style block ---------------------------------------------------

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
# cli branch: the names of the sentence-transformers-style block above
__all__ += ["ST_LOSSES", "STStyleLoss", "TEMPERATURE_LR_REGEX"]
