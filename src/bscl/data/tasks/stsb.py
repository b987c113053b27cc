"""STS Benchmark (Cer et al., 2017): graded sentence pairs, Spearman."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bscl.data.errors import DataError
from bscl.data.readers import (
    parse_score,
    parse_text,
    read_delimited,
)
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import PairSplit, Task, pairs_dataset
from bscl.data.tasks.common import PathLike


def read_stsb(path: PathLike) -> PairSplit:
    """One STSb file: no header, tab-separated, no quoting; score in column 5 (0-5), sentences in 6-7.

    Rows may carry two extra trailing columns (source/license); they are ignored. Labels are score / 5.
    """
    s1: list[str] = []
    s2: list[str] = []
    y: list[float] = []
    for rec in read_delimited(path, quoting="none", min_columns=7, max_columns=9):
        f = rec.fields
        y.append(
            parse_score(f[4], file=path, line=rec.line, field="score (column 5)", low=0.0, high=5.0) / 5.0
        )
        s1.append(parse_text(f[5], file=path, line=rec.line, field="sentence1 (column 6)"))
        s2.append(parse_text(f[6], file=path, line=rec.line, field="sentence2 (column 7)"))
    if not y:
        raise DataError("no rows", file=path)
    return PairSplit(s1, s2, np.array(y), graded=True, source=str(path))


def _stsb_splits(root: Path) -> dict[str, PairSplit]:
    return {s: read_stsb(root / "stsb" / f"sts-{s}.csv") for s in ("train", "dev", "test")}


def load_stsb(root: Path, seed: int = 0) -> Task:
    """STS Benchmark: official splits; label = score / 5 in [0, 1]; binarized at 0.6 for BSC."""
    splits = _stsb_splits(root)
    tr = splits["train"]
    return Task(
        name=SPEC.name,
        kind=SPEC.kind,
        train=pairs_dataset(tr.sentences1, tr.sentences2, tr.labels),
        dev=splits["dev"],
        test=splits["test"],
        metric=SPEC.metric,
        binarize_threshold=SPEC.threshold,
        info={"sizes": {k: len(v) for k, v in splits.items()}, "files": [v.source for v in splits.values()]},
    )


PAPER = PaperSettings(best_loss="combo", tau=0.1, mu=0.1, group_size=8)
SPEC = TaskSpec(
    name="stsb",
    loader=load_stsb,
    kind="regression",
    metric="spearman",
    metrics=("spearman", "pearson"),
    threshold=0.6,
    splits="official train / dev / test (5,749 / 1,500 / 1,379 pairs); label = score / 5",
    differences="none: the paper's splits",
    paper=PAPER,
    paper_metrics=("spearman",),
    table_metrics=("spearman",),
    paper_results={"mse": "0.8480", "bsc": "0.8326", "combo": "0.8459", "bsc then mse": "0.8571"},
)
