"""Named tasks of the BSC paper, plus a generic loader for user data.

``load_task(name, data_root=None, *, seed=0, **options)`` returns a :class:`~bscl.data.task.Task`.
The data root is resolved by :func:`bscl.paths.data_root` (``--data-root`` / ``BSCL_DATA_ROOT`` /
``../shared/data`` beside the checkout). Splits, labels and metrics per task (see docs/tasks.md for
where they differ from the paper, and why):

========== ============================================ =============== ================================
task       train / dev / test                           labels          primary metric (others)
========== ============================================ =============== ================================
stsb       official train / dev / test                  score / 5       spearman (pearson)
mrpc       train split 9:1 (seeded) / official test     0/1             f1 at the dev threshold (acc.)
pfcc       pairs[:800] 9:1 (seeded) / pairs[800:]       positives only  has_positive@1 (@3..@50, mrr)
cqa-a      v3.2 train-part2 / v3.2 dev / 2016 test      Good=1          map (mrr, p@1)
cqa-b      train-part2 + legacy part1, 9:1 / v3.2 dev   PM, Relevant=1  map (mrr)
qqp        GLUE train sample / GLUE train sample / dev  0/1             f1 (accuracy)
antique    train qrels 9:1 by query / test qrels        (grade-1)/3     mrr (p@1, ndcg@1)
wiki-unsup wiki1m prefix (anchor == positive) / STSb    none            spearman on STSb
generic    user files or datasets.Dataset               inferred        by label type
========== ============================================ =============== ================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from bscl.data.errors import DataError, SkipLog
from bscl.data.readers import (
    load_table,
    parse_binary,
    parse_score,
    parse_text,
    parse_xml,
    read_delimited,
    read_jsonl,
    read_lines,
    read_table,
    xml_line,
)
from bscl.data.task import PairSplit, RankingSplit, Task, group_split, pairs_dataset
from bscl.paths import data_root as resolve_data_root

logger = logging.getLogger("bscl.data")

PathLike = str | os.PathLike[str]
DEV_FRACTION = 0.1  # "where no dev split exists the paper splits train 9:1"


# ==================================================================================================
# STSb
# ==================================================================================================
def read_stsb(path: PathLike) -> PairSplit:
    """One STSb file: no header, tab-separated, no quoting; score in column 5 (0-5), sentences in 6-7.

    Rows may carry two extra trailing columns (source/license); they are ignored. Labels are score / 5.
    """
    s1: list[str] = []
    s2: list[str] = []
    y: list[float] = []
    for rec in read_delimited(path, quoting="none", min_columns=7, max_columns=9):
        f = rec.fields
        y.append(
            parse_score(f[4], file=path, line=rec.line, field="score (column 5)", low=0.0, high=5.0) / 5.0
        )
        s1.append(parse_text(f[5], file=path, line=rec.line, field="sentence1 (column 6)"))
        s2.append(parse_text(f[6], file=path, line=rec.line, field="sentence2 (column 7)"))
    if not y:
        raise DataError("no rows", file=path)
    return PairSplit(s1, s2, np.array(y), graded=True, source=str(path))


def _stsb_splits(root: Path) -> dict[str, PairSplit]:
    return {s: read_stsb(root / "stsb" / f"sts-{s}.csv") for s in ("train", "dev", "test")}


def load_stsb(root: Path, seed: int = 0) -> Task:
    """STS Benchmark: official splits; label = score / 5 in [0, 1]; binarized at 0.6 for BSC."""
    splits = _stsb_splits(root)
    tr = splits["train"]
    return Task(
        name="stsb",
        kind="regression",
        train=pairs_dataset(tr.sentences1, tr.sentences2, tr.labels),
        dev=splits["dev"],
        test=splits["test"],
        metric="spearman",
        binarize_threshold=0.6,
        info={"sizes": {k: len(v) for k, v in splits.items()}, "files": [v.source for v in splits.values()]},
    )


# ==================================================================================================
# MRPC
# ==================================================================================================
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


def _subset(split: PairSplit, idx: np.ndarray, tag: str) -> PairSplit:
    return PairSplit(
        [split.sentences1[i] for i in idx],
        [split.sentences2[i] for i in idx],
        split.labels[idx],
        graded=split.graded,
        source=f"{split.source} ({tag})",
    )


def load_mrpc(root: Path, seed: int = 0) -> Task:
    """MRPC: the official train file split 9:1 (seeded) into train/dev; official test."""
    full = read_mrpc(root / "mrpc" / "msr_paraphrase_train.txt")
    test = read_mrpc(root / "mrpc" / "msr_paraphrase_test.txt")
    tr_idx, dev_idx = group_split(list(range(len(full))), DEV_FRACTION, seed)
    tr = _subset(full, tr_idx, f"train part of 9:1 split, seed {seed}")
    dev = _subset(full, dev_idx, f"dev part of 9:1 split, seed {seed}")
    return Task(
        name="mrpc",
        kind="classification",
        train=pairs_dataset(tr.sentences1, tr.sentences2, tr.labels),
        dev=dev,
        test=test,
        metric="f1",
        info={"sizes": {"train": len(tr), "dev": len(dev), "test": len(test)}, "seed": seed},
    )


# ==================================================================================================
# ranking helpers
# ==================================================================================================
def positives_ranking(
    anchors: Sequence[str],
    positives: Sequence[str],
    pool: Sequence[str] | None = None,
    pool_ids: Sequence[str] | None = None,
    source: str = "",
) -> RankingSplit:
    """A ranking split from positive pairs: every unique anchor is a query ranked against the whole pool.

    The relevant items of a query are all pool entries whose text equals one of its positives (so a
    duplicated pool text counts as relevant twice). Without ``pool``, the pool is the unique positives.
    """
    if pool is None:
        pool = list(dict.fromkeys(positives))
    if pool_ids is None:
        pool_ids = [str(i) for i in range(len(pool))]
    by_text: dict[str, list[int]] = {}
    for j, text in enumerate(pool):
        by_text.setdefault(text, []).append(j)
    queries: list[str] = []
    rel: dict[str, list[int]] = {}
    for a, p in zip(anchors, positives, strict=True):
        if a not in rel:
            rel[a] = []
            queries.append(a)
        if p not in by_text:
            raise ValueError(f"positive {p[:60]!r} is not in the candidate pool")
        rel[a].extend(j for j in by_text[p] if j not in rel[a])
    return RankingSplit(
        queries=queries,
        query_ids=[str(i) for i in range(len(queries))],
        pool=list(pool),
        pool_ids=list(pool_ids),
        candidates=None,
        relevant=[np.array(sorted(rel[q]), dtype=np.int64) for q in queries],
        source=source,
    )


# ==================================================================================================
# PFCC-S (Snopes)
# ==================================================================================================
def read_pfcc(root: Path) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """PFCC-S pairs ``(claim, fact)`` and the verified-claims pool (facts, titles), CSV-quoted TSV.

    Every pair's fact must occur in verified-claims.tsv (else DataError naming the pair's line).
    """
    folder = root / "pfcc_snopes"
    pool_path = folder / "verified-claims.tsv"
    pairs_path = folder / "tweet-veclaim-pairs.tsv"
    facts: list[str] = []
    titles: list[str] = []
    for line, row in read_table(pool_path, ["title", "fact"], quoting="csv"):
        facts.append(parse_text(row["fact"], file=pool_path, line=line, field="fact"))
        titles.append(row["title"].strip())
    known = set(facts)
    pairs: list[tuple[str, str]] = []
    for line, row in read_table(pairs_path, ["claim", "fact"], quoting="csv"):
        claim = parse_text(row["claim"], file=pairs_path, line=line, field="claim")
        fact = parse_text(row["fact"], file=pairs_path, line=line, field="fact")
        if fact not in known:
            raise DataError(f"fact not found in {pool_path.name}", file=pairs_path, line=line, field="fact")
        pairs.append((claim, fact))
    return pairs, facts, titles


def load_pfcc(root: Path, seed: int = 0, *, train_size: int = 800) -> Task:
    """PFCC-S: ``pairs[:800]`` split 9:1 (seeded, pairs of one claim kept together) into train/dev;
    ``pairs[800:]`` is test; queries are ranked against all verified claims (10,381 records)."""
    pairs, facts, _titles = read_pfcc(root)
    head, tail = pairs[:train_size], pairs[train_size:]
    tr_idx, dev_idx = group_split([c for c, _ in head], DEV_FRACTION, seed)
    tr = [head[i] for i in tr_idx]
    dv = [head[i] for i in dev_idx]
    pool_ids = [str(i) for i in range(len(facts))]
    src = str(root / "pfcc_snopes")
    dev = positives_ranking([c for c, _ in dv], [f for _, f in dv], facts, pool_ids, source=f"{src} (dev)")
    test = positives_ranking(
        [c for c, _ in tail], [f for _, f in tail], facts, pool_ids, source=f"{src} (test)"
    )
    return Task(
        name="pfcc",
        kind="ranking",
        train=pairs_dataset([c for c, _ in tr], [f for _, f in tr], [1.0] * len(tr)),
        dev=dev,
        test=test,
        metric="has_positive@1",
        info={
            "sizes": {
                "pairs": len(pairs),
                "train": len(tr),
                "dev": len(dv),
                "test": len(tail),
                "pool": len(facts),
            },
            "queries": {"dev": len(dev), "test": len(test)},
            "seed": seed,
        },
        extras={"pool": facts},
    )


# ==================================================================================================
# SemEval-2016 Task 3 CQA
# ==================================================================================================
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


def grouped_ranking(
    query_ids: Sequence[str],
    queries: Sequence[str],
    cand_ids: Sequence[str],
    cand_texts: Sequence[str],
    labels: Sequence[float],
    gains: Sequence[float] | None = None,
    source: str = "",
) -> RankingSplit:
    """A ranking split from aligned (query, candidate, label) rows: each query ranks its own candidates.

    Candidates keep their file order (the tie-break order). A candidate is relevant iff label >= 0.5.
    """
    qpos: dict[str, int] = {}
    q_texts: list[str] = []
    pool: list[str] = []
    pool_ids: list[str] = []
    cands: list[list[int]] = []
    rel: list[list[int]] = []
    gain_map: dict[tuple[int, int], float] = {}
    for k, (qid, q, cid, c, y) in enumerate(
        zip(query_ids, queries, cand_ids, cand_texts, labels, strict=True)
    ):
        if qid not in qpos:
            qpos[qid] = len(q_texts)
            q_texts.append(q)
            cands.append([])
            rel.append([])
        i = qpos[qid]
        j = len(pool)
        pool.append(c)
        pool_ids.append(cid)
        cands[i].append(j)
        if y >= 0.5:
            rel[i].append(j)
        if gains is not None:
            gain_map[(i, j)] = float(gains[k])
    return RankingSplit(
        queries=q_texts,
        query_ids=list(qpos),
        pool=pool,
        pool_ids=pool_ids,
        candidates=[np.array(c, dtype=np.int64) for c in cands],
        relevant=[np.array(r, dtype=np.int64) for r in rel],
        gains=gain_map if gains is not None else None,
        source=source,
    )


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
        name="cqa-a",
        kind="ranking",
        train=pairs_dataset(a, p, y),
        dev=_threads_ranking(dev, str(dev_file)),
        test=_threads_ranking(test, f"{test_file} + {test_gold.name}"),
        metric="map",
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
        name="cqa-b",
        kind="ranking",
        train=pairs_dataset([r["orgq"] for r in tr], [r["relq"] for r in tr], [r["label"] for r in tr]),
        dev=ranking(dv, f"{files[0].parent} (9:1 dev split, seed {seed})"),
        test=ranking(test_rows, str(test_file)),
        metric="map",
        info={
            "sizes": {"train_pairs": len(tr), "dev_pairs": len(dv), "test_pairs": len(test_rows)},
            "seed": seed,
            "note": "paper: test SemEval-2017; here v3.2 dev (no 2016/2017 subtask-B test gold available)",
        },
    )


# ==================================================================================================
# QQP (GLUE TSV)
# ==================================================================================================
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
        name="qqp",
        kind="classification",
        train=pairs_dataset(tr.sentences1, tr.sentences2, tr.labels),
        dev=dev,
        test=test,
        metric="f1",
        skipped=dict(skips),
        info={"sizes": {"train": len(tr), "dev": len(dev), "test": len(test)}, "seed": seed},
    )


# ==================================================================================================
# ANTIQUE
# ==================================================================================================
def read_id_text(path: PathLike) -> dict[str, str]:
    """``id <TAB> text`` per line (ANTIQUE collection and queries files). Duplicate ids are errors."""
    out: dict[str, str] = {}
    for rec in read_delimited(path, quoting="none", min_columns=2, max_columns=2):
        key = rec.fields[0].strip()
        if not key:
            raise DataError("empty id", file=path, line=rec.line, field="id (column 1)")
        if key in out:
            raise DataError(f"duplicate id {key!r}", file=path, line=rec.line, field="id (column 1)")
        out[key] = parse_text(rec.fields[1], file=path, line=rec.line, field="text (column 2)")
    return out


def read_qrels(path: PathLike) -> list[tuple[int, str, str, int]]:
    """TREC qrels ``query_id iteration doc_id relevance`` (whitespace-separated) -> (line, q, d, rel)."""
    rows = []
    for line, text in read_lines(path):
        if not text.strip():
            raise DataError("blank line", file=path, line=line)
        parts = text.split()
        if len(parts) != 4:
            raise DataError(f"expected 4 fields, found {len(parts)}", file=path, line=line)
        try:
            rel = int(parts[3])
        except ValueError:
            raise DataError(
                f"expected an integer relevance, found {parts[3]!r}",
                file=path,
                line=line,
                field="relevance (field 4)",
            ) from None
        if not 1 <= rel <= 4:
            raise DataError(
                f"relevance {rel} outside 1..4", file=path, line=line, field="relevance (field 4)"
            )
        rows.append((line, parts[0], parts[2], rel))
    return rows


def load_antique(root: Path, seed: int = 0, *, folder: PathLike | None = None) -> Task:
    """ANTIQUE from the official files in ``DATA_ROOT/antique`` (or ``folder``): antique-collection.txt,
    antique-{train,test}-queries.txt, antique-{train,test}.qrel.

    Train pairs: (query, answer, (grade - 1) / 3), split 9:1 by query (seeded) into train/dev; binarized
    at 0.6 (grades 3 and 4 are relevant, the ANTIQUE convention). Evaluation re-ranks each query's
    judged answers; relevant = grade >= 3; nDCG gains = grade - 1.
    """
    d = Path(folder) if folder is not None else root / "antique"
    coll_path = d / "antique-collection.txt"
    if not coll_path.is_file():
        raise FileNotFoundError(
            f"{coll_path}: ANTIQUE is not part of the shared data; put the official files in {d}"
        )
    collection = read_id_text(coll_path)

    def judged(split: str) -> list[tuple[str, str, str, str, int]]:
        qpath = d / f"antique-{split}-queries.txt"
        rpath = d / f"antique-{split}.qrel"
        queries = read_id_text(qpath)
        rows = []
        for line, qid, did, rel in read_qrels(rpath):
            if qid not in queries:
                raise DataError(f"query {qid!r} not in {qpath.name}", file=rpath, line=line, field="query_id")
            if did not in collection:
                raise DataError(
                    f"document {did!r} not in {coll_path.name}", file=rpath, line=line, field="doc_id"
                )
            rows.append((qid, queries[qid], did, collection[did], rel))
        return rows

    train_rows = judged("train")
    test_rows = judged("test")
    tr_idx, dev_idx = group_split([r[0] for r in train_rows], DEV_FRACTION, seed)

    def ranking(rows: list[tuple[str, str, str, str, int]], source: str) -> RankingSplit:
        return grouped_ranking(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [1.0 if r[4] >= 3 else 0.0 for r in rows],
            gains=[float(r[4] - 1) for r in rows],
            source=source,
        )

    tr = [train_rows[i] for i in tr_idx]
    dv = [train_rows[i] for i in dev_idx]
    return Task(
        name="antique",
        kind="ranking",
        train=pairs_dataset([r[1] for r in tr], [r[3] for r in tr], [(r[4] - 1) / 3 for r in tr]),
        dev=ranking(dv, f"{d} (9:1 dev split by query, seed {seed})"),
        test=ranking(test_rows, str(d / "antique-test.qrel")),
        metric="mrr",
        binarize_threshold=0.6,
        info={"sizes": {"train": len(tr), "dev": len(dv), "test": len(test_rows)}, "seed": seed},
    )


# ==================================================================================================
# wiki1m prefix (unsupervised)
# ==================================================================================================
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
        name="wiki-unsup",
        kind="unsupervised",
        train=pairs_dataset(sentences, sentences, [1.0] * len(sentences)),
        dev=stsb["dev"],
        test=stsb["test"],
        metric="spearman",
        skipped=dict(skips),
        info={"sizes": {"train": len(sentences)}, "seed": seed, "shuffled": shuffle},
    )


# ==================================================================================================
# generic
# ==================================================================================================
TEXT1_NAMES = ("anchor", "sentence1", "text1", "query", "question1", "question")
TEXT2_NAMES = ("positive", "sentence2", "text2", "answer", "question2", "document")
LABEL_NAMES = ("label", "score", "is_duplicate")


def _iter_source(
    src: PathLike | Dataset, what: str
) -> tuple[str, list[str], Iterable[tuple[dict[str, Any], dict[str, Any]]]]:
    """(display name, column names, iterator of (row, where-kwargs for DataError))."""
    if isinstance(src, Dataset):
        name = f"<datasets.Dataset {what}>"
        return name, list(src.column_names), ((row, {"file": name, "row": i}) for i, row in enumerate(src))
    table = load_table(src)  # parquet / Arrow / datasets folder (cli branch)
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
    if ignored:  # cli branch: say which columns are not used (a negative column, a second label...)
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
        label_type = "positive" if cl is None else "binary" if all(_is_01(v) for v, _ in raw) else "score"
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
            raise ValueError(f"label_type must be 'score', 'binary', 'positive' or None, not {label_type!r}")
    return a, b, labels, label_type, source


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

    def evaluation(
        src: PathLike | Dataset | None, what: str
    ) -> tuple[list[str], list[str], list[float]] | None:
        if src is None:
            return None
        ea, eb, ey, _lt, _ = read_generic(src, what, label_type=lt, **opts)
        return ea, eb, ey

    dev_rows = evaluation(dev, "dev")
    if dev_rows is None:
        tr_idx, dev_idx = group_split(a, DEV_FRACTION, seed)
        dev_rows = ([a[i] for i in dev_idx], [b[i] for i in dev_idx], [y[i] for i in dev_idx])
        a, b, y = [a[i] for i in tr_idx], [b[i] for i in tr_idx], [y[i] for i in tr_idx]
    test_rows = evaluation(test, "test")

    def build(
        rows: tuple[list[str], list[str], list[float]] | None, tag: str
    ) -> PairSplit | RankingSplit | None:
        if rows is None:
            return None
        ra, rb, ry = rows
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


# ==================================================================================================
# registry
# ==================================================================================================
LOADERS: dict[str, Callable[..., Task]] = {
    "stsb": load_stsb,
    "mrpc": load_mrpc,
    "pfcc": load_pfcc,
    "cqa-a": load_cqa_a,
    "cqa-b": load_cqa_b,
    "qqp": load_qqp,
    "antique": load_antique,
    "wiki-unsup": load_wiki_unsup,
    "generic": load_generic,
}
TASKS: list[str] = list(LOADERS)
#: tasks whose files are in the shared data folder (qqp and antique need user-supplied files).
AVAILABLE_TASKS: list[str] = ["stsb", "mrpc", "pfcc", "cqa-a", "cqa-b", "wiki-unsup"]


def load_task(name: str, data_root: PathLike | None = None, *, seed: int = 0, **options: Any) -> Task:
    """Load a named task (see :data:`TASKS`).

    ``seed`` fixes every split and shuffle. Options per task: ``pfcc``: ``train_size``,
    ``negatives="ranked"`` with ``model=`` (a SentenceTransformer) to replace train by anchors with
    ranked negatives (see :func:`bscl.data.negatives.sample_ranked_negatives`); ``qqp``: ``folder``,
    ``train_size``, ``dev_size``, ``test_size``; ``antique``: ``folder``; ``wiki-unsup``: ``shuffle``,
    ``limit``; ``generic``: ``train``, ``dev``, ``test``, ``text1``, ``text2``, ``label``,
    ``label_type``, ``score_range``, ``task_name``, ``binarize_threshold`` (data_root is not needed).
    """
    key = name.lower()
    if key not in LOADERS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    negatives = options.pop("negatives", None) if key == "pfcc" else None
    neg_model = options.pop("model", None) if key == "pfcc" else None
    neg_opts = {k: options.pop(k) for k in ("batch_size",) if k in options} if key == "pfcc" else {}
    if key == "generic":
        root = Path(data_root) if data_root is not None else None
    else:
        root = resolve_data_root(data_root)
    try:
        task = LOADERS[key](root, seed, **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise ValueError(f"task {name!r}: {err}") from err
        raise
    if negatives is not None:
        if negatives != "ranked":
            raise ValueError(f"negatives must be 'ranked' (the paper's scheme), not {negatives!r}")
        if neg_model is None:
            raise ValueError("negatives='ranked' needs model=... to rank the claims")
        from bscl.data.negatives import sample_ranked_negatives

        task.train = sample_ranked_negatives(task, neg_model, seed=seed, **neg_opts)
        task.info["negatives"] = "ranked (positions 100 + 2^k), positives oversampled"
    if task.skipped:
        logger.info("task %s: rows skipped by design: %s", task.name, task.skipped)
    return task
