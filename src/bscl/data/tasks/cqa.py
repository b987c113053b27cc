"""SemEval-2016 Task 3 community question answering, subtasks A (cqa-a) and B (cqa-b): MAP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bscl.data.errors import DataError
from bscl.data.readers import (
    parse_text,
    parse_xml,
    read_delimited,
    xml_line,
)
from bscl.data.spec import PaperSettings, TaskSpec
from bscl.data.task import RankingSplit, Task, group_split, pairs_dataset
from bscl.data.tasks.common import DEV_FRACTION, PathLike, grouped_ranking

CQA_A_LABELS = {"Good": 1.0, "PotentiallyUseful": 0.0, "Bad": 0.0}
CQA_B_LABELS = {"PerfectMatch": 1.0, "Relevant": 1.0, "Irrelevant": 0.0}


def _xml_text(el: Any, child: str) -> str:
    found = el.find(child)
    return (found.text or "").replace("\r", "").strip() if found is not None else ""


def _question_text(el: Any, subject_tag: str, body_tag: str, path: PathLike) -> str:
    """``subject + " " + body`` (either may be empty, not both)."""
    if el.find(subject_tag) is None:
        raise DataError("missing element", file=path, line=xml_line(el), field=subject_tag)
    text = " ".join(t for t in (_xml_text(el, subject_tag), _xml_text(el, body_tag)) if t)
    if not text:
        raise DataError("empty question (subject and body)", file=path, line=xml_line(el), field=subject_tag)
    return text


def _attr(el: Any, name: str, path: PathLike) -> str:
    value = el.get(name)
    if value is None:
        raise DataError(f"missing attribute on <{el.tag}>", file=path, line=xml_line(el), field=name)
    return value


def _label(value: str, mapping: dict[str, float], el: Any, attr: str, path: PathLike) -> float:
    if value not in mapping:
        raise DataError(
            f"unknown label {value!r} (expected one of {sorted(mapping)})",
            file=path,
            line=xml_line(el),
            field=attr,
        )
    return mapping[value]


def read_relevancy(path: PathLike) -> dict[tuple[str, str], bool]:
    """SemEval scorer gold: ``query_id  candidate_id  rank  score  true|false`` (tab-separated)."""
    gold: dict[tuple[str, str], bool] = {}
    for rec in read_delimited(path, quoting="none", min_columns=5, max_columns=5):
        value = rec.fields[4].strip()
        if value not in ("true", "false"):
            raise DataError(
                f"expected true or false, found {value!r}", file=path, line=rec.line, field="column 5"
            )
        gold[(rec.fields[0].strip(), rec.fields[1].strip())] = value == "true"
    return gold


def read_cqa_threads(path: PathLike, gold: dict[tuple[str, str], bool] | None = None) -> list[dict[str, Any]]:
    """Subtask-A threads of a SemEval CQA file: ``[{id, question, comments: [(id, text, label)]}]``.

    Labels come from ``RELC_RELEVANCE2RELQ`` (Good=1, PotentiallyUseful/Bad=0), or from ``gold`` (a
    ``.relevancy`` file) when given, which must then cover every comment. In full files (root with
    ``OrgQuestion``s), threads marked ``SubtaskA_Skip_Because_Same_As_RelQuestion_ID`` repeat another
    thread and are skipped, as in the official subtask-A files.
    """
    root = parse_xml(path)
    threads = []
    for thread in root.iter("Thread"):
        if thread.get("SubtaskA_Skip_Because_Same_As_RelQuestion_ID"):
            continue
        relq = thread.find("RelQuestion")
        if relq is None:
            raise DataError("missing element", file=path, line=xml_line(thread), field="RelQuestion")
        qid = _attr(relq, "RELQ_ID", path)
        question = _question_text(relq, "RelQSubject", "RelQBody", path)
        comments = []
        for c in thread.findall("RelComment"):
            cid = _attr(c, "RELC_ID", path)
            text = parse_text(
                _xml_text(c, "RelCText"), file=path, line=xml_line(c), field=f"RelCText of {cid}"
            )
            if gold is not None:
                if (qid, cid) not in gold:
                    raise DataError(
                        f"comment {cid} has no gold label in the .relevancy file",
                        file=path,
                        line=xml_line(c),
                        field="RELC_ID",
                    )
                label = float(gold[(qid, cid)])
            else:
                attr = "RELC_RELEVANCE2RELQ"
                label = _label(_attr(c, attr, path), CQA_A_LABELS, c, attr, path)
            comments.append((cid, text, label))
        threads.append({"id": qid, "question": question, "comments": comments})
    return threads


def read_cqa_orgq(path: PathLike) -> list[dict[str, Any]]:
    """Subtask-B records of a full SemEval CQA file: ``[{orgq_id, orgq, relq_id, relq, label}]``.

    Label from ``RELQ_RELEVANCE2ORGQ``: PerfectMatch/Relevant = 1, Irrelevant = 0. File order is kept.
    """
    root = parse_xml(path)
    rows = []
    for org in root.iter("OrgQuestion"):
        oid = _attr(org, "ORGQ_ID", path)
        orgq = _question_text(org, "OrgQSubject", "OrgQBody", path)
        thread = org.find("Thread")
        relq = thread.find("RelQuestion") if thread is not None else None
        if relq is None:
            raise DataError("missing element", file=path, line=xml_line(org), field="Thread/RelQuestion")
        attr = "RELQ_RELEVANCE2ORGQ"
        rows.append(
            {
                "orgq_id": oid,
                "orgq": orgq,
                "relq_id": _attr(relq, "RELQ_ID", path),
                "relq": _question_text(relq, "RelQSubject", "RelQBody", path),
                "label": _label(_attr(relq, attr, path), CQA_B_LABELS, relq, attr, path),
            }
        )
    return rows


def _threads_ranking(threads: list[dict[str, Any]], source: str) -> RankingSplit:
    qids, qs, cids, cs, ys = [], [], [], [], []
    for t in threads:
        for cid, text, y in t["comments"]:
            qids.append(t["id"])
            qs.append(t["question"])
            cids.append(cid)
            cs.append(text)
            ys.append(y)
    return grouped_ranking(qids, qs, cids, cs, ys, source=source)


def _cqa_dir(root: Path) -> Path:
    return root / "semeval2016_task3_cqa"


def load_cqa_a(root: Path, seed: int = 0) -> Task:
    """CQA subtask A: train = v3.2 train-part2 (subtask-A file), dev = v3.2 dev, test = 2016 test.

    The legacy v2.0 train part1 has no subtask-A labels (``RELC_RELEVANCE2RELQ="N/A"``) and is not used.
    Train keeps the file order (thread by thread), which the paper found best for CQA-A.
    """
    d = _cqa_dir(root) / "v3.2"
    train_file = d / "train" / "SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml"
    dev_file = d / "dev" / "SemEval2016-Task3-CQA-QL-dev-subtaskA.xml"
    test_file = d / "test2016" / "SemEval2016-Task3-CQA-QL-test-subtaskA-input.xml"
    test_gold = d / "test2016" / "SemEval2016-Task3-CQA-QL-test-subtaskA.xml.subtaskA.relevancy"
    train = read_cqa_threads(train_file)
    dev = read_cqa_threads(dev_file)
    test = read_cqa_threads(test_file, gold=read_relevancy(test_gold))
    a, p, y = [], [], []
    for t in train:
        for _cid, text, label in t["comments"]:
            a.append(t["question"])
            p.append(text)
            y.append(label)
    return Task(
        name=SPEC_A.name,
        kind=SPEC_A.kind,
        train=pairs_dataset(a, p, y),
        dev=_threads_ranking(dev, str(dev_file)),
        test=_threads_ranking(test, f"{test_file} + {test_gold.name}"),
        metric=SPEC_A.metric,
        binarize_threshold=SPEC_A.threshold,
        info={
            "sizes": {
                "train_pairs": len(a),
                "train_threads": len(train),
                "dev_threads": len(dev),
                "test_threads": len(test),
            },
            "note": "paper: train v3.2 part1+part2, test SemEval-2017; here part2 only, test SemEval-2016",
        },
    )


def load_cqa_b(root: Path, seed: int = 0) -> Task:
    """CQA subtask B: train = v3.2 train-part2 + legacy v2.0 part1 (both carry subtask-B labels),
    split 9:1 by original question (seeded) into train/dev; test = v3.2 dev (gold checked against
    its ``.subtaskB.relevancy`` file)."""
    d = _cqa_dir(root)
    files = [
        d / "v3.2" / "train" / "SemEval2016-Task3-CQA-QL-train-part2.xml",
        d / "legacy_v2.0_train_part1" / "SemEval2016-Task3-CQA-QL-train-part1.xml",
    ]
    test_file = d / "v3.2" / "dev" / "SemEval2016-Task3-CQA-QL-dev.xml"
    gold_file = d / "v3.2" / "dev" / "SemEval2016-Task3-CQA-QL-dev.xml.subtaskB.relevancy"
    rows: list[dict[str, Any]] = []
    for f in files:
        part = read_cqa_orgq(f)
        for r in part:
            r["orgq_id"] = f"{f.stem}:{r['orgq_id']}"  # ids restart per release; keep them apart
        rows.extend(part)
    test_rows = read_cqa_orgq(test_file)
    gold = read_relevancy(gold_file)
    for r in test_rows:
        key = (r["orgq_id"], r["relq_id"])
        if key not in gold or float(gold[key]) != r["label"]:
            raise DataError(
                f"XML label of {key} disagrees with {gold_file.name}",
                file=test_file,
                field="RELQ_RELEVANCE2ORGQ",
            )
    tr_idx, dev_idx = group_split([r["orgq_id"] for r in rows], DEV_FRACTION, seed)
    tr = [rows[i] for i in tr_idx]
    dv = [rows[i] for i in dev_idx]

    def ranking(rs: list[dict[str, Any]], source: str) -> RankingSplit:
        return grouped_ranking(
            [r["orgq_id"] for r in rs],
            [r["orgq"] for r in rs],
            [r["relq_id"] for r in rs],
            [r["relq"] for r in rs],
            [r["label"] for r in rs],
            source=source,
        )

    return Task(
        name=SPEC_B.name,
        kind=SPEC_B.kind,
        train=pairs_dataset([r["orgq"] for r in tr], [r["relq"] for r in tr], [r["label"] for r in tr]),
        dev=ranking(dv, f"{files[0].parent} (9:1 dev split, seed {seed})"),
        test=ranking(test_rows, str(test_file)),
        metric=SPEC_B.metric,
        binarize_threshold=SPEC_B.threshold,
        info={
            "sizes": {"train_pairs": len(tr), "dev_pairs": len(dv), "test_pairs": len(test_rows)},
            "seed": seed,
            "note": "paper: test SemEval-2017; here v3.2 dev (no 2016/2017 subtask-B test gold available)",
        },
    )


PAPER_A = PaperSettings(best_loss="combo", tau=0.055, mu=0.1, adam_bias_correction=True)
SPEC_A = TaskSpec(
    name="cqa-a",
    loader=load_cqa_a,
    kind="ranking",
    metric="map",
    metrics=("map", "mrr", "p@1"),
    splits="v3.2 train-part2 subtask-A file (3,790 pairs, 379 threads, file order) / v3.2 dev "
    "(244 threads) / SemEval-2016 test with gold (327 threads)",
    differences="paper: train v3.2 part1 + part2, test SemEval-2017; here part2 only, test SemEval-2016",
    paper=PAPER_A,
    paper_metrics=("map",),
    table_metrics=("map", "mrr", "p@1"),
    paper_results={
        "mse": "0.869",
        "triplet": "0.857",
        "bsc": "0.801",
        "combo": "0.872",
        "bsc no shuffle": "0.816",
    },
)
PAPER_B = PaperSettings(
    best_loss="combo", tau=0.07, mu=0.9, group_size=5, learning_rate=3e-5, adam_bias_correction=True
)
SPEC_B = TaskSpec(
    name="cqa-b",
    loader=load_cqa_b,
    kind="ranking",
    metric="map",
    metrics=("map", "mrr", "p@1"),
    splits="v3.2 train-part2 + legacy v2.0 train-part1 (1,283 pairs) split 9:1 by original question "
    "with the seed / v3.2 dev as test (50 questions x 10)",
    differences="paper: test SemEval-2017; here v3.2 dev (no 2016/2017 subtask-B test gold available)",
    paper=PAPER_B,
    paper_metrics=("map",),
    table_metrics=("map", "mrr"),
    paper_results={"mse": "0.471", "triplet": "0.475", "bsc": "0.495", "combo": "0.496"},
)
