"""Epoch orders for batch construction (Chernyavskiy et al., NAACL 2022, Sec. 3.2).

Every function returns a permutation of ``range(n)`` (int64): the epoch's global order of example
indices. Batches are consecutive chunks of that order (see :mod:`bscl.batching.samplers`).

- :func:`example_order`: Algorithm 1, example-based shuffling with a two-stage Faiss kNN.
- :func:`group_by_shingles`: Algorithm 2, shuffling by shingles (words, cluster ids, neighbour ids).
- :func:`word_shingles`, :func:`cluster_shingles`, :func:`neighbour_shingles`: the shingles.
- :func:`no_duplicates_order`: random order whose batch-sized chunks repeat no text when possible.
- :func:`pack_by_length`: rearrange whole groups of an order so that each batch holds texts of
  similar length (less padding, the same groups).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from bscl.batching.knn import KnnIndex, KnnMethod, as_float32, gpu_count

_TOKEN = re.compile(r"\w+", re.UNICODE)


def english_stop_words() -> frozenset[str]:
    """The scikit-learn English stop-word list (318 words)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def factorize(values: Sequence[object]) -> np.ndarray:
    """Integer codes (int64, first-occurrence order) of hashable values: equal values, equal codes."""
    codes: dict[object, int] = {}
    return np.fromiter((codes.setdefault(v, len(codes)) for v in values), dtype=np.int64, count=len(values))


# --------------------------------------------------------------------------------------------------
# Algorithm 1: example-based shuffling
# --------------------------------------------------------------------------------------------------


def example_order(
    embeddings: np.ndarray,
    group_size: int,
    rng: np.random.Generator,
    *,
    n_candidates: int = 500,
    keys: np.ndarray | None = None,
    filter_identical: bool = False,
    method: KnnMethod = "auto",
    exact_max: int = 50_000,
    block_size: int = 4096,
    index_options: dict[str, object] | None = None,
    index: KnnIndex | None = None,
    return_groups: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Algorithm 1 (example-based shuffling), returning the reversed group sequence.

    Randomly shuffle D; for each example e not used yet, take its ``n_candidates`` nearest
    neighbours (Faiss, inner product of the given, normally L2-normalised, embeddings), keep the top
    ``group_size - 1`` that are not used yet, and append e and them to R as one group (all become
    used). Return R reversed, so that the trailing 1-element groups (whose neighbours were all
    taken) come first, as a curriculum.

    Implementation: the shuffled sequence is processed in blocks of ``block_size``; the kNN search
    is run once per block for the block's examples that are still unused at the block's start
    (examples taken by an earlier group are never queried), so the number of searches is close to
    the number of groups, not n. The greedy selection per query is a few NumPy operations on the
    (n_candidates,) candidate row.

    Args:
        embeddings: (n, d) float32, L2-normalised for cosine.
        group_size: s, the size of a group (the paper uses 4 to 8).
        rng: the epoch's random generator (for the shuffle and the index's k-means).
        n_candidates: n, the first-stage candidate count (paper: ~500).
        keys: (n,) int codes of the grouping texts; with ``filter_identical`` a group never holds two
            examples with the same key (identical texts are "filtered" from each other's groups).
        filter_identical: see ``keys``.
        method, exact_max, index_options: passed to :class:`~bscl.batching.knn.KnnIndex`.
        block_size: queries per kNN call.
        index: a prebuilt index over ``embeddings`` (then method/exact_max/index_options are unused).
        return_groups: also return the group sizes (int64), in the order of the returned sequence
            (the groups are contiguous in it).
    """
    x = as_float32(embeddings)
    n = x.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (empty, empty.copy()) if return_groups else empty
    if group_size < 1:
        raise ValueError("group_size must be >= 1")
    if filter_identical and keys is None:
        raise ValueError("filter_identical=True needs the texts' keys")
    perm = rng.permutation(n).astype(np.int64)
    if group_size == 1 or n == 1:
        return (perm[::-1].copy(), np.ones(n, dtype=np.int64)) if return_groups else perm[::-1].copy()
    if index is None:
        opts = dict(index_options or {})
        opts.setdefault("seed", int(rng.integers(0, 2**31 - 1)))
        index = KnnIndex(x, method=method, exact_max=exact_max, **opts)  # type: ignore[arg-type]
    k = min(n, max(int(n_candidates), group_size))
    need = group_size - 1

    used = np.zeros(n, dtype=bool)
    out = np.empty(n, dtype=np.int64)
    sizes: list[int] = []
    pos = 0
    for start in range(0, n, block_size):
        block = perm[start : start + block_size]
        queries = block[~used[block]]
        if queries.size == 0:
            continue
        _, ids = index.search(x[queries], k)  # (q, k)
        for row in range(queries.size):
            e = int(queries[row])
            if used[e]:
                continue
            used[e] = True
            out[pos] = e
            pos += 1
            cand = ids[row]
            free = cand[~used[cand]] if cand[-1] >= 0 else _valid(cand, used)
            if filter_identical and free.size:
                free = free[keys[free] != keys[e]]  # type: ignore[index]
                if free.size > 1:
                    _, first = np.unique(keys[free], return_index=True)  # type: ignore[index]
                    free = free[np.sort(first)]
            take = free[:need]
            used[take] = True
            out[pos : pos + take.size] = take
            pos += take.size
            sizes.append(1 + take.size)
    # Every example is either a query (the first unused one of its block) or taken by one.
    assert pos == n, (pos, n)
    if return_groups:
        return out[::-1].copy(), np.asarray(sizes[::-1], dtype=np.int64)
    return out[::-1].copy()


def _valid(cand: np.ndarray, used: np.ndarray) -> np.ndarray:
    cand = cand[cand >= 0]
    return cand[~used[cand]]


# --------------------------------------------------------------------------------------------------
# Algorithm 2: shuffling by shingles
# --------------------------------------------------------------------------------------------------


def group_by_shingles(
    shingles: np.ndarray, group_size: int, rng: np.random.Generator, *, return_groups: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Algorithm 2 (shuffling by words/clusters/neighbours) on integer shingle codes.

    Sort D by shingle (after a random shuffle, so that ties come in random order); walking the
    sorted sequence, start a new group with a random id when the shingle changes or the current
    group has reached ``group_size`` examples; finally sort by group id. The pseudo-code in the
    paper does not reset the counter when the shingle changes; we do (a new shingle starts a new,
    empty group), which is what the text describes ("we split a group if it is too large").

    Fully vectorised (two sorts). Args: shingles (n,) int64 codes, one per example (equal code =
    same shingle); group_size k; rng. Returns the permutation (n,) int64, and with ``return_groups``
    also the group sizes (int64) in the order of the permutation (the groups are contiguous in it).
    """
    codes = np.asarray(shingles)
    n = codes.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (empty, empty.copy()) if return_groups else empty
    k = max(1, int(group_size))
    perm = rng.permutation(n).astype(np.int64)
    order = perm[np.argsort(codes[perm], kind="stable")]  # sorted by shingle, random within ties
    sorted_codes = codes[order]
    change = np.empty(n, dtype=bool)
    change[0] = True
    change[1:] = sorted_codes[1:] != sorted_codes[:-1]
    run_start = np.maximum.accumulate(np.where(change, np.arange(n), 0))  # (n,) start of the run
    offset = np.arange(n) - run_start
    new_group = change | (offset % k == 0)
    group = np.cumsum(new_group) - 1  # (n,) sequential group number
    n_groups = int(group[-1]) + 1
    group_rank = rng.permutation(n_groups)  # random group ids (a random order of the groups)
    out = order[np.argsort(group_rank[group], kind="stable")].astype(np.int64)
    if not return_groups:
        return out
    counts = np.bincount(group, minlength=n_groups)  # (n_groups,) size of each sequential group
    return out, counts[np.argsort(group_rank)].astype(np.int64)


def pack_by_length(
    order: np.ndarray,
    group_sizes: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    window: int = 64,
) -> np.ndarray:
    """Rearrange the groups of an epoch order so that each batch holds texts of similar length.

    A bi-encoder pads every text column of a batch to the batch's longest text, so a batch mixing
    short and long pairs computes mostly padding. This keeps every group of ``order`` intact and
    contiguous (the kNN / shingle groups the paper's algorithms built) and only changes which
    groups share a batch: the order is cut into windows of ``window * batch_size`` positions; inside
    a window the groups are sorted by their longest member's length and the window's full batches
    are then put in a random order. Windows stay where they were, so the coarse order of the epoch
    (e.g. Algorithm 1's singletons-first curriculum) is kept, and the last, incomplete batch stays
    last. Sequence bucketing by length is standard (e.g. ``torchtext``'s ``BucketIterator``), but
    no library does it for groups that must stay together, hence this function.

    Args:
        order: (n,) int64 permutation (the epoch's global order).
        group_sizes: (g,) sizes of the contiguous groups of ``order`` (sum = n); all ones packs
            single examples.
        lengths: (n,) a length per example index (characters or tokens of the pair).
        batch_size: the per-device batch size.
        rng: the epoch's generator.
        window: batches per window (1 keeps the batches' order random only inside each batch).

    Returns the new order (n,) int64, a permutation with the same groups.
    """
    order = np.asarray(order, dtype=np.int64)
    sizes = np.asarray(group_sizes, dtype=np.int64)
    n = order.shape[0]
    if sizes.sum() != n or (sizes < 1).any():
        raise ValueError(f"group sizes must be >= 1 and sum to {n} (got sum {int(sizes.sum())})")
    if n == 0:
        return order.copy()
    b = max(1, int(batch_size))
    span = max(1, int(window)) * b
    starts = np.cumsum(sizes) - sizes  # (g,) first position of each group
    key = np.maximum.reduceat(np.asarray(lengths)[order], starts)  # (g,) longest member
    win = starts // span  # (g,) window of each group (by its first position)
    group_order = np.lexsort((key, win))  # groups by window, then by length inside it
    rank = np.empty_like(group_order)
    rank[group_order] = np.arange(group_order.size)
    member_group = np.repeat(np.arange(sizes.size), sizes)  # (n,) group of each position
    packed = order[np.argsort(rank[member_group], kind="stable")]  # (n,)
    n_full = n // b
    chunk = np.arange(n_full)
    for w0 in range(0, n_full, int(window)):  # shuffle the full batches inside each window
        chunk[w0 : w0 + int(window)] = rng.permutation(chunk[w0 : w0 + int(window)])
    full = packed[: n_full * b].reshape(n_full, b)[chunk].reshape(-1)  # (n_full * b,)
    return np.concatenate([full, packed[n_full * b :]])


def tokenize(text: str, stop_words: frozenset[str]) -> list[str]:
    """Lower-cased word tokens (``\\w+``) without stop-words, de-duplicated in first-seen order."""
    seen: dict[str, None] = {}
    for tok in _TOKEN.findall(text.lower()):
        if tok not in stop_words:
            seen.setdefault(tok, None)
    return list(seen)


def word_shingles(tokens: Sequence[Sequence[str]], shingle_size: int, rng: np.random.Generator) -> np.ndarray:
    """Algorithm 2's shingles: a random subset of ``shingle_size`` words of each example.

    ``tokens`` are the examples' words without stop-words (see :func:`tokenize`). The chosen words
    are sorted, so the shingle is a set. An example with no word left gets a shingle of its own
    (it forms a 1-element group instead of joining every other empty example). Returns (n,) int64
    codes.
    """
    t = max(1, int(shingle_size))
    keys: list[object] = []
    for i, words in enumerate(tokens):
        m = len(words)
        if m == 0:
            keys.append(("\0empty", i))
        elif m <= t:
            keys.append(tuple(sorted(words)))
        else:
            pick = rng.choice(m, size=t, replace=False)
            keys.append(tuple(sorted(words[j] for j in pick)))
    return factorize(keys)


def cluster_shingles(
    embeddings: np.ndarray, n_clusters: int, rng: np.random.Generator, *, niter: int = 20
) -> np.ndarray:
    """Shuffling by clusters: the Faiss k-means (spherical, inner product) cluster id as a 1-word shingle.

    Returns (n,) int64 cluster ids. ``n_clusters`` is capped at n.
    """
    import faiss  # on use: importing bscl.batching needs no faiss

    x = as_float32(embeddings)
    n, d = x.shape
    c = max(1, min(int(n_clusters), n))
    if c == 1:
        return np.zeros(n, dtype=np.int64)
    km = faiss.Kmeans(
        d,
        c,
        niter=niter,
        seed=int(rng.integers(0, 2**31 - 1)),
        spherical=True,
        verbose=False,
        gpu=gpu_count() > 0,
    )
    km.cp.max_points_per_centroid = 256
    km.cp.min_points_per_centroid = 1  # silence the "too few points" warning on small data
    km.train(x)
    _, assign = km.index.search(x, 1)  # (n, 1)
    return assign[:, 0].astype(np.int64)


def neighbour_shingles(
    embeddings: np.ndarray,
    n_neighbours: int,
    shingle_size: int,
    rng: np.random.Generator,
    *,
    method: KnnMethod = "auto",
    exact_max: int = 50_000,
    index_options: dict[str, object] | None = None,
) -> np.ndarray:
    """Shuffling by nearest neighbours: the "words" of an example are the ids of its top-k neighbours.

    The example itself counts among its top-k (it is its own nearest neighbour), so that an example
    and a neighbour that both pick the neighbour's id share a shingle. The shingle is a random
    sorted subset of ``shingle_size`` of those ids. Returns (n,) int64 codes.
    """
    x = as_float32(embeddings)
    n = x.shape[0]
    k = max(1, min(int(n_neighbours), n))
    opts = dict(index_options or {})
    opts.setdefault("seed", int(rng.integers(0, 2**31 - 1)))
    _, ids = KnnIndex(x, method=method, exact_max=exact_max, **opts).search(x, k)  # type: ignore[arg-type]
    ids = ids.copy()
    # Make sure every row holds the example itself (ties or approximate search can miss it).
    has_self = (ids == np.arange(n)[:, None]).any(axis=1)
    ids[~has_self, -1] = np.arange(n)[~has_self]
    t = max(1, min(int(shingle_size), k))
    if t == k:
        words = np.sort(ids, axis=1)  # (n, k)
    else:
        noise = rng.random(ids.shape)  # (n, k): random subset = the t smallest noises per row
        pick = np.argsort(noise, axis=1)[:, :t]  # (n, t)
        words = np.sort(np.take_along_axis(ids, pick, axis=1), axis=1)  # (n, t)
    # Rows with a -1 (IVF returned fewer than k) still produce a valid, if rarer, shingle.
    _, codes = np.unique(words, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# No duplicates
# --------------------------------------------------------------------------------------------------


def no_duplicates_order(row_keys: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Random order whose consecutive ``batch_size`` chunks hold no text twice, as far as possible.

    Like sentence-transformers' ``NoDuplicatesBatchSampler`` (greedy over a random shuffle; a sample
    whose texts already occur in the current batch is deferred to a later one) but producing a
    permutation of all indices with fixed-size chunks: when the remaining samples cannot complete a
    batch without a repeat, the batch is completed with deferred samples anyway (repeats then occur
    only in the last batches). ``row_keys`` is (n, c) int64: the codes of each row's text columns
    (codes shared across columns, so a text equal to another row's answer counts as a repeat).
    """
    keys = np.asarray(row_keys)
    n = keys.shape[0]
    perm = rng.permutation(n).astype(np.int64)
    b = max(1, int(batch_size))
    out: list[int] = []
    pending: list[int] = []
    stream = iter(perm.tolist())
    exhausted = False
    rows = [tuple(r) for r in keys.tolist()]
    while len(out) < n:
        batch: list[int] = []
        values: set[int] = set()
        deferred: list[int] = []
        for idx in pending:
            if len(batch) < b and values.isdisjoint(rows[idx]):
                batch.append(idx)
                values.update(rows[idx])
            else:
                deferred.append(idx)
        while len(batch) < b and not exhausted:
            idx = next(stream, None)
            if idx is None:
                exhausted = True
                break
            if values.isdisjoint(rows[idx]):
                batch.append(idx)
                values.update(rows[idx])
            else:
                deferred.append(idx)
        if len(batch) < b and deferred:
            fill = b - len(batch)
            batch.extend(deferred[:fill])
            deferred = deferred[fill:]
        out.extend(batch)
        pending = deferred
    return np.asarray(out, dtype=np.int64)
