"""Batch samplers for every batch-construction strategy of Chernyavskiy et al. (NAACL 2022, Sec. 3.2).

A :class:`ContrastiveBatchSampler` computes, at the start of each epoch (epoch 1 too), one global
order of the dataset from ``(seed, epoch)`` (and, for the model-based strategies, the current
model's embeddings), and yields consecutive ``batch_size`` chunks of it. The strategy, an object
of :mod:`bscl.batching.strategies` (one class per name in :data:`STRATEGIES`), computes the order;
the sampler holds what every strategy shares: the epoch generator, the embeddings (re-encoded or
reused), packing by length, the DDP broadcast of the order and the per-epoch stats. Strategies:

- ``random``: a random permutation.
- ``sequential``: the file order (the paper's best for CQA-A); identical at every epoch.
- ``no-duplicates``: random, with no text repeated inside a batch where possible.
- ``example``: Algorithm 1, example-based shuffling (two-stage Faiss kNN, groups of ``group_size``).
- ``words``: Algorithm 2, shuffling by a random ``shingle_size``-word shingle (no stop-words).
- ``clusters``: Algorithm 2 with the k-means cluster id (``n_clusters``, paper: 300) as the shingle.
- ``neighbours``: Algorithm 2 with shingles made of the ids of the ``n_neighbours`` nearest neighbours.

Two speed options (off by default; the paper's runs use neither):

- ``pack_by_length=True``: keep the groups, but put groups of similar length into the same batch
  (:func:`~bscl.batching.grouping.pack_by_length`): less padding, hence faster steps.
- ``cold_start="words"`` (or ``"random"``) with ``reuse_embeddings=True``: the first epoch, when no
  training embeddings have been recorded yet, is grouped by words (or randomly) instead of paying
  one encode pass over the data; the following epochs group by the recorded embeddings.

Distributed training (DDP). The global batch j of an epoch is the positions
``[j * B * P, (j + 1) * B * P)`` of the global order (B = per-device batch size, P = world size),
and rank r trains on its slice ``[j * B * P + r * B, j * B * P + (r + 1) * B)``. Every rank computes
the same order (the model-based ones on rank 0, then broadcast). Two modes produce the slices:

- ``shard="accelerate"`` (default; what SentenceTransformerTrainer needs): the sampler yields all
  per-device chunks of the global order; accelerate wraps it in ``BatchSamplerShard`` (with
  ``split_batches=False``, its default, and ``even_batches=False``, which the trainer sets for
  training), which hands chunk ``j * P + r`` to rank r, i.e. exactly rank r's slice of global batch j.
- ``shard="self"``: the sampler yields only this rank's slices (for a plain DataLoader, without
  accelerate).

Plugging into SentenceTransformerTrainer (the trainer calls
``batch_sampler(dataset, batch_size=, drop_last=, valid_label_columns=, generator=, seed=)`` and
``set_epoch(epoch)`` at the start of each epoch)::

    factory = make_batch_sampler("example", group_size=8, reuse_embeddings=True, model=model)
    loss = MyLoss(model, embedding_callback=factory.embedding_cache)   # records training embeddings
    args = SentenceTransformerTrainingArguments(..., batch_sampler=factory)
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler

from bscl.batching.cache import EmbeddingCache
from bscl.batching.encoding import encode_by_length
from bscl.batching.grouping import factorize, pack_by_length
from bscl.batching.knn import as_float32, l2_normalize
from bscl.batching.strategies import (
    STRATEGIES,
    STRATEGY_OPTIONS,
    Strategy,
    build_strategy,
    check_sampler_options,
    strategy_class,
)

logger = logging.getLogger(__name__)

Encoder = Callable[[list[str]], np.ndarray]

#: each strategy's salt of the epoch generator: its place in the registry
_SALT = {name: i for i, name in enumerate(STRATEGIES)}


def model_encoder(
    model: Any,
    batch_size: int = 64,
    *,
    max_tokens: int | None = None,
    show_progress_bar: bool | None = None,
) -> Encoder:
    """An encoder (texts -> float32 (n, d) L2-normalised) from a SentenceTransformer-like ``model``.

    One forward-only pass (``model.encode``: no autograd) in batches of similar token length cut by a
    token budget (:func:`~bscl.batching.encoding.encode_by_length`; padding-free when the model is),
    with a progress bar on a terminal (``show_progress_bar``: force it on or off). Restores the
    model's training mode afterwards.
    """

    def encode(texts: list[str]) -> np.ndarray:
        return as_float32(
            encode_by_length(
                model,
                texts,
                batch_size=batch_size,
                max_tokens=max_tokens,
                show_progress_bar=show_progress_bar,
                desc="sampler encode pass",
            )
        )

    return encode


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _dist_active() -> bool:
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def _broadcast_order(order: np.ndarray | None, n: int) -> np.ndarray:
    """Broadcast rank 0's order (n,) int64 to all ranks (collective)."""
    dist = torch.distributed
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    if dist.get_rank() == 0:
        assert order is not None
        t = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64))
    else:
        t = torch.empty(n, dtype=torch.int64)
    if device is not None:
        t = t.to(device)
    dist.broadcast(t, src=0)
    return t.cpu().numpy()


class ContrastiveBatchSampler(DefaultBatchSampler):
    """Batch sampler for one batch-construction strategy (see the module docstring).

    Args:
        dataset: a ``datasets.Dataset`` (or anything with ``column_names`` and ``__getitem__`` by
            column name) whose first two text columns are the query and the answer.
        batch_size: per-device batch size B.
        drop_last: drop the last incomplete batch (global-batch semantics under DDP, see below).
        valid_label_columns, generator: accepted for the trainer's signature; label columns are
            not text; the generator is unused (the order depends only on ``seed`` and the epoch).
        seed: base seed; the epoch's order is a function of (seed, epoch, strategy[, model]).
        strategy: a :class:`~bscl.batching.strategies.Strategy` (or a name of :data:`STRATEGIES`,
            with the strategy's default options).
        element: group by the ``"first"`` (query) or ``"second"`` (answer) text, or 0/1.
        columns: the (query, answer) column names (default: the first two text columns).
        encoder: texts -> float32 (n, d) L2-normalised embeddings with the *current* model (needed by
            the model-based strategies; set it later with the attribute or :meth:`set_model`).
        embedding_cache: an :class:`EmbeddingCache` the sampler feeds with each yielded batch's
            indices (for the reuse mode, or just to record).
        reuse_embeddings: read the previous epoch's training embeddings from ``embedding_cache``
            instead of re-encoding (unseen examples are encoded).
        cold_start: with ``reuse_embeddings``, the strategy that orders an epoch for which nothing is
            recorded yet (epoch 1) in place of a model-based one: ``None`` (one encode pass), or a
            :class:`~bscl.batching.strategies.Strategy` that needs no model (``words``, ``random``).
        rank, world_size: this process' slice (default: torch.distributed if initialised, else 0/1).
        shard: ``"accelerate"`` (yield every per-device chunk; accelerate shards) or ``"self"``.
        pack_by_length: put groups of similar length into the same batch (not with ``sequential``
            or ``no-duplicates``, whose orders it would break).
        pack_window: batches per packing window (the coarse order of the epoch is kept across windows).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        *,
        strategy: Strategy | str = "random",
        element: str | int = "first",
        columns: Sequence[str] | None = None,
        encoder: Encoder | None = None,
        embedding_cache: EmbeddingCache | None = None,
        reuse_embeddings: bool = False,
        cold_start: Strategy | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        shard: Literal["accelerate", "self"] = "accelerate",
        pack_by_length: bool = False,
        pack_window: int = 64,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        self.dataset = dataset
        self.seed = int(seed or 0)
        self.strategy: Strategy = build_strategy(strategy) if isinstance(strategy, str) else strategy
        if cold_start is not None and cold_start.needs_encoder:
            raise ValueError(f"cold_start must need no model (got the {cold_start.name!r} strategy)")
        self.cold_start = cold_start
        if element in ("first", 0, "query", "q"):
            self.element = 0
        elif element in ("second", 1, "answer", "a"):
            self.element = 1
        else:
            raise ValueError(f"element must be 'first' or 'second', got {element!r}")
        self.columns = list(columns) if columns is not None else self._text_columns(valid_label_columns)
        self.encoder = encoder
        self.reuse_embeddings = bool(reuse_embeddings)
        if self.reuse_embeddings and embedding_cache is None:
            embedding_cache = EmbeddingCache()
        self.embedding_cache = embedding_cache
        if embedding_cache is not None:
            needed = "first" if self.element == 0 else "second"
            keep = embedding_cache.element in (needed, "both")
            embedding_cache.bind(len(dataset), element=None if keep else needed)
        d_rank, d_world = _dist_info()
        self.rank = d_rank if rank is None else int(rank)
        self.world_size = d_world if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world_size {self.world_size}")
        if shard not in ("accelerate", "self"):
            raise ValueError("shard must be 'accelerate' or 'self'")
        self.shard = shard
        check_sampler_options(
            type(self.strategy),
            cold_start=cold_start.name if cold_start is not None else "encode",
            pack_by_length=bool(pack_by_length),
            pack_window=int(pack_window),
        )
        self.pack_by_length = bool(pack_by_length)
        self.pack_window = int(pack_window)
        self._lengths: np.ndarray | None = None
        self._texts: dict[int, list[str]] = {}
        self._keys: dict[int, np.ndarray] = {}
        self._order_epoch: int | None = None
        self._order: np.ndarray | None = None
        self.stats: dict[str, float] = {}
        self.group_sizes: np.ndarray | None = None  # example strategy: sizes of the last epoch's groups

    # ---- data ----------------------------------------------------------------------------------

    def _text_columns(self, label_columns: list[str] | None) -> list[str]:
        names = list(getattr(self.dataset, "column_names", []))
        labels = set(label_columns or []) | {"label", "score", "labels", "scores", "dataset_name"}
        features = getattr(self.dataset, "features", None)
        text: list[str] = []
        for name in names:
            if name in labels:
                continue
            dtype = getattr(features[name], "dtype", None) if features is not None else None
            if dtype is None or dtype in ("string", "large_string"):
                text.append(name)
        if not text:
            raise ValueError(f"no text columns found in {names}")
        return text

    def texts(self, element: int | None = None) -> list[str]:
        """The grouping texts (column ``columns[element]``), cached."""
        e = self.element if element is None else element
        if e not in self._texts:
            col = self.columns[min(e, len(self.columns) - 1)]
            self._texts[e] = [str(t) for t in self.dataset[col]]
        return self._texts[e]

    @property
    def num_examples(self) -> int:
        """Examples in the dataset."""
        return len(self.dataset)

    def text_keys(self) -> np.ndarray:
        """(n,) int64 codes of the grouping texts (equal texts, equal codes), cached."""
        if self.element not in self._keys:
            self._keys[self.element] = factorize(self.texts())
        return self._keys[self.element]

    def row_keys(self) -> np.ndarray:
        """(n, c) int64 codes of all text columns, codes shared across columns."""
        cols = [self.texts(e) for e in range(len(self.columns))]
        n = len(self.dataset)
        flat = factorize([t for col in cols for t in col])  # (c * n,)
        return flat.reshape(len(cols), n).T.copy()  # (n, c)

    # ---- epochs --------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of every epoch; the order is recomputed lazily."""
        super().set_epoch(int(epoch))

    def rng(self, epoch: int | None = None) -> np.random.Generator:
        """The epoch's generator: a function of (seed, epoch, strategy) only."""
        e = self.epoch if epoch is None else epoch
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(e), _SALT[self.strategy.name]]))

    def epoch_order(self, epoch: int | None = None) -> np.ndarray:
        """The global order (n,) int64 of the epoch (computed once per epoch, then cached)."""
        e = self.epoch if epoch is None else int(epoch)
        if self._order_epoch == e and self._order is not None:
            return self._order
        t0 = time.perf_counter()
        self.stats = {"encode_s": 0.0, "n_encoded": 0.0}
        if self.strategy.needs_encoder and _dist_active():
            if self.reuse_embeddings and self.embedding_cache is not None:
                self.embedding_cache.synchronize()
            order = self._compute_order(e) if torch.distributed.get_rank() == 0 else None
            order = _broadcast_order(order, len(self.dataset))
        else:
            order = self._compute_order(e)
        self.stats["total_s"] = time.perf_counter() - t0
        self.stats["group_s"] = self.stats["total_s"] - self.stats["encode_s"]
        n = len(self.dataset)
        if order.shape != (n,):
            raise AssertionError(f"strategy {self.strategy.name} returned {order.shape}, expected ({n},)")
        self._order_epoch, self._order = e, order
        return order

    def lengths(self) -> np.ndarray:
        """(n,) characters of each pair (all text columns), the packing key (cached)."""
        if self._lengths is None:
            cols = [self.texts(e) for e in range(len(self.columns))]
            self._lengths = np.sum([[len(t) for t in col] for col in cols], axis=0).astype(np.int64)
        return self._lengths

    def _compute_order(self, epoch: int) -> np.ndarray:
        rng = self.rng(epoch)
        order, sizes = self._grouped_order(rng)
        if not self.pack_by_length:
            return order
        t0 = time.perf_counter()
        order = pack_by_length(order, sizes, self.lengths(), self.batch_size, rng, window=self.pack_window)
        self.stats["pack_s"] = time.perf_counter() - t0
        return order

    def _cold(self) -> bool:
        """Reuse mode with nothing recorded yet and a cold start that needs no model."""
        if not (self.reuse_embeddings and self.cold_start is not None and self.embedding_cache is not None):
            return False
        _, seen = self.embedding_cache.lookup(self.element)
        return not bool(np.any(seen))

    def _grouped_order(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's order (n,) and the sizes of its contiguous groups (ones where there are none)."""
        if self.strategy.needs_encoder and self._cold():
            assert self.cold_start is not None
            self.stats["cold_start"] = 1.0
            return self.cold_start.order(self, rng)
        return self.strategy.order(self, rng)

    def embeddings(self) -> np.ndarray:
        """(n, d) float32 L2-normalised embeddings of the grouping texts with the current model.

        In reuse mode, the rows recorded by the :class:`EmbeddingCache` during earlier training
        steps, and one encode pass for the examples never seen.
        """
        n = len(self.dataset)
        texts = self.texts()
        cached, seen = (None, np.zeros(n, dtype=bool))
        if self.reuse_embeddings and self.embedding_cache is not None:
            cached, seen = self.embedding_cache.lookup(self.element)
        missing = np.flatnonzero(~seen)
        self.stats["n_reused"] = float(n - missing.size)
        if missing.size == 0 and cached is not None:
            return cached
        if self.encoder is None:
            raise RuntimeError(
                f"strategy {self.strategy.name!r} needs an encoder with the current model: train with "
                "bscl.training.BSCLTrainer (which sets it), or pass the model to the factory "
                "(make_batch_sampler(..., model=model)) before training with another trainer"
            )
        t0 = time.perf_counter()
        fresh = l2_normalize(self.encoder([texts[i] for i in missing]))  # (m, d)
        self.stats["encode_s"] += time.perf_counter() - t0
        self.stats["n_encoded"] += float(missing.size)
        if cached is None or missing.size == n:
            return fresh
        if fresh.shape[1] != cached.shape[1]:
            raise ValueError(f"encoder dim {fresh.shape[1]} != cached dim {cached.shape[1]}")
        out = cached.copy()
        out[missing] = fresh
        return out

    # ---- batches -------------------------------------------------------------------------------

    def global_batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """All per-device chunks of the epoch's global order (chunk ``j * P + r`` = rank r, batch j)."""
        order = self.epoch_order(epoch)
        b = self.batch_size
        n_chunks = self._num_chunks()
        return [order[i * b : (i + 1) * b] for i in range(n_chunks)]

    def _num_chunks(self) -> int:
        """Per-device chunks of the global order, after ``drop_last`` (which drops whole global batches)."""
        n, b, p = len(self.dataset), self.batch_size, self.world_size
        if self.drop_last:
            return (n // (b * p)) * p
        return (n + b - 1) // b

    def _mine(self, chunk_index: int) -> bool:
        return chunk_index % self.world_size == self.rank

    def __iter__(self) -> Iterator[list[int]]:
        chunks = self.global_batches()
        cache = self.embedding_cache
        if cache is not None:
            cache.start_epoch(self.epoch)
        for i, chunk in enumerate(chunks):
            mine = self._mine(i)
            if self.shard == "self" and not mine:
                continue
            if chunk.size == 0:
                continue
            batch = chunk.tolist()
            if cache is not None and mine:
                cache.push(chunk)
            yield batch

    def __len__(self) -> int:
        n_chunks = self._num_chunks()
        if self.shard == "accelerate":
            return n_chunks
        return len(range(self.rank, n_chunks, self.world_size))


#: the sampler's own keyword options (beyond the trainer's arguments); the rest belong to strategies
_SAMPLER_OPTIONS: frozenset[str] = frozenset(
    p.name
    for p in inspect.signature(ContrastiveBatchSampler.__init__).parameters.values()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
) - {"strategy", "cold_start", "encoder", "embedding_cache"}


class BatchSamplerFactory:
    """What to pass as ``SentenceTransformerTrainingArguments(batch_sampler=...)``.

    Called by the trainer as ``factory(dataset, batch_size=, drop_last=, valid_label_columns=,
    generator=, seed=)``; returns a :class:`ContrastiveBatchSampler` with the factory's options
    (an explicit ``seed`` option overrides the trainer's ``args.seed``) and a strategy object of
    its own. Holds the ``encoder`` and the shared ``embedding_cache`` (created when
    ``reuse_embeddings=True``), which the trainer glue wires to the model and to the loss's
    ``embedding_callback``.

    Args:
        strategy: a name of :data:`STRATEGIES`.
        options: the strategy's options (the fields of its class in :mod:`bscl.batching.strategies`:
            ``group_size``, ``n_candidates``, ``filter_identical``, ``knn_method``, ``exact_max``,
            ``knn_options``, ``shingle_size``, ``n_clusters``, ``n_neighbours``, ``stop_words``;
            another strategy's option is accepted and left unused), the
            :class:`ContrastiveBatchSampler` keyword arguments (``element``, also spelt ``group_by``,
            ``columns``, ``reuse_embeddings``, ``rank``, ``world_size``, ``shard``, ``pack_by_length``,
            ``pack_window``), ``cold_start`` (one of :data:`COLD_STARTS`: ``"encode"``, or the strategy
            that orders epoch 1 in reuse mode, with the same options), ``seed``, ``encoder`` and
            ``embedding_cache``; ``model``: a SentenceTransformer to encode with (the same as calling
            :meth:`set_model` with it; ``BSCLTrainer`` passes the model it trains when neither this
            nor an ``encoder`` was given).
    """

    def __init__(self, strategy: str, **options: Any) -> None:
        cls = strategy_class(strategy)
        self.strategy = cls.name
        self._encoder: Encoder | None = options.pop("encoder", None)
        model = options.pop("model", None)
        cache = options.pop("embedding_cache", None)
        if cache is None and options.get("reuse_embeddings"):
            cache = EmbeddingCache()
        self.embedding_cache: EmbeddingCache | None = cache
        if "group_by" in options:  # the name of ``element`` in ``--batching.group_by``
            options["element"] = options.pop("group_by")
        unknown = sorted(set(options) - STRATEGY_OPTIONS - _SAMPLER_OPTIONS - {"seed", "cold_start"})
        if unknown:
            raise TypeError(f"unknown batch sampler option(s): {', '.join(unknown)}")
        check_sampler_options(
            cls,
            cold_start=options.get("cold_start", "encode"),
            pack_by_length=bool(options.get("pack_by_length", False)),
            pack_window=int(options.get("pack_window", 64)),
        )
        self.options = options
        self.samplers: list[ContrastiveBatchSampler] = []
        if model is not None:
            self.set_model(model)

    @property
    def encoder(self) -> Encoder | None:
        """texts -> float32 (n, d) L2-normalised; setting it updates the samplers already built."""
        return self._encoder

    @encoder.setter
    def encoder(self, fn: Encoder | None) -> None:
        self._encoder = fn
        for s in self.samplers:
            s.encoder = fn

    def set_model(
        self,
        model: Any,
        batch_size: int = 64,
        *,
        max_tokens: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        """Encode with ``model`` (SentenceTransformer-like; see :func:`model_encoder`). ``BSCLTrainer``
        calls it with the model it trains when no encoder was set."""
        self.encoder = model_encoder(
            model, batch_size=batch_size, max_tokens=max_tokens, show_progress_bar=show_progress_bar
        )

    @property
    def needs_encoder(self) -> bool:
        """Whether the strategy groups by model embeddings."""
        return STRATEGIES[self.strategy].needs_encoder

    @property
    def last_sampler(self) -> ContrastiveBatchSampler | None:
        """The most recently built sampler (the trainer builds one per train dataloader)."""
        return self.samplers[-1] if self.samplers else None

    def __call__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> ContrastiveBatchSampler:
        opts = dict(self.options)
        if not seed and generator is not None:
            # sentence-transformers 5.x passes seed=0 whatever args.seed is, with the generator it seeded
            # with args.seed (6.x passes both): the generator's seed is the trainer's
            seed = generator.initial_seed()
        seed = opts.pop("seed", seed)
        cold_start = opts.pop("cold_start", "encode")
        strategy_opts = {k: opts.pop(k) for k in list(opts) if k in STRATEGY_OPTIONS}
        sampler = ContrastiveBatchSampler(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=0 if seed is None else seed,
            strategy=build_strategy(self.strategy, **strategy_opts),
            cold_start=None if cold_start == "encode" else build_strategy(cold_start, **strategy_opts),
            encoder=self._encoder,
            embedding_cache=self.embedding_cache,
            **opts,
        )
        self.samplers.append(sampler)
        return sampler

    def __getstate__(self) -> dict[str, Any]:
        """Picklable without the runtime state: the trainer saves its args (this factory included)
        with ``torch.save`` at every checkpoint; the encoder (a closure over the model), the built
        samplers and the recorded embeddings are left out (a restored factory starts a fresh cache)."""
        state = dict(self.__dict__)
        state["_encoder"] = None
        state["samplers"] = []
        if state.get("embedding_cache") is not None:
            state["embedding_cache"] = EmbeddingCache(element=self.embedding_cache.element)  # type: ignore[union-attr]
        return state

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"BatchSamplerFactory({self.strategy!r}{', ' if opts else ''}{opts})"


def make_batch_sampler(strategy: str, **options: Any) -> BatchSamplerFactory:
    """A factory for ``SentenceTransformerTrainingArguments(batch_sampler=...)``.

    ``options``: see :class:`BatchSamplerFactory` (``group_size``, ``element``, ``n_candidates``,
    ``filter_identical``, ``reuse_embeddings``, ``cold_start``, ``seed``, ``shingle_size``,
    ``n_clusters``, ``n_neighbours``, ``knn_method``, ``pack_by_length``, ``encoder``, ...).
    """
    return BatchSamplerFactory(strategy, **options)
