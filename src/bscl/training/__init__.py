"""Training layer: trainer glue on top of sentence-transformers."""

from bscl.training.trainer import BSCLTrainer

__all__ = ["BSCLTrainer"]
