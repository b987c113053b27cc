"""Thin ``nn.Module`` wrappers around :mod:`bscl.losses.functional`.

Each module holds its hyper-parameters (and, for the contrastive losses, a :class:`Temperature` that
may be trainable) and is called on embeddings::

    loss = BSCLoss(tau=0.1, symmetric=True)
    value = loss(q, a, labels=None, q_ids=None, a_ids=None)   # q, a: (m, d)

To train a SentenceTransformer with one of them, wrap it in :class:`bscl.losses.adapters.STLoss`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from bscl.losses import functional as F

TauParametrization = Literal["log", "alpha"]


class Temperature(nn.Module):
    """The softmax temperature ``tau``, fixed or trainable.

    Trainable parametrisations (both keep ``tau > 0``):
    - ``log``: ``tau = exp(log_tau)`` (CLIP-style), parameter ``log_tau``.
    - ``alpha``: ``tau = 1 / alpha`` with ``alpha`` learned directly, as in the BSC authors' code
      (initialised at ``1 / tau``); ``alpha`` is clamped at a small positive value.

    Give it its own learning rate and no weight decay: :class:`bscl.training.BSCLTrainer` does so for
    every parameter whose name contains ``temperature``.
    """

    def __init__(
        self, tau: float = 0.1, trainable: bool = False, parametrization: TauParametrization = "log"
    ):
        super().__init__()
        if not tau > 0:
            raise ValueError(f"temperature tau must be > 0; got {tau}")
        if parametrization not in ("log", "alpha"):
            raise ValueError(f"tau parametrization must be 'log' or 'alpha'; got {parametrization!r}")
        self.trainable = trainable
        self.parametrization = parametrization
        if not trainable:
            self.register_buffer("tau_fixed", torch.tensor(float(tau)), persistent=False)
        elif parametrization == "log":
            self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))
        else:
            self.alpha = nn.Parameter(torch.tensor(1.0 / tau))

    def forward(self) -> Tensor:
        if not self.trainable:
            return self.tau_fixed
        if self.parametrization == "log":
            return self.log_tau.exp()
        return 1.0 / self.alpha.clamp_min(1e-4)

    @property
    def value(self) -> float:
        return float(self.forward().detach())

    def extra_repr(self) -> str:
        return f"tau={self.value:.4g}, trainable={self.trainable}, parametrization={self.parametrization}"


class EmbeddingLoss(nn.Module):
    """Base class: a loss on a batch of pair embeddings ``(q, a)`` with optional labels and text ids."""

    #: whether the loss needs labels (the adapter raises a clear error when the data has none)
    requires_labels: ClassVar[bool] = False
    #: whether the loss uses text ids (duplicate-aware positives / anchor grouping)
    uses_ids: bool = False

    def forward(
        self,
        q: Tensor,
        a: Tensor,
        labels: Tensor | None = None,
        q_ids: Tensor | None = None,
        a_ids: Tensor | None = None,
    ) -> Tensor:
        raise NotImplementedError

    @property
    def tau(self) -> float | None:
        temperature = getattr(self, "temperature", None)
        return None if temperature is None else temperature.value


class _Contrastive(EmbeddingLoss):
    """Shared options of the in-batch contrastive losses (BSC, combo, SoftCSE, Focal-InfoNCE)."""

    functional: ClassVar[Any]

    def __init__(
        self,
        tau: float = 0.1,
        *,
        trainable_tau: bool = False,
        tau_parametrization: TauParametrization = "log",
        symmetric: bool = True,
        combine: F.Combine = "mean",
        use_labels: bool = False,
        threshold: float = 0.5,
        duplicates: bool = False,
        **options: Any,
    ):
        super().__init__()
        if combine not in ("mean", "sum"):
            raise ValueError(f"combine must be 'mean' or 'sum'; got {combine!r}")
        self.temperature = Temperature(tau, trainable_tau, tau_parametrization)
        self.symmetric = symmetric
        self.combine = combine
        self.use_labels = use_labels
        self.threshold = threshold
        self.uses_ids = duplicates
        self.options = options

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None):
        return type(self).functional(
            q,
            a,
            tau=self.temperature(),
            labels=labels if self.use_labels else None,
            threshold=self.threshold,
            q_ids=q_ids if self.uses_ids else None,
            a_ids=a_ids if self.uses_ids else None,
            symmetric=self.symmetric,
            combine=self.combine,
            **self.options,
        )

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (
            f"symmetric={self.symmetric}, combine={self.combine!r}, use_labels={self.use_labels}, "
            f"threshold={self.threshold}, duplicates={self.uses_ids}" + (f", {opts}" if opts else "")
        )


class BSCLoss(_Contrastive):
    """Batch-softmax contrastive loss; see :func:`bscl.losses.functional.bsc_loss`.

    Options: ``normalization`` ("l2", "coordinate", "zscore", "none"), ``symmetric``, ``combine``,
    ``use_labels`` (labeled negatives, eq. 5), ``duplicates`` (duplicate-aware positives, eqs. 3-4),
    ``trainable_tau``.
    """

    functional = staticmethod(F.bsc_loss)

    def __init__(self, tau: float = 0.1, *, normalization: F.Normalization = "l2", **kwargs: Any):
        if normalization not in F.NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; choose one of {F.NORMALIZATIONS}")
        super().__init__(tau, normalization=normalization, **kwargs)


class ComboLoss(_Contrastive):
    """``mu * BSC + (1 - mu) * MSE`` (eq. 6); see :func:`bscl.losses.functional.combo_loss`."""

    functional = staticmethod(F.combo_loss)
    requires_labels = True

    def __init__(
        self, tau: float = 0.1, *, mu: float = 0.1, normalization: F.Normalization = "l2", **kwargs: Any
    ):
        F._check_unit("mu", mu)
        kwargs.setdefault("use_labels", True)
        super().__init__(tau, mu=mu, normalization=normalization, **kwargs)

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None):
        if labels is None:
            raise ValueError("ComboLoss needs labels (graded or binary) for its MSE term")
        # the MSE term always needs the labels; use_labels only says whether the BSC term treats pairs
        # below the threshold as labeled negatives (eq. 5) or every pair as a positive
        return F.combo_loss(
            q,
            a,
            labels,
            tau=self.temperature(),
            threshold=self.threshold if self.use_labels else -math.inf,
            q_ids=q_ids if self.uses_ids else None,
            a_ids=a_ids if self.uses_ids else None,
            symmetric=self.symmetric,
            combine=self.combine,
            **self.options,
        )


class SoftCSEWeightLoss(_Contrastive):
    """SoftCSE with per-negative weights (our reading); see :func:`~bscl.losses.functional.softcse_weight_loss`."""

    functional = staticmethod(F.softcse_weight_loss)

    def __init__(self, tau: float = 0.05, *, beta: float = -1.0, symmetric: bool = False, **kwargs: Any):
        super().__init__(tau, beta=beta, symmetric=symmetric, **kwargs)


class SoftCSETemperatureLoss(_Contrastive):
    """SoftCSE with per-negative temperatures (our reading); see :func:`~bscl.losses.functional.softcse_temperature_loss`."""

    functional = staticmethod(F.softcse_temperature_loss)

    def __init__(self, tau: float = 0.05, *, gamma: float = 0.5, symmetric: bool = False, **kwargs: Any):
        super().__init__(tau, gamma=gamma, symmetric=symmetric, **kwargs)


class FocalInfoNCELoss(_Contrastive):
    """Focal-InfoNCE (Hou and Li, 2023); see :func:`bscl.losses.functional.focal_infonce_loss`."""

    functional = staticmethod(F.focal_infonce_loss)

    def __init__(self, tau: float = 0.05, *, margin: float = 0.3, symmetric: bool = False, **kwargs: Any):
        super().__init__(tau, margin=margin, symmetric=symmetric, **kwargs)


class MSELoss(EmbeddingLoss):
    """``mean_i (cos(q_i, a_i) - y_i)^2``: SBERT's CosineSimilarityLoss on graded labels."""

    requires_labels = True

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None):
        if labels is None:
            raise ValueError("MSELoss needs labels")
        return F.mse_cosine_loss(q, a, labels)


class TripletLoss(EmbeddingLoss):
    """Cosine triplet loss with anchor grouping; see :func:`bscl.losses.functional.triplet_loss`."""

    requires_labels = True
    uses_ids = True

    def __init__(self, margin: float = 0.5, threshold: float = 0.5):
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0; got {margin}")
        self.margin = margin
        self.threshold = threshold

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None):
        if labels is None:
            raise ValueError("TripletLoss needs labels (positive and negative pairs per anchor)")
        return F.triplet_loss(q, a, labels, margin=self.margin, threshold=self.threshold, q_ids=q_ids)


class PearsonLoss(EmbeddingLoss):
    """``1 - Pearson(cos, y)`` over the batch; see :func:`bscl.losses.functional.pearson_loss`."""

    requires_labels = True

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None):
        if labels is None:
            raise ValueError("PearsonLoss needs labels")
        return F.pearson_loss(q, a, labels)


#: loss names used by the CLI and configs
LOSSES: dict[str, type[EmbeddingLoss]] = {
    "bsc": BSCLoss,
    "combo": ComboLoss,
    "mse": MSELoss,
    "triplet": TripletLoss,
    "pearson": PearsonLoss,
    "softcse-weight": SoftCSEWeightLoss,
    "softcse-temperature": SoftCSETemperatureLoss,
    "focal-infonce": FocalInfoNCELoss,
}


def build_loss(name: str, **kwargs: Any) -> EmbeddingLoss:
    """Instantiate a loss by name (see :data:`LOSSES`); unknown names list the known ones."""
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
    return cls(**kwargs)
