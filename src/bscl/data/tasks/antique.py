"""ANTIQUE (Hashemi et al., 2020; user-supplied files): non-factoid answer re-ranking, MRR."""

from __future__ import annotations

from pathlib import Path

from bscl.data.errors import DataError
from bscl.data.readers import (
    parse_text,
    read_delimited,
    read_lines,
)
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import RankingSplit, Task, group_split, pairs_dataset
from bscl.data.tasks.common import DEV_FRACTION, PathLike, grouped_ranking


def read_id_text(path: PathLike) -> dict[str, str]:
    """``id <TAB> text`` per line (ANTIQUE collection and queries files). Duplicate ids are errors."""
    out: dict[str, str] = {}
    for rec in read_delimited(path, quoting="none", min_columns=2, max_columns=2):
        key = rec.fields[0].strip()
        if not key:
            raise DataError("empty id", file=path, line=rec.line, field="id (column 1)")
        if key in out:
            raise DataError(f"duplicate id {key!r}", file=path, line=rec.line, field="id (column 1)")
        out[key] = parse_text(rec.fields[1], file=path, line=rec.line, field="text (column 2)")
    return out


def read_qrels(path: PathLike) -> list[tuple[int, str, str, int]]:
    """TREC qrels ``query_id iteration doc_id relevance`` (whitespace-separated) -> (line, q, d, rel)."""
    rows = []
    for line, text in read_lines(path):
        if not text.strip():
            raise DataError("blank line", file=path, line=line)
        parts = text.split()
        if len(parts) != 4:
            raise DataError(f"expected 4 fields, found {len(parts)}", file=path, line=line)
        try:
            rel = int(parts[3])
        except ValueError:
            raise DataError(
                f"expected an integer relevance, found {parts[3]!r}",
                file=path,
                line=line,
                field="relevance (field 4)",
            ) from None
        if not 1 <= rel <= 4:
            raise DataError(
                f"relevance {rel} outside 1..4", file=path, line=line, field="relevance (field 4)"
            )
        rows.append((line, parts[0], parts[2], rel))
    return rows


def load_antique(root: Path, seed: int = 0, *, folder: PathLike | None = None) -> Task:
    """ANTIQUE from the official files in ``DATA_ROOT/antique`` (or ``folder``): antique-collection.txt,
    antique-{train,test}-queries.txt, antique-{train,test}.qrel.

    Train pairs: (query, answer, (grade - 1) / 3), split 9:1 by query (seeded) into train/dev; binarized
    at 0.6 (grades 3 and 4 are relevant, the ANTIQUE convention). Evaluation re-ranks each query's
    judged answers; relevant = grade >= 3; nDCG gains = grade - 1.
    """
    d = Path(folder) if folder is not None else root / "antique"
    coll_path = d / "antique-collection.txt"
    if not coll_path.is_file():
        raise FileNotFoundError(
            f"{coll_path}: ANTIQUE is not part of the shared data; put the official files in {d}"
        )
    collection = read_id_text(coll_path)

    def judged(split: str) -> list[tuple[str, str, str, str, int]]:
        qpath = d / f"antique-{split}-queries.txt"
        rpath = d / f"antique-{split}.qrel"
        queries = read_id_text(qpath)
        rows = []
        for line, qid, did, rel in read_qrels(rpath):
            if qid not in queries:
                raise DataError(f"query {qid!r} not in {qpath.name}", file=rpath, line=line, field="query_id")
            if did not in collection:
                raise DataError(
                    f"document {did!r} not in {coll_path.name}", file=rpath, line=line, field="doc_id"
                )
            rows.append((qid, queries[qid], did, collection[did], rel))
        return rows

    train_rows = judged("train")
    test_rows = judged("test")
    tr_idx, dev_idx = group_split([r[0] for r in train_rows], DEV_FRACTION, seed)

    def ranking(rows: list[tuple[str, str, str, str, int]], source: str) -> RankingSplit:
        return grouped_ranking(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [1.0 if r[4] >= 3 else 0.0 for r in rows],
            gains=[float(r[4] - 1) for r in rows],
            source=source,
        )

    tr = [train_rows[i] for i in tr_idx]
    dv = [train_rows[i] for i in dev_idx]
    return Task(
        name=SPEC.name,
        kind=SPEC.kind,
        train=pairs_dataset([r[1] for r in tr], [r[3] for r in tr], [(r[4] - 1) / 3 for r in tr]),
        dev=ranking(dv, f"{d} (9:1 dev split by query, seed {seed})"),
        test=ranking(test_rows, str(d / "antique-test.qrel")),
        metric=SPEC.metric,
        binarize_threshold=SPEC.threshold,
        info={"sizes": {"train": len(tr), "dev": len(dv), "test": len(test_rows)}, "seed": seed},
    )


PAPER = PaperSettings(best_loss="combo", tau=0.1, mu=0.9, batch_size=50)
SPEC = TaskSpec(
    name="antique",
    loader=load_antique,
    kind="ranking",
    metric="mrr",
    metrics=("mrr", "p@1", "ndcg@1", "map"),
    threshold=0.6,
    available=False,
    splits="antique-train.qrel split 9:1 by query with the seed / antique-test.qrel; label (grade - 1) / 3",
    differences="no official dev split; the files are not in the shared data",
    paper=PAPER,
    paper_metrics=("mrr",),
    table_metrics=("mrr", "p@1", "ndcg@1"),
    paper_results={"mse": "0.781", "bsc": "0.804", "combo": "0.822", "bsc random": "0.799"},
)
