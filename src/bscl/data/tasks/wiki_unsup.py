"""wiki1m prefix, SimCSE-style unsupervised training (anchor == positive), Spearman on STSb."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bscl.data.errors import SkipLog
from bscl.data.readers import (
    read_lines,
)
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import Task, pairs_dataset
from bscl.data.tasks.stsb import read_stsb


def load_wiki_unsup(root: Path, seed: int = 0, *, shuffle: bool = True, limit: int | None = None) -> Task:
    """SimCSE-style unsupervised training: every sentence twice (anchor == positive, label 1).

    The file is a prefix of wiki1m (clustered by article), so it is shuffled (seeded) unless
    ``shuffle=False``; blank lines are skipped by design and counted. Dev/test are STSb dev/test.
    """
    path = root / "wiki1m_prefix" / "wiki1m_for_simcse.first11914.txt"
    skips = SkipLog()
    sentences = []
    for _line, text in read_lines(path):
        if not text.strip():
            skips.skip("blank line")
            continue
        sentences.append(text.strip())
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(sentences))
        sentences = [sentences[i] for i in order]
    if limit is not None:
        sentences = sentences[:limit]
    stsb = {s: read_stsb(root / "stsb" / f"sts-{s}.csv") for s in ("dev", "test")}
    skips.report("wiki-unsup")
    return Task(
        name=SPEC.name,
        kind=SPEC.kind,
        train=pairs_dataset(sentences, sentences, [1.0] * len(sentences)),
        dev=stsb["dev"],
        test=stsb["test"],
        metric=SPEC.metric,
        binarize_threshold=SPEC.threshold,
        skipped=dict(skips),
        info={"sizes": {"train": len(sentences)}, "seed": seed, "shuffled": shuffle},
    )


#: not a task of the BSC paper: unsupervised SimCSE's settings (Gao et al., EMNLP 2021: tau 0.05, lr 3e-5,
#: batch 64, one direction, random batches).
PAPER = PaperSettings(
    best_loss="bsc",
    tau=0.05,
    mu=0.1,
    learning_rate=3e-5,
    adam_bias_correction=True,
    batch_size=64,
    shuffle="random",
    loss_options={"symmetric": False},
    source="unsupervised SimCSE (Gao et al., EMNLP 2021)",
)
SPEC = TaskSpec(
    name="wiki-unsup",
    loader=load_wiki_unsup,
    kind="unsupervised",
    metric="spearman",
    metrics=("spearman", "pearson"),
    splits="wiki1m prefix (11,914 sentences, shuffled with the seed; anchor == positive) / STSb dev / STSb test",
    differences="SimCSE trains on 1M Wikipedia sentences; only an 11,914-sentence prefix is here",
    paper=PAPER,
    paper_metrics=("spearman",),
    table_metrics=("spearman",),
)
