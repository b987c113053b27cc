"""PFCC-S (Snopes): tweets ranked against all verified claims, HasPositive@k (Shaar et al., 2020)."""

from __future__ import annotations

from pathlib import Path

from bscl.data.errors import DataError
from bscl.data.readers import (
    parse_text,
    read_table,
)
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import Task, group_split, linked_groups, pairs_dataset
from bscl.data.tasks.common import DEV_FRACTION, positives_ranking


def read_pfcc(root: Path) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """PFCC-S pairs ``(claim, fact)`` and the verified-claims pool (facts, titles), CSV-quoted TSV.

    Every pair's fact must occur in verified-claims.tsv (else DataError naming the pair's line).
    """
    folder = root / "pfcc_snopes"
    pool_path = folder / "verified-claims.tsv"
    pairs_path = folder / "tweet-veclaim-pairs.tsv"
    facts: list[str] = []
    titles: list[str] = []
    for line, row in read_table(pool_path, ["title", "fact"], quoting="csv"):
        facts.append(parse_text(row["fact"], file=pool_path, line=line, field="fact"))
        titles.append(row["title"].strip())
    known = set(facts)
    pairs: list[tuple[str, str]] = []
    for line, row in read_table(pairs_path, ["claim", "fact"], quoting="csv"):
        claim = parse_text(row["claim"], file=pairs_path, line=line, field="claim")
        fact = parse_text(row["fact"], file=pairs_path, line=line, field="fact")
        if fact not in known:
            raise DataError(f"fact not found in {pool_path.name}", file=pairs_path, line=line, field="fact")
        pairs.append((claim, fact))
    return pairs, facts, titles


def load_pfcc(root: Path, seed: int = 0, *, train_size: int = 800) -> Task:
    """PFCC-S: ``pairs[:800]`` split 9:1 (seeded) into train/dev, ``pairs[800:]`` is test; queries are
    ranked against all verified claims (10,381 records).

    The dev split keeps together the pairs linked by a tweet **or a verified claim** (split 2, see
    ``SPEC.split_version``), so that, as in test (whose claims no training pair has), no dev query's
    claim is a training target. Split 1 kept only a tweet's pairs together: 26-38% of its dev claims
    (seeds 0-2) were training targets, and dev rewarded memorizing them (benchmarks/RESULTS.md)."""
    pairs, facts, _titles = read_pfcc(root)
    head, tail = pairs[:train_size], pairs[train_size:]
    tr_idx, dev_idx = group_split(
        linked_groups([c for c, _ in head], [f for _, f in head]), DEV_FRACTION, seed
    )
    tr = [head[i] for i in tr_idx]
    dv = [head[i] for i in dev_idx]
    pool_ids = [str(i) for i in range(len(facts))]
    src = str(root / "pfcc_snopes")
    dev = positives_ranking([c for c, _ in dv], [f for _, f in dv], facts, pool_ids, source=f"{src} (dev)")
    test = positives_ranking(
        [c for c, _ in tail], [f for _, f in tail], facts, pool_ids, source=f"{src} (test)"
    )
    return Task(
        name=SPEC.name,
        kind=SPEC.kind,
        train=pairs_dataset([c for c, _ in tr], [f for _, f in tr], [1.0] * len(tr)),
        dev=dev,
        test=test,
        metric=SPEC.metric,
        binarize_threshold=SPEC.threshold,
        info={
            "sizes": {
                "pairs": len(pairs),
                "train": len(tr),
                "dev": len(dv),
                "test": len(tail),
                "pool": len(facts),
            },
            "queries": {"dev": len(dev), "test": len(test)},
            "seed": seed,
        },
        extras={"pool": facts},
    )


PAPER = PaperSettings(best_loss="bsc", tau=1.2, normalization="coordinate", mu=0.9, margin=0.6)
SPEC = TaskSpec(
    name="pfcc",
    loader=load_pfcc,
    kind="ranking",
    metric="has_positive@1",
    metrics=(
        "has_positive@1",
        "has_positive@3",
        "has_positive@5",
        "has_positive@10",
        "has_positive@20",
        "has_positive@50",
        "mrr",
        "map",
    ),
    splits="pairs[:800] split 9:1 with the seed (~720 / ~80; pairs sharing a tweet or a verified claim "
    "kept together, so dev's claims are unseen in training like test's), pairs[800:] test (199 pairs, "
    "198 queries); ranked against all 10,381 verified claims",
    split_version=2,
    differences="999 pairs released (paper: 800 / 200); the paper's dev split is not published",
    paper=PAPER,
    paper_metrics=("has_positive@1", "has_positive@5", "has_positive@50"),
    table_metrics=("has_positive@1", "has_positive@5", "has_positive@50", "mrr"),
    paper_results={
        "mse": "0.362/0.508/0.709",
        "triplet": "0.668/0.794/0.899",
        "bsc": "0.673/0.844/0.899",
        "bsc l2": "0.588/0.764/0.899",
        "bsc none": "0.608/0.744/0.884",
    },
)
