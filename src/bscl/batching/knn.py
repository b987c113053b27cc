"""Faiss k-nearest-neighbour search behind one interface (exact below a size threshold, IVF above).

The example-based shuffling of Chernyavskiy et al. (NAACL 2022, Sec. 3.2, Algorithm 1) finds the
top-n (n ~ 500) neighbours of each example by inner product of L2-normalised embeddings (cosine).
For small data (``n <= exact_max``) we use ``faiss.IndexFlatIP`` (exact). Above the threshold we use
an approximate inverted-file index: ``faiss.index_factory(d, "PCA{p},IVF{nlist},Flat")`` with the
PCA step optional. The PCA projection (default 64 dims) makes the coarse assignment and the list
scans several times cheaper, which is what lets one million 384-d vectors be grouped in well under
a minute on two CPU cores; the candidate order is then approximate (scores are inner products in the
projected space unless ``rerank=True``). ``hnsw`` (``IndexHNSWFlat``) is available too, but on two
cores building it for 1M vectors is slower than IVF.

All functions take and return NumPy arrays: embeddings are float32 (n, d), ids are int64 (q, k) with
-1 where the index returned fewer than k results (possible with IVF).
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import numpy as np

KnnMethod = Literal["auto", "exact", "ivf", "hnsw"]

DEFAULT_EXACT_MAX = 50_000


def available_cores() -> int:
    """CPU cores this process may use (scheduler affinity when available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def set_faiss_threads(threads: int | None = None) -> int:
    """Set Faiss' OpenMP thread count (default: the cores available to this process); returns it."""
    import faiss  # on use: importing bscl.batching needs no faiss

    n = available_cores() if threads is None else max(1, int(threads))
    faiss.omp_set_num_threads(n)
    return n


def gpu_count() -> int:
    """GPUs faiss can use: 0 with faiss-cpu; with faiss-gpu the kNN indexes and the k-means run there."""
    import faiss  # on use: importing bscl.batching needs no faiss

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _on_gpus(index: Any) -> Any:
    """``index`` moved to every GPU faiss sees (sharded search), or unchanged without faiss-gpu."""
    import faiss  # on use: importing bscl.batching needs no faiss

    if gpu_count() == 0:
        return index
    return faiss.index_cpu_to_all_gpus(index)


def as_float32(x: np.ndarray) -> np.ndarray:
    """C-contiguous float32 view or copy, as Faiss requires."""
    return np.ascontiguousarray(x, dtype=np.float32)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (returns a new float32 array)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (n, 1)
    return as_float32(x / np.maximum(norms, eps))


class KnnIndex:
    """Inner-product kNN index over ``embeddings`` (n, d): exact or approximate behind one API.

    Args:
        embeddings: (n, d) float array; normalise it first for cosine similarity.
        method: ``"auto"`` (exact when ``n <= exact_max``, else ``"ivf"``), ``"exact"``, ``"ivf"``
            or ``"hnsw"``.
        exact_max: size threshold for ``"auto"``.
        nlist: IVF lists (default ``clip(sqrt(n), 16, 4096)``).
        nprobe: IVF lists visited per query (default 4).
        pca_dim: PCA dimension before IVF (``None`` or >= d disables it).
        hnsw_m, ef_search: HNSW parameters (``ef_search`` is raised to at least k at search time).
        rerank: for approximate indexes, re-score the returned candidates with exact inner products
            in the full space and re-sort them (costs a gather of k rows per query).
        seed: seed of the IVF k-means and of the training subsample.
        threads: set Faiss' (process-wide) OpenMP threads first (default: leave the current setting,
            which is all cores unless :func:`set_faiss_threads` changed it).
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        *,
        method: KnnMethod = "auto",
        exact_max: int = DEFAULT_EXACT_MAX,
        nlist: int | None = None,
        nprobe: int = 4,
        pca_dim: int | None = 64,
        hnsw_m: int = 32,
        ef_search: int = 64,
        rerank: bool = False,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        import faiss  # on use: importing bscl.batching needs no faiss

        if threads is not None:
            set_faiss_threads(threads)
        x = as_float32(embeddings)
        if x.ndim != 2:
            raise ValueError(f"embeddings must be 2-D (n, d), got shape {x.shape}")
        n, d = x.shape
        if method == "auto":
            method = "exact" if n <= exact_max else "ivf"
        self.method: str = method
        self.embeddings = x
        self.rerank = bool(rerank) and method != "exact"
        self._ef_search = ef_search
        if method == "exact":
            self.index = _on_gpus(faiss.IndexFlatIP(d))
        elif method == "ivf":
            nlist = nlist or int(np.clip(round(math.sqrt(n)), 16, 4096))
            nlist = max(1, min(nlist, n))
            use_pca = pca_dim is not None and 0 < pca_dim < d
            spec = (f"PCA{pca_dim}," if use_pca else "") + f"IVF{nlist},Flat"
            self.index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.extract_index_ivf(self.index)
            ivf.cp.seed = int(seed)
            ivf.cp.niter = 10
            ivf.cp.max_points_per_centroid = 32  # k-means on <= 32 * nlist points: cheap, adequate
            ivf.nprobe = max(1, min(int(nprobe), nlist))
            n_train = min(n, max(64 * nlist, 50_000))
            rng = np.random.default_rng(seed)
            train = x if n_train >= n else x[np.sort(rng.choice(n, n_train, replace=False))]
            self.index.train(train)  # on the CPU (small sample); search and add on the GPUs
            self.index = _on_gpus(self.index)
        elif method == "hnsw":  # faiss has no GPU HNSW: it stays on the CPU
            self.index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = 40
        else:
            raise ValueError(f"unknown kNN method {method!r}; use auto, exact, ivf or hnsw")
        self.index.add(x)

    @property
    def ntotal(self) -> int:
        """Number of indexed vectors."""
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (scores (q, k) float32, ids (q, k) int64, -1 padded), best first."""
        q = as_float32(queries)
        k = max(1, min(int(k), self.ntotal))
        if self.method == "hnsw":
            self.index.hnsw.efSearch = max(self._ef_search, k)
        scores, ids = self.index.search(q, k)  # (q, k), (q, k)
        if self.rerank:
            safe = np.where(ids >= 0, ids, 0)
            cand = self.embeddings[safe]  # (q, k, d)
            exact = np.einsum("qd,qkd->qk", q, cand)  # (q, k)
            exact = np.where(ids >= 0, exact, -np.inf).astype(np.float32)
            order = np.argsort(-exact, axis=1, kind="stable")  # (q, k)
            scores = np.take_along_axis(exact, order, axis=1)
            ids = np.take_along_axis(ids, order, axis=1)
        return scores, ids.astype(np.int64, copy=False)


def knn(
    embeddings: np.ndarray,
    k: int,
    *,
    queries: np.ndarray | None = None,
    method: KnnMethod = "auto",
    exact_max: int = DEFAULT_EXACT_MAX,
    **index_options: object,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner-product neighbours of ``queries`` (default: the embeddings themselves).

    Returns (scores (q, k) float32, ids (q, k) int64), best first. Self-matches are included when
    querying the indexed set itself. See :class:`KnnIndex` for the options.
    """
    index = KnnIndex(embeddings, method=method, exact_max=exact_max, **index_options)  # type: ignore[arg-type]
    return index.search(embeddings if queries is None else queries, k)
