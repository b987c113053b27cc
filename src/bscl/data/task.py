"""The :class:`Task` every loader returns, and its evaluation splits.

Training data is a ``datasets.Dataset`` with columns exactly ``anchor``, ``positive``, ``label`` (in
that order: sentence-transformers reads the first text column as the query and the second as the
answer). Evaluation data comes in one of two shapes:

- :class:`PairSplit`: aligned sentence pairs with a graded score (regression: Spearman) or a binary
  label (classification: F1 at a threshold chosen on dev);
- :class:`RankingSplit`: queries, one candidate pool encoded once, and for every query either its own
  candidate list (indices into the pool; CQA, Antique) or the whole pool (PFCC-S), plus the relevant
  candidates (and graded gains for nDCG, where the data has them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # datasets is imported where a dataset is built: the command line's help needs none
    from datasets import Dataset

Kind = Literal["regression", "classification", "ranking", "unsupervised"]
TRAIN_COLUMNS = ("anchor", "positive", "label")
#: the training columns and their types (``datasets.Value`` names)
TRAIN_FEATURES: dict[str, str] = {"anchor": "string", "positive": "string", "label": "float32"}


@dataclass
class PairSplit:
    """Sentence pairs with a gold label each.

    ``labels`` are floats: graded in ``[0, 1]`` when ``graded`` (STSb: score / 5), else 0.0 / 1.0.
    """

    sentences1: list[str]
    sentences2: list[str]
    labels: np.ndarray
    graded: bool
    source: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float64)
        if not (len(self.sentences1) == len(self.sentences2) == len(self.labels)):
            raise ValueError(
                f"PairSplit columns differ in length: {len(self.sentences1)}, {len(self.sentences2)}, "
                f"{len(self.labels)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def undefined(self) -> str | None:
        """Why no model can be scored on these pairs (their metric is undefined), or None.

        A correlation (graded labels) needs two pairs and two different labels; an F1 at a threshold
        (binary labels) needs both classes (no positive: F1 is 0 for every model; no negative: every
        model gets F1 1 at a threshold below its lowest score).
        """
        n = len(self)
        if n < 2:
            return f"{n} pair{'s' if n != 1 else ''}: a metric over pairs needs at least 2"
        values = np.unique(self.labels)
        if self.graded and len(values) == 1:
            return (
                f"all {n} labels are {values[0]:g}: Spearman and Pearson correlations are undefined for "
                "labels that do not vary (every model would score NaN)"
            )
        if not self.graded and len(values) == 1:
            return (
                f"all {n} labels are {values[0]:g}: F1 at a threshold needs positive and negative pairs "
                "(with one class every model scores the same)"
            )
        return None

    def head(self, n: int) -> PairSplit:
        """The first ``n`` pairs (e.g. a cheaper per-epoch dev metric)."""
        return PairSplit(
            self.sentences1[:n],
            self.sentences2[:n],
            self.labels[:n],
            self.graded,
            f"{self.source} (first {n})",
        )


@dataclass
class RankingSplit:
    """Queries ranked against candidates from one pool.

    - ``queries[i]`` (text) with id ``query_ids[i]``;
    - ``pool``: candidate texts (encoded once), ``pool_ids`` their ids;
    - ``candidates[i]``: int array of pool indices ranked for query ``i``, in the original order (the
      tie-break order), or ``None`` for every query = rank the whole pool (``candidates is None``);
    - ``relevant[i]``: int array of pool indices that are relevant for query ``i`` (may be empty: such
      a query counts with AP = RR = 0, the SemEval scorer's convention);
    - ``gains``: optional ``{(i, pool_index): gain}`` graded relevance for nDCG (default: binary).
    """

    queries: list[str]
    query_ids: list[str]
    pool: list[str]
    pool_ids: list[str]
    candidates: list[np.ndarray] | None
    relevant: list[np.ndarray]
    gains: dict[tuple[int, int], float] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.queries)
        if len(self.query_ids) != n or len(self.relevant) != n:
            raise ValueError("RankingSplit: queries, query_ids and relevant differ in length")
        if self.candidates is not None and len(self.candidates) != n:
            raise ValueError("RankingSplit: candidates and queries differ in length")
        if len(self.pool) != len(self.pool_ids):
            raise ValueError("RankingSplit: pool and pool_ids differ in length")

    def __len__(self) -> int:
        return len(self.queries)

    def head(self, n: int) -> RankingSplit:
        """The first ``n`` queries; with per-query candidate lists the pool shrinks to their candidates
        (a whole-pool split keeps the whole pool, which defines the task)."""
        if self.candidates is None:
            return RankingSplit(
                self.queries[:n],
                self.query_ids[:n],
                self.pool,
                self.pool_ids,
                None,
                self.relevant[:n],
                None,
                f"{self.source} (first {n} queries)",
            )
        used = np.unique(np.concatenate(self.candidates[:n])) if n > 0 else np.zeros(0, dtype=np.int64)
        remap = {int(j): k for k, j in enumerate(used)}

        def re(a: np.ndarray) -> np.ndarray:
            return np.array([remap[int(j)] for j in a], dtype=np.int64)

        gains = None
        if self.gains is not None:
            gains = {(i, remap[j]): g for (i, j), g in self.gains.items() if i < n and j in remap}
        return RankingSplit(
            self.queries[:n],
            self.query_ids[:n],
            [self.pool[j] for j in used],
            [self.pool_ids[j] for j in used],
            [re(c) for c in self.candidates[:n]],
            [re(r) for r in self.relevant[:n]],
            gains,
            f"{self.source} (first {n} queries)",
        )

    def undefined(self) -> str | None:
        """Why no model can be scored on this ranking (no query, or no query with a relevant candidate:
        MRR and MAP are 0 for every model), or None."""
        if len(self) == 0:
            return "no queries"
        if not any(len(r) for r in self.relevant):
            return (
                f"none of the {len(self)} queries has a relevant candidate: MRR and MAP are 0 for every model"
            )
        return None

    def candidate_indices(self, i: int) -> np.ndarray:
        """Pool indices ranked for query ``i`` (the whole pool when ``candidates`` is None)."""
        if self.candidates is None:
            return np.arange(len(self.pool))
        return self.candidates[i]

    def relevance(self, i: int) -> np.ndarray:
        """Binary relevance (0/1 float) aligned with :meth:`candidate_indices`."""
        return np.isin(self.candidate_indices(i), self.relevant[i]).astype(np.float64)

    def graded_relevance(self, i: int) -> np.ndarray:
        """Gains aligned with :meth:`candidate_indices` (binary relevance when no ``gains``)."""
        rel = self.relevance(i)
        if self.gains is None:
            return rel
        cand = self.candidate_indices(i)
        return np.array([self.gains.get((i, int(c)), 0.0) for c in cand], dtype=np.float64)


EvalSplit = PairSplit | RankingSplit


@dataclass
class Task:
    """A named task: training pairs, dev/test evaluation data, and how to score it.

    - ``kind``: "regression" (graded pairs), "classification" (binary pairs), "ranking", or
      "unsupervised" (train anchor == positive; dev/test are STSb pairs).
    - ``metric``: name of the primary metric returned by :func:`bscl.evaluation.evaluate` (used for
      choosing the best epoch on dev).
    - ``binarize_threshold``: the task spec's ``threshold``: a graded label above it (``label >
      threshold``) is a positive for the contrastive losses (0.6 for STSb after /5, 0.5 otherwise).
    - ``skipped``: rows skipped by design, reason -> count (never silently dropped).
    - ``info``: provenance and split sizes, free-form (files read, seed, notes on differences from the
      paper).
    - ``files``: every data file the loader read (filled by :func:`recording_reads` around the
      loader; the run folder fingerprints them).
    """

    name: str
    kind: Kind
    train: Dataset
    dev: EvalSplit | None
    test: EvalSplit | None
    metric: str
    binarize_threshold: float = 0.5
    skipped: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def split(self, name: str) -> EvalSplit:
        """The ``dev`` or ``test`` evaluation split; a clear error when the task has none."""
        if name not in ("dev", "test"):
            raise ValueError(f"split must be 'dev' or 'test', not {name!r}")
        data = self.dev if name == "dev" else self.test
        if data is None:
            raise ValueError(f"task {self.name!r} has no {name} split")
        return data

    def check_scorable(self, name: str, fix: str = "") -> None:
        """ValueError naming the split's source when its metric is undefined (constant labels, one row,
        no relevant candidate): checked from the data, before any model is loaded or trained. ``fix``:
        what to change, for the message (e.g. the option that names another file)."""
        data = self.split(name)
        reason = data.undefined()
        if reason is not None:
            raise ValueError(f"{data.source or f'{self.name} {name}'}: {reason}{'; ' + fix if fix else ''}")


def pairs_dataset(anchors: Sequence[str], positives: Sequence[str], labels: Sequence[float]) -> Dataset:
    """Training dataset with exactly the columns ``anchor``, ``positive``, ``label`` (float32), in order."""
    if not (len(anchors) == len(positives) == len(labels)):
        raise ValueError("anchors, positives and labels differ in length")
    from datasets import Dataset, Features, Value

    return Dataset.from_dict(
        {"anchor": list(anchors), "positive": list(positives), "label": [float(x) for x in labels]},
        features=Features({name: Value(dtype) for name, dtype in TRAIN_FEATURES.items()}),
    )


def group_split(groups: Sequence[Any], dev_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (train, dev) so that rows of one group stay together.

    Groups are visited in a random order (``numpy.random.default_rng(seed)``) and added to dev until dev
    holds ``round(dev_fraction * n)`` rows (possibly slightly more when the last group is larger than
    one row). Both index arrays are returned in the original row order (file order is kept). With
    every group of size one this is a plain seeded random 9:1 (for ``dev_fraction=0.1``) split.
    """
    n = len(groups)
    target = round(dev_fraction * n)
    by_group: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    keys = list(by_group)
    order = np.random.default_rng(seed).permutation(len(keys))
    dev: list[int] = []
    for k in order:
        if len(dev) >= target:
            break
        dev.extend(by_group[keys[k]])
    dev_mask = np.zeros(n, dtype=bool)
    dev_mask[dev] = True
    return np.flatnonzero(~dev_mask), np.flatnonzero(dev_mask)


def linked_groups(*columns: Sequence[Any]) -> list[int]:
    """One group id per row such that rows with the same value in one column are in one group (the
    connected components of the graph whose nodes are the columns' values and whose edges are the
    rows; scipy's ``connected_components``). For :func:`group_split`: PFCC-S's pairs grouped so that
    neither a tweet nor a verified claim of dev occurs in train. Ids are numbered in order of first row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(columns[0]) if columns else 0
    if any(len(c) != n for c in columns):
        raise ValueError("linked_groups: columns of different lengths")
    if n == 0:
        return []
    ids: dict[tuple[int, Any], int] = {}
    for j, col in enumerate(columns):
        for v in col:
            ids.setdefault((j, v), len(ids))
    rows = np.repeat(np.arange(n), len(columns))  # (n * columns,) edges row -> value node
    cols = np.array([n + ids[(j, col[i])] for i in range(n) for j, col in enumerate(columns)], dtype=np.int64)
    size = n + len(ids)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    first: dict[int, int] = {}  # numbered by first row, so the ids do not depend on scipy's order
    return [first.setdefault(int(c), len(first)) for c in labels[:n]]


#: fewest dev rows a split-off dev set may have (a correlation or an F1 threshold needs two)
MIN_DEV_ROWS = 2


def check_dev_split(groups: Sequence[Any], train: np.ndarray, dev: np.ndarray, *, source: str) -> None:
    """After :func:`group_split` of ``source``'s rows: a clear error when the split cannot work.

    - every row shares one first text: the one group goes to dev whole and nothing is left to train;
    - too few rows (<= 14 for a 9:1 split): dev gets fewer than :data:`MIN_DEV_ROWS` rows.
    """
    n = len(groups)
    if len(set(groups)) == 1 and n > 1:
        raise ValueError(
            f"{source}: all {n} rows share one first text ({str(groups[0])[:60]!r}), so the 9:1 dev split "
            "(rows of one first text stay together) leaves nothing to train on; pass a dev file "
            "(--data.dev_file) or use data with several first texts"
        )
    if len(dev) < MIN_DEV_ROWS or len(train) == 0:
        raise ValueError(
            f"{source}: {n} rows are too few to split off a dev set (the 9:1 split gives {len(dev)} dev "
            f"and {len(train)} training rows; at least {MIN_DEV_ROWS} dev rows are needed); pass a dev file "
            "(--data.dev_file) or add rows"
        )


_RECORDERS: list[list[Path]] = []


def note_read(path: str | Path) -> None:
    """Called by every reader of :mod:`bscl.data.readers` when it opens a data file."""
    for files in _RECORDERS:
        p = Path(path).resolve()
        if p not in files:
            files.append(p)


@contextmanager
def recording_reads() -> Iterator[list[Path]]:
    """Collect the data files read inside the block (resolved, in first-read order)::

    with recording_reads() as files:
        task = load_task("stsb", root)
    task.files = files

    One choke point (the readers' file check) instead of a file list kept by hand in each loader.
    """
    files: list[Path] = []
    _RECORDERS.append(files)
    try:
        yield files
    finally:
        _RECORDERS.remove(files)
