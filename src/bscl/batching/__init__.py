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
from bscl.batching.knn import KnnIndex, knn, l2_normalize, set_faiss_threads
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
