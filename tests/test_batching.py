"""Tests for bscl.batching: kNN, Algorithm 1/2 grouping, samplers, the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset

from bscl.batching import (
    COLD_STARTS,
    MODEL_STRATEGIES,
    STRATEGIES,
    ContrastiveBatchSampler,
    EmbeddingCache,
    KnnIndex,
    example_order,
    group_by_shingles,
    knn,
    make_batch_sampler,
    no_duplicates_order,
    pack_by_length,
    set_faiss_threads,
    tokenize,
    word_shingles,
)
from bscl.batching.grouping import cluster_shingles, factorize, neighbour_shingles
from bscl.batching.strategies import Example, Random, Strategy, Words, build_strategy, check_options

DIM = 16
NAMES = list(STRATEGIES)


@pytest.fixture(autouse=True, scope="module")
def _one_faiss_thread() -> None:
    """Single-threaded Faiss: OpenMP spin-waits badly on a shared, oversubscribed machine."""
    set_faiss_threads(1)


def hash_encoder(texts: list[str]) -> np.ndarray:
    """Deterministic fake encoder: a per-text random vector (same text, same vector)."""
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(t.encode()[-8:].rjust(8, b"\0"), "little") ^ len(t)
        out[i] = np.random.default_rng(seed).standard_normal(DIM)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def make_dataset(n: int, n_topics: int = 23) -> Dataset:
    rng = np.random.default_rng(n)
    return Dataset.from_dict(
        {
            "sentence1": [f"question {i % (n // 3 + 1)} topic{i % n_topics}" for i in range(n)],
            "sentence2": [f"answer number {i} word{rng.integers(0, 9)}" for i in range(n)],
            "score": rng.random(n).tolist(),
        }
    )


def sampler(ds: Dataset, strategy: str, batch_size: int = 8, **kw) -> ContrastiveBatchSampler:
    kw.setdefault("group_size", 4)
    drop_last = kw.pop("drop_last", False)
    seed = kw.pop("seed", 0)
    return make_batch_sampler(strategy, encoder=hash_encoder, **kw)(
        ds, batch_size=batch_size, drop_last=drop_last, seed=seed
    )


# ---------------------------------------------------------------------------------------------
# kNN
# ---------------------------------------------------------------------------------------------


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_knn_matches_torch_topk_up_to_ties() -> None:
    x = _unit(300, 12)
    x[5] = x[7]  # an exact tie
    k = 10
    scores, ids = knn(x, k, method="exact")
    sim = torch.from_numpy(x) @ torch.from_numpy(x).T  # (n, n)
    ref_scores, _ = torch.topk(sim, k, dim=1)  # (n, k)
    np.testing.assert_allclose(scores, ref_scores.numpy(), atol=1e-5)
    # every returned id has the similarity faiss reports (tie-tolerant identity check)
    np.testing.assert_allclose(np.take_along_axis(sim.numpy(), ids, axis=1), scores, atol=1e-5)
    # ids agree as sets wherever the k-th score is not tied with the (k+1)-th
    full = torch.sort(sim, dim=1, descending=True).values.numpy()
    untied = full[:, k - 1] - full[:, k] > 1e-5
    ref_ids = torch.topk(sim, k, dim=1).indices.numpy()
    for r in np.flatnonzero(untied):
        assert set(ids[r].tolist()) == set(ref_ids[r].tolist())


def test_ivf_knn_recall_against_topk() -> None:
    rng = np.random.default_rng(1)
    centers = _unit(20, 32, seed=2)
    x = centers[rng.integers(0, 20, 4000)] + 0.05 * rng.standard_normal((4000, 32)).astype(np.float32)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    k = 10
    index = KnnIndex(x, method="ivf", nlist=32, nprobe=4, pca_dim=None, seed=0)
    assert index.method == "ivf"
    _, ids = index.search(x[:200], k)
    ref = torch.topk(torch.from_numpy(x[:200]) @ torch.from_numpy(x).T, k, dim=1).indices.numpy()
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(ids.tolist(), ref.tolist(), strict=True)])
    assert recall > 0.9
    assert KnnIndex(x, exact_max=1000).method == "ivf"
    assert KnnIndex(x[:500], exact_max=1000).method == "exact"


def test_ivf_rerank_sorts_by_exact_score() -> None:
    x = _unit(3000, 48, seed=3)
    index = KnnIndex(x, method="ivf", nprobe=8, pca_dim=16, rerank=True, seed=0)
    scores, ids = index.search(x[:50], 20)
    exact = np.einsum("qd,qkd->qk", x[:50], x[np.maximum(ids, 0)])
    ok = ids >= 0
    np.testing.assert_allclose(scores[ok], exact[ok], atol=1e-5)
    assert np.all(np.diff(np.where(ok, scores, -np.inf), axis=1) <= 1e-6)


# ---------------------------------------------------------------------------------------------
# Algorithm 1
# ---------------------------------------------------------------------------------------------


def _split(order: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    return np.split(order, np.cumsum(sizes)[:-1])


def test_example_order_groups_nearest_neighbours() -> None:
    # 12 tight clusters of 8 points: with s = 4, every group comes from one cluster.
    rng = np.random.default_rng(0)
    centers = _unit(12, 24, seed=5)
    labels = np.repeat(np.arange(12), 8)
    x = centers[labels] + 0.01 * rng.standard_normal((96, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    order, sizes = example_order(x, 4, np.random.default_rng(3), n_candidates=50, return_groups=True)
    assert np.array_equal(np.sort(order), np.arange(96))
    assert sizes.tolist() == [4] * 24
    assert all(np.unique(labels[g]).size == 1 for g in _split(order, sizes))


@pytest.mark.parametrize("s", [2, 8])
@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_example_order_greedy_invariants(s: int, method: str) -> None:
    x = _unit(700, 8, seed=7)
    n_cand = 20
    order, sizes = example_order(
        x, s, np.random.default_rng(s), n_candidates=n_cand, method=method, return_groups=True
    )
    assert np.array_equal(np.sort(order), np.arange(700))
    assert sizes.sum() == 700 and sizes.max() <= s and sizes.min() >= 1
    # reversed R: groups shrink towards the end of R, so the 1-element groups come first
    assert sizes[0] == 1 and sizes[-1] == s
    if method == "exact":
        _, ids = knn(x, n_cand, method="exact")
        for g in _split(order, sizes):
            query = g[-1]  # reversal puts the group's query (first added) last
            assert set(g[:-1].tolist()) <= set(ids[query].tolist())


def test_example_order_takes_top_unused_candidates() -> None:
    # Reference re-implementation of Algorithm 1 on exact kNN: identical output.
    x = _unit(300, 6, seed=9)
    s, n_cand = 4, 15
    order = example_order(x, s, np.random.default_rng(5), n_candidates=n_cand, method="exact", block_size=37)
    perm = np.random.default_rng(5).permutation(300)
    _, ids = knn(x, n_cand, method="exact")
    used: set[int] = set()
    ref: list[int] = []
    for e in perm.tolist():
        if e in used:
            continue
        used.add(e)
        take = [c for c in ids[e].tolist() if c not in used][: s - 1]
        used.update(take)
        ref += [e, *take]
    assert order.tolist() == ref[::-1]


@pytest.mark.parametrize("filter_identical", [False, True])
def test_example_order_identical_texts(filter_identical: bool) -> None:
    texts = [f"t{i % 10}" for i in range(200)]  # each text 20 times: identical embeddings
    keys = factorize(texts)
    x = hash_encoder(texts)
    order, sizes = example_order(
        x,
        4,
        np.random.default_rng(1),
        n_candidates=60,
        keys=keys,
        filter_identical=filter_identical,
        return_groups=True,
    )
    assert np.array_equal(np.sort(order), np.arange(200))
    groups = _split(order, sizes)
    if filter_identical:
        assert all(np.unique(keys[g]).size == g.size for g in groups)
    else:  # identical texts are each other's nearest neighbours: full groups of one text
        assert all(np.unique(keys[g]).size == 1 for g in groups) and sizes.tolist() == [4] * 50


# ---------------------------------------------------------------------------------------------
# Algorithm 2 (words, clusters, neighbours)
# ---------------------------------------------------------------------------------------------


def test_tokenize_drops_stop_words() -> None:
    assert tokenize("The cat sat on THE mat, the cat!", frozenset({"the", "on"})) == ["cat", "sat", "mat"]


def test_group_by_shingles_hand_made() -> None:
    shingles = np.array([0, 1, 0, 2, 0, 1, 0, 0, 3])  # shingle 0 x5, 1 x2, 2 x1, 3 x1
    for seed in range(5):
        order = group_by_shingles(shingles, 2, np.random.default_rng(seed))
        assert np.array_equal(np.sort(order), np.arange(9))
        seq = shingles[order]
        # shingle-0 examples form groups of at most 2 contiguous examples: runs of 0s of length 2,2,1
        runs = []
        i = 0
        while i < 9:
            j = i
            while j < 9 and seq[j] == seq[i]:
                j += 1
            runs.append((int(seq[i]), j - i))
            i = j
        # the two shingle-1 examples are one group, hence contiguous
        assert (1, 2) in runs
        assert sum(n for s, n in runs if s == 0) == 5


def test_group_by_shingles_group_ids_are_contiguous() -> None:
    rng = np.random.default_rng(0)
    shingles = rng.integers(0, 30, 1000)
    k = 4
    order = group_by_shingles(shingles, k, np.random.default_rng(1))
    seq = shingles[order]
    # maximal runs of equal shingles have length <= k except when two groups of the same shingle
    # happen to be adjacent; count the number of equal-shingle groups implied by the sorted counts
    counts = np.bincount(shingles, minlength=30)
    n_groups = int(np.sum((counts + k - 1) // k))
    boundaries = 1 + int(np.sum(seq[1:] != seq[:-1]))
    assert boundaries <= n_groups


def test_words_groups_on_fixture() -> None:
    texts = [
        "the cat sat",
        "a cat ran",
        "the dog sat",
        "dog barks",
        "cat naps",
        "the the of",
        "dog runs",
        "cat eats",
    ]
    stop = frozenset({"the", "a", "of"})
    tokens = [tokenize(t, stop) for t in texts]
    assert tokens[5] == []
    # shingle size 2 with 2-word texts: deterministic shingles
    codes = word_shingles(tokens, 5, np.random.default_rng(0))
    assert len(set(codes.tolist())) == 8  # all different (the empty one is unique)
    # one-word shingles: the shingle is one of the text's words
    for seed in range(10):
        codes = word_shingles(tokens, 1, np.random.default_rng(seed))
        order = group_by_shingles(codes, 8, np.random.default_rng(seed))
        # examples sharing a shingle are contiguous (one group since k = 8)
        pos = {int(i): p for p, i in enumerate(order)}
        for c in set(codes.tolist()):
            members = sorted(pos[i] for i in np.flatnonzero(codes == c))
            assert members == list(range(members[0], members[0] + len(members)))


def test_clusters_shingles_on_fixture() -> None:
    rng = np.random.default_rng(0)
    centers = _unit(3, 8, seed=11)
    labels = np.array([0, 1, 2] * 10)
    x = centers[labels] + 0.01 * rng.standard_normal((30, 8)).astype(np.float32)
    codes = cluster_shingles(x, 3, np.random.default_rng(0))
    # the k-means partition equals the true one (up to renaming)
    assert len({(int(a), int(b)) for a, b in zip(codes, labels, strict=True)}) == 3
    order = group_by_shingles(codes, 10, np.random.default_rng(1))
    assert [len(set(labels[order[i : i + 10]].tolist())) for i in (0, 10, 20)] == [1, 1, 1]


def test_neighbour_shingles_pairs() -> None:
    # 10 pairs of near-identical points: with 2 neighbours (self + twin) and t = 2, twins share a shingle.
    base = _unit(10, 16, seed=4)
    x = np.repeat(base, 2, axis=0) + 1e-3 * _unit(20, 16, seed=5)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    codes = neighbour_shingles(x, 2, 2, np.random.default_rng(0))
    assert np.array_equal(codes[0::2], codes[1::2])
    assert np.unique(codes).size == 10


def test_no_duplicates_order() -> None:
    n = 200
    q = [f"q{i % 40}" for i in range(n)]  # each query 5 times
    a = [f"a{i}" for i in range(n)]
    keys = factorize(q + a).reshape(2, n).T  # (n, 2)
    order = no_duplicates_order(keys, 8, np.random.default_rng(0))
    assert np.array_equal(np.sort(order), np.arange(n))
    chunks = order.reshape(-1, 8)
    clean = [np.unique(keys[c]).size == keys[c].size for c in chunks]
    assert sum(clean) >= len(chunks) - 2  # repeats only forced in the last batches


# ---------------------------------------------------------------------------------------------
# Strategy classes and the registry
# ---------------------------------------------------------------------------------------------


class StubInput:
    """What a strategy reads from its sampler, without a sampler (the GroupingInput protocol)."""

    def __init__(self, ds: Dataset, batch_size: int = 8) -> None:
        self.columns = [list(ds["sentence1"]), list(ds["sentence2"])]
        self.batch_size = batch_size
        self.stats: dict[str, float] = {}
        self.group_sizes: np.ndarray | None = None

    @property
    def num_examples(self) -> int:
        return len(self.columns[0])

    def texts(self, element: int | None = None) -> list[str]:
        return self.columns[element or 0]

    def text_keys(self) -> np.ndarray:
        return factorize(self.texts())

    def row_keys(self) -> np.ndarray:
        return factorize(self.columns[0] + self.columns[1]).reshape(2, -1).T

    def embeddings(self) -> np.ndarray:
        return hash_encoder(self.texts())


def test_registry_order_and_kinds() -> None:
    # the registry order salts each strategy's epoch generator: changing it changes every batch
    assert NAMES == ["random", "sequential", "no-duplicates", "example", "words", "clusters", "neighbours"]
    assert all(cls.name == name for name, cls in STRATEGIES.items())
    assert sorted(MODEL_STRATEGIES) == ["clusters", "example", "neighbours"]
    assert [n for n, cls in STRATEGIES.items() if not cls.packable] == ["sequential", "no-duplicates"]
    assert COLD_STARTS == ("encode", "words", "random")


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_orders_a_grouped_permutation(name: str) -> None:
    ds = make_dataset(90)
    data = StubInput(ds)
    strategy = build_strategy(name, group_size=4, n_clusters=6, n_candidates=30, n_neighbours=3)
    order, sizes = strategy.order(data, np.random.default_rng(5))
    again, _ = strategy.order(StubInput(ds), np.random.default_rng(5))
    assert np.array_equal(order, again)  # a function of the generator (and the data) only
    assert np.array_equal(np.sort(order), np.arange(90)) and order.dtype == np.int64
    assert sizes.sum() == 90 and sizes.min() >= 1 and sizes.max() <= 4
    groups = _split(order, sizes)
    rng = np.random.default_rng(5)  # the strategy's first draws: its shingles
    if name == "sequential":
        assert order.tolist() == list(range(90))
    elif name == "no-duplicates":
        keys = data.row_keys()
        clean = [np.unique(keys[c]).size == keys[c].size for c in np.split(order, range(8, 90, 8))]
        assert sum(clean) >= len(clean) - 2
    elif name == "example":
        assert data.group_sizes is sizes and data.stats["groups"] == sizes.size and "knn_s" in data.stats
    elif name in ("words", "clusters", "neighbours"):
        if name == "words":
            codes = word_shingles(Words().tokens(data.texts()), 1, rng)
        elif name == "clusters":
            codes = cluster_shingles(data.embeddings(), 6, rng)
        else:
            codes = neighbour_shingles(data.embeddings(), 3, 1, rng)
        assert all(np.unique(codes[g]).size == 1 for g in groups)  # Algorithm 2: one shingle per group
    if sizes.max() == 1:
        assert name in ("random", "sequential", "no-duplicates")


def test_strategy_options_are_picked_per_class() -> None:
    assert build_strategy("random", group_size=4, n_clusters=3) == Random()
    assert build_strategy("example", group_size=4, n_clusters=3) == Example(group_size=4)
    assert Example.options() == (
        "group_size",
        "n_candidates",
        "filter_identical",
        "knn_method",
        "exact_max",
        "knn_options",
    )
    with pytest.raises(TypeError, match="n_cluster"):
        build_strategy("clusters", n_cluster=3)
    with pytest.raises(TypeError, match="bogus"):
        make_batch_sampler("random", bogus=1)


@pytest.mark.parametrize(
    ("name", "meant"), [("knn", "example"), ("no_duplicates", "no-duplicates"), ("Neighbors", "neighbours")]
)
def test_other_strategy_names_are_refused_naming_the_strategy(name: str, meant: str) -> None:
    with pytest.raises(ValueError, match=f"unknown batch strategy '{name}'; use '{meant}'"):
        make_batch_sampler(name)
    options = dict(group_size=8, group_by="first", reuse_embeddings=False, cold_start="encode")
    with pytest.raises(ValueError, match=f"--batching.strategy: .*use '{meant}'"):
        check_options(strategy=name, pack_by_length=False, pack_window=64, **options)
    with pytest.raises(ValueError, match="choose one of random, sequential"):
        make_batch_sampler("nope")


def test_check_options() -> None:
    options = dict(group_by="first", cold_start="words", pack_window=4)
    for name in NAMES:  # every strategy with its valid options (reuse: the model-based ones)
        reuse = STRATEGIES[name].needs_encoder
        check_options(
            strategy=name,
            group_size=8,
            pack_by_length=STRATEGIES[name].packable,
            reuse_embeddings=reuse,
            **options,
        )
    options["reuse_embeddings"] = False
    with pytest.raises(ValueError, match=r"--batching.group_size must be >= 1 \(got 0\)"):
        check_options(strategy="example", group_size=0, pack_by_length=False, **options)
    with pytest.raises(ValueError, match="use another --batching.strategy"):
        check_options(strategy="no-duplicates", group_size=8, pack_by_length=True, **options)


def test_sampler_takes_a_strategy_object() -> None:
    ds = make_dataset(60)
    direct = ContrastiveBatchSampler(ds, 8, seed=3, strategy=Example(group_size=4), encoder=hash_encoder)
    assert list(direct) == list(sampler(ds, "example", seed=3))
    assert isinstance(direct.strategy, Strategy) and direct.strategy.name == "example"
    with pytest.raises(ValueError, match="cold_start"):
        ContrastiveBatchSampler(ds, 8, strategy="example", cold_start=Example(), reuse_embeddings=True)


# ---------------------------------------------------------------------------------------------
# Sampler invariants
# ---------------------------------------------------------------------------------------------

SHUFFLING = [s for s in NAMES if s != "sequential"]


@pytest.mark.parametrize("strategy", NAMES)
@pytest.mark.parametrize(("n", "batch_size"), [(101, 8), (7, 10)])
def test_each_index_once_per_epoch(strategy: str, n: int, batch_size: int) -> None:
    ds = make_dataset(n)
    s = sampler(ds, strategy, batch_size=batch_size, n_clusters=5)
    for epoch in range(2):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))
        assert all(len(b) == batch_size for b in batches[:-1])
        assert 0 < len(batches[-1]) <= batch_size


@pytest.mark.parametrize("strategy", NAMES)
def test_drop_last(strategy: str) -> None:
    ds = make_dataset(50)
    s = sampler(ds, strategy, batch_size=8, drop_last=True, n_clusters=5)
    batches = list(s)
    assert len(batches) == len(s) == 6
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 48 and all(len(b) == 8 for b in batches)


@pytest.mark.parametrize("strategy", NAMES)
def test_deterministic_per_seed_and_epoch(strategy: str) -> None:
    ds = make_dataset(120)
    a = sampler(ds, strategy, seed=3, n_clusters=6)
    b = sampler(ds, strategy, seed=3, n_clusters=6)
    for epoch in (0, 2):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert list(a) == list(b)
        assert list(a) == list(a)  # iterating twice in one epoch gives the same batches


@pytest.mark.parametrize("strategy", SHUFFLING)
def test_epochs_and_seeds_differ(strategy: str) -> None:
    ds = make_dataset(120)
    s = sampler(ds, strategy, n_clusters=6)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0
    other = sampler(ds, strategy, seed=1, n_clusters=6)
    assert list(other) != e0


def test_sequential_keeps_file_order() -> None:
    s = sampler(make_dataset(20), "sequential", batch_size=6)
    s.set_epoch(3)
    assert [i for b in s for i in b] == list(range(20))


def test_example_sampler_group_sizes_respected() -> None:
    ds = make_dataset(240)
    for g in (2, 4, 8):
        s = sampler(ds, "example", group_size=g, batch_size=16, n_candidates=64)
        order = s.epoch_order(0)
        assert s.group_sizes is not None and s.group_sizes.max() <= g
        assert s.group_sizes.sum() == 240 and np.array_equal(np.sort(order), np.arange(240))


def test_words_sampler_batches_share_words() -> None:
    texts = [f"{w} filler{i}" for i, w in enumerate(["apple", "pear", "plum", "kiwi"] * 10)]
    ds = Dataset.from_dict({"q": texts, "a": texts})
    s = sampler(ds, "words", batch_size=5, group_size=5, shingle_size=1)
    # one word chosen per text: all groups are single-word groups; with 1-of-2 random words, at
    # least the fruit-groups appear: count batches made of one fruit
    fruit_batches = sum(len({texts[i].split()[0] for i in b}) == 1 for b in s)
    assert fruit_batches >= 2


def test_model_strategy_without_encoder_raises() -> None:
    s = make_batch_sampler("example")(make_dataset(20), batch_size=4, drop_last=False, seed=0)
    with pytest.raises(RuntimeError, match="encoder"):
        list(s)


def test_factory_given_a_model_encodes_with_it() -> None:
    from bscl.models import load_model

    f = make_batch_sampler("example", group_size=4, model=load_model("tiny"))
    s = f(make_dataset(20), batch_size=4, drop_last=False, seed=0)
    assert sorted(i for b in s for i in b) == list(range(20))
    assert s.stats["n_encoded"] > 0


def test_factory_plugs_into_trainer_signature() -> None:
    f = make_batch_sampler("clusters", group_size=3, n_clusters=4, seed=7)
    ds = make_dataset(30)
    s = f(ds, batch_size=4, drop_last=False, valid_label_columns=["score"], generator=None, seed=42)
    assert s.seed == 7 and s.columns == ["sentence1", "sentence2"]
    assert f.last_sampler is s and f.needs_encoder
    f.encoder = hash_encoder  # set after the trainer built the sampler
    assert s.encoder is hash_encoder
    assert sorted(i for b in s for i in b) == list(range(30))
    from sentence_transformers import SentenceTransformerTrainingArguments

    args = SentenceTransformerTrainingArguments(output_dir="/tmp/unused-bscl-test", batch_sampler=f)
    assert args.batch_sampler is f
    # the trainer torch.save()s its args at each checkpoint: the factory must pickle
    import pickle

    restored = pickle.loads(pickle.dumps(args))
    assert restored.batch_sampler.strategy == "clusters" and restored.batch_sampler.encoder is None
    assert f.encoder is hash_encoder and f.samplers == [s]


# ---------------------------------------------------------------------------------------------
# Distributed slices
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["random", "example"])
@pytest.mark.parametrize(("n", "drop_last"), [(100, False), (100, True), (96, False)])
def test_two_ranks_self_sharding(strategy: str, n: int, drop_last: bool) -> None:
    ds = make_dataset(n)
    b = 8
    glob = sampler(ds, strategy, batch_size=b, drop_last=drop_last)
    ranks = [
        sampler(ds, strategy, batch_size=b, drop_last=drop_last, rank=r, world_size=2, shard="self")
        for r in range(2)
    ]
    per_rank = [list(s) for s in ranks]
    assert [len(p) for p in per_rank] == [len(s) for s in ranks]
    order = glob.epoch_order(0)
    n_global = len(per_rank[0])
    for j in range(n_global):
        got = [per_rank[r][j] for r in range(2) if j < len(per_rank[r])]
        union = [i for part in got for i in part]
        assert len(union) == len(set(union))  # disjoint
        assert union == order[j * 2 * b : j * 2 * b + len(union)].tolist()  # cover the global batch
        if drop_last:
            assert all(len(p) == b for p in got)
    covered = sorted(i for p in per_rank for batch in p for i in batch)
    if drop_last:
        assert len(covered) == (n // (2 * b)) * 2 * b
    else:
        assert covered == list(range(n))


@pytest.mark.parametrize("drop_last", [False, True])
def test_two_ranks_under_accelerate_batch_sampler_shard(drop_last: bool) -> None:
    from accelerate.data_loader import BatchSamplerShard

    ds = make_dataset(100)
    b = 8
    caches = [EmbeddingCache() for _ in range(2)]
    samplers = [
        sampler(
            ds, "example", batch_size=b, drop_last=drop_last, rank=r, world_size=2, embedding_cache=caches[r]
        )
        for r in range(2)
    ]
    shards = [
        BatchSamplerShard(s, num_processes=2, process_index=r, split_batches=False, even_batches=False)
        for r, s in enumerate(samplers)
    ]
    per_rank = [list(s) for s in shards]
    assert [len(p) for p in per_rank] == [len(s) for s in shards]
    order = samplers[0].epoch_order(0)
    for j in range(len(per_rank[0])):
        got = [per_rank[r][j] for r in range(2) if j < len(per_rank[r])]
        assert got[0] == order[j * 2 * b : j * 2 * b + b].tolist()  # rank 0: first slice of global batch j
        if len(got) == 2:
            assert got[1] == order[j * 2 * b + b : j * 2 * b + 2 * b].tolist()
    # each rank's cache queue holds exactly the batches that rank received, in order
    for r in range(2):
        queued = [caches[r]._pending.popleft().tolist() for _ in range(caches[r].pending)]
        assert queued == per_rank[r]


# ---------------------------------------------------------------------------------------------
# Embedding cache (reuse mode)
# ---------------------------------------------------------------------------------------------


def _fake_step_embeddings(indices: list[int], dim: int = DIM) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings a training step would produce: row i encodes its dataset index."""
    idx = torch.tensor(indices, dtype=torch.float32)
    q = torch.zeros(len(indices), dim)
    q[:, 0] = 1.0
    q[:, 1] = idx  # (m, d): recoverable index
    a = -q
    return q, a


def _decode(rows: np.ndarray) -> np.ndarray:
    return np.rint(rows[:, 1] / rows[:, 0]).astype(int)  # ratio survives L2 normalisation


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_cache_maps_rows_to_indices_with_prefetch(prefetch: int) -> None:
    ds = make_dataset(53)
    f = make_batch_sampler("example", group_size=4, reuse_embeddings=True, encoder=hash_encoder)
    s = f(ds, batch_size=8, drop_last=False, seed=0)
    cache = f.embedding_cache
    assert cache is not None and s.embedding_cache is cache
    s.set_epoch(0)
    it = iter(s)
    fetched: list[list[int]] = []
    for _ in range(prefetch):  # the loader runs ahead of the training step
        fetched.append(next(it))
    for batch in it:
        fetched.append(batch)
        current = fetched.pop(0)
        cache(*_fake_step_embeddings(current))  # the loss's callback for the oldest batch
    while fetched:
        cache(*_fake_step_embeddings(fetched.pop(0)))
    rows, seen = cache.lookup(0)
    assert seen.all() and rows is not None
    assert np.array_equal(_decode(rows), np.arange(53))
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    assert cache.pending == 0 and cache.mismatches == 0


def test_cache_second_element_and_gradient_accumulation() -> None:
    ds = make_dataset(40)
    cache = EmbeddingCache()
    s = sampler(ds, "random", batch_size=5, element="second", embedding_cache=cache)
    assert cache.element == "second"
    batches = list(s)  # the loader fetched everything (deep prefetch); micro-batches come in order
    for b in batches:
        cache(*_fake_step_embeddings(b))
    rows, seen = cache.lookup(1)
    assert seen.all() and np.array_equal(_decode(-rows), np.arange(40))


def test_reuse_mode_encodes_only_unseen() -> None:
    ds = make_dataset(60)
    calls: list[int] = []

    def counting_encoder(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return hash_encoder(texts)

    f = make_batch_sampler("example", group_size=4, reuse_embeddings=True, encoder=counting_encoder)
    s = f(ds, batch_size=8, drop_last=True, seed=0)  # 56 of 60 seen per epoch
    cache = f.embedding_cache
    assert cache is not None
    s.set_epoch(0)
    for b in s:
        cache(*_fake_step_embeddings(b))
    assert calls == [60]  # epoch 1: one full encode pass
    s.set_epoch(1)
    for b in s:
        cache(*_fake_step_embeddings(b))
    assert calls == [60, 4]  # epoch 2: only the 4 dropped ones
    assert s.stats["n_reused"] == 56
    s.set_epoch(2)
    list(s)
    assert sum(calls[2:]) <= 4  # only examples dropped in both earlier epochs


def test_cache_epoch_reset_and_mismatch() -> None:
    ds = make_dataset(30)
    cache = EmbeddingCache()
    s = sampler(ds, "random", batch_size=10, embedding_cache=cache)
    it = iter(s)
    next(it)
    next(it)
    assert cache.pending == 2
    s.set_epoch(1)
    batches = list(s)  # a new epoch drops the stale queue
    assert cache.pending == 3
    cache(*_fake_step_embeddings(batches[0][:7]))  # wrong size: out of sync
    assert cache.mismatches == 1 and cache.pending == 0
    cache(*_fake_step_embeddings(batches[1]))  # ignored until the next epoch
    _, seen = cache.lookup(0)
    assert not seen.any()


def test_cache_skip_batches_when_resuming() -> None:
    ds = make_dataset(40)
    cache = EmbeddingCache()
    s = sampler(ds, "random", batch_size=8, embedding_cache=cache)
    cache.skip_batches(2)  # the trainer resumes after 2 batches of this epoch
    batches = list(s)
    for b in batches[2:]:
        cache(*_fake_step_embeddings(b))
    _, seen = cache.lookup(0)
    assert cache.mismatches == 0 and cache.pending == 0
    assert sorted(np.flatnonzero(seen).tolist()) == sorted(i for b in batches[2:] for i in b)


# ---------------------------------------------------------------------------------------------
# speed options: packing by length, cold start of the reuse mode
# ---------------------------------------------------------------------------------------------


def _padded_cost(order: np.ndarray, lengths: np.ndarray, b: int) -> int:
    """Positions a bi-encoder computes: every batch padded to its longest member."""
    return sum(int(lengths[order[i : i + b]].max()) * len(order[i : i + b]) for i in range(0, len(order), b))


def _assert_groups_kept(groups: list[np.ndarray], out: np.ndarray, b: int) -> None:
    """Each group sits in as few batches as its size allows (+1 where it straddles a batch
    boundary, as in the unpacked order) and is contiguous inside each of them."""
    pos = np.empty(len(out), dtype=int)
    pos[out] = np.arange(len(out))
    for g in groups:
        p = np.sort(pos[g])
        batches = p // b
        assert len(np.unique(batches)) <= -(-len(g) // b) + 1
        for j in np.unique(batches):
            q = p[batches == j]
            assert q[-1] - q[0] == len(q) - 1


def test_pack_by_length_hand_made() -> None:
    # 4 groups of 2; lengths alternate short/long across groups; batch 4 = 2 groups
    order = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    sizes = np.array([2, 2, 2, 2])
    lengths = np.array([1, 2, 50, 60, 3, 1, 70, 40])  # group maxima 2, 60, 3, 70
    out = pack_by_length(order, sizes, lengths, 4, np.random.default_rng(0), window=2)
    batches = {frozenset(out[:4].tolist()), frozenset(out[4:].tolist())}
    assert batches == {frozenset({0, 1, 4, 5}), frozenset({2, 3, 6, 7})}  # short groups together
    assert _padded_cost(out, lengths, 4) == 4 * 3 + 4 * 70 < _padded_cost(order, lengths, 4)


@pytest.mark.parametrize("n,b,window", [(1, 1, 1), (7, 3, 2), (100, 8, 4), (203, 16, 64)])
def test_pack_by_length_keeps_groups_and_cuts_padding(n: int, b: int, window: int) -> None:
    rng = np.random.default_rng(n)
    order = rng.permutation(n)
    sizes = np.diff(np.r_[0, np.sort(rng.choice(np.arange(1, n), size=min(n - 1, n // 3), replace=False)), n])
    lengths = rng.integers(1, 200, size=n)
    out = pack_by_length(order, sizes, lengths, b, np.random.default_rng(1), window=window)
    assert np.array_equal(np.sort(out), np.arange(n))  # a permutation
    _assert_groups_kept(_split(order, sizes), out, b)
    if n >= 4 * b:
        assert _padded_cost(out, lengths, b) < _padded_cost(order, lengths, b)
    again = pack_by_length(order, sizes, lengths, b, np.random.default_rng(1), window=window)
    assert np.array_equal(out, again)


def test_pack_by_length_keeps_windows_and_last_batch() -> None:
    n, b, window = 100, 10, 2
    order = np.arange(n)
    out = pack_by_length(
        order, np.ones(n, dtype=int), np.arange(n)[::-1], b, np.random.default_rng(0), window=window
    )
    for w in range(0, n, b * window):  # the same examples stay inside each window of 20
        assert set(out[w : w + b * window].tolist()) == set(range(w, w + b * window))
    for i in range(0, n, b):  # sorted inside each window: each batch is 10 consecutive lengths
        assert out[i : i + b].max() - out[i : i + b].min() == b - 1


def test_pack_by_length_bad_sizes() -> None:
    with pytest.raises(ValueError, match="sum to 5"):
        pack_by_length(np.arange(5), np.array([2, 2]), np.ones(5), 2, np.random.default_rng(0))


def test_group_by_shingles_returns_group_sizes() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 7, size=101)
    plain = group_by_shingles(codes, 3, np.random.default_rng(5))
    order, sizes = group_by_shingles(codes, 3, np.random.default_rng(5), return_groups=True)
    assert np.array_equal(order, plain)  # same rng use with and without the sizes
    assert sizes.sum() == 101 and sizes.max() <= 3 and sizes.min() >= 1
    for g in _split(order, sizes):
        assert len(set(codes[g].tolist())) == 1  # one shingle per group


@pytest.mark.parametrize("strategy", ["random", "example", "words", "clusters", "neighbours"])
def test_sampler_pack_by_length_same_groups(strategy: str) -> None:
    ds = make_dataset(97)
    plain = sampler(ds, strategy, n_clusters=5, seed=3)
    packed = sampler(ds, strategy, n_clusters=5, seed=3, pack_by_length=True, pack_window=4)
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        packed.set_epoch(epoch)
        got = np.concatenate([np.array(x) for x in packed])
        assert np.array_equal(np.sort(got), np.arange(97))
        assert "pack_s" in packed.stats
        ref_order = plain.epoch_order()
        if strategy == "example":
            assert plain.group_sizes is not None
            _assert_groups_kept(_split(ref_order, plain.group_sizes), got, 8)  # the kNN groups
        lengths = packed.lengths()
        assert _padded_cost(got, lengths, 8) <= _padded_cost(ref_order, lengths, 8)


@pytest.mark.parametrize("strategy", ["sequential", "no-duplicates"])
def test_pack_by_length_refuses_fixed_orders(strategy: str) -> None:
    with pytest.raises(ValueError, match="pack_by_length"):
        sampler(make_dataset(20), strategy, pack_by_length=True)


@pytest.mark.parametrize("cold_start", ["words", "random"])
def test_reuse_cold_start_skips_the_first_encode_pass(cold_start: str) -> None:
    ds = make_dataset(60)
    calls: list[int] = []

    def counting_encoder(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return hash_encoder(texts)

    f = make_batch_sampler(
        "example", group_size=4, reuse_embeddings=True, encoder=counting_encoder, cold_start=cold_start
    )
    s = f(ds, batch_size=8, drop_last=False, seed=0)
    cache = f.embedding_cache
    assert cache is not None
    s.set_epoch(0)
    first = [b for b in s]
    for b in first:
        cache(*_fake_step_embeddings(b))
    assert calls == [] and s.stats["cold_start"] == 1.0  # epoch 1: no model pass
    if cold_start == "words":
        words = sampler(ds, "words", seed=0)
        words.rng = s.rng  # type: ignore[method-assign]  # the same epoch generator
        assert np.array_equal(np.concatenate(first), words.epoch_order(0))
    s.set_epoch(1)
    list(s)
    assert calls == [] and "cold_start" not in s.stats and s.stats["n_reused"] == 60  # kNN on recorded rows
    assert s.group_sizes is not None


def test_cold_start_bad_value() -> None:
    with pytest.raises(ValueError, match="cold_start"):
        sampler(make_dataset(20), "example", reuse_embeddings=True, cold_start="later")
