"""sentence-transformers-style losses: built from the model, like ST's own ``MultipleNegativesRankingLoss``.

    from sentence_transformers import SentenceTransformerTrainer
    from bscl.losses import BSCLoss
    loss = BSCLoss(model, tau=0.1, use_labels=True, threshold=0.6)
    SentenceTransformerTrainer(model=model, train_dataset=ds, loss=loss).train()

Each class is a thin :class:`~bscl.losses.adapters.STLoss` that builds the embedding-level loss of the
same name from :mod:`bscl.losses.modules` (still importable there, for use on embeddings). Its
keyword options are that class's constructor parameters (the defaults are the embedding class's own:
nothing is re-listed here); ``get_config_dict()`` returns every setting (given or default), and
``citation`` is the paper of that loss, so the model card ST writes on ``save`` names the loss, its
settings and the right paper:

============================  ==================================================================
class                         citation
============================  ==================================================================
BSCLoss, ComboLoss,           Chernyavskiy et al., NAACL 2022 (batch-softmax contrastive loss)
PearsonLoss, PearsonCombo...
FocalInfoNCELoss              Hou and Li, Findings of EMNLP 2023
SoftCSEWeightLoss,            Zhuang et al., CIKM 2024 (SoftCSE)
SoftCSETemperatureLoss
MSELoss, TripletLoss          Reimers and Gurevych, EMNLP 2019 (Sentence-BERT: cosine MSE / triplet)
============================  ==================================================================

A trainable temperature (``trainable_tau=True``) is the parameter ``loss.temperature.log_tau`` (or
``.alpha`` with ``tau_parametrization="alpha"``): in a plain ``SentenceTransformerTrainer`` give it its
own learning rate with ``SentenceTransformerTrainingArguments(learning_rate_mapping=
{TEMPERATURE_LR_REGEX: 1e-3})`` (:data:`TEMPERATURE_LR_REGEX`); :class:`bscl.training.BSCLTrainer`
does the same through ``tau_learning_rate``.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

from torch import nn

from bscl.losses import modules as M
from bscl.losses.adapters import STLoss

#: ``learning_rate_mapping`` key (a regex on parameter names) that matches the trainable temperature
TEMPERATURE_LR_REGEX = r"temperature\.(log_tau|alpha)$"

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

#: the paper of each loss, by its name in :data:`bscl.losses.modules.LOSSES` (default: the BSC paper)
CITATIONS: dict[str, str] = {
    "bsc": _BSC,
    "combo": _BSC,
    "pearson": _BSC,
    "pearson-combo": _BSC,
    "focal-infonce": _FOCAL,
    "softcse-weight": _SOFTCSE,
    "softcse-temperature": _SOFTCSE,
    "mse": _SBERT,
    "triplet": _SBERT,
}


def loss_options(cls: type[nn.Module]) -> dict[str, inspect.Parameter]:
    """The keyword options of an embedding loss class, with their defaults: its signature, which
    :mod:`bscl.losses.modules` derives from the class's options dataclass (``cls.Options``), the one
    place each loss's options and defaults are written."""
    return {
        name: p
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def loss_name(loss: nn.Module) -> str | None:
    """The :data:`~bscl.losses.modules.LOSSES` name of an embedding loss instance (None if unregistered)."""
    return next((name for name, cls in M.LOSSES.items() if type(loss) is cls), None)


def citation_of(loss: nn.Module) -> str:
    """The paper of an embedding loss instance (see :data:`CITATIONS`)."""
    return CITATIONS.get(loss_name(loss) or "", _BSC)


def embedding_loss_config(loss: nn.Module) -> dict[str, Any]:
    """The settings of an embedding loss instance (for the model card of a wrapped loss, e.g.
    ``bscl train``'s ``STLoss``): its options dataclass (``loss.opts``), with the temperature's current
    value when it is trainable."""
    opts = getattr(loss, "opts", None)
    out: dict[str, Any] = dataclasses.asdict(opts) if dataclasses.is_dataclass(opts) else {}
    temperature = getattr(loss, "temperature", None)
    if temperature is not None and "tau" in out:
        out["tau"] = round(temperature.value, 6)
    return out


class STStyleLoss(STLoss):
    """Base of the model-first losses: ``Loss(model, **options)`` builds :attr:`embedding_loss` with the
    options and wraps it like :class:`STLoss` (``embedding_callback`` / ``gather_across_processes``
    as there)."""

    #: the embedding-level class this loss builds (from :mod:`bscl.losses.modules`)
    embedding_loss: ClassVar[type[M.EmbeddingLoss]]
    #: the loss's name in :data:`bscl.losses.modules.LOSSES`
    name: ClassVar[str]

    def __init__(self, model: nn.Module, *args: Any, **options: Any):
        known = loss_options(self.embedding_loss)
        wrapper = {
            k: options.pop(k) for k in ("embedding_callback", "gather_across_processes") if k in options
        }
        if args:  # positional options in the embedding class's order (e.g. BSCLoss(model, 0.05))
            names = [n for n, p in known.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
            if len(args) > len(names):
                raise TypeError(
                    f"{type(self).__name__} takes at most {len(names)} positional options {names}"
                )
            for name, value in zip(names, args, strict=False):
                if name in options:
                    raise TypeError(f"{type(self).__name__} got multiple values for {name!r}")
                options[name] = value
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown options {unknown}; it takes {sorted(known)}")
        super().__init__(model, self.embedding_loss(**options), **wrapper)
        self.options = {
            name: options.get(name, p.default) for name, p in known.items() if p.default is not p.empty
        }

    def get_config_dict(self) -> dict[str, Any]:
        """Every setting of the loss (given or default): shown in the model card."""
        return dict(self.options)

    @property
    def citation(self) -> str:
        return CITATIONS.get(self.name, _BSC)


def _st_class(name: str, embedding: type[M.EmbeddingLoss]) -> type[STStyleLoss]:
    """``class <Name>(STStyleLoss)`` for ``LOSSES[name]``, its signature and docstring derived from it."""
    options = loss_options(embedding)
    params = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in options.values()),
    ]
    doc = (
        f"``{embedding.__name__}`` for ``SentenceTransformerTrainer``: ``{embedding.__name__}(model, "
        f"**options)``.\n\n{inspect.getdoc(embedding) or ''}\n\nOptions (defaults of "
        f":class:`bscl.losses.modules.{embedding.__name__}`): "
        + ", ".join(f"``{n}={p.default!r}``" for n, p in options.items() if p.default is not p.empty)
    )
    cls = type(
        embedding.__name__, (STStyleLoss,), {"embedding_loss": embedding, "name": name, "__doc__": doc}
    )
    cls.__init__ = _with_signature(STStyleLoss.__init__, inspect.Signature(params))  # type: ignore[method-assign]
    cls.__module__ = __name__
    cls.__qualname__ = embedding.__name__
    return cls


def _with_signature(fn: Any, signature: inspect.Signature) -> Any:
    def __init__(self: STStyleLoss, model: nn.Module, *args: Any, **options: Any) -> None:
        fn(self, model, *args, **options)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__


#: the model-first loss class of every embedding loss, by name (same keys as ``modules.LOSSES``)
ST_LOSSES: dict[str, type[STStyleLoss]] = {name: _st_class(name, cls) for name, cls in M.LOSSES.items()}

BSCLoss = ST_LOSSES["bsc"]
ComboLoss = ST_LOSSES["combo"]
MSELoss = ST_LOSSES["mse"]
TripletLoss = ST_LOSSES["triplet"]
PearsonLoss = ST_LOSSES["pearson"]
SoftCSEWeightLoss = ST_LOSSES["softcse-weight"]
SoftCSETemperatureLoss = ST_LOSSES["softcse-temperature"]
FocalInfoNCELoss = ST_LOSSES["focal-infonce"]
