"""QQP (GLUE TSV files, user-supplied): binary duplicate-question pairs, F1."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bscl.data.errors import DataError, SkipLog
from bscl.data.readers import (
    parse_binary,
    parse_text,
    read_table,
)
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import PairSplit, Task, pairs_dataset
from bscl.data.tasks.common import DEV_FRACTION, PathLike, _subset


def read_qqp(path: PathLike, skips: SkipLog) -> PairSplit:
    """GLUE QQP ``train.tsv``/``dev.tsv``: header ``id qid1 qid2 question1 question2 is_duplicate``.

    Rows with an empty question are skipped by design and counted (the Quora release has a few).
    """
    s1: list[str] = []
    s2: list[str] = []
    y: list[float] = []
    for line, row in read_table(path, ["question1", "question2", "is_duplicate"], quoting="none"):
        if not row["question1"].strip() or not row["question2"].strip():
            skips.skip(f"{Path(path).name}: empty question")
            continue
        label = parse_binary(row["is_duplicate"], file=path, line=line, field="is_duplicate")
        s1.append(parse_text(row["question1"], file=path, line=line, field="question1"))
        s2.append(parse_text(row["question2"], file=path, line=line, field="question2"))
        y.append(label)
    if not y:
        raise DataError("no rows", file=path)
    return PairSplit(s1, s2, np.array(y), graded=False, source=str(path))


def load_qqp(
    root: Path,
    seed: int = 0,
    *,
    folder: PathLike | None = None,
    train_size: int = 10_000,
    dev_size: int = 3_000,
    test_size: int | None = None,
) -> Task:
    """QQP from GLUE files in ``DATA_ROOT/qqp`` (or ``folder``): ``dev_size`` pairs (at most a tenth of
    the file) sampled (seeded) from train.tsv for dev, ``train_size`` other pairs for training, and GLUE
    dev.tsv (all of it, or a ``test_size`` sample) as test, since GLUE's test.tsv has no labels."""
    d = Path(folder) if folder is not None else root / "qqp"
    if not (d / "train.tsv").is_file():
        raise FileNotFoundError(
            f"{d / 'train.tsv'}: QQP is not part of the shared data; put GLUE QQP train.tsv and dev.tsv in {d}"
        )
    skips = SkipLog()
    full = read_qqp(d / "train.tsv", skips)
    test = read_qqp(d / "dev.tsv", skips)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(full))
    # dev is reserved first, so a small train.tsv still leaves a dev split (at most a tenth of it)
    n_dev = min(dev_size, max(1, round(DEV_FRACTION * len(full))))
    n_train = min(train_size, len(full) - n_dev)
    dev = _subset(full, np.sort(order[:n_dev]), f"{n_dev}-pair dev sample, seed {seed}")
    tr = _subset(full, np.sort(order[n_dev : n_dev + n_train]), f"{n_train}-pair sample, seed {seed}")
    if test_size is not None and test_size < len(test):
        test = _subset(test, np.sort(rng.permutation(len(test))[:test_size]), f"{test_size}-pair sample")
    skips.report("qqp")
    return Task(
        name=SPEC.name,
        kind=SPEC.kind,
        train=pairs_dataset(tr.sentences1, tr.sentences2, tr.labels),
        dev=dev,
        test=test,
        metric=SPEC.metric,
        binarize_threshold=SPEC.threshold,
        skipped=dict(skips),
        info={"sizes": {"train": len(tr), "dev": len(dev), "test": len(test)}, "seed": seed},
    )


PAPER = PaperSettings(best_loss="combo", tau=1.2, normalization="coordinate", mu=0.1, batch_size=50)
SPEC = TaskSpec(
    name="qqp",
    loader=load_qqp,
    kind="classification",
    metric="f1",
    metrics=("f1", "accuracy", "threshold"),
    available=False,
    splits="GLUE train.tsv: 3,000 pairs for dev, 10,000 others for train (seeded) / GLUE dev.tsv as test",
    differences="the paper's 10,000-pair sample is not published; GLUE test has no labels; "
    "the files are not in the shared data",
    paper=PAPER,
    paper_metrics=("f1",),
    table_metrics=("f1", "accuracy"),
    paper_results={"mse": "0.7429", "bsc": "0.7313", "combo": "0.7507"},
)
