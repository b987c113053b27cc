"""``bscl encode`` / ``rank`` / ``report`` behind their functions, with the tiny random model."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bscl.data.errors import DataError
from bscl.reporting.commands import encode_file, rank_files, read_texts, register

POOL = ["the cat sat on the mat", "quick brown fox", "hello world", "rain in spain", "42 is the answer"]


@pytest.fixture(scope="module")
def model() -> Any:
    from bscl.models import load_model

    return load_model("tiny")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- reading -----------------------------------------------------------------------------------------
def test_read_texts_formats(tmp_path: Path) -> None:
    assert read_texts(write(tmp_path / "a.txt", "one\ntwo\n\n")) == ["one", "two"]  # trailing blank lines ok
    assert read_texts(write(tmp_path / "a.txt", "\ufeffone\r\ntwo")) == ["one", "two"]  # BOM, CRLF
    csv_file = write(tmp_path / "a.csv", 'id,text\n1,"a, quoted ""text"""\n2,plain\n')
    assert read_texts(csv_file) == ['a, quoted "text"', "plain"]  # default column "text"
    assert read_texts(csv_file, "id") == ["1", "2"]
    assert read_texts(write(tmp_path / "one.tsv", "question\nwhy?\nhow?\n")) == [
        "why?",
        "how?",
    ]  # only column
    jsonl = write(tmp_path / "a.jsonl", '{"text": "x", "q": "y"}\n{"text": "z", "q": "w"}\n')
    assert read_texts(jsonl) == ["x", "z"]
    assert read_texts(jsonl, "q") == ["y", "w"]


@pytest.mark.parametrize(
    ("name", "content", "column", "expected"),
    [
        ("mid.txt", "one\n\nthree\n", None, r"mid\.txt, line 2.*empty text"),
        ("spaces.txt", "one\ntwo\n   \nfour\n", None, r"spaces\.txt, line 3.*empty text"),
        ("col.csv", "id,body\n1,x\n", "text", r"col\.csv, line 1, field 'text': missing column"),
        ("nodefault.tsv", "a\tb\n1\t2\n", None, r"nodefault\.tsv, line 1.*--column"),
        ("empty.csv", "id,text\n1,ok\n2,\n", None, r"empty\.csv, line 3, field 'text': empty text"),
        (
            "field.jsonl",
            '{"text": "a"}\n{"text": "b"}\n{"body": "c"}\n',
            None,
            r"field\.jsonl, line 3, field 'text': missing field",
        ),
        (
            "type.jsonl",
            '{"text": "a"}\n{"text": 5}\n',
            None,
            r"type\.jsonl, line 2, field 'text': expected text",
        ),
        ("bad.jsonl", '{"text": "a"}\n{"text": \n', None, r"bad\.jsonl, line 2: invalid JSON"),
        ("nothing.txt", "\n\n", None, r"nothing\.txt: no texts"),
        ("a.txt", "x\n", "text", r"a\.txt: a column"),
        ("a.parquet", "x\n", None, r"a\.parquet: unsupported input format"),
    ],
)
def test_read_texts_errors_name_file_line_field(
    tmp_path: Path, name: str, content: str, column: str | None, expected: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match=expected):
        read_texts(path, column)


def test_missing_input_file(tmp_path: Path) -> None:
    for name in ("missing.txt", "missing.csv", "missing.jsonl", "missing.xyz"):
        with pytest.raises(FileNotFoundError, match=name):
            read_texts(tmp_path / name)


# -- encode ------------------------------------------------------------------------------------------
def test_encode_file(tmp_path: Path, model: Any) -> None:
    src = write(tmp_path / "pool.txt", "\n".join(POOL) + "\n")
    out = tmp_path / "sub" / "emb.npy"
    emb = encode_file(model, src, out, batch_size=2)
    saved = np.load(out)
    assert saved.dtype == np.float32 and saved.shape == (len(POOL), model.get_embedding_dimension())
    np.testing.assert_array_equal(saved, emb)
    # row i is text i, whatever the batch size
    np.testing.assert_allclose(saved[3], model.encode(POOL[3]), rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.linalg.norm(saved, axis=1), 1.0)

    jsonl = write(
        tmp_path / "pool.jsonl", "".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(POOL))
    )
    normed = encode_file(model, jsonl, tmp_path / "n.npy", column="body", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        normed, saved / np.linalg.norm(saved, axis=1, keepdims=True), rtol=1e-4, atol=1e-5
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "n.npy",
        "pool.jsonl",
        "pool.txt",
        "sub",
    ]  # no temp files


def test_encode_bad_input_writes_nothing(tmp_path: Path, model: Any) -> None:
    src = write(tmp_path / "in.txt", "a\n\nc\n")
    out = tmp_path / "emb.npy"
    with pytest.raises(DataError, match=r"in\.txt, line 2"):
        encode_file(model, src, out)
    assert not out.exists()
    with pytest.raises(ValueError, match=r"\.npy"):
        encode_file(model, write(tmp_path / "ok.txt", "a\n"), tmp_path / "emb.txt")


# -- rank --------------------------------------------------------------------------------------------
def test_rank_top1_is_the_identical_pool_item(tmp_path: Path, model: Any) -> None:
    pool = write(tmp_path / "pool.txt", "\n".join(POOL) + "\n")
    queries = [POOL[3], POOL[0], POOL[4], POOL[1]]
    qfile = write(tmp_path / "q.csv", "qid,query\n" + "".join(f'{i},"{q}"\n' for i, q in enumerate(queries)))
    out = tmp_path / "ranked.jsonl"
    results = rank_files(model, qfile, pool, out, query_column="query", k=3)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == results
    assert len(written) == len(queries)
    for row, q in zip(written, queries, strict=True):
        assert row["query"] == q
        hits = row["results"]
        assert [h["rank"] for h in hits] == [1, 2, 3]
        assert hits[0]["text"] == q and hits[0]["pool_index"] == POOL.index(q)
        assert hits[0]["pool_line"] == POOL.index(q) + 1
        assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert len({h["pool_index"] for h in hits}) == 3
    assert written[1]["query_line"] == 3  # header is line 1


def test_rank_tsv_and_k_larger_than_pool(tmp_path: Path, model: Any) -> None:
    pool = write(tmp_path / "pool.txt", "\n".join(POOL[:3]) + "\n")
    qfile = write(tmp_path / "q.txt", f"{POOL[2]}\nsomething else\n")
    out = tmp_path / "ranked.tsv"
    rank_files(model, qfile, pool, out, k=10)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 2 * 3  # k clipped to the pool size
    assert rows[0]["query"] == POOL[2] and rows[0]["rank"] == "1" and rows[0]["text"] == POOL[2]
    assert {r["pool_index"] for r in rows if r["query_index"] == "1"} == {"0", "1", "2"}


def test_rank_errors(tmp_path: Path, model: Any) -> None:
    pool = write(tmp_path / "pool.jsonl", '{"text": "a"}\n{"text": ""}\n')
    qfile = write(tmp_path / "q.txt", "a\n")
    with pytest.raises(DataError, match=r"pool\.jsonl, line 2, field 'text': empty text"):
        rank_files(model, qfile, pool, tmp_path / "out.jsonl")
    with pytest.raises(ValueError, match=r"\.jsonl or \.tsv"):
        rank_files(model, qfile, pool, tmp_path / "out.csv")
    with pytest.raises(ValueError, match="top-k"):
        rank_files(model, qfile, pool, tmp_path / "out.jsonl", k=0)
    assert not (tmp_path / "out.jsonl").exists()


# -- argparse wiring ---------------------------------------------------------------------------------
def test_register_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="bscl")
    register(parser.add_subparsers(dest="command", required=True))
    src = write(tmp_path / "t.txt", "alpha\nbeta\n")
    ns = parser.parse_args(
        ["encode", "--model", "tiny", "--input", str(src), "--output", str(tmp_path / "e.npy"), "--normalize"]
    )
    assert ns.func(ns) == 0
    assert np.load(tmp_path / "e.npy").shape[0] == 2
    ns = parser.parse_args(
        [
            "rank",
            "--model",
            "tiny",
            "--queries",
            str(src),
            "--pool",
            str(src),
            "--top-k",
            "1",
            "--output",
            str(tmp_path / "r.tsv"),
        ]
    )
    assert ns.func(ns) == 0
    assert (tmp_path / "r.tsv").read_text().count("\n") == 3
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"config": {}, "seeds": {}}))
    ns = parser.parse_args(["report", str(run)])
    assert ns.func(ns) == 0
    assert (run / "report.md").is_file()
    assert "report.md" in capsys.readouterr().out
