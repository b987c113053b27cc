"""Forward-only encode passes batched by token length: the sampler's grouping pass and the evaluations.

``SentenceTransformer.encode`` already runs under ``torch.inference_mode`` and sorts the texts, but by
*characters*, and cuts batches of a fixed number of texts. :func:`encode_by_length` instead:

- counts each text's tokens with the model's own (fast) tokenizer, in one call over all texts, and
  sorts by that count, so a batch holds texts of (nearly) the same token length: the padded forward
  computes almost no padding, and with the padding-free forward (:mod:`bscl.padding_free`, which works
  through the same hooks here) runs of equal lengths are contiguous;
- cuts batches by a **token budget** (``max_tokens`` real tokens, at most ``batch_size`` texts unless
  the budget allows more): short texts go in large batches (larger matmuls, fewer calls), long texts in
  small ones (bounded memory); the cost of a batch is proportional to its tokens, not its rows;
- shows a ``tqdm`` progress bar over the texts (by default only on a terminal, ``show_progress_bar``
  forces it on or off).

Each batch is still encoded by ``model.encode`` (its preprocessing, device handling and
``inference_mode``), called with the batch as one batch, so the embeddings are those of
``model.encode`` up to float rounding (a row's numbers depend on the matmul shapes of its batch only
through summation order). No library cuts encode batches by a token budget, hence this module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

#: default real-token budget of one batch per ``batch_size`` text: 64 texts x 32 tokens = 2,048
TOKENS_PER_TEXT = 32


def token_lengths(model: Any, texts: Sequence[str]) -> np.ndarray:
    """(n,) int64 tokens of each text as the model will see them (special tokens included, truncated
    to ``model.max_seq_length``); characters where the model has no callable tokenizer."""
    tokenizer = getattr(model, "tokenizer", None)
    limit = getattr(model, "max_seq_length", None)
    if not callable(tokenizer):
        return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    kwargs: dict[str, Any] = {"truncation": True, "max_length": limit} if limit else {}
    ids = tokenizer(list(texts), add_special_tokens=True, **kwargs)["input_ids"]
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))


def length_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Index batches, longest texts first, each of at most ``max_tokens`` tokens (default
    ``batch_size * TOKENS_PER_TEXT``) and at least one text; ties keep the input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    budget = int(max_tokens) if max_tokens is not None else batch_size * TOKENS_PER_TEXT
    if budget < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # (n,)
    cum = np.cumsum(np.maximum(lengths[order], 1))  # (n,) tokens up to and including each text
    batches: list[np.ndarray] = []
    start, n = 0, order.size
    while start < n:
        # the longest run from ``start`` whose tokens fit the budget (at least one text)
        before = int(cum[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(cum, before + budget, side="right")))
        batches.append(order[start:stop])
        start = stop
    return batches


def encode_by_length(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    max_tokens: int | None = None,
    normalize: bool = True,
    show_progress_bar: bool | None = None,
    desc: str = "encode",
) -> np.ndarray:
    """(n, d) float32 embeddings of ``texts`` (L2-normalised with ``normalize``), in input order.

    Batches from :func:`length_batches`; each is one ``model.encode`` call. ``show_progress_bar``:
    ``None`` = only when stderr is a terminal. The model is left in the training mode it had.
    """
    from tqdm.auto import tqdm

    texts = list(texts)
    if not texts:
        dim = (
            model.get_sentence_embedding_dimension()
            if hasattr(model, "get_sentence_embedding_dimension")
            else 0
        )
        return np.zeros((0, dim or 0), dtype=np.float32)
    batches = length_batches(token_lengths(model, texts), batch_size, max_tokens)
    show = sys.stderr.isatty() if show_progress_bar is None else bool(show_progress_bar)
    was_training = bool(getattr(model, "training", False))
    out: np.ndarray | None = None
    try:
        with tqdm(total=len(texts), desc=desc, unit="text", disable=not show, leave=False) as bar:
            for index in batches:
                emb = model.encode(
                    [texts[i] for i in index],
                    batch_size=int(index.size),
                    convert_to_numpy=True,
                    normalize_embeddings=normalize,
                    show_progress_bar=False,
                )
                emb = np.asarray(emb, dtype=np.float32)  # (b, d)
                if out is None:
                    out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
                out[index] = emb
                bar.update(int(index.size))
    finally:
        if was_training:
            model.train()  # SentenceTransformer.encode switches to eval mode
    assert out is not None
    return out
