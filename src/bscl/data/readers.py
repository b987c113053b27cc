"""Low-level readers that keep line numbers, and field parsers that fail loudly.

Every reader reports problems as :class:`~bscl.data.errors.DataError` naming the file, the
(1-based, physical) line where the record starts and the field. Traps handled here:

- UTF-8 byte-order marks (``utf-8-sig``) and CRLF line ends (``newline=""`` + the csv module);
- CSV-quoted fields spanning several physical lines (``quoting="csv"``): the record's line number is
  the line where it *starts*;
- files whose sentences contain literal ``"`` (``quoting="none"``, as STSb, MRPC and GLUE need);
- rows with extra trailing columns (STSb has 9-column rows): allowed only up to ``max_columns``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET
from xml.parsers import expat

from bscl.data.errors import DataError
from bscl.data.task import note_read

PathLike = str | os.PathLike[str]
LINE_ATTR = "__line__"  # attribute that :func:`parse_xml` adds to every element

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long forum posts exceed the 128 KiB default


@dataclass(frozen=True)
class Record:
    """One record of a delimited file: the physical line where it starts and its fields."""

    line: int
    fields: list[str]


def _require_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file not found")
    note_read(p)
    return p


def read_delimited(
    path: PathLike,
    *,
    delimiter: str = "\t",
    quoting: Literal["none", "csv"] = "none",
    min_columns: int = 1,
    max_columns: int | None = None,
) -> Iterator[Record]:
    """Yield the records of a delimited text file (no header handling here).

    ``quoting="none"`` reads every character literally (``csv.QUOTE_NONE``); ``"csv"`` applies standard
    double-quote quoting, so a quoted field may hold tabs and newlines. Blank lines are errors (a loader
    that wants to skip them must do so explicitly and count them). A record with fewer than
    ``min_columns`` or more than ``max_columns`` fields raises a DataError naming its line.
    """
    p = _require_file(path)
    mode = csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter, quoting=mode, strict=quoting == "csv")
            start = 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as err:
                    raise DataError(f"malformed record: {err}", file=p, line=start) from err
                line, start = start, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    raise DataError("blank line", file=p, line=line)
                if len(row) < min_columns:
                    raise DataError(
                        f"expected at least {min_columns} columns, found {len(row)}",
                        file=p,
                        line=line,
                        field=f"column {len(row) + 1}",
                    )
                if max_columns is not None and len(row) > max_columns:
                    raise DataError(
                        f"expected at most {max_columns} columns, found {len(row)}",
                        file=p,
                        line=line,
                        field=f"column {max_columns + 1}",
                    )
                yield Record(line, row)
    except UnicodeDecodeError as err:
        raise DataError(f"not valid UTF-8 (byte offset {err.start})", file=p) from err


def check_header(names: Sequence[str], *, file: PathLike, line: int = 1) -> None:
    """A header naming one column twice is an error (a dict of the row would silently keep one)."""
    seen: set[str] = set()
    for i, name in enumerate(names, 1):
        if name in seen:
            raise DataError(
                f"the header names column {name!r} twice (again in column {i}); rename one",
                file=file,
                line=line,
                field=name,
            )
        seen.add(name)


def read_table(
    path: PathLike,
    columns: Sequence[str],
    *,
    delimiter: str = "\t",
    quoting: Literal["none", "csv"] = "none",
    allow_extra_columns: bool = False,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Read a delimited file with a header line; yield ``(line, {column: value})`` for ``columns``.

    A column missing from the header raises a DataError naming it (line 1). Every data record must
    have as many fields as the header (more only if ``allow_extra_columns``).
    """
    p = _require_file(path)
    records = read_delimited(p, delimiter=delimiter, quoting=quoting)
    try:
        header = next(records)
    except StopIteration:
        raise DataError("empty file (no header line)", file=p, line=1) from None
    names = [h.strip() for h in header.fields]
    check_header(names, file=p, line=header.line)
    index: dict[str, int] = {}
    for col in columns:
        if col not in names:
            raise DataError(f"missing column (header has {names})", file=p, line=header.line, field=col)
        index[col] = names.index(col)
    width = len(names)
    for rec in records:
        if len(rec.fields) < width or (len(rec.fields) > width and not allow_extra_columns):
            raise DataError(
                f"expected {width} columns as in the header, found {len(rec.fields)}",
                file=p,
                line=rec.line,
                field=names[len(rec.fields)] if len(rec.fields) < width else f"column {width + 1}",
            )
        yield rec.line, {col: rec.fields[i] for col, i in index.items()}


def read_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line, text)`` of a plain text file (BOM and CR stripped, nothing else)."""
    p = _require_file(path)
    try:
        with p.open(encoding="utf-8-sig", newline=None) as f:
            for i, text in enumerate(f, 1):
                yield i, text.rstrip("\n")
    except UnicodeDecodeError as err:
        raise DataError(f"not valid UTF-8 (byte offset {err.start})", file=p) from err


def read_jsonl(path: PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, object)`` of a JSON-lines file; every non-blank line must be a JSON object."""
    p = _require_file(path)
    for line, text in read_lines(p):
        if not text.strip():
            raise DataError("blank line", file=p, line=line)
        try:
            obj = json.loads(text, object_pairs_hook=lambda pairs, line=line: _unique_keys(pairs, p, line))
        except json.JSONDecodeError as err:
            raise DataError(f"invalid JSON: {err.msg} (column {err.colno})", file=p, line=line) from err
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, found {type(obj).__name__}", file=p, line=line)
        yield line, obj


def _unique_keys(pairs: list[tuple[str, Any]], path: Path, line: int) -> dict[str, Any]:
    """``json.loads`` hook: a key given twice in one object is an error (json keeps the last one)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DataError(f"key {key!r} appears twice in one object", file=path, line=line, field=key)
        obj[key] = value
    return obj


def parse_xml(path: PathLike) -> ET.Element:
    """Parse an XML file into ElementTree elements that carry their line as ``el.get(LINE_ATTR)``.

    Hand-written on top of expat because ElementTree's C parser does not expose line numbers, and
    every error about a record must name its line. Text is collected for leaf elements only (the
    SemEval CQA schema has no mixed content).
    """
    p = _require_file(path)
    parser = expat.ParserCreate("utf-8")
    stack: list[ET.Element] = []
    root: list[ET.Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        el = ET.Element(tag, attrs)
        el.set(LINE_ATTR, str(parser.CurrentLineNumber))
        if stack:
            stack[-1].append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack and len(stack[-1]) == 0:
            stack[-1].text = (stack[-1].text or "") + data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        with p.open("rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as err:
        raise DataError(f"malformed XML: {expat.errors.messages[err.code]}", file=p, line=err.lineno) from err
    if not root:
        raise DataError("no root element", file=p, line=1)
    return root[0]


def xml_line(el: ET.Element) -> int | None:
    """The line where an element parsed by :func:`parse_xml` starts."""
    value = el.get(LINE_ATTR)
    return int(value) if value is not None else None


# --------------------------------------------------------------------------------------------------
# field parsers
# --------------------------------------------------------------------------------------------------
def parse_text(
    value: Any, *, file: PathLike | None, line: int | None, field: str, row: int | None = None
) -> str:
    """A non-empty text. ``\\r`` and surrounding whitespace are stripped; empty -> DataError."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError("missing text", file=file, line=line, field=field, row=row)
    if not isinstance(value, str):
        raise DataError(
            f"expected text, found {type(value).__name__} {value!r}",
            file=file,
            line=line,
            field=field,
            row=row,
        )
    text = value.replace("\r", "").strip()
    if not text:
        raise DataError("empty text", file=file, line=line, field=field, row=row)
    return text


def parse_score(
    value: Any,
    *,
    file: PathLike | None,
    line: int | None,
    field: str,
    low: float,
    high: float,
    row: int | None = None,
) -> float:
    """A finite number in ``[low, high]``; NaN, inf, non-numbers and out-of-range values -> DataError."""
    if isinstance(value, bool):
        raise DataError(
            f"expected a number, found boolean {value!r}", file=file, line=line, field=field, row=row
        )
    try:
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise DataError(
            f"expected a number, found {value!r}", file=file, line=line, field=field, row=row
        ) from None
    if not math.isfinite(x):
        raise DataError(f"score is {x}", file=file, line=line, field=field, row=row)
    if not low <= x <= high:
        raise DataError(
            f"score {x} outside [{low}, {high}]; scores on another scale need its maximum: "
            "--data.label_max (label_max), e.g. 5 for 0-5 scores",
            file=file,
            line=line,
            field=field,
            row=row,
        )
    return x


def parse_binary(
    value: Any, *, file: PathLike | None, line: int | None, field: str, row: int | None = None
) -> float:
    """A binary label: ``0``/``1`` (int, float 0.0/1.0, bool, or the strings "0"/"1") -> 0.0/1.0."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value in (0, 1):
            return float(value)
    elif isinstance(value, str) and value.strip() in ("0", "1"):
        return float(value.strip())
    raise DataError(
        f"expected a binary label 0 or 1, found {value!r}", file=file, line=line, field=field, row=row
    )


# --- tables that ``datasets`` reads (cli branch): parquet, Arrow, saved or loadable folders ----------
TABLE_SUFFIXES = (".parquet", ".arrow")


def load_table(path: PathLike) -> Any | None:
    """A ``datasets.Dataset`` for a ``.parquet`` / ``.arrow`` file or a folder (``save_to_disk`` output, or
    data files ``datasets.load_dataset`` reads: its ``train`` split); None for other paths (CSV, JSONL).

    Errors name the path: a folder with several splits must be given as one split's folder.
    """
    import datasets

    p = Path(path)
    suffix = p.suffix.lower()
    if not (p.is_dir() or suffix in TABLE_SUFFIXES):
        return None
    if not p.exists():
        raise DataError("no such file or folder", file=p)
    try:
        if p.is_dir() and ((p / "state.json").is_file() or (p / "dataset_dict.json").is_file()):
            ds = datasets.load_from_disk(str(p))  # a save_to_disk folder
        elif p.is_dir():
            ds = datasets.load_dataset(str(p), split="train")
        elif suffix == ".arrow":
            ds = datasets.Dataset.from_file(str(p))
        else:
            ds = datasets.load_dataset("parquet", data_files=str(p), split="train")
    except (OSError, ValueError, datasets.exceptions.DatasetGenerationError) as err:
        raise DataError(f"datasets could not read it: {err}", file=p) from None
    if isinstance(ds, datasets.DatasetDict):
        raise DataError(
            f"holds the splits {list(ds)}; give one split's folder (e.g. {p / next(iter(ds))})", file=p
        )
    return ds
