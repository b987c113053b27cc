"""Batch-construction strategies of Chernyavskiy et al. (NAACL 2022, Sec. 3.2): one small class each.

A strategy computes one epoch's global order of the dataset, and the sizes of the contiguous groups
in it (ones where there are no groups), from the epoch's generator and what the sampler provides
(:class:`GroupingInput`: the grouping texts, their keys, the current model's embeddings).
The algorithms live in :mod:`bscl.batching.grouping` and :mod:`bscl.batching.knn`; the classes
hold each strategy's options and call them.

- :class:`Random` (``random``): a random permutation.
- :class:`Sequential` (``sequential``): the file order (the paper's best for CQA-A).
- :class:`NoDuplicates` (``no-duplicates``): random, no text repeated inside a batch where possible.
- :class:`Example` (``example``): Algorithm 1, example-based shuffling (two-stage Faiss kNN).
- :class:`Words` (``words``): Algorithm 2 with a random ``shingle_size``-word shingle (no stop-words).
- :class:`Clusters` (``clusters``): Algorithm 2 with the k-means cluster id as the shingle.
- :class:`Neighbours` (``neighbours``): Algorithm 2 with shingles of nearest-neighbour ids.

:data:`STRATEGIES` maps each name to its class, in a fixed order (the order salts each strategy's
epoch generator, see :meth:`bscl.batching.samplers.ContrastiveBatchSampler.rng`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from bscl.batching.grouping import (
    cluster_shingles,
    english_stop_words,
    example_order,
    group_by_shingles,
    neighbour_shingles,
    no_duplicates_order,
    tokenize,
    word_shingles,
)
from bscl.batching.knn import DEFAULT_EXACT_MAX, KnnMethod

Grouping = tuple[np.ndarray, np.ndarray]
"""An epoch's order (n,) int64 and the sizes of its contiguous groups (summing to n)."""


class GroupingInput(Protocol):
    """What a strategy reads from its sampler (:class:`~bscl.batching.samplers.ContrastiveBatchSampler`)."""

    batch_size: int
    stats: dict[str, float]
    group_sizes: np.ndarray | None

    @property
    def num_examples(self) -> int:
        """Examples in the dataset."""
        ...

    def texts(self, element: int | None = None) -> list[str]:
        """The grouping texts (default: the grouped element's)."""
        ...

    def text_keys(self) -> np.ndarray:
        """(n,) int64 codes of the grouping texts (equal texts, equal codes)."""
        ...

    def row_keys(self) -> np.ndarray:
        """(n, c) int64 codes of all text columns, codes shared across columns."""
        ...

    def embeddings(self) -> np.ndarray:
        """(n, d) float32 L2-normalised embeddings of the grouping texts with the current model."""
        ...


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.int64)


@dataclass
class Strategy:
    """Base class: one batch-construction strategy and its options (the dataclass fields).

    Class attributes:
        name: the registry name (``--batching.strategy``).
        needs_encoder: the order depends on the current model's embeddings.
        packable: packing by length keeps what the order is for (False where the order itself is
            the point: the file order, batches without repeated texts).
    """

    name: ClassVar[str]
    needs_encoder: ClassVar[bool] = False
    packable: ClassVar[bool] = True

    def order(self, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        """The epoch's order and group sizes, drawn from ``rng``."""
        raise NotImplementedError

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The option names this strategy takes."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_options(cls, **options: Any) -> Strategy:
        """The strategy with its own options picked from ``options`` (the others are left out: one
        option set serves every strategy, e.g. ``group_size`` for ``random``)."""
        unknown = sorted(set(options) - set(STRATEGY_OPTIONS))
        if unknown:
            raise TypeError(f"unknown batch strategy option(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in options.items() if k in cls.options()})


@dataclass
class Random(Strategy):
    """A random permutation."""

    name: ClassVar[str] = "random"

    def order(self, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        n = data.num_examples
        return rng.permutation(n).astype(np.int64), _ones(n)


@dataclass
class Sequential(Strategy):
    """The file order, identical at every epoch."""

    name: ClassVar[str] = "sequential"
    packable: ClassVar[bool] = False

    def order(self, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        n = data.num_examples
        return np.arange(n, dtype=np.int64), _ones(n)


@dataclass
class NoDuplicates(Strategy):
    """Random, with no text (of any column) repeated inside a batch where possible."""

    name: ClassVar[str] = "no-duplicates"
    packable: ClassVar[bool] = False

    def order(self, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        return no_duplicates_order(data.row_keys(), data.batch_size, rng), _ones(data.num_examples)


@dataclass
class Words(Strategy):
    """Algorithm 2: groups of at most ``group_size`` texts sharing a random ``shingle_size``-word shingle.

    Args:
        group_size: Algorithm 2's k (paper: 4 to 8).
        shingle_size: Algorithm 2's t (words per shingle).
        stop_words: words never part of a shingle (default: scikit-learn's English list).
    """

    name: ClassVar[str] = "words"
    group_size: int = 8
    shingle_size: int = 1
    stop_words: Sequence[str] | None = None

    def __post_init__(self) -> None:
        self._tokens: tuple[list[str], list[list[str]]] | None = None  # (texts, their tokens)

    def tokens(self, texts: list[str]) -> list[list[str]]:
        """The texts' words without stop-words (computed once for a given texts list)."""
        if self._tokens is None or self._tokens[0] is not texts:
            stop = frozenset(self.stop_words) if self.stop_words is not None else english_stop_words()
            self._tokens = (texts, [tokenize(t, stop) for t in texts])
        return self._tokens[1]

    def order(self, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        shingles = word_shingles(self.tokens(data.texts()), int(self.shingle_size), rng)
        return group_by_shingles(shingles, int(self.group_size), rng, return_groups=True)  # type: ignore[return-value]


@dataclass
class ModelStrategy(Strategy):
    """A strategy that groups by the current model's embeddings (records the grouping time)."""

    needs_encoder: ClassVar[bool] = True

    def order(self, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        emb = data.embeddings()
        t0 = time.perf_counter()
        grouping = self.group(emb, data, rng)
        data.stats["knn_s"] = time.perf_counter() - t0
        return grouping

    def group(self, emb: np.ndarray, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        """The order and group sizes from the (n, d) embeddings."""
        raise NotImplementedError


@dataclass
class Example(ModelStrategy):
    """Algorithm 1, example-based shuffling: each random example with its nearest unused neighbours.

    Args:
        group_size: Algorithm 1's s (paper: 4 to 8).
        n_candidates: the first-stage neighbour count n (paper: ~500).
        filter_identical: never put two identical grouping texts in one group.
        knn_method, exact_max, knn_options: Faiss index choice (see :class:`bscl.batching.knn.KnnIndex`):
            exact ``IndexFlatIP`` up to ``exact_max`` examples, IVF above.
    """

    name: ClassVar[str] = "example"
    group_size: int = 8
    n_candidates: int = 500
    filter_identical: bool = False
    knn_method: KnnMethod = "auto"
    exact_max: int = DEFAULT_EXACT_MAX
    knn_options: dict[str, Any] | None = None

    def group(self, emb: np.ndarray, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        filter_identical = bool(self.filter_identical)
        order, sizes = example_order(
            emb,
            int(self.group_size),
            rng,
            n_candidates=int(self.n_candidates),
            keys=data.text_keys() if filter_identical else None,
            filter_identical=filter_identical,
            method=self.knn_method,
            exact_max=int(self.exact_max),
            index_options=dict(self.knn_options or {}),
            return_groups=True,
        )
        data.group_sizes = sizes
        data.stats["groups"] = float(sizes.size)
        data.stats["singletons"] = float(np.sum(sizes == 1))
        return order, sizes


@dataclass
class Clusters(ModelStrategy):
    """Algorithm 2 with the k-means cluster id as the shingle.

    Args:
        group_size: Algorithm 2's k.
        n_clusters: k-means clusters (paper: 300).
    """

    name: ClassVar[str] = "clusters"
    group_size: int = 8
    n_clusters: int = 300

    def group(self, emb: np.ndarray, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        shingles = cluster_shingles(emb, int(self.n_clusters), rng)
        return group_by_shingles(shingles, int(self.group_size), rng, return_groups=True)  # type: ignore[return-value]


@dataclass
class Neighbours(ModelStrategy):
    """Algorithm 2 with shingles made of the ids of each example's nearest neighbours.

    Args:
        group_size: Algorithm 2's k.
        n_neighbours: neighbour ids (the example included) that make up a shingle's pool.
        shingle_size: Algorithm 2's t (neighbour ids per shingle).
        knn_method, exact_max, knn_options: Faiss index choice, as for :class:`Example`.
    """

    name: ClassVar[str] = "neighbours"
    group_size: int = 8
    n_neighbours: int = 5
    shingle_size: int = 1
    knn_method: KnnMethod = "auto"
    exact_max: int = DEFAULT_EXACT_MAX
    knn_options: dict[str, Any] | None = None

    def group(self, emb: np.ndarray, data: GroupingInput, rng: np.random.Generator) -> Grouping:
        shingles = neighbour_shingles(
            emb,
            int(self.n_neighbours),
            int(self.shingle_size),
            rng,
            method=self.knn_method,
            exact_max=int(self.exact_max),
            index_options=dict(self.knn_options or {}),
        )
        return group_by_shingles(shingles, int(self.group_size), rng, return_groups=True)  # type: ignore[return-value]


#: name -> strategy class; the order is part of each strategy's epoch generator (its salt)
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Random, Sequential, NoDuplicates, Example, Words, Clusters, Neighbours)
}
#: every strategy option name (the union of the classes' fields)
STRATEGY_OPTIONS: frozenset[str] = frozenset(o for cls in STRATEGIES.values() for o in cls.options())
#: the strategies that group by the current model's embeddings
MODEL_STRATEGIES: frozenset[str] = frozenset(n for n, cls in STRATEGIES.items() if cls.needs_encoder)
#: how a model-based strategy in reuse mode orders an epoch with nothing recorded yet: one encode
#: pass, or the ``words`` / ``random`` strategy
COLD_STARTS: tuple[str, ...] = ("encode", "words", "random")

#: names that are not strategy names, with the strategy they would mean (for the error message)
_SUGGESTIONS: dict[str, str] = {
    "shuffle": "random",
    "none": "sequential",
    "no-shuffle": "sequential",
    "nodup": "no-duplicates",
    "no-dups": "no-duplicates",
    "knn": "example",
    "example-based": "example",
    "neighbors": "neighbours",
    "cluster": "clusters",
    "word": "words",
}


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name``; a ValueError naming the strategy meant by a near miss."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    key = str(name).strip().lower().replace("_", "-")
    meant = _SUGGESTIONS.get(key, key if key in STRATEGIES else None)
    if meant is not None:
        raise ValueError(f"unknown batch strategy {name!r}; use {meant!r}")
    raise ValueError(f"unknown batch strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def build_strategy(name: str, **options: Any) -> Strategy:
    """The strategy ``name`` with its options taken from ``options`` (others ignored, unknown refused)."""
    return strategy_class(name).from_options(**options)


def check_sampler_options(
    strategy: type[Strategy], *, cold_start: str, pack_by_length: bool, pack_window: int, prefix: str = ""
) -> None:
    """The checks of the sampler's own options (``prefix`` is put before each option name)."""
    if cold_start not in COLD_STARTS:
        raise ValueError(f"{prefix}cold_start must be one of {', '.join(COLD_STARTS)} (got {cold_start!r})")
    if pack_by_length and not strategy.packable:
        raise ValueError(
            f"{prefix}pack_by_length would break the {strategy.name!r} order; "
            f"drop it or use another {prefix}strategy"
        )
    if pack_window < 1:
        raise ValueError(f"{prefix}pack_window must be >= 1 (got {pack_window})")


def check_options(
    *,
    strategy: str,
    group_size: int,
    group_by: str,
    reuse_embeddings: bool,
    cold_start: str,
    pack_by_length: bool,
    pack_window: int,
    batch_size: int | None = None,
) -> None:
    """Check the ``--batching.*`` options of ``bscl train``; a ValueError names the faulty option.

    ``batch_size`` (``--train.batch_size``, when known): a strategy's group must fit into one batch,
    else no group ever lands whole in a batch and the grouping is lost.
    """
    try:
        cls = strategy_class(strategy)
    except ValueError as err:
        raise ValueError(f"--batching.strategy: {err}") from None
    if group_size < 1:
        raise ValueError(f"--batching.group_size must be >= 1 (got {group_size})")
    if batch_size is not None and "group_size" in cls.options() and group_size > batch_size:
        raise ValueError(
            f"--batching.group_size={group_size} is larger than --train.batch_size={batch_size}: a group of "
            f"the {cls.name!r} strategy must fit into one batch; lower --batching.group_size or raise "
            "--train.batch_size"
        )
    if reuse_embeddings and not cls.needs_encoder:
        raise ValueError(
            f"--batching.reuse_embeddings applies to the strategies that group by the model's embeddings "
            f"({', '.join(sorted(MODEL_STRATEGIES))}); the {cls.name!r} strategy uses none, so it would do "
            "nothing: drop it or choose one of those"
        )
    check_sampler_options(
        cls,
        cold_start=cold_start,
        pack_by_length=pack_by_length,
        pack_window=pack_window,
        prefix="--batching.",
    )
    if group_by not in ("first", "second"):
        raise ValueError(f"--batching.group_by must be 'first' or 'second' (got {group_by!r})")
