"""sentence-transformers level: the trainer adapter :class:`STLoss` and the model-first loss classes.

``SentenceTransformerTrainer`` calls ``loss(sentence_features, labels)`` with one tokenized feature
dict per text column. :class:`STLoss` embeds the columns with the model, derives text ids from the
tokens (equal token sequences <=> identical texts, so duplicates are found from the input, never from
equal embeddings) and calls the wrapped :class:`~bscl.losses.modules.EmbeddingLoss`. The model-first
classes (``BSCLoss(model, tau=0.1)``, one per name in :data:`~bscl.losses.modules.LOSSES`, collected
in :data:`ST_LOSSES`) are :class:`STLoss` subclasses that build the embedding loss of the same name
from their keyword options, like sentence-transformers' own ``MultipleNegativesRankingLoss``.

Example (``tiny`` is a small random BERT for trying things out; ``minilm`` is all-MiniLM-L6-v2):

>>> import tempfile
>>> from datasets import Dataset
>>> from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
>>> from bscl.losses import BSCLoss, STLoss
>>> from bscl.losses.modules import BSCLoss as EmbeddingBSCLoss
>>> from bscl.models import load_model
>>> model = load_model("tiny")
>>> loss = BSCLoss(model, tau=0.1, use_labels=True, threshold=0.6)
>>> same = STLoss(model, EmbeddingBSCLoss(tau=0.1, use_labels=True, threshold=0.6))
>>> cached = STLoss(model, "bsc", mini_batch_size=2, tau=0.1, threshold=0.6)  # gradient caching
>>> train_dataset = Dataset.from_dict({
...     "sentence1": ["a cat sits", "dogs bark", "it rains", "a red car"],
...     "sentence2": ["a cat is sitting", "a dog barks", "rain falls", "a blue boat"],
...     "label": [1.0, 0.8, 0.9, 0.1],  # graded in [0, 1] or binary: divide 0-5 scores by 5
... })
>>> with tempfile.TemporaryDirectory() as output_dir:  # the trainer's checkpoints
...     args = SentenceTransformerTrainingArguments(output_dir=output_dir, report_to=[])
...     trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset, loss=loss)
>>> loss.get_config_dict()["threshold"]  # every setting of the loss, written into the model card
0.6

Dataset layout: two text columns (query / first sentence, then answer / second sentence), optionally
followed by ``k`` negative text columns (``(anchor, positive, negative_1..k)``, the layout that
sentence-transformers' ``mine_hard_negatives`` writes; contrastive losses only: the negatives join the
candidates of every row's query->answer softmax), and an optional ``label`` (or ``score``) column.
For the unsupervised (SimCSE) setting use the same sentence in both columns: the two columns are
encoded in separate forward passes, so dropout makes the two views differ.

Model card: ``get_config_dict()`` returns every setting of the loss (given or default) and
``citation`` the BibTeX of its paper (:attr:`EmbeddingLoss.citation
<bscl.losses.modules.EmbeddingLoss.citation>`), so the card that sentence-transformers writes on
``save`` names the loss, its settings and the right paper.

A trainable temperature (``trainable_tau=True``) is the parameter ``loss.temperature.log_tau`` (or
``.alpha`` with ``tau_parametrization="alpha"``): in a plain ``SentenceTransformerTrainer`` give it its
own learning rate with ``SentenceTransformerTrainingArguments(learning_rate_mapping=
{TEMPERATURE_LR_REGEX: 1e-3})`` (:data:`TEMPERATURE_LR_REGEX`); :class:`bscl.training.BSCLTrainer`
does the same through ``tau_learning_rate``. Resuming a run restores the loss's own parameters only
with :class:`LossStateCallback` among the trainer's callbacks.

Multi-process training (DDP, ``torchrun``): ``gather_across_processes=True`` scores every rank's pairs
against the pairs of all ranks (see :mod:`bscl.losses.distributed`).

Gradient caching (``mini_batch_size``): GradCache (Gao, Zhang, Han and Callan, 2021, "Scaling Deep
Contrastive Learning Batch Size under Memory Limited Setup", RepL4NLP) splits the backward pass at
the embeddings. For a batch of ``m`` pairs, an encoder ``f_theta`` and a loss ``L(Q, A; tau)``:

1. embed the batch in mini-batches of ``k`` texts *without* a graph: ``Q = f(x_q)``, ``A = f(x_a)``;
   the RNG state before each mini-batch is recorded;
2. compute ``L`` once on the whole batch and its gradients ``G_Q = dL/dQ``, ``G_A = dL/dA`` (and
   ``dL/dtau`` for a trainable temperature) -- the "gradient cache";
3. re-embed each mini-batch *with* its graph under the recorded RNG state (same dropout masks) and
   back-propagate ``<f(x_mb), G_mb>``, whose gradient with respect to ``theta`` is the mini-batch's
   share of ``dL/dtheta``.

The parameter gradients equal the ones of the plain loss on the same batch (same dropout masks),
while only one mini-batch of activations is alive at a time; the price is a second forward pass.
Steps 1 and 3 reuse sentence-transformers' ``CachedLossMixin`` (mini-batch slicing with padding
trimmed, ``RandContext`` for dropout replay, DDP ``no_sync`` until the last mini-batch
from sentence-transformers 6.0 on (5.x all-reduces after each mini-batch), the surrogate
loss tensor whose backward hook runs step 3). What this class adds: text ids for duplicates computed
on the *full* batch, extra negative columns, gradients for the loss's own parameters (a trainable
temperature: step 2 computes ``dL/dtau`` and the returned tensor carries it as
``tau * sg(dL/dtau) - sg(...)``, value 0, so the trainer's backward scales it by the same outer
gradient as the encoder's share), and cross-process negatives (step 2 on the gathered embeddings).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
from sentence_transformers.base.losses import CachedLossMixin
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from bscl.losses import modules as M
from bscl.losses.distributed import gather_batch, gather_negatives, is_distributed
from bscl.losses.hashing import text_ids  # on the tokens' device
from bscl.losses.modules import EmbeddingLoss, build_loss, contrastive_names
from bscl.padding_free import is_padding_free

logger = logging.getLogger(__name__)

EmbeddingCallback = Callable[[Tensor, Tensor], None]

#: ``learning_rate_mapping`` key (a regex on parameter names) that matches the trainable temperature
TEMPERATURE_LR_REGEX = r"temperature\.(log_tau|alpha)$"


def checkpoint_folder(output_dir: str | Path, global_step: int) -> Path:
    """``output_dir/checkpoint-<global_step>`` (HF's naming)."""
    return Path(output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{global_step}"


def embedding_loss_config(loss: nn.Module) -> dict[str, Any]:
    """The settings of an embedding loss instance: its options dataclass (``loss.opts``), with the
    temperature's current value when it is trainable."""
    opts = getattr(loss, "opts", None)
    out: dict[str, Any] = dataclasses.asdict(opts) if dataclasses.is_dataclass(opts) else {}
    temperature = getattr(loss, "temperature", None)
    if temperature is not None and "tau" in out:
        out["tau"] = round(temperature.value, 6)
    return out


# The column helpers below use only the model's public forward (``model(features)["sentence_embedding"]``):
# sentence-transformers keeps its own column merging in an internal module that is not part of its
# public API and exists only from 6.0 on, while bscl supports 5.7 and later.
def column_rows(features: dict[str, Any]) -> int:
    """The number of texts in one column's features: padded (``input_ids`` rows) or flattened
    (``cu_seq_lens_q`` holds ``rows + 1`` offsets)."""
    if features.get("cu_seq_lens_q") is not None:
        return len(features["cu_seq_lens_q"]) - 1
    for key in ("input_ids", "attention_mask"):
        if isinstance(features.get(key), Tensor):
            return features[key].shape[0]
    return next(v.shape[0] for v in features.values() if isinstance(v, Tensor) and v.dim() > 0)


def merge_columns(columns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The columns' padded token features as one batch (column after column), or ``None`` where they
    cannot be merged: different keys, flattened inputs, per-row tensors that are not token ids /
    masks, or metadata that differs between the columns.

    Token tensors ``(rows, length)`` are zero-padded to the widest column; the added positions have
    attention mask 0, so each text's embedding is the one of its own padded forward.
    """
    first = columns[0]
    if any(set(c) != set(first) for c in columns[1:]) or first.get("cu_seq_lens_q") is not None:
        return None
    rows = column_rows(first)
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [c[key] for c in columns]
        if isinstance(value, Tensor):
            if any(
                not isinstance(v, Tensor) or v.dim() != 2 or v.shape[0] != rows or v.is_floating_point()
                for v in values
            ):
                return None
            width = max(v.shape[1] for v in values)
            merged[key] = torch.cat([torch.nn.functional.pad(v, (0, width - v.shape[1])) for v in values])
        elif any(isinstance(v, Tensor) or v != value for v in values[1:]):
            return None
        else:
            merged[key] = value
    return merged


def embed_columns(
    model: nn.Module, columns: list[dict[str, Any]], *, merge_all: bool = False, one_pass: bool = False
) -> list[Tensor]:
    """The ``(m, d)`` embedding of each column.

    The first column (queries) gets its own forward pass and the candidate columns (answers, then
    negatives) share one merged pass where :func:`merge_columns` allows, else one pass each. With
    ``one_pass`` every column goes through one merged pass where the columns can be merged; with
    ``merge_all`` always (``ValueError`` where that is impossible).
    """
    if merge_all or one_pass:
        merged = merge_columns(columns)
        if merged is not None:
            embeddings = model(merged)["sentence_embedding"]  # (columns * m, d)
            return list(embeddings.reshape(len(columns), -1, embeddings.shape[-1]).unbind(0))
        if merge_all:
            raise ValueError(
                "under DDP the columns must be embedded in one forward pass, but their features cannot "
                "be merged; set mini_batch_size (one forward/backward per mini-batch) instead"
            )
    first, *candidates = columns
    out = [model(first)["sentence_embedding"]]
    merged = merge_columns(candidates) if len(candidates) > 1 else None
    if merged is None:
        return out + [model(c)["sentence_embedding"] for c in candidates]
    embeddings = model(merged)["sentence_embedding"]  # (candidate columns * m, d)
    return out + list(embeddings.reshape(len(candidates), -1, embeddings.shape[-1]).unbind(0))


def check_label_range(labels: Tensor, loss_name: str) -> None:
    """Raise :class:`ValueError` when ``labels`` leave ``[0, 1]``, naming the fix.

    Every bscl loss reads labels as graded in ``[0, 1]`` or binary 0 / 1 (contrastive terms binarize
    them at ``threshold``, the regression terms compare them with cosines): raw scores on another
    scale (0-5 STS scores) would train without an error towards the wrong targets. One reduction,
    read on the host: the labels are a handful of numbers per batch.
    """
    if labels.numel() == 0:
        return
    low, high = (float(x) for x in torch.aminmax(labels.detach().float()))
    if low >= 0.0 and high <= 1.0:  # NaN fails both comparisons
        return
    raise ValueError(
        f"{loss_name} takes labels graded in [0, 1] or binary 0/1, but this batch has labels in "
        f"[{low:g}, {high:g}]. Divide them by the scale's maximum (label_max), e.g. "
        "dataset.map(lambda row: {'label': row['label'] / 5}) for 0-5 STS scores; "
        "bscl train does it with --data.label_max 5"
    )


class STLoss(CachedLossMixin, nn.Module):
    """Wrap an :class:`~bscl.losses.modules.EmbeddingLoss` for ``SentenceTransformerTrainer``.

    Args:
        model: the ``SentenceTransformer`` being trained.
        loss: the embedding loss (or its name in :data:`~bscl.losses.modules.LOSSES`, with ``**loss_kwargs``).
        mini_batch_size: texts per forward pass with gradient caching (module docstring; memory bound,
            the batch size stays the trainer's); ``None``: the plain loss, the whole batch in one graph.
            Same value and same parameter gradients either way. In a single process, a batch whose
            columns fit in one mini-batch is computed the plain way (no second forward).
        gather_across_processes: under DDP, compute the loss on the batch concatenated over all
            ranks (cross-process negatives; see :mod:`bscl.losses.distributed`). The loss value and
            the gradients equal those of one process on the concatenated batch. No effect without
            an initialised multi-process group.
        embedding_callback: optional ``f(q_emb, a_emb)`` called once per training batch with the
            detached embeddings of *this process's* pairs, in batch order (used by the batch
            samplers to reuse embeddings that training already computed). Not called for
            evaluation batches (no gradient).
        mini_batch_num_tokens: with gradient caching, a token budget per mini-batch instead of a fixed
            count (sentence-transformers' option; turns caching on by itself).
        show_progress_bar: with gradient caching, a progress bar over the mini-batches.
        one_forward: when the model is padding-free (:mod:`bscl.padding_free`), embed all text columns of
            a batch in one forward pass (the merged batch costs no padding there; one backward through the
            embedding table instead of two and half the per-operator overhead: about 8% less time per
            step with all-MiniLM-L6-v2 on a 2-core CPU). Each text's embedding is the one of its own
            column's pass; in training the dropout masks are drawn over the merged batch, so a run
            differs from the two-pass layout as runs with two seeds do. A padded model always embeds
            the queries in their own pass (merging would pad them to the candidates' length).
        **loss_kwargs: options of the loss when ``loss`` is a name.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: EmbeddingLoss | str,
        *,
        mini_batch_size: int | None = None,
        gather_across_processes: bool = False,
        embedding_callback: EmbeddingCallback | None = None,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
        one_forward: bool = True,
        **loss_kwargs: Any,
    ):
        super().__init__()
        if isinstance(loss, STLoss):
            inner = type(loss.loss).__name__
            raise TypeError(
                f"STLoss wraps an embedding loss, but got {type(loss).__name__}(model, ...), a "
                "sentence-transformers loss that embeds the texts itself: pass it to the trainer as it is, "
                f"or wrap the embedding loss: STLoss(model, bscl.losses.modules.{inner}(...))"
            )
        if not isinstance(model, nn.Module) or isinstance(model, EmbeddingLoss):
            raise TypeError(
                f"STLoss(model, loss): the first argument must be the SentenceTransformer, got {type(model).__name__}"
            )
        if mini_batch_size is not None and mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1; got {mini_batch_size}")
        if mini_batch_num_tokens is not None and mini_batch_num_tokens < 1:
            raise ValueError(f"mini_batch_num_tokens must be >= 1; got {mini_batch_num_tokens}")
        self.model = model
        self.loss = build_loss(loss, **loss_kwargs) if isinstance(loss, str) else loss
        self.embedding_callback = embedding_callback
        self.gather_across_processes = gather_across_processes
        # gradient caching (CachedLossMixin): on with a mini-batch size or a token budget
        self.uses_gradient_cache = mini_batch_size is not None or mini_batch_num_tokens is not None
        self.mini_batch_size = int(mini_batch_size) if mini_batch_size is not None else 32
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        self.one_forward = one_forward
        # set by forward() for calculate_loss(): ids of the full batch, gradients of the loss parameters
        self._ids: tuple[Tensor | None, Tensor | None] = (None, None)
        self._neg_ids: Tensor | None = None
        self._param_grads: list[tuple[nn.Parameter, Tensor]] = []

    @property
    def temperature(self) -> nn.Module | None:
        return getattr(self.loss, "temperature", None)

    def _check_columns(self, features: list[dict[str, Any]]) -> None:
        name = type(self.loss).__name__
        if len(features) < 2:
            raise ValueError(
                f"{name} needs two text columns (first text, second text), optionally followed by negative "
                f"text columns; the data has {len(features)} text column(s)"
            )
        if len(features) > 2 and not getattr(self.loss, "contrastive", False):
            raise ValueError(
                f"{name} takes exactly two text columns (first text, second text); the data has "
                f"{len(features)}. Extra text columns are hard negatives, which only the contrastive losses "
                f"take ({', '.join(contrastive_names())}); drop them for this loss. "
                "(sentence-transformers reads every column except one named 'label' or 'score' as text.)"
            )

    def embed(self, sentence_features: Iterable[dict[str, Any]]) -> list[Tensor]:
        """The ``(m, d)`` embeddings of every text column: query, answer, then the negative columns."""
        features = list(sentence_features)
        self._check_columns(features)
        # DDP (with find_unused_parameters=True, HF Trainer's default for a SentenceTransformer) allows
        # one forward per backward: there every column goes through one padded, merged forward
        return embed_columns(
            self.model,
            features,
            merge_all=isinstance(self.model, DistributedDataParallel),
            one_pass=self.one_forward and is_padding_free(self.model),
        )

    def ids(self, sentence_features: list[dict[str, Any]]) -> tuple[Tensor | None, Tensor | None]:
        """Text ids of the query and answer columns (``None`` when the loss uses none)."""
        if not self.loss.uses_ids:
            return None, None
        return text_ids(sentence_features[0]), text_ids(sentence_features[1])

    def neg_ids(self, sentence_features: list[dict[str, Any]]) -> Tensor | None:
        """``(m, k)`` text ids of the negative columns (``None`` without negatives or ids)."""
        if not self.loss.uses_ids or len(sentence_features) <= 2:
            return None
        return torch.stack([text_ids(f) for f in sentence_features[2:]], dim=1)  # (m, k)

    @staticmethod
    def stack_negatives(columns: list[Tensor]) -> Tensor | None:
        """The negative columns ``[(m, d)] * k`` as ``(m, k, d)``; ``None`` without any."""
        return torch.stack(columns, dim=1) if columns else None  # (m, k, d)

    def prepare_labels(self, labels: Tensor | None, like: Tensor) -> Tensor | None:
        """Labels as ``(m,)`` in the embeddings' dtype; ``None`` (or the trainer's 0-dim dummy) when absent.

        Labels that the loss uses must lie in ``[0, 1]`` (graded) or be 0 / 1 (binary); others raise
        :class:`ValueError` naming the fix (:func:`check_label_range`).
        """
        if labels is not None and labels.dim() == 0:
            labels = None
        if labels is None and self.loss.requires_labels:
            raise ValueError(
                f"{type(self.loss).__name__} needs a 'label' or 'score' column in the training data"
            )
        if labels is not None:
            if self.loss.uses_labels:
                check_label_range(labels, type(self.loss).__name__)
            labels = labels.to(device=like.device, dtype=like.dtype)
        return labels

    def compute(
        self,
        q: Tensor,
        a: Tensor,
        labels: Tensor | None,
        q_ids: Tensor | None,
        a_ids: Tensor | None,
        negatives: Tensor | None = None,
        neg_ids: Tensor | None = None,
    ) -> Tensor:
        """The wrapped loss on this process's batch, or on the global batch with ``gather_across_processes``."""
        if self.gather_across_processes:
            q, a, labels, q_ids, a_ids = gather_batch(q, a, labels, q_ids, a_ids)  # (M, d), (M, d), (M,)...
            negatives, neg_ids = gather_negatives(negatives, neg_ids)  # (M, k, d), (M, k)
        if negatives is None:
            return self.loss(q, a, labels, q_ids, a_ids)
        return self.loss(q, a, labels, q_ids, a_ids, negatives=negatives, neg_ids=neg_ids)

    def loss_from_embeddings(
        self,
        q: Tensor,
        a: Tensor,
        labels: Tensor | None,
        sentence_features: list[dict[str, Any]],
        negatives: Tensor | None = None,
    ) -> Tensor:
        """The loss from the embeddings of the columns (``negatives``: ``(m, k, d)`` of columns 3..)."""
        labels = self.prepare_labels(labels, q)
        q_ids, a_ids = self.ids(sentence_features)
        neg_ids = self.neg_ids(sentence_features) if negatives is not None else None
        return self.compute(q, a, labels, q_ids, a_ids, negatives, neg_ids)

    def record_embeddings(self, q: Tensor, a: Tensor) -> None:
        """Hand this process's detached training embeddings to :attr:`embedding_callback`."""
        if self.embedding_callback is not None and self.training and torch.is_grad_enabled():
            self.embedding_callback(q.detach(), a.detach())

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """Step 2: the loss of the whole batch from the per-mini-batch embeddings ``reps[column][mb]``.

        With ``with_backward``, store ``dL/d(embeddings)`` in each embedding leaf's ``.grad`` (the
        cache read by step 3) and ``dL/d(loss parameters)`` for :meth:`forward`, and return the
        detached value.
        """
        q = torch.cat(reps[0])  # (m, d)
        a = torch.cat(reps[1])  # (m, d)
        negatives = self.stack_negatives([torch.cat(column) for column in reps[2:]])  # (m, k, d) or None
        self.record_embeddings(q, a)
        value = self.compute(q, a, self.prepare_labels(labels, q), *self._ids, negatives, self._neg_ids)
        if not with_backward:
            return value
        leaves = [leaf for column in reps for leaf in column]
        params = [p for p in self.loss.parameters() if p.requires_grad]
        grads = torch.autograd.grad(value, leaves + params, allow_unused=True)
        for leaf, grad in zip(leaves, grads[: len(leaves)], strict=True):
            leaf.grad = grad  # None for an unused column: the mixin raises a clear error
        self._param_grads = [
            (p, g) for p, g in zip(params, grads[len(leaves) :], strict=True) if g is not None
        ]
        return value.detach()

    def fits_one_mini_batch(self, features: list[dict[str, Any]]) -> bool:
        """Whether caching buys nothing: one process, and every column fits in one mini-batch."""
        return (
            not is_distributed()
            and self.mini_batch_num_tokens is None
            and all(column_rows(f) <= self.mini_batch_size for f in features)
        )

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        self._check_columns(features)
        if not self.uses_gradient_cache or self.fits_one_mini_batch(features):
            # the plain loss; with caching on, the same value, gradients and dropout masks without the
            # second forward (not under DDP: every rank must take the same path, whatever its batch size)
            q, a, *negatives = self.embed(features)
            self.record_embeddings(q, a)
            return self.loss_from_embeddings(q, a, labels, features, self.stack_negatives(negatives))
        self._ids = self.ids(features)  # on the full batch, before any slicing
        self._neg_ids = self.neg_ids(features)
        self._param_grads = []
        try:
            loss = self.forward_cached(features, labels)  # value L, backward hook runs step 3
        finally:
            self._ids = (None, None)
            self._neg_ids = None
        if self._param_grads:
            # value 0, gradient dL/dtau for each loss parameter, scaled by the outer backward's gradient
            carry = sum((p * g).sum() for p, g in self._param_grads)
            loss = loss + (carry - carry.detach())
            self._param_grads = []
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The wrapped loss's name and settings (shown in the model card)."""
        name = getattr(type(self.loss), "name", None) or type(self.loss).__name__
        return {"loss": name, **embedding_loss_config(self.loss)}

    @property
    def citation(self) -> str:
        """BibTeX of the wrapped loss's paper (shown in the model card)."""
        return getattr(self.loss, "citation", M.EmbeddingLoss.citation)


class LossStateCallback(TrainerCallback):
    """Save the loss's own parameters (trainable temperature) with each checkpoint; restore them on resume.

    HF's checkpoints hold the model, the optimizer state, the scheduler and the RNG states, but not
    the parameters of a loss module outside the model: without this callback a resumed run restarts
    the temperature from its initial value (while its Adam moments are restored). ``on_save`` writes
    the loss's state dict without the encoder (``model.*``) to ``checkpoint-N/`` :attr:`FILE`;
    ``on_train_begin`` of a resumed run (``global_step > 0``) loads it back from
    :func:`checkpoint_folder`, warning if it is missing.

    Usage: ``trainer.add_callback(LossStateCallback(loss))`` (or ``callbacks=[...]``).
    """

    #: the loss-state file inside a checkpoint folder
    FILE = "bscl_loss_state.pt"

    def __init__(self, loss: nn.Module):
        self.loss = loss

    def loss_state(self) -> dict[str, Tensor]:
        return {
            k: v.detach().cpu().clone()
            for k, v in self.loss.state_dict().items()
            if not k.startswith("model.")
        }

    def save_checkpoint_state(self, folder: Path) -> None:
        """Write the loss state into ``folder``. :class:`bscl.training.BSCLTrainer` calls it inside its
        checkpoint save, before it marks the checkpoint complete; ``on_save`` (after HF's
        ``trainer_state.json``) is the fallback for other trainers."""
        tmp = folder / (self.FILE + ".tmp")
        torch.save(self.loss_state(), tmp)
        tmp.replace(folder / self.FILE)  # atomic: a kill leaves either no file or a whole one
        self._saved = folder

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = checkpoint_folder(args.output_dir, state.global_step)
        if getattr(self, "_saved", None) == folder:  # already written inside the checkpoint save
            return
        if state.is_world_process_zero and folder.is_dir():
            self.save_checkpoint_state(folder)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 0:
            return
        path = checkpoint_folder(args.output_dir, state.global_step) / self.FILE
        if not path.is_file():
            if self.loss_state():
                logger.warning(
                    "resumed at step %d without %s: the loss parameters restart from their initial values",
                    state.global_step,
                    path,
                )
            return
        saved = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = self.loss.load_state_dict(saved, strict=False)
        unexpected = [k for k in unexpected if not k.startswith("model.")]
        if unexpected:
            raise RuntimeError(f"{path} holds loss parameters this loss does not have: {unexpected}")


# --------------------------------------------------------------------------------------------------
# model-first classes: ``BSCLoss(model, tau=0.1)``, one per name in modules.LOSSES
# --------------------------------------------------------------------------------------------------
#: keyword arguments of :class:`STLoss` itself (the rest are the loss's options)
_WRAPPER_OPTIONS = (
    "mini_batch_size",
    "gather_across_processes",
    "embedding_callback",
    "mini_batch_num_tokens",
    "show_progress_bar",
)


def _constructor_options(cls: type[nn.Module]) -> dict[str, inspect.Parameter]:
    """The keyword options of an embedding loss class with their defaults: its signature, which
    :mod:`bscl.losses.modules` derives from the class's options dataclass."""
    return {
        name: p
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


class STStyleLoss(STLoss):
    """Base of the model-first losses: ``Loss(model, **options)`` builds :attr:`embedding_loss` with the
    options and wraps it as :class:`STLoss` does (``mini_batch_size``, ``gather_across_processes``,
    ``embedding_callback``, ... as there)."""

    #: the embedding-level class this loss builds (from :mod:`bscl.losses.modules`)
    embedding_loss: ClassVar[type[M.EmbeddingLoss]]

    def __init__(self, model: nn.Module | None = None, *args: Any, **options: Any):
        if not isinstance(model, nn.Module):
            name = type(self).__name__
            raise TypeError(
                f"{name}(model, **options) takes the SentenceTransformer first (got "
                f"{'nothing' if model is None else repr(model)}); the embedding-level loss, e.g. to wrap in "
                f"STLoss(model, loss), is bscl.losses.modules.{name}(**options)"
            )
        known = _constructor_options(self.embedding_loss)
        wrapper = {k: options.pop(k) for k in _WRAPPER_OPTIONS if k in options}
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


def _inputs(embedding: type[M.EmbeddingLoss]) -> str:
    """The batch layout and the sampler to pair with, as a sentence-transformers loss docstring gives them."""
    negatives = "``(anchor, positive, negative_1, ..., negative_k)``" if embedding.contrastive else None
    if embedding.requires_labels:
        labels = "graded in [0, 1] or binary (required)"
    else:
        labels = "none, or binary / graded (``use_labels``: pairs not above ``threshold`` are negatives)"
    rows = [("``(first text, second text)`` pairs", labels)]
    if negatives:
        rows.append((f"{negatives} (mined negatives)", labels))
    width = max(len(t) for t, _ in rows)
    lwidth = max(len(lab) for _, lab in rows)
    rule = f"{'=' * width}  {'=' * lwidth}"
    table = [rule, f"{'Texts'.ljust(width)}  Labels", rule]
    table += [f"{t.ljust(width)}  {lab}" for t, lab in rows]
    table.append(rule)
    if embedding.contrastive:
        sampler = (
            "in-batch negatives: ``NoDuplicatesBatchSampler``, or bscl's example-based batching "
            '(:func:`bscl.batching.make_batch_sampler` ``"example"``) for hard in-batch negatives'
        )
    elif embedding.name == "triplet":
        sampler = (
            'pairs of one anchor together: ``"sequential"`` batching or a sampler grouping by the first text'
        )
    else:
        sampler = "any (the loss scores each pair on its own): the default random batches"
    return "Inputs:\n\n" + "\n".join(table) + f"\n\nRecommended batch sampler: {sampler}."


def _st_class(name: str, embedding: type[M.EmbeddingLoss]) -> type[STStyleLoss]:
    """``class <Name>(STStyleLoss)`` for ``LOSSES[name]``, its signature and docstring derived from it."""
    options = _constructor_options(embedding)
    params = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in options.values()),
    ]
    doc = (
        f"``{embedding.__name__}(model, **options)``: :class:`bscl.losses.modules.{embedding.__name__}` "
        f"for ``SentenceTransformerTrainer``.\n\n{inspect.getdoc(embedding) or ''}\n\n{_inputs(embedding)}"
        f"\n\nOptions (defaults of :class:`bscl.losses.modules.{embedding.__name__}`): "
        + ", ".join(f"``{n}={p.default!r}``" for n, p in options.items() if p.default is not p.empty)
        + "; and :class:`STLoss`'s keyword arguments (``mini_batch_size``, ``gather_across_processes``, ...)."
        + f"\n\nCitation::\n\n{_indent(embedding.citation)}\n"
    )
    cls = type(embedding.__name__, (STStyleLoss,), {"embedding_loss": embedding, "__doc__": doc})
    cls.__init__ = _with_signature(STStyleLoss.__init__, inspect.Signature(params))  # type: ignore[method-assign]
    cls.__module__ = __name__
    cls.__qualname__ = embedding.__name__
    return cls


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _with_signature(fn: Any, signature: inspect.Signature) -> Any:
    def __init__(self: STStyleLoss, model: nn.Module | None = None, *args: Any, **options: Any) -> None:
        fn(self, model, *args, **options)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__


#: the model-first loss class of every embedding loss, by name (same keys as ``modules.LOSSES``)
ST_LOSSES: dict[str, type[STStyleLoss]] = {name: _st_class(name, cls) for name, cls in M.LOSSES.items()}

BSCLoss = ST_LOSSES["bsc"]
ComboLoss = ST_LOSSES["combo"]
PearsonComboLoss = ST_LOSSES["pearson-combo"]
MSELoss = ST_LOSSES["mse"]
TripletLoss = ST_LOSSES["triplet"]
PearsonLoss = ST_LOSSES["pearson"]
SoftCSEWeightLoss = ST_LOSSES["softcse-weight"]
SoftCSETemperatureLoss = ST_LOSSES["softcse-temperature"]
FocalInfoNCELoss = ST_LOSSES["focal-infonce"]
