"""Padding-free forward for BERT-family encoders: no FLOPs spent on padding, same parameters and numbers.

A padded batch of ``B`` texts of real lengths ``l_1 .. l_B`` padded to ``L`` costs, per layer,
``2 P B L`` matmul FLOPs (``P`` = the layer's parameters) although only ``sum_b l_b`` tokens are real
(STSb with MiniLM: 40-43%, ``benchmarks/RESULTS.md``). Every part of a BERT layer except attention acts
on each token independently (Q/K/V and output projections, feed-forward, LayerNorm, dropout), so this
module runs the encoder on the flat ``(1, T, hidden)`` tensor of the ``T = sum_b l_b`` real tokens,
and only attention per sequence:

    softmax(Q_b K_b^T / sqrt(d)) V_b   for each sequence b, on its own l_b rows.

How it plugs in (transformers' and PyTorch's documented extension points; the model code is not forked):

- an attention function registered with ``transformers.AttentionInterface.register`` under
  :data:`ATTENTION_NAME` and selected with ``PreTrainedModel.set_attn_implementation``; BERT's
  self-attention passes it the keyword arguments of transformers' variable-length ("packed") path,
  ``cu_seq_lens_q/k`` (cumulative lengths, ``(B + 1,)``) and ``max_length_q/k``. On CUDA with
  ``flash_attn`` importable and half precision it calls ``flash_attn_varlen_func`` (not testable on the
  CPU-only development machine); otherwise :func:`varlen_sdpa` (one SDPA call per sequence). Without
  ``cu_seq_lens`` (a padded call: a batch without padding, or without an attention mask) it is plain
  ``sdpa``, with the ``sdpa`` mask (registered for the same name with ``AttentionMaskInterface``), also
  for a model that was loaded with ``eager`` attention;
- a forward pre-hook on sentence-transformers' ``Transformer`` module (``register_forward_pre_hook``;
  the module calls ``auto_model.forward`` directly, so hooks on the Hugging Face model would not fire)
  that unpads the features with the attention mask: ``input_ids`` / ``token_type_ids`` -> ``(1, T)``,
  ``position_ids`` -> each token's position in its padded row (0 .. l_b - 1 for right padding, so
  exactly the padded forward's positions), no ``attention_mask``; and a forward hook that scatters
  ``token_embeddings`` (and ``all_layer_embeddings``) back to ``(B, L, hidden)`` with zeros at the padding
  into the caller's features dict.

So every caller that runs the model on padded features gets it unchanged: ``STLoss`` (with or without
gradient caching),
DDP, ``SentenceTransformer.encode`` (evaluation, the sampler's encode pass, ``bscl encode`` / ``rank``),
and sentence-transformers' mean pooling sees the usual padded ``token_embeddings``. The re-padding
is one index copy of ``T x hidden`` values (no FLOPs). Nothing is serialized: the implementation name
lives in ``config._attn_implementation_internal``, which ``PretrainedConfig.to_dict`` leaves out, and
hooks are not saved, so a saved model loads with plain ``SentenceTransformer(path)``.
:func:`disable_padding_free` restores the previous attention implementation and removes the hooks.

Supported: ``model_type`` in :data:`SUPPORTED_MODEL_TYPES` (BERT: all-MiniLM-L6-v2, the ``tiny`` test
model). Other architectures get a warning and keep the padded path. **MPNet** (all-mpnet-base-v2) is
not supported: in transformers 5.23 ``MPNetSelfAttention`` computes attention inline (no
``AttentionInterface`` dispatch, so there is no place for a per-sequence attention function) and
``MPNetEncoder.compute_position_bias`` builds its relative-position bias from ``arange`` of the padded
length for the whole batch. Running it flat would need a block-diagonal ``(T, T)`` mask over the flat
sequence (relative positions inside one sequence are the same in flat coordinates), i.e. attention and
bias cost quadratic in the whole batch's tokens instead of each sequence's: not done.

References: the flat layout with attention restricted to each sequence is the "packing without
cross-contamination" of Krell et al. (2021, arXiv:2107.02027) with one sequence per row of the batch
kept; the variable-length kernel is FlashAttention's (Dao et al., NeurIPS 2022); transformers'
``position_ids`` / ``cu_seq_lens`` packed path is described by Kundu et al. (2024, arXiv:2407.09105).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

#: name of the attention implementation registered with transformers' ``AttentionInterface``
ATTENTION_NAME = "bscl_padding_free"
#: ``config.model_type`` values whose forward is padding-free (embeddings take 0-based ``position_ids``,
#: attention goes through ``ALL_ATTENTION_FUNCTIONS``)
SUPPORTED_MODEL_TYPES: tuple[str, ...] = ("bert",)
#: model attribute holding the hooks and the previous attention implementation while enabled
_STATE = "_bscl_padding_free"
#: attribute of the ``cu_seq_lens`` tensor holding the sequence lengths as a Python list
SIZES_ATTRIBUTE = "bscl_sizes"

_registered = False


def register() -> None:
    """Register :func:`padding_free_attention` (and the ``sdpa`` mask) under :data:`ATTENTION_NAME` (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, padding_free_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    _registered = True


# ---- attention ---------------------------------------------------------------------------------------


def _flash_varlen() -> Any:
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


def varlen_sdpa(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    cu_seq_lens: Tensor,
    *,
    dropout: float = 0.0,
    scaling: float | None = None,
) -> Tensor:
    """Attention of each sequence over its own tokens, on flat ``(1, H, T, D)`` q/k/v; returns ``(1, T, H, D)``.

    One ``torch.nn.functional.scaled_dot_product_attention`` call per sequence on its ``(1, H, l_b, D)``
    slice (``torch.split`` / ``torch.cat``, whose backward passes are one copy each; nothing padded, no
    mask). Hand-written because PyTorch's variable-length SDPA (nested jagged tensors) and flash-attention's
    varlen kernel are CUDA-only. Measured on 1 CPU thread (MiniLM heads 12 x 32, 64 sequences of 8-59
    tokens, forward + backward, median of 7): 28 ms, against 42 ms for one SDPA call per group of equal
    lengths and 62 ms for re-padding q/k/v and one masked SDPA call. Sorting the batch by length first
    does not change that: one call per run of equal lengths was within noise of this in training (the
    runs are short) and in the token-sorted batches of an encode pass (1,920 STSb texts: 1.01x, 2
    threads), and one masked call per bucket of lengths within 25% of each other (7-8 buckets for
    30-60 sentences of 6-40 tokens) took 1.4x (with attention dropout) to 2.2x (without) as long, the
    re-padding copies and the mask costing more than the calls they save.
    """
    sizes = getattr(cu_seq_lens, SIZES_ATTRIBUTE, None)  # set by unpad_features: no host copy per layer
    if sizes is None:
        sizes = (cu_seq_lens[1:] - cu_seq_lens[:-1]).tolist()  # (B,) python ints
    # per sequence: (1, H, l_b, D) slices of q, k and v
    pieces = zip(*(torch.split(x, sizes, dim=2) for x in (query, key, value)), strict=True)
    sdpa = nn.functional.scaled_dot_product_attention
    outs = [sdpa(q, k, v, dropout_p=dropout, scale=scaling) for q, k, v in pieces if q.shape[2] > 0]
    return torch.cat(outs, dim=2).transpose(1, 2)  # (1, T, H, D)


def padding_free_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """The registered attention function: per sequence with ``cu_seq_lens_q``, else transformers' ``sdpa``.

    Shapes as transformers' attention interface: q/k/v ``(batch, heads, tokens, head_dim)``, output
    ``(batch, tokens, heads, head_dim)``; in the padding-free call batch = 1 and tokens = T.
    """
    cu_q = kwargs.get("cu_seq_lens_q")
    if cu_q is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    cu_k = kwargs.get("cu_seq_lens_k", cu_q)
    if cu_k is not cu_q and not torch.equal(cu_q, cu_k):
        raise ValueError("padding-free attention is self-attention: cu_seq_lens_q must equal cu_seq_lens_k")
    flash = _flash_varlen() if query.is_cuda and query.dtype in (torch.float16, torch.bfloat16) else None
    if flash is not None:  # untested here (no GPU on the development machine)
        q, k, v = (x[0].transpose(0, 1).contiguous() for x in (query, key, value))  # (T, H, D)
        cu = cu_q.to(torch.int32)
        max_len = int(kwargs.get("max_length_q") or int((cu[1:] - cu[:-1]).max()))
        out = flash(q, k, v, cu, cu, max_len, max_len, dropout_p=dropout, softmax_scale=scaling, causal=False)
        return out.unsqueeze(0), None  # (1, T, H, D)
    return varlen_sdpa(query, key, value, cu_q, dropout=dropout, scaling=scaling), None


# ---- unpad / re-pad hooks ----------------------------------------------------------------------------


def unpad_features(
    input_ids: Tensor,
    attention_mask: Tensor,
    token_type_ids: Tensor | None = None,
    position_ids: Tensor | None = None,
    *,
    lengths: list[int] | None = None,
) -> dict[str, Any]:
    """Flat model inputs for the real tokens of a padded batch (``(B, L)`` each).

    Returns ``input_ids``, ``position_ids`` (each token's position in its padded row, i.e. what the padded
    forward uses) and, if given, ``token_type_ids``, all ``(1, T)``; ``cu_seq_lens_q/k`` ``(B + 1,)`` int32
    (carrying the lengths as a Python list, for :func:`varlen_sdpa`) and ``max_length_q/k``.

    ``lengths``: the rows' real lengths (``attention_mask.sum(1).tolist()``), if the caller has them.
    That one host copy is the only one: the token positions come from ``torch.nonzero_static`` with
    the known count, the cumulative lengths are computed on the device.
    """
    keep = attention_mask.bool()  # (B, L)
    row_lengths = keep.sum(1)  # (B,)
    if lengths is None:
        lengths = row_lengths.tolist()
    index = flat_index(keep, sum(lengths))  # (T,)
    cu = torch.nn.functional.pad(row_lengths.cumsum(0), (1, 0)).to(torch.int32)  # (B + 1,)
    setattr(cu, SIZES_ATTRIBUTE, list(lengths))
    if position_ids is None:
        position_ids = torch.arange(keep.shape[1], device=input_ids.device).expand_as(keep)  # (B, L)
    max_length = max(lengths, default=0)

    def flat(x: Tensor) -> Tensor:
        return x.expand_as(keep).reshape(-1).index_select(0, index).unsqueeze(0)  # (1, T)

    out: dict[str, Any] = {
        "input_ids": flat(input_ids),
        "position_ids": flat(position_ids),
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu,
        "max_length_q": max_length,
        "max_length_k": max_length,
    }
    if token_type_ids is not None:
        out["token_type_ids"] = flat(token_type_ids)
    return out


def flat_index(keep: Tensor, total: int | None = None) -> Tensor:
    """(T,) positions of the real tokens in ``keep.reshape(-1)`` (row-major order); with their count
    ``total`` known on the host, without a host synchronisation (``torch.nonzero_static``)."""
    flat = keep.reshape(-1)
    if total is None:
        return flat.nonzero().squeeze(1)
    return torch.nonzero_static(flat, size=int(total)).squeeze(1)


def repad(flat: Tensor, keep: Tensor, index: Tensor | None = None) -> Tensor:
    """Scatter ``(1, T, hidden)`` back to ``(B, L, hidden)`` (zeros at padding); differentiable.
    ``index``: :func:`flat_index` of ``keep``, if already computed."""
    batch, length = keep.shape
    if index is None:
        index = flat_index(keep, flat.shape[1])  # (T,)
    out = flat.new_zeros(batch * length, flat.shape[-1])
    return out.index_copy(0, index, flat[0]).view(batch, length, -1)  # (B, L, hidden)


#: feature keys that exist only in the flat call
FLAT_KEYS = ("position_ids", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")
#: outputs of sentence-transformers' ``Transformer`` that are per token, re-padded to ``(B, L, ...)``
_PER_TOKEN_OUTPUTS = ("token_embeddings", "all_layer_embeddings")


class _Hooks:
    """Forward pre-hook (unpad) and forward hook (re-pad) on one sentence-transformers ``Transformer``.

    sentence-transformers calls ``auto_model.forward`` directly (no module hooks fire there), so the
    hooks sit on its ``Transformer`` module, whose input and output is the features dict. The pre-hook
    replaces the padded features by a flat copy; the forward hook writes the module's outputs, re-padded,
    into the caller's original dict (as the padded forward does) and returns it. The original is found
    by the identity of the flat dict the forward received (held with it, so the id cannot be reused).
    """

    def __init__(self) -> None:
        # id(flat dict) -> (flat dict, its inputs as the forward received them, the caller's dict)
        self._calls: dict[int, tuple[dict[str, Any], dict[str, Any], Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"_calls": {}}

    @staticmethod
    def flat_features(module: nn.Module, features: Any) -> dict[str, Any] | None:
        """The flat copy of a padded text batch, or ``None`` where the padded path is taken."""
        from collections.abc import Mapping

        if not isinstance(features, Mapping) or features.get("modality", "text") != "text":
            return None
        ids, mask = features.get("input_ids"), features.get("attention_mask")
        already_flat = features.get("cu_seq_lens_q") is not None  # sentence-transformers' FA2 path
        if (
            not isinstance(ids, Tensor)
            or not isinstance(mask, Tensor)
            or ids.dim() != 2
            or mask.shape != ids.shape
            or already_flat
            or features.get("inputs_embeds") is not None
        ):
            return None
        lengths = mask.bool().sum(1).tolist()  # the forward's one host copy
        if all(n == ids.shape[1] for n in lengths) or not any(lengths):
            return None  # nothing to remove (the batched padded path is faster), or nothing at all
        flat = unpad_features(
            ids, mask, features.get("token_type_ids"), features.get("position_ids"), lengths=lengths
        )
        return {**{k: v for k, v in features.items() if k != "attention_mask"}, **flat}

    def pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not args:
            return None
        flat = self.flat_features(module, args[0])
        if flat is None:
            return None
        if len(self._calls) > 64:  # entries left by forwards that raised
            self._calls.clear()
        self._calls[id(flat)] = (flat, dict(flat), args[0])
        return (flat, *args[1:]), kwargs

    def post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        entry = self._calls.pop(id(args[0]), None) if args else None
        if entry is None or entry[0] is not args[0]:
            return None
        _, inputs, original = entry
        keep = original["attention_mask"].bool()  # (B, L)
        index = flat_index(keep, inputs["input_ids"].shape[1])  # (T,), no host copy
        for key, value in output.items():
            if key in FLAT_KEYS or (key in inputs and value is inputs[key]):
                continue  # the flat inputs; the caller's padded inputs stay
            if key in _PER_TOKEN_OUTPUTS and isinstance(value, Tensor):
                value = repad(value, keep, index)  # (B, L, hidden)
            elif key in _PER_TOKEN_OUTPUTS and isinstance(value, (tuple, list)):
                value = type(value)(repad(v, keep, index) for v in value)
            original[key] = value
        return original


# ---- switching it on and off ---------------------------------------------------------------------------


def transformer_modules(model: nn.Module) -> list[nn.Module]:
    """The sentence-transformers ``Transformer`` modules inside ``model`` (itself included)."""
    from sentence_transformers.base.modules import Transformer

    return [m for m in model.modules() if isinstance(m, Transformer)]


def unsupported_reason(hf_model: nn.Module) -> str | None:
    """Why ``hf_model`` cannot run padding-free (``None`` if it can)."""
    model_type = getattr(getattr(hf_model, "config", None), "model_type", None)
    if model_type == "mpnet":
        return (
            "MPNet computes attention inline (no transformers AttentionInterface dispatch) and its relative "
            "position bias from the padded length, so there is no per-sequence attention to plug in"
        )
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model_type {model_type!r} is not one of the supported {', '.join(SUPPORTED_MODEL_TYPES)}"
    if getattr(hf_model.config, "is_decoder", False):
        return "decoder (causal) BERT configurations are not supported"
    return None


def is_padding_free(model: nn.Module) -> bool:
    """Whether any sentence-transformers ``Transformer`` inside ``model`` runs padding-free."""
    return any(getattr(m, _STATE, None) is not None for m in transformer_modules(model))


def enable_padding_free(model: nn.Module) -> bool:
    """Make the forward of every supported encoder in ``model`` padding-free; returns whether any is.

    ``model``: a ``SentenceTransformer`` or its ``Transformer`` module. An unsupported architecture
    keeps the padded path, with a warning that says why. Idempotent.
    """
    register()
    enabled = False
    modules = transformer_modules(model)
    if not modules:
        logger.warning(
            "padding-free forward off: %s holds no sentence-transformers Transformer module",
            type(model).__name__,
        )
    for module in modules:
        if getattr(module, _STATE, None) is not None:
            enabled = True
            continue
        hf = module.auto_model
        reason = (
            "backend is not torch"
            if getattr(module, "backend", "torch") != "torch"
            else unsupported_reason(hf)
        )
        if reason is not None:
            logger.warning("padding-free forward off for %s (padded path): %s", type(hf).__name__, reason)
            continue
        previous = hf.config._attn_implementation
        hf.set_attn_implementation(ATTENTION_NAME)
        if hf.config._attn_implementation != ATTENTION_NAME:
            # the flat call attends per sequence only through the registered attention: a model that
            # computes attention inline (BERT before transformers 5) would attend across the batch
            logger.warning(
                "padding-free forward off for %s (padded path): its attention does not dispatch through "
                "transformers' AttentionInterface (BERT does from transformers 5.0)",
                type(hf).__name__,
            )
            continue
        hooks = _Hooks()
        handles = (
            module.register_forward_pre_hook(hooks.pre, with_kwargs=True),
            module.register_forward_hook(hooks.post, with_kwargs=True),
        )
        object.__setattr__(module, _STATE, (handles, previous))
        enabled = True
    return enabled


def disable_padding_free(model: nn.Module) -> None:
    """Undo :func:`enable_padding_free`: remove the hooks, restore the previous attention implementation."""
    for module in transformer_modules(model):
        state = getattr(module, _STATE, None)
        if state is None:
            continue
        handles, previous = state
        for handle in handles:
            handle.remove()
        module.auto_model.set_attn_implementation(previous)
        object.__delattr__(module, _STATE)


def set_padding_free(model: nn.Module, on: bool) -> bool:
    """:func:`enable_padding_free` or :func:`disable_padding_free`; returns whether ``model`` is padding-free."""
    if on:
        return enable_padding_free(model)
    disable_padding_free(model)
    return False
