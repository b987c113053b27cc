"""Training layer: trainer glue on top of sentence-transformers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bscl._lazy import attach

if TYPE_CHECKING:
    from bscl.training.trainer import BSCLTrainer

#: each public name and the module it comes from, imported on first use (:mod:`bscl._lazy`)
_LAZY: dict[str, str] = {
    "BSCLTrainer": "bscl.training.trainer",
}

__all__ = ["BSCLTrainer"]


__getattr__, __dir__ = attach(__name__, _LAZY)
