"""User data: CSV/TSV/JSONL files or a ``datasets.Dataset`` with named columns."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # datasets is imported where a dataset is read
    from datasets import Dataset

from bscl.data.errors import DataError
from bscl.data.readers import (
    check_header,
    load_table,
    parse_binary,
    parse_score,
    parse_text,
    read_delimited,
    read_jsonl,
)
from bscl.data.spec import TaskSpec
from bscl.data.task import PairSplit, RankingSplit, Task, check_dev_split, group_split, pairs_dataset
from bscl.data.tasks.common import DEV_FRACTION, PathLike, positives_ranking

logger = logging.getLogger("bscl.data")

TEXT1_NAMES = ("anchor", "sentence1", "text1", "query", "question1", "question")
TEXT2_NAMES = ("positive", "sentence2", "text2", "answer", "question2", "document")
LABEL_NAMES = ("label", "score", "is_duplicate")
#: the kinds of labels: graded scores, binary 0/1 labels, positive pairs only (no label column)
LABEL_TYPES = ("score", "binary", "positive")


def _iter_source(
    src: PathLike | Dataset, what: str
) -> tuple[str, list[str], Iterable[tuple[dict[str, Any], dict[str, Any]]]]:
    """(display name, column names, iterator of (row, where-kwargs for DataError))."""
    from datasets import Dataset

    if isinstance(src, Dataset):
        name = f"<datasets.Dataset {what}>"
        return name, list(src.column_names), ((row, {"file": name, "row": i}) for i, row in enumerate(src))
    table = load_table(src)  # parquet / Arrow / datasets folder
    if table is not None:
        name = str(src)
        return (
            name,
            list(table.column_names),
            ((row, {"file": name, "row": i}) for i, row in enumerate(table)),
        )
    path = Path(src)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = list(read_jsonl(path))
        cols = list(dict.fromkeys(k for _, r in rows for k in r))
        return str(path), cols, ((r, {"file": path, "line": line}) for line, r in rows)
    if suffix not in (".csv", ".tsv"):
        raise DataError(
            f"unknown file type {suffix!r} (expected .csv, .tsv, .jsonl, .parquet, .arrow or a datasets folder)",
            file=path,
        )
    delimiter = "\t" if suffix == ".tsv" else ","
    records = read_delimited(path, delimiter=delimiter, quoting="csv")
    try:
        header = [h.strip() for h in next(records).fields]
    except StopIteration:
        raise DataError("empty file (no header line)", file=path, line=1) from None
    check_header(header, file=path)

    def gen() -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
        for rec in records:
            if len(rec.fields) != len(header):
                raise DataError(
                    f"expected {len(header)} columns as in the header, found {len(rec.fields)}",
                    file=path,
                    line=rec.line,
                )
            yield dict(zip(header, rec.fields, strict=True)), {"file": path, "line": rec.line}

    return str(path), header, gen()


def _pick(
    columns: list[str],
    given: str | None,
    candidates: Sequence[str],
    what: str,
    source: str,
    required: bool = True,
) -> str | None:
    if given is not None:
        if given not in columns:
            raise DataError(f"missing column (have {columns})", file=source, line=1, field=given)
        return given
    for c in candidates:
        if c in columns:
            return c
    if required:
        raise DataError(
            f"no {what} column (looked for {list(candidates)}; have {columns})", file=source, line=1
        )
    return None


def read_generic(
    src: PathLike | Dataset,
    what: str,
    *,
    text1: str | None = None,
    text2: str | None = None,
    label: str | None = None,
    label_type: str | None = None,
    score_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[list[str], list[str], list[float], str, str]:
    """Read pairs from a CSV/TSV (header, CSV quoting), a JSONL file or a ``datasets.Dataset``.

    Returns ``(text1s, text2s, labels, label_type, source)``. ``label_type``: "score" (number in
    ``score_range``, rescaled to [0, 1]), "binary" (0/1), "positive" (no label column: every pair is a
    positive, label 1.0), or None = infer: no label column -> positive; labels all in {0, 1} -> binary;
    else score.
    """
    source, columns, rows = _iter_source(src, what)
    c1 = _pick(columns, text1, TEXT1_NAMES, "first-text", source)
    c2 = _pick(columns, text2, TEXT2_NAMES, "second-text", source)
    cl = (
        None
        if label_type == "positive"
        else _pick(columns, label, LABEL_NAMES, "label", source, required=False)
    )
    if label_type in ("score", "binary") and cl is None:
        raise DataError(f"label_type {label_type!r} needs a label column", file=source, line=1, field=label)
    ignored = [c for c in columns if c not in (c1, c2, cl)]
    if ignored:  # say which columns are not used (a negative column, a second label...)
        logger.warning(
            "%s: using columns %s; ignoring %s (choose others with --data.text1 / text2 / label)",
            source,
            [c for c in (c1, c2, cl) if c],
            ignored,
        )
    a: list[str] = []
    b: list[str] = []
    raw: list[tuple[Any, dict[str, Any]]] = []
    for row, where in rows:
        a.append(parse_text(row.get(c1), field=c1, **_where(where)))
        b.append(parse_text(row.get(c2), field=c2, **_where(where)))
        raw.append((row.get(cl) if cl else 1.0, where))
    if not a:
        raise DataError("no rows", file=source)
    if label_type is None:
        label_type = infer_label_type([v for v, _ in raw] if cl is not None else None)
    low, high = score_range
    labels: list[float] = []
    for v, where in raw:
        if label_type == "binary":
            labels.append(parse_binary(v, field=cl or "label", **_where(where)))
        elif label_type == "score":
            x = parse_score(v, field=cl or "label", low=low, high=high, **_where(where))
            labels.append((x - low) / (high - low))
        elif label_type == "positive":
            labels.append(1.0)
        else:
            raise ValueError(f"label_type must be one of {LABEL_TYPES} or None, not {label_type!r}")
    return a, b, labels, label_type, source


def infer_label_type(labels: Sequence[Any] | None) -> str:
    """The kind of labels of a pair file whose label type is not given: "positive" without a label
    column (``labels`` None: every pair is a positive), "binary" when every label is 0 or 1, else
    "score" (graded). The kind chooses the metric (:func:`load_generic`) and, in the experiment lab,
    the recipes."""
    if labels is None:
        return "positive"
    return "binary" if all(_is_01(v) for v in labels) else "score"


def _where(where: dict[str, Any]) -> dict[str, Any]:
    out = {"file": where.get("file"), "line": where.get("line")}
    if "row" in where:
        return {"file": where["file"], "line": None, "row": where["row"]}
    return out


def _is_01(v: Any) -> bool:
    if isinstance(v, bool):
        return True
    if isinstance(v, (int, float)):
        return v in (0, 1)
    return isinstance(v, str) and v.strip() in ("0", "1")


def _source_key(src: PathLike | Dataset) -> tuple[str, Any]:
    """One key per data source: a file by its real path, a ``Dataset`` object by identity."""
    if isinstance(src, str | os.PathLike):
        return ("file", os.path.realpath(src))
    return ("dataset", id(src))


def load_generic(
    root: Path | None,
    seed: int = 0,
    *,
    train: PathLike | Dataset,
    dev: PathLike | Dataset | None = None,
    test: PathLike | Dataset | None = None,
    task_name: str = "generic",
    text1: str | None = None,
    text2: str | None = None,
    label: str | None = None,
    label_type: str | None = None,
    score_range: tuple[float, float] = (0.0, 1.0),
    binarize_threshold: float = 0.5,
) -> Task:
    """User data: a CSV/TSV (with header) or JSONL file, or a ``datasets.Dataset``, with named columns.

    Without ``dev``, train is split 9:1 (seeded, pairs of one first text kept together). The kind and
    metric follow the label type: score -> regression / spearman; binary -> classification / f1 (at
    the dev threshold); positive -> ranking / mrr (each unique first text ranks all unique second texts
    of its split).
    """
    opts = {"text1": text1, "text2": text2, "label": label, "score_range": score_range}
    a, b, y, kind_label, _src = read_generic(train, "train", label_type=label_type, **opts)
    lt = kind_label
    # one file given for several splits (bscl eval reads one file as every split) is read, checked and
    # reported (its ignored columns) once
    rows_of: dict[Any, tuple[list[str], list[str], list[float], str]] = {_source_key(train): (a, b, y, _src)}

    def evaluation(
        src: PathLike | Dataset | None, what: str
    ) -> tuple[list[str], list[str], list[float], str] | None:
        if src is None:
            return None
        if _source_key(src) not in rows_of:
            ea, eb, ey, _lt, source = read_generic(src, what, label_type=lt, **opts)
            rows_of[_source_key(src)] = (ea, eb, ey, source)
        return rows_of[_source_key(src)]

    dev_rows = evaluation(dev, "dev")
    if dev_rows is None:
        tr_idx, dev_idx = group_split(a, DEV_FRACTION, seed)
        check_dev_split(a, tr_idx, dev_idx, source=_src)
        dev_rows = (
            [a[i] for i in dev_idx],
            [b[i] for i in dev_idx],
            [y[i] for i in dev_idx],
            f"9:1 split of {_src}",
        )
        a, b, y = [a[i] for i in tr_idx], [b[i] for i in tr_idx], [y[i] for i in tr_idx]
    test_rows = evaluation(test, "test")

    def build(
        rows: tuple[list[str], list[str], list[float], str] | None, tag: str
    ) -> PairSplit | RankingSplit | None:
        if rows is None:
            return None
        ra, rb, ry, source = rows
        tag = f"{tag} ({source})"  # errors about a split name its file
        if lt == "positive":
            return positives_ranking(ra, rb, source=tag)
        return PairSplit(ra, rb, np.array(ry), graded=lt == "score", source=tag)

    name = task_name

    kind, metric = {
        "score": ("regression", "spearman"),
        "binary": ("classification", "f1"),
        "positive": ("ranking", "mrr"),
    }[lt]
    return Task(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        train=pairs_dataset(a, b, y),
        dev=build(dev_rows, f"{name} dev"),
        test=build(test_rows, f"{name} test"),
        metric=metric,
        binarize_threshold=binarize_threshold,
        info={"label_type": lt, "sizes": {"train": len(a), "dev": len(dev_rows[0])}, "seed": seed},
    )


SPEC = TaskSpec(
    name="generic",
    loader=load_generic,
    kind="regression",  # the loader picks kind and metric by label type: score / binary / positive
    metric="spearman",
    metrics=("spearman", "pearson", "f1", "accuracy", "mrr", "map", "p@1"),
    available=False,
    splits="user files (train, optional dev and test; without dev, train is split 9:1 with the seed)",
    differences="not a task of the paper",
)
