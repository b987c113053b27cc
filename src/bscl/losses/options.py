"""The losses' options, torch-free: one dataclass per loss (its options, defaults and help lines),
the loss names in the command line's order (:data:`LOSS_OPTIONS`), and the checks of option values.

The loss classes of :mod:`bscl.losses.modules` take their options dataclass from :data:`LOSS_OPTIONS`
(their constructor's signature is the dataclass's). This module imports no torch, so the command
line's help and option checks can describe the losses without loading it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Literal

Normalization = Literal["l2", "coordinate", "coordinate-l2", "zscore", "none"]
Combine = Literal["mean", "sum"]
NORMALIZATIONS: tuple[str, ...] = ("l2", "coordinate", "coordinate-l2", "zscore", "none")
COMBINES: tuple[str, ...] = ("mean", "sum")

TauParametrization = Literal["log", "alpha"]
TAU_PARAMETRIZATIONS: tuple[str, ...] = ("log", "alpha")


class LossOptionError(ValueError):
    """A bad value of the loss option ``option``: the message is ``option`` then ``detail``; the config
    layer names it ``--loss.<option>`` (:meth:`named`)."""

    def __init__(self, option: str, detail: str):
        self.option = option
        self.detail = detail
        super().__init__(self.named())

    def named(self, prefix: str = "") -> str:
        """The message with the option written as ``prefix + option`` (e.g. ``--loss.tau``)."""
        return f"{prefix}{self.option}{'' if self.detail.startswith('=') else ' '}{self.detail}"


def check_unit(name: str, value: float) -> None:
    """``value`` (the option ``name``) must lie in ``[0, 1]``."""
    if not 0.0 <= value <= 1.0:
        raise LossOptionError(name, f"must lie in [0, 1] (got {value})")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """``value`` (the option ``name``) must be one of ``choices``."""
    if value not in choices:
        raise LossOptionError(name, f"={value!r} is unknown; choose one of {', '.join(choices)}")


def check_margin(margin: float) -> None:
    if not margin >= 0:
        raise LossOptionError("margin", f"must be >= 0 (got {margin})")


# --------------------------------------------------------------------------------------------------
# options: one dataclass per loss, the one place of its options, defaults and help lines
# --------------------------------------------------------------------------------------------------
@dataclass
class NoOptions:
    """A loss without options."""


@dataclass
class ContrastiveOptions:
    """Options shared by the in-batch contrastive losses (Chernyavskiy et al. 2022).

    Args:
        tau: softmax temperature (L2 normalization: ~0.1; coordinate normalization: ~1-3)
        trainable_tau: learn the temperature (its learning rate: --loss.tau_learning_rate)
        tau_parametrization: trainable tau as log (tau = exp(p)) or alpha (tau = 1/alpha, the authors' code)
        symmetric: add the answer->query direction (eq. 1); false: one direction (eq. 2, SimCSE / MNRL)
        combine: mean (the authors' code) or sum (eq. 1) of the two directions
        use_labels: labeled negatives (eq. 5): a row whose label is not > threshold adds no positive term
        threshold: label binarization, positive iff label > threshold (strict); from the CLI the task's
        duplicates: duplicate-aware positives (eqs. 3-4): equal texts (from the tokens) are the same text
    """

    tau: float = 0.1
    trainable_tau: bool = False
    tau_parametrization: TauParametrization = "log"
    symmetric: bool = True
    combine: Combine = "mean"
    use_labels: bool = True
    threshold: float = 0.5
    duplicates: bool = True

    def __post_init__(self) -> None:
        # tau and tau_parametrization: checked by the loss's Temperature
        check_choice("combine", self.combine, COMBINES)
        if math.isnan(self.threshold):
            raise LossOptionError("threshold", "must be a number (got nan)")


@dataclass
class BSCOptions(ContrastiveOptions):
    """Options of :class:`BSCLoss`.

    Args:
        normalization: l2 | coordinate (max-min per coordinate) | coordinate-l2 | zscore | none (Sec. 3.5)
    """

    normalization: Normalization = "l2"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("normalization", self.normalization, NORMALIZATIONS)


@dataclass
class ComboOptions(BSCOptions):
    """Options of :class:`ComboLoss` and :class:`PearsonComboLoss`.

    Args:
        mu: weight of the BSC term in [0, 1]: mu * BSC + (1 - mu) * MSE or Pearson term (eq. 6)
    """

    mu: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_unit("mu", self.mu)


@dataclass
class SoftCSEWeightOptions(ContrastiveOptions):
    """Options of :class:`SoftCSEWeightLoss`.

    Args:
        beta: SoftCSE weight sharpness (0 = InfoNCE; < 0 down-weights similar negatives)
    """

    tau: float = 0.05
    symmetric: bool = False
    beta: float = -1.0


@dataclass
class SoftCSETemperatureOptions(ContrastiveOptions):
    """Options of :class:`SoftCSETemperatureLoss`.

    Args:
        gamma: SoftCSE temperature slope (0 = InfoNCE; > 0 softens similar negatives)
    """

    tau: float = 0.05
    symmetric: bool = False
    gamma: float = 0.5


@dataclass
class FocalOptions(ContrastiveOptions):
    """Options of :class:`FocalInfoNCELoss` (the paper's defaults: margin 0.3, tau 0.05, one direction).

    Args:
        margin: Focal-InfoNCE margin m of the negative logits s (s + m); triplet: the hinge margin
    """

    tau: float = 0.05
    symmetric: bool = False
    margin: float = 0.3


@dataclass
class TripletOptions:
    """Options of :class:`TripletLoss`.

    Args:
        margin: triplet hinge margin (>= 0); Focal-InfoNCE: the margin m of its negative logits
        threshold: label binarization, positive iff label > threshold (strict); from the CLI the task's
    """

    margin: float = 0.5
    threshold: float = 0.5

    def __post_init__(self) -> None:
        check_margin(self.margin)


#: every loss's options dataclass by its name (``--loss.name``), in the order the command line lists
#: them; the loss classes (:data:`bscl.losses.modules.LOSSES`) take theirs from here
LOSS_OPTIONS: dict[str, type] = {
    "bsc": BSCOptions,
    "combo": ComboOptions,
    "pearson-combo": ComboOptions,
    "mse": NoOptions,
    "triplet": TripletOptions,
    "pearson": NoOptions,
    "softcse-weight": SoftCSEWeightOptions,
    "softcse-temperature": SoftCSETemperatureOptions,
    "focal-infonce": FocalOptions,
}


def options_class(name: str) -> type:
    """The options dataclass of loss ``name``; unknown names list the known ones."""
    try:
        return LOSS_OPTIONS[name]
    except KeyError:
        raise LossOptionError("name", f"={name!r} is unknown; choose one of {sorted(LOSS_OPTIONS)}") from None


def loss_options(name: str) -> dict[str, Any]:
    """The options of loss ``name`` and their defaults, in constructor order."""
    return {f.name: f.default for f in dataclasses.fields(options_class(name))}


def option_types() -> dict[str, Any]:
    """Every option of any loss with its type (Literal choices as ``str``), in first-seen order."""
    types: dict[str, Any] = {}
    for options in LOSS_OPTIONS.values():
        for key, typ in typing.get_type_hints(options).items():
            types.setdefault(key, str if typing.get_origin(typ) is Literal else typ)
    return types


def option_descriptions() -> dict[str, str]:
    """One description per option, in :func:`option_types` order: the first options dataclass that
    documents it, from its Google-style ``Args:``."""
    import docstring_parser

    docs: dict[str, str] = {}
    for options in LOSS_OPTIONS.values():
        for klass in options.__mro__:
            for param in docstring_parser.parse(klass.__doc__ or "").params:
                docs.setdefault(param.arg_name, " ".join((param.description or "").split()))
    return {key: docs.get(key, key) for key in option_types()}
