"""``bscl encode``, ``bscl rank`` and ``bscl report``: use a (fine-tuned) bi-encoder on plain files.

::

    bscl encode --model NAME_OR_PATH --input texts.txt --output emb.npy [--normalize]
    bscl encode --model runs/x/model --input data.csv --column question --output emb.npy
    bscl rank --model NAME_OR_PATH --queries q.txt --pool docs.jsonl --pool-column text --top-k 10 --output top.jsonl
    bscl report runs/x

Input texts come from a ``.txt`` file (one text per line; blank lines at the end are ignored, a blank
line before the end is an error) or from one column of a ``.csv`` (standard quoting), ``.tsv``
(tab-separated, every character literal, first line is the header) or ``.jsonl`` file (one JSON
object per line). Without ``--column`` a one-column table uses its column, otherwise the column must
be called ``text``. Every problem names the file, the line and the field. Outputs are written
atomically (a temporary file, then ``os.replace``).

The functions behind the commands (:func:`read_texts`, :func:`encode_file`, :func:`rank_files`) take a
model name/path or an already loaded ``SentenceTransformer``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bscl.data.errors import DataError
from bscl.data.readers import parse_text, read_delimited, read_jsonl, read_lines, read_table
from bscl.paths import ensure_writable
from bscl.reporting.atomic import atomic_open

PathLike = str | os.PathLike[str]

TEXT_SUFFIXES = (".txt", ".text")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")
RANK_FORMATS = (".jsonl", ".tsv")
DEFAULT_COLUMN = "text"


# --------------------------------------------------------------------------------------------------
# reading texts
# --------------------------------------------------------------------------------------------------
def read_texts_with_lines(path: PathLike, column: str | None = None) -> list[tuple[int, str]]:
    """``(line, text)`` for every text of ``path`` (see the module docstring for the formats).

    Raises ``FileNotFoundError`` for a missing file and :class:`~bscl.data.errors.DataError` (a
    ``ValueError`` naming file, line and field) for a missing column, an empty or non-text value,
    malformed rows, or a file without any text.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        if column is not None:
            raise ValueError(
                f"{p}: a column ({column!r}) was given, but a {suffix} file has one text per line"
            )
        out = _read_plain(p)
    elif suffix in TABLE_SUFFIXES:
        out = _read_table_column(p, column, TABLE_SUFFIXES[suffix])
    elif suffix in JSONL_SUFFIXES:
        col = column or DEFAULT_COLUMN
        out = []
        for line, obj in read_jsonl(p):
            if col not in obj:
                raise DataError(f"missing field (keys: {sorted(obj)})", file=p, line=line, field=col)
            out.append((line, parse_text(obj[col], file=p, line=line, field=col)))
    else:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: file not found")
        known = ", ".join([*TEXT_SUFFIXES, *TABLE_SUFFIXES, *JSONL_SUFFIXES])
        raise ValueError(f"{p}: unsupported input format {suffix or '(no suffix)'!r}; use one of {known}")
    if not out:
        raise DataError("no texts in file", file=p)
    return out


def read_texts(path: PathLike, column: str | None = None) -> list[str]:
    """The texts of ``path`` in file order (see :func:`read_texts_with_lines`)."""
    return [text for _, text in read_texts_with_lines(path, column)]


def _read_plain(p: Path) -> list[tuple[int, str]]:
    rows = list(read_lines(p))
    while rows and not rows[-1][1].strip():  # trailing blank lines (a final newline or two) are fine
        rows.pop()
    return [(line, parse_text(text, file=p, line=line, field="text")) for line, text in rows]


def _read_table_column(p: Path, column: str | None, delimiter: str) -> list[tuple[int, str]]:
    quoting = "csv" if delimiter == "," else "none"
    if column is None:
        try:
            header = next(read_delimited(p, delimiter=delimiter, quoting=quoting))
        except StopIteration:
            raise DataError("empty file (no header line)", file=p, line=1) from None
        names = [h.strip() for h in header.fields]
        if len(names) == 1:
            column = names[0]
        elif DEFAULT_COLUMN in names:
            column = DEFAULT_COLUMN
        else:
            raise DataError(
                f"no column given and none is called {DEFAULT_COLUMN!r}; choose one of {names} with --column",
                file=p,
                line=header.line,
            )
    return [
        (line, parse_text(row[column], file=p, line=line, field=column))
        for line, row in read_table(p, [column], delimiter=delimiter, quoting=quoting)
    ]


# --------------------------------------------------------------------------------------------------
# encoding and ranking
# --------------------------------------------------------------------------------------------------
def _model(model: Any, device: str | None = None) -> Any:
    """A loaded model, or the one named (on ``device``; None = CUDA when available)."""
    if isinstance(model, str | os.PathLike):
        from bscl.models import load_model

        return load_model(str(model), device=device, padding_free=True)  # same outputs as padded, fewer FLOPs
    return model


def encode_texts(
    model: Any, texts: Sequence[str], *, batch_size: int = 64, normalize: bool = False
) -> np.ndarray:
    """Embeddings of ``texts`` as a float32 array (n, d); L2-normalised rows if ``normalize``."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    emb = _model(model).encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(emb, dtype=np.float32)


#: the output name that means standard output
STDOUT = "-"


def _check_output(output: PathLike, suffixes: Sequence[str], what: str) -> Path | None:
    """The output file, checked before any work (None: standard output, for ``-``)."""
    if str(output) == STDOUT:
        return None
    out = Path(output)
    if out.suffix.lower() not in suffixes:
        raise ValueError(f"{out}: {what} must end in {' or '.join(suffixes)}")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder, expected a file name")
    ensure_writable(out.parent, what)  # before any text is read or encoded
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def encode_file(
    model: Any,
    input: PathLike,
    output: PathLike,
    *,
    column: str | None = None,
    batch_size: int = 64,
    normalize: bool = False,
    device: str | None = None,
) -> np.ndarray:
    """Encode the texts of ``input`` (row i = i-th text) and save them as a float32 ``.npy``; returns them.

    ``model`` is a name/path for :func:`bscl.models.load_model` or a loaded ``SentenceTransformer``.
    The input is read (and validated) before the model is loaded.
    """
    out = _check_output(output, (".npy",), "--output")
    if out is None and sys.stdout.isatty():
        raise ValueError(
            "--output -: an .npy file is binary; redirect standard output (> emb.npy) or name a file"
        )
    texts = read_texts(input, column)
    emb = encode_texts(_model(model, device), texts, batch_size=batch_size, normalize=normalize)
    with _writer(out, "wb") as f:
        np.save(f, emb, allow_pickle=False)
    return emb


@contextlib.contextmanager
def _writer(out: Path | None, mode: str, **kwargs: Any) -> Any:
    """``out`` opened atomically, or standard output (binary for ``"wb"``) when ``out`` is None."""
    if out is not None:
        with atomic_open(out, mode, **kwargs) as f:
            yield f
        return
    stream = sys.stdout.buffer if "b" in mode else sys.stdout
    yield stream
    stream.flush()


def top_k(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` pool rows per query by cosine (Faiss ``IndexFlatIP`` on L2-normalised rows).

    Returns ``(scores, ids)``, both (n_queries, min(k, n_pool)), best first.
    """
    from bscl.batching.knn import KnnIndex, l2_normalize

    if k < 1:
        raise ValueError(f"--top-k must be at least 1, got {k}")
    index = KnnIndex(l2_normalize(pool), method="exact")
    return index.search(l2_normalize(queries), min(k, len(pool)))


def rank_files(
    model: Any,
    queries: PathLike,
    pool: PathLike,
    output: PathLike,
    *,
    query_column: str | None = None,
    pool_column: str | None = None,
    k: int = 10,
    batch_size: int = 64,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Rank the ``pool`` texts for every query by cosine similarity; write the top ``k`` per query.

    ``output`` ends in ``.jsonl`` (one object per query: ``query_index``, ``query_line``, ``query``,
    ``results`` = list of ``rank``, ``pool_index``, ``pool_line``, ``text``, ``score``) or ``.tsv``
    (header, then one row per query and rank with the same fields); ``-`` writes the JSONL lines to
    standard output. Indices are 0-based positions in
    the file's texts, lines are 1-based file lines. Returns the JSONL objects.
    """
    out = _check_output(output, RANK_FORMATS, "--output")
    if k < 1:
        raise ValueError(f"--top-k must be at least 1, got {k}")
    qs = read_texts_with_lines(queries, query_column)
    ps = read_texts_with_lines(pool, pool_column)
    m = _model(model, device)
    pool_emb = encode_texts(m, [t for _, t in ps], batch_size=batch_size, normalize=True)
    query_emb = encode_texts(m, [t for _, t in qs], batch_size=batch_size, normalize=True)
    scores, ids = top_k(query_emb, pool_emb, k)
    results = [
        {
            "query_index": i,
            "query_line": q_line,
            "query": q_text,
            "results": [
                {
                    "rank": r + 1,
                    "pool_index": int(j),
                    "pool_line": ps[j][0],
                    "text": ps[j][1],
                    "score": round(float(s), 6),
                }
                for r, (j, s) in enumerate(zip(ids[i], scores[i], strict=True))
                if j >= 0
            ],
        }
        for i, (q_line, q_text) in enumerate(qs)
    ]
    if out is None or out.suffix.lower() == ".jsonl":
        with _writer(out, "w") as f:
            for row in results:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        fields = ["query_index", "query_line", "query", "rank", "pool_index", "pool_line", "text", "score"]
        with _writer(out, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(fields)
            for row in results:
                for hit in row["results"]:
                    writer.writerow([row[k] if k in row else hit[k] for k in fields])
    return results


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
def _encode_cmd(ns: argparse.Namespace) -> int:
    emb = encode_file(
        ns.model,
        ns.input,
        ns.output,
        column=ns.column,
        batch_size=ns.batch_size,
        normalize=ns.normalize,
        device=ns.device,
    )
    print(f"wrote {emb.shape[0]} x {emb.shape[1]} float32 embeddings to {_name(ns.output)}", file=sys.stderr)
    return 0


def _rank_cmd(ns: argparse.Namespace) -> int:
    results = rank_files(
        ns.model,
        ns.queries,
        ns.pool,
        ns.output,
        query_column=ns.query_column,
        pool_column=ns.pool_column,
        k=ns.top_k,
        batch_size=ns.batch_size,
        device=ns.device,
    )
    shown = max((len(r["results"]) for r in results), default=0)
    top = f"top {shown}" if shown == ns.top_k else f"{shown} (the whole pool; --top-k {ns.top_k})"
    print(f"wrote the {top} pool texts for {len(results)} queries to {_name(ns.output)}", file=sys.stderr)
    return 0


def _name(output: str) -> str:
    return "standard output" if output == STDOUT else output


def _report_cmd(ns: argparse.Namespace) -> int:
    from bscl.reporting.report import write_report

    print(f"wrote {write_report(ns.run_dir)}")
    return 0


DEVICE_HELP = "cpu, cuda, cuda:1, mps, ... (default: CUDA when available, else the CPU)"
_FORMATS = "a .txt file (one text per line) or a .csv / .tsv / .jsonl file (see --column)"


def register(subparsers: Any) -> None:
    """Add the ``encode``, ``rank`` and ``report`` subcommands to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "encode",
        description=f"Encode the texts of {_FORMATS} with a bi-encoder; row i of the .npy is the i-th text.",
    )
    p.add_argument("--model", required=True, help="model name (minilm, mpnet, tiny) or a local folder")
    p.add_argument("--input", required=True, help=_FORMATS)
    p.add_argument(
        "--column", default=None, help="column / JSON field of a table (default: the only one, or 'text')"
    )
    p.add_argument(
        "--output", required=True, help="the .npy file to write; - = standard output (redirected to a file)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--normalize", action="store_true", help="L2-normalise the embeddings")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.set_defaults(func=_encode_cmd)

    p = subparsers.add_parser(
        "rank",
        description="Encode the pool once and the queries, rank the pool by cosine similarity (exact Faiss "
        "inner product on normalised embeddings) and write the top-k pool texts per query.",
    )
    p.add_argument("--model", required=True, help="model name (minilm, mpnet, tiny) or a local folder")
    p.add_argument("--queries", required=True, help=_FORMATS)
    p.add_argument("--pool", required=True, help=_FORMATS)
    p.add_argument("--query-column", default=None, help="column / JSON field of the queries file")
    p.add_argument("--pool-column", default=None, help="column / JSON field of the pool file")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument(
        "--output",
        required=True,
        help="results file: .jsonl (one object per query) or .tsv; - = JSONL on standard output",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.set_defaults(func=_rank_cmd)

    p = subparsers.add_parser(
        "report",
        description="Read RUN_DIR/metrics.json (and config.yaml) and write RUN_DIR/report.md with PNG plots; "
        "works on interrupted runs too.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a `bscl train` output folder")
    p.set_defaults(func=_report_cmd)
