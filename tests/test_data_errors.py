"""Bad input gets a DataError naming the file, the line and the field (fixtures in tests/fixtures/malformed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset

from bscl.data import DataError, load_task
from bscl.data.readers import read_table
from bscl.data.tasks import read_cqa_threads, read_mrpc, read_qrels, read_relevancy, read_stsb

BAD = Path(__file__).parent / "fixtures" / "malformed"


def _check(err: pytest.ExceptionInfo[DataError], name: str, line: int | None, field: str | None) -> None:
    e = err.value
    assert isinstance(e, ValueError)
    assert e.file is not None and Path(e.file).name == name
    assert e.line == line
    assert e.field == field
    msg = str(e)
    assert name in msg
    if line is not None:
        assert f"line {line}" in msg
    if field is not None:
        assert field in msg


@pytest.mark.parametrize(
    ("name", "line", "field", "words"),
    [
        ("stsb_score_out_of_range.csv", 2, "score (column 5)", "outside [0.0, 5.0]"),
        ("stsb_nan_score.csv", 3, "score (column 5)", "nan"),
        ("stsb_empty_sentence.csv", 1, "sentence2 (column 7)", "empty text"),
        ("stsb_too_few_columns.csv", 2, "column 6", "at least 7 columns"),
        ("stsb_extra_columns.csv", 2, "column 10", "at most 9 columns"),
    ],
)
def test_stsb_errors(name: str, line: int, field: str, words: str) -> None:
    with pytest.raises(DataError) as err:
        read_stsb(BAD / name)
    _check(err, name, line, field)
    assert words in str(err.value)


def test_mrpc_label_of_wrong_type() -> None:
    with pytest.raises(DataError) as err:
        read_mrpc(BAD / "mrpc_bad_label.txt")
    _check(err, "mrpc_bad_label.txt", 3, "Quality")
    assert "'yes'" in str(err.value)


def test_missing_column_is_named() -> None:
    with pytest.raises(DataError) as err:
        read_mrpc(BAD / "mrpc_missing_column.txt")
    _check(err, "mrpc_missing_column.txt", 1, "#2 String")


def test_unterminated_quote_names_the_line_where_the_record_starts() -> None:
    with pytest.raises(DataError) as err:
        list(read_table(BAD / "pairs_unterminated_quote.tsv", ["claim", "fact"], quoting="csv"))
    _check(err, "pairs_unterminated_quote.tsv", 3, None)
    assert "malformed record" in str(err.value)


def test_line_numbers_count_physical_lines_after_multiline_fields() -> None:
    # record 1 spans lines 2-3, so the 3-field record is on line 4
    with pytest.raises(DataError) as err:
        list(read_table(BAD / "pairs_wrong_width.tsv", ["claim", "fact"], quoting="csv"))
    _check(err, "pairs_wrong_width.tsv", 4, "column 3")
    # record 1 spans lines 2-4; the empty fact is on line 5
    from bscl.data.readers import parse_text

    rows = list(read_table(BAD / "pairs_multiline_then_empty.tsv", ["claim", "fact"], quoting="csv"))
    assert [line for line, _ in rows] == [2, 5]
    assert rows[0][1]["claim"] == "multi\nline\nclaim"
    with pytest.raises(DataError, match="line 5.*'fact'.*empty text"):
        parse_text(rows[1][1]["fact"], file="pairs_multiline_then_empty.tsv", line=rows[1][0], field="fact")


def test_xml_unknown_label_names_its_line() -> None:
    with pytest.raises(DataError) as err:
        read_cqa_threads(BAD / "cqa_unknown_label.xml")
    _check(err, "cqa_unknown_label.xml", 6, "RELC_RELEVANCE2RELQ")
    assert "'Great'" in str(err.value)


def test_xml_malformed() -> None:
    with pytest.raises(DataError) as err:
        read_cqa_threads(BAD / "cqa_malformed.xml")
    _check(err, "cqa_malformed.xml", 6, None)
    assert "malformed XML" in str(err.value)


def test_xml_empty_comment() -> None:
    with pytest.raises(DataError) as err:
        read_cqa_threads(BAD / "cqa_empty_comment.xml")
    _check(err, "cqa_empty_comment.xml", 6, "RelCText of Q1_R1_C2")


def test_relevancy_bad_value() -> None:
    with pytest.raises(DataError) as err:
        read_relevancy(BAD / "bad.relevancy")
    _check(err, "bad.relevancy", 2, "column 5")


@pytest.mark.parametrize(("name", "line"), [("bad_relevance.qrel", 2), ("out_of_range.qrel", 3)])
def test_qrels_bad_relevance(name: str, line: int) -> None:
    with pytest.raises(DataError) as err:
        read_qrels(BAD / name)
    _check(err, name, line, "relevance (field 4)")


@pytest.mark.parametrize(
    ("name", "line", "field", "options"),
    [
        ("generic_missing_column.csv", 1, None, {}),
        ("generic_score_out_of_range.csv", 3, "score", {}),
        ("generic_bad.jsonl", 2, None, {}),
        ("generic_wrong_label_type.jsonl", 2, "label", {"label_type": "binary"}),
        ("generic_empty_text.tsv", 3, "positive", {}),
        ("generic_nan.jsonl", 2, "label", {}),
    ],
)
def test_generic_errors(name: str, line: int, field: str | None, options: dict[str, str]) -> None:
    with pytest.raises(DataError) as err:
        load_task("generic", train=BAD / name, **options)
    _check(err, name, line, field)


def test_generic_given_missing_column_is_named() -> None:
    with pytest.raises(DataError) as err:
        load_task("generic", train=BAD / "generic_missing_column.csv", text2="answer")
    _check(err, "generic_missing_column.csv", 1, "answer")


def test_dataset_rows_are_named() -> None:
    ds = Dataset.from_dict({"sentence1": ["a", "b", "c"], "sentence2": ["x", "", "z"], "label": [1, 0, 1]})
    with pytest.raises(DataError, match=r"<datasets.Dataset train>, row 1, field 'sentence2': empty text"):
        load_task("generic", train=ds)
    bad = Dataset.from_dict({"sentence1": ["a", "b"], "sentence2": ["x", "y"], "label": [0.5, 1.7]})
    with pytest.raises(DataError, match=r"row 1, field 'label': score 1.7 outside"):
        load_task("generic", train=bad)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sts-train.csv"):
        load_task("stsb", tmp_path)
    with pytest.raises(FileNotFoundError, match="QQP is not part of the shared data"):
        load_task("qqp", tmp_path)


def test_unknown_task_and_option() -> None:
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        load_task("nope")
    with pytest.raises(ValueError, match="unexpected keyword"):
        load_task("stsb", Path(__file__).parent / "fixtures" / "data_root", colour="red")
