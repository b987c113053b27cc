"""Thin ``nn.Module`` wrappers around :mod:`bscl.losses.functional`.

Each loss class owns its options and their defaults in ONE place: its options dataclass
(``BSCLoss.Options`` is :class:`BSCOptions`, ...), whose fields are the class's constructor
parameters (the class's signature is the dataclass's). The config layer derives ``LossConfig`` and
the ``--loss.*`` options from these dataclasses (:func:`loss_options`, :func:`option_descriptions`), and a
configuration is validated by building the loss. Each module holds a :class:`Temperature` (fixed
or trainable) where it has one, and is called on embeddings
``loss(q, a, labels=None, q_ids=None, a_ids=None, negatives=None, neg_ids=None)``.

Example:

>>> import torch
>>> from bscl.losses.modules import BSCLoss, build_loss
>>> q = torch.randn(8, 32, requires_grad=True)  # (m, d) embeddings of the first texts of 8 pairs
>>> a = torch.randn(8, 32, requires_grad=True)  # (m, d) embeddings of the second texts
>>> labels = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
>>> loss = BSCLoss(tau=0.1, symmetric=True)
>>> value = loss(q, a, labels)
>>> value.shape, value.requires_grad  # a scalar with a graph to back-propagate
(torch.Size([]), True)
>>> value.backward()
>>> hard = build_loss("focal-infonce", margin=0.3)(q, a, negatives=torch.randn(8, 2, 32))  # (m, k, d)

Every class carries its registry ``name``, the BibTeX ``citation`` of its paper, whether it is
``contrastive`` (in-batch softmax: takes a temperature and extra negative columns) and whether it
``requires_labels``. To train a SentenceTransformer with one of them, wrap it in
:class:`bscl.losses.STLoss` (or use the model-first class of the same name, ``bscl.losses.BSCLoss``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from bscl.losses import functional as F
from bscl.losses.options import (  # noqa: F401  (the options live torch-free; their names stay here too)
    LOSS_OPTIONS,
    TAU_PARAMETRIZATIONS,
    BSCOptions,
    ComboOptions,
    ContrastiveOptions,
    FocalOptions,
    LossOptionError,
    NoOptions,
    SoftCSETemperatureOptions,
    SoftCSEWeightOptions,
    TauParametrization,
    TripletOptions,
    loss_options,
    option_descriptions,
    option_types,
)

_BSC = """@inproceedings{chernyavskiy-etal-2022-batch,
    title = "Batch-Softmax Contrastive Loss for Pairwise Sentence Scoring Tasks",
    author = "Chernyavskiy, Anton and Ilvovsky, Dmitry and Kalinin, Pavel and Nakov, Preslav",
    booktitle = "Proceedings of the 2022 Conference of the North American Chapter of the Association for Computational Linguistics: Human Language Technologies",
    year = "2022",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2022.naacl-main.9",
}"""
_FOCAL = """@inproceedings{hou-li-2023-focal-infonce,
    title = "Improving Contrastive Learning of Sentence Embeddings with Focal-InfoNCE",
    author = "Hou, Pengyue and Li, Xingyu",
    booktitle = "Findings of the Association for Computational Linguistics: EMNLP 2023",
    year = "2023",
    url = "https://arxiv.org/abs/2310.06918",
}"""
_SOFTCSE = """@inproceedings{zhuang-etal-2024-softcse,
    title = "Not All Negatives are Equally Negative: Soft Contrastive Learning for Unsupervised Sentence Representations",
    author = "Zhuang, Haojie and Zhang, Wei Emma and Yang, Jian and Chen, Weitong and Sheng, Quan Z.",
    booktitle = "Proceedings of the 33rd ACM International Conference on Information and Knowledge Management (CIKM 2024)",
    pages = "3591--3601",
    year = "2024",
}"""
_SBERT = """@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/1908.10084",
}"""


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
        F.check_tau(tau)
        F.check_choice("tau_parametrization", parametrization, TAU_PARAMETRIZATIONS)
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


# --------------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------------
class EmbeddingLoss(nn.Module):
    """Base class: a loss on a batch of pair embeddings ``(q, a)`` with optional labels, text ids and
    extra negatives. The constructor takes the fields of :attr:`Options` (its signature)."""

    #: the loss's name in :data:`LOSSES` (``--loss.name``)
    name: ClassVar[str]
    #: BibTeX of the loss's paper (the model card of a trained model cites it)
    citation: ClassVar[str] = _BSC
    #: the options dataclass: its fields are the constructor's parameters, with their defaults
    Options: ClassVar[type] = NoOptions
    #: whether the loss needs labels (the adapter raises a clear error when the data has none)
    requires_labels: ClassVar[bool] = False
    #: an in-batch contrastive loss: a softmax over the batch with a temperature, which takes extra
    #: negative text columns ``(m, k, d)`` (the one answer to "is this loss contrastive")
    contrastive: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a named loss: its options dataclass is the one registered for its name
            cls.Options = LOSS_OPTIONS[cls.name]
        # the class's signature is its options dataclass's: help(), inspect and jsonargparse see it
        cls.__signature__ = inspect.signature(cls.Options)  # type: ignore[attr-defined]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()
        known = [f.name for f in dataclasses.fields(self.Options)]
        for key in kwargs:
            if key not in known:
                raise LossOptionError(
                    key,
                    f"is not an option of {type(self).__name__}; its options: {', '.join(known) or 'none'}",
                )
        self.opts = self.Options(*args, **kwargs)

    @property
    def uses_labels(self) -> bool:
        """Whether the loss reads labels: always where it requires them, else with ``use_labels``."""
        return self.requires_labels or bool(getattr(self.opts, "use_labels", False))

    @property
    def uses_ids(self) -> bool:
        """Whether the loss uses text ids (duplicate-aware positives / anchor grouping)."""
        return bool(getattr(self.opts, "duplicates", False))

    def forward(
        self,
        q: Tensor,
        a: Tensor,
        labels: Tensor | None = None,
        q_ids: Tensor | None = None,
        a_ids: Tensor | None = None,
        negatives: Tensor | None = None,
        neg_ids: Tensor | None = None,
    ) -> Tensor:
        raise NotImplementedError

    def _labels(self, labels: Tensor | None) -> Tensor:
        if labels is None:
            raise ValueError(f"{type(self).__name__} needs labels")
        return labels

    def _no_negatives(self, negatives: Tensor | None) -> None:
        if negatives is not None:
            raise ValueError(
                f"{type(self).__name__} scores (first text, second text) pairs and takes no extra negative "
                f"columns; drop them or use a contrastive loss ({', '.join(contrastive_names())})"
            )

    @property
    def tau(self) -> float | None:
        temperature = getattr(self, "temperature", None)
        return None if temperature is None else temperature.value

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(self.opts).items())


#: options of the contrastive losses that the module (not the functional) consumes
_MODULE_OPTIONS = ("tau", "trainable_tau", "tau_parametrization", "use_labels", "duplicates")


class _Contrastive(EmbeddingLoss):
    """In-batch contrastive losses: a :class:`Temperature` and the functional with the other options."""

    functional: ClassVar[Any]
    Options: ClassVar[type] = ContrastiveOptions
    contrastive = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        o = self.opts
        self.temperature = Temperature(o.tau, o.trainable_tau, o.tau_parametrization)
        self.fn_options = {
            k: v for k, v in dataclasses.asdict(o).items() if k not in (*_MODULE_OPTIONS, "threshold")
        }

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None, negatives=None, neg_ids=None):
        o = self.opts
        if self.requires_labels:
            # the regression term always needs the labels; use_labels only says whether the BSC term
            # treats pairs not above the threshold as labeled negatives (eq. 5) or every pair as positive
            label_kw = {
                "labels": self._labels(labels),
                "threshold": o.threshold if o.use_labels else -math.inf,
            }
        else:
            label_kw = {"labels": labels if o.use_labels else None, "threshold": o.threshold}
        dup = o.duplicates
        return type(self).functional(
            q,
            a,
            tau=self.temperature(),
            **label_kw,
            q_ids=q_ids if dup else None,
            a_ids=a_ids if dup else None,
            negatives=negatives,
            neg_ids=neg_ids if dup else None,
            **self.fn_options,
        )


class BSCLoss(_Contrastive):
    """Batch-softmax contrastive loss; see :func:`bscl.losses.functional.bsc_loss` and :class:`BSCOptions`.

    Python defaults are the CLI's (labeled negatives and duplicate-aware positives on), except the
    threshold: 0.5 here, the task's binarization threshold from the CLI.
    """

    name = "bsc"

    functional = staticmethod(F.bsc_loss)


class ComboLoss(_Contrastive):
    """``mu * BSC + (1 - mu) * MSE`` (eq. 6); see :func:`bscl.losses.functional.combo_loss`."""

    name = "combo"

    functional = staticmethod(F.combo_loss)
    requires_labels = True


class PearsonComboLoss(_Contrastive):
    """``mu * BSC + (1 - mu) * (1 - Pearson)`` (Sec. 7); see :func:`~bscl.losses.functional.pearson_combo_loss`."""

    name = "pearson-combo"

    functional = staticmethod(F.pearson_combo_loss)
    requires_labels = True


class SoftCSEWeightLoss(_Contrastive):
    """SoftCSE with per-negative weights (our reading); see :func:`~bscl.losses.functional.softcse_weight_loss`."""

    name = "softcse-weight"
    citation = _SOFTCSE

    functional = staticmethod(F.softcse_weight_loss)


class SoftCSETemperatureLoss(_Contrastive):
    """SoftCSE with per-negative temperatures (our reading); see :func:`~bscl.losses.functional.softcse_temperature_loss`."""

    name = "softcse-temperature"
    citation = _SOFTCSE

    functional = staticmethod(F.softcse_temperature_loss)


class FocalInfoNCELoss(_Contrastive):
    """Focal-InfoNCE (Hou and Li, 2023); see :func:`bscl.losses.functional.focal_infonce_loss`."""

    name = "focal-infonce"
    citation = _FOCAL

    functional = staticmethod(F.focal_infonce_loss)


class MSELoss(EmbeddingLoss):
    """``mean_i (cos(q_i, a_i) - y_i)^2``: SBERT's CosineSimilarityLoss on graded labels."""

    name = "mse"
    citation = _SBERT

    requires_labels = True

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None, negatives=None, neg_ids=None):
        self._no_negatives(negatives)
        return F.mse_cosine_loss(q, a, self._labels(labels))


class TripletLoss(EmbeddingLoss):
    """Cosine triplet loss with anchor grouping; see :func:`bscl.losses.functional.triplet_loss`."""

    name = "triplet"
    citation = _SBERT

    requires_labels = True

    @property
    def uses_ids(self) -> bool:
        return True

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None, negatives=None, neg_ids=None):
        self._no_negatives(negatives)
        labels = self._labels(labels)
        return F.triplet_loss(
            q, a, labels, margin=self.opts.margin, threshold=self.opts.threshold, q_ids=q_ids
        )


class PearsonLoss(EmbeddingLoss):
    """``1 - Pearson(cos, y)`` over the batch; see :func:`bscl.losses.functional.pearson_loss`."""

    name = "pearson"

    requires_labels = True

    def forward(self, q, a, labels=None, q_ids=None, a_ids=None, negatives=None, neg_ids=None):
        self._no_negatives(negatives)
        return F.pearson_loss(q, a, self._labels(labels))


#: every loss by its name (``--loss.name``), in the order the CLI lists them
LOSSES: dict[str, type[EmbeddingLoss]] = {
    cls.name: cls
    for cls in (
        BSCLoss,
        ComboLoss,
        PearsonComboLoss,
        MSELoss,
        TripletLoss,
        PearsonLoss,
        SoftCSEWeightLoss,
        SoftCSETemperatureLoss,
        FocalInfoNCELoss,
    )
}


def contrastive_names() -> list[str]:
    """The names of the contrastive losses (:attr:`EmbeddingLoss.contrastive`), in :data:`LOSSES` order."""
    return [name for name, cls in LOSSES.items() if cls.contrastive]


def loss_class(name: str) -> type[EmbeddingLoss]:
    """The class of a loss name (see :data:`LOSSES`); unknown names list the known ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise LossOptionError("name", f"={name!r} is unknown; choose one of {sorted(LOSSES)}") from None


def is_contrastive(name: str) -> bool:
    """Whether loss ``name`` is an in-batch contrastive loss (temperature, in-batch negatives, extra
    negative columns); see :attr:`EmbeddingLoss.contrastive`."""
    return loss_class(name).contrastive


def build_loss(name: str, **kwargs: Any) -> EmbeddingLoss:
    """Instantiate a loss by name (see :data:`LOSSES`) with options of its :attr:`~EmbeddingLoss.Options`."""
    return loss_class(name)(**kwargs)
