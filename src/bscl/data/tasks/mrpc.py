"""MRPC (Dolan and Brockett, 2005): binary paraphrase pairs, F1 at the dev threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bscl.data.errors import DataError
from bscl.data.readers import (
    parse_binary,
    parse_text,
    read_table,
)
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import PairSplit, Task, group_split, pairs_dataset
from bscl.data.tasks.common import DEV_FRACTION, PathLike, _subset


def read_mrpc(path: PathLike) -> PairSplit:
    """One MSRP file: header, UTF-8 BOM, CRLF, tab-separated, no quoting; ``Quality`` 0/1."""
    s1: list[str] = []
    s2: list[str] = []
    y: list[float] = []
    for line, row in read_table(path, ["Quality", "#1 String", "#2 String"], quoting="none"):
        y.append(parse_binary(row["Quality"], file=path, line=line, field="Quality"))
        s1.append(parse_text(row["#1 String"], file=path, line=line, field="#1 String"))
        s2.append(parse_text(row["#2 String"], file=path, line=line, field="#2 String"))
    if not y:
        raise DataError("no rows", file=path)
    return PairSplit(s1, s2, np.array(y), graded=False, source=str(path))


def load_mrpc(root: Path, seed: int = 0) -> Task:
    """MRPC: the official train file split 9:1 (seeded) into train/dev; official test."""
    full = read_mrpc(root / "mrpc" / "msr_paraphrase_train.txt")
    test = read_mrpc(root / "mrpc" / "msr_paraphrase_test.txt")
    tr_idx, dev_idx = group_split(list(range(len(full))), DEV_FRACTION, seed)
    tr = _subset(full, tr_idx, f"train part of 9:1 split, seed {seed}")
    dev = _subset(full, dev_idx, f"dev part of 9:1 split, seed {seed}")
    return Task(
        name=SPEC.name,
        kind=SPEC.kind,
        train=pairs_dataset(tr.sentences1, tr.sentences2, tr.labels),
        dev=dev,
        test=test,
        metric=SPEC.metric,
        binarize_threshold=SPEC.threshold,
        info={"sizes": {"train": len(tr), "dev": len(dev), "test": len(test)}, "seed": seed},
    )


PAPER = PaperSettings(best_loss="combo", tau=0.1, mu=0.1, group_size=4)
SPEC = TaskSpec(
    name="mrpc",
    loader=load_mrpc,
    kind="classification",
    metric="f1",
    metrics=("f1", "accuracy", "threshold"),
    splits="official train split 9:1 with the seed (3,668 / 408) / official test (1,725)",
    differences="no official dev split: a seeded 9:1 split of train (paper: 3,668 / 407)",
    paper=PAPER,
    paper_metrics=("f1",),
    table_metrics=("f1", "accuracy"),
    paper_results={"mse": "0.8908", "bsc": "0.8673", "combo": "0.8946"},
)
