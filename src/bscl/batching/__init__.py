"""Batch construction (Chernyavskiy et al., NAACL 2022, Sec. 3.2): which examples share a batch.

Public API:

- :func:`make_batch_sampler` / :class:`BatchSamplerFactory`: pass to
  ``SentenceTransformerTrainingArguments(batch_sampler=...)``.
- :class:`ContrastiveBatchSampler`: the sampler, with one strategy object.
- :data:`STRATEGIES`: strategy name -> class (:mod:`bscl.batching.strategies`, one class per
  strategy); :data:`COLD_STARTS`; :func:`check_options` (the ``--batching.*`` checks of ``bscl train``).
- :class:`EmbeddingCache`: records training-step embeddings for the reuse mode.
- :class:`KnnIndex`, :func:`knn`: Faiss kNN, exact or IVF behind one interface.
- :func:`example_order` (Algorithm 1), :func:`group_by_shingles` (Algorithm 2) and the shingles;
  :func:`pack_by_length` (groups of similar length share a batch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bscl._lazy import attach

# eager, and light (faiss is imported on use): the function knn shares its name with its module, which
# would shadow a lazily imported attribute
from bscl.batching.knn import KnnIndex, knn, l2_normalize, set_faiss_threads

if TYPE_CHECKING:
    from bscl.batching.cache import EmbeddingCache
    from bscl.batching.grouping import (
        cluster_shingles,
        example_order,
        group_by_shingles,
        neighbour_shingles,
        no_duplicates_order,
        pack_by_length,
        tokenize,
        word_shingles,
    )
    from bscl.batching.samplers import (
        BatchSamplerFactory,
        ContrastiveBatchSampler,
        make_batch_sampler,
        model_encoder,
    )
    from bscl.batching.strategies import (
        COLD_STARTS,
        MODEL_STRATEGIES,
        STRATEGIES,
        Clusters,
        Example,
        Neighbours,
        NoDuplicates,
        Random,
        Sequential,
        Strategy,
        Words,
        build_strategy,
        check_options,
    )

#: each public name and the module it comes from, imported on first use (:mod:`bscl._lazy`)
_LAZY: dict[str, str] = {
    "EmbeddingCache": "bscl.batching.cache",
    "cluster_shingles": "bscl.batching.grouping",
    "example_order": "bscl.batching.grouping",
    "group_by_shingles": "bscl.batching.grouping",
    "neighbour_shingles": "bscl.batching.grouping",
    "no_duplicates_order": "bscl.batching.grouping",
    "pack_by_length": "bscl.batching.grouping",
    "tokenize": "bscl.batching.grouping",
    "word_shingles": "bscl.batching.grouping",
    "BatchSamplerFactory": "bscl.batching.samplers",
    "ContrastiveBatchSampler": "bscl.batching.samplers",
    "make_batch_sampler": "bscl.batching.samplers",
    "model_encoder": "bscl.batching.samplers",
    "COLD_STARTS": "bscl.batching.strategies",
    "MODEL_STRATEGIES": "bscl.batching.strategies",
    "STRATEGIES": "bscl.batching.strategies",
    "Clusters": "bscl.batching.strategies",
    "Example": "bscl.batching.strategies",
    "Neighbours": "bscl.batching.strategies",
    "NoDuplicates": "bscl.batching.strategies",
    "Random": "bscl.batching.strategies",
    "Sequential": "bscl.batching.strategies",
    "Strategy": "bscl.batching.strategies",
    "Words": "bscl.batching.strategies",
    "build_strategy": "bscl.batching.strategies",
    "check_options": "bscl.batching.strategies",
}

__all__ = [
    "COLD_STARTS",
    "MODEL_STRATEGIES",
    "STRATEGIES",
    "BatchSamplerFactory",
    "Clusters",
    "ContrastiveBatchSampler",
    "EmbeddingCache",
    "Example",
    "KnnIndex",
    "Neighbours",
    "NoDuplicates",
    "Random",
    "Sequential",
    "Strategy",
    "Words",
    "build_strategy",
    "check_options",
    "cluster_shingles",
    "example_order",
    "group_by_shingles",
    "knn",
    "l2_normalize",
    "make_batch_sampler",
    "model_encoder",
    "neighbour_shingles",
    "no_duplicates_order",
    "pack_by_length",
    "set_faiss_threads",
    "tokenize",
    "word_shingles",
]


__getattr__, __dir__ = attach(__name__, _LAZY)
