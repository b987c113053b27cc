"""Package attributes imported on first use (PEP 562): a package's ``__init__`` names its public
attributes and the modules they come from, and importing the package imports none of them. So one
light submodule (the loss options, the task specs: what the command line's help needs) loads without
torch, datasets or sentence-transformers. (The ``lazy_loader`` package does the same; this is the
part of it bscl needs, without a dependency.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def attach(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps each public attribute to the
    module that defines it (a submodule maps to itself); another submodule is imported when asked for."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module == f"{package}.{name}":
            return importlib.import_module(module)
        if module is not None:
            return getattr(importlib.import_module(module), name)
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    def __dir__() -> list[str]:
        return sorted({*importlib.import_module(package).__dict__, *names})

    return __getattr__, __dir__
