"""Task loaders on the small fixture data root (tests/fixtures/data_root); no shared data needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset

from bscl.data import TASKS, PairSplit, RankingSplit, Task, group_split, load_task
from bscl.data.negatives import ranked_positions, sample_ranked_negatives
from bscl.data.task import linked_groups

ROOT = Path(__file__).parent / "fixtures" / "data_root"
OPTIONS: dict[str, dict[str, object]] = {"pfcc": {"train_size": 10}}


def _load(name: str, **kw: object) -> Task:
    return load_task(name, ROOT, **{**OPTIONS.get(name, {}), **kw})


@pytest.mark.parametrize("name", [t for t in TASKS if t != "generic"])
def test_every_task_has_the_training_contract(name: str) -> None:
    task = _load(name)
    assert task.name == name
    assert task.train.column_names == ["anchor", "positive", "label"]
    assert task.train.features["label"].dtype == "float32"
    assert all(isinstance(x, str) and x for x in list(task.train["anchor"]) + list(task.train["positive"]))
    labels = np.array(list(task.train["label"]))
    assert ((labels >= 0) & (labels <= 1)).all()
    assert task.kind in ("regression", "classification", "ranking", "unsupervised")
    assert task.dev is not None and len(task.dev) > 0
    assert task.test is not None and len(task.test) > 0
    assert task.binarize_threshold == (0.6 if name in ("stsb", "antique") else 0.5)
    if task.kind == "ranking":
        assert isinstance(task.dev, RankingSplit) and isinstance(task.test, RankingSplit)
    else:
        assert isinstance(task.dev, PairSplit) and isinstance(task.test, PairSplit)


def test_stsb_scores_are_divided_by_five_and_quotes_kept() -> None:
    task = _load("stsb")
    assert task.metric == "spearman"
    assert len(task.train) == 8 and len(task.dev) == 4 and len(task.test) == 4
    assert list(task.train["label"])[:2] == pytest.approx([1.0, 0.76])
    # row 3 has 9 columns and literal quotes (QUOTE_NONE)
    assert list(task.train["anchor"])[2] == 'He said "no" to the offer.'
    assert list(task.train["positive"])[2] == 'The weather is "nice" today.'
    assert task.dev.graded and task.dev.labels[0] == pytest.approx(0.92)


def test_mrpc_bom_crlf_and_seeded_split() -> None:
    raw = (ROOT / "mrpc" / "msr_paraphrase_train.txt").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # the fixture really has the traps
    task = _load("mrpc")
    assert task.kind == "classification" and task.metric == "f1"
    assert len(task.train) + len(task.dev) == 20 and len(task.dev) == 2 and len(task.test) == 4
    texts = (
        list(task.train["anchor"]) + list(task.train["positive"]) + task.dev.sentences1 + task.test.sentences2
    )
    assert not any("\r" in t or "\ufeff" in t for t in texts)
    assert set(list(task.train["label"])) == {0.0, 1.0}
    again = _load("mrpc")
    assert again.dev.sentences1 == task.dev.sentences1  # fixed seed -> same split
    other = [load_task("mrpc", ROOT, seed=s).dev.sentences1 for s in range(1, 6)]
    assert any(o != task.dev.sentences1 for o in other)
    # file order is kept inside each part
    all_s1 = [line.split("\t")[3] for line in raw.decode("utf-8-sig").splitlines()[1:]]
    pos = [all_s1.index(s) for s in list(task.train["anchor"])]
    assert pos == sorted(pos)


def test_pfcc_multiline_fields_pool_and_relevance() -> None:
    task = _load("pfcc")
    assert task.kind == "ranking" and task.metric == "has_positive@1"
    pool = task.extras["pool"]
    assert len(pool) == 13 and len(set(pool)) == 12  # one duplicated fact string
    assert any("\n" in f for f in pool)  # quoted multi-line fact
    anchors = list(task.train["anchor"]) + task.dev.queries
    assert 'A tweet with a "quoted"\nmulti-line text\tand a tab about topic c' in anchors
    assert task.info["sizes"] == {"pairs": 13, "train": 9, "dev": 1, "test": 3, "pool": 13}
    assert task.dev.candidates is None  # ranked against the whole pool
    # test pair 3 has the duplicated fact: both pool records are relevant
    assert [r.tolist() for r in task.test.relevant] == [[9], [10], [5, 12]]
    assert task.test.relevance(2).sum() == 2 and len(task.test.relevance(2)) == 13


def test_pfcc_split_keeps_pairs_of_one_claim_together() -> None:
    for seed in range(8):
        task = load_task("pfcc", ROOT, seed=seed, train_size=10)
        assert not set(list(task.train["anchor"])) & set(task.dev.queries)


def test_pfcc_split_2_keeps_pairs_of_one_verified_claim_together() -> None:
    # fixture rows 3-5: claim 3 -> fact 3 and fact 4, claim 4 -> fact 4: linked by tweet and by fact
    chain = {"Claim 3: a tweet mentioning topic d", "Claim 4: a tweet mentioning topic e"}
    in_dev = []
    for seed in range(16):
        task = load_task("pfcc", ROOT, seed=seed, train_size=10)
        pool = task.extras["pool"]
        dev_facts = {pool[j] for rel in task.dev.relevant for j in rel}
        assert not dev_facts & set(task.train["positive"])  # no dev claim is a training target
        dev_chain = {q.split(" —")[0] for q in task.dev.queries} & chain
        assert dev_chain in (set(), chain)  # the three linked rows are never split
        in_dev.append(bool(dev_chain))
    assert any(in_dev) and not all(in_dev)  # the chain goes to dev under some seeds, not all


def test_linked_groups_by_hand() -> None:
    assert linked_groups(["a", "b", "c", "d"], [1, 2, 1, 3]) == [0, 1, 0, 2]  # rows 0, 2 share 1
    # a chain: rows 0-1 share "x", rows 1-2 share 2; a value equal across columns does not link
    assert linked_groups(["x", "x", "y", 3], [1, 2, 2, "y"]) == [0, 0, 0, 1]
    assert linked_groups([], []) == []
    with pytest.raises(ValueError, match="lengths"):
        linked_groups(["a"], [])


def test_cqa_a_file_order_question_text_and_gold() -> None:
    task = _load("cqa-a")
    assert task.metric == "map"
    assert list(task.train["anchor"])[0] == "Salary in Doha Is 20K & housing a good deal?"
    assert list(task.train["positive"]) == [
        "Yes it is good for a family.",
        "Maybe, depends.",
        "lol",
        "Try the DPS school.",
        "Go home.",
        "Schools are expensive here.",
    ]
    assert list(task.train["label"]) == [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    assert task.dev.queries == ["Visa question How long does a visa take?", "Car rental"]  # empty body
    assert [c.tolist() for c in task.test.candidates] == [[0, 1, 2], [3, 4, 5]]
    assert [r.tolist() for r in task.test.relevant] == [[0, 1], [3]]  # from the .relevancy gold
    assert task.dev.relevant[1].size == 0  # a query without a Good comment stays (AP = 0)


def test_cqa_b_labels_skip_markers_and_group_split() -> None:
    task = _load("cqa-b")
    # part2: 6 OrgQ x 3 RelQ (one carries a subtask-A skip marker: still a subtask-B pair);
    # legacy part1: 4 OrgQ x 2 RelQ -> 26 pairs
    assert len(task.train) + task.info["sizes"]["dev_pairs"] == 26
    assert task.info["sizes"]["test_pairs"] == 9 and len(task.test) == 3
    assert list(task.train["anchor"])[0] == "Original question 0 Body of original 0"
    assert set(list(task.train["anchor"])).isdisjoint(task.dev.queries)
    test_rel = [r.tolist() for r in task.test.relevant]
    # dev labels (i + j) % 4 over [Irrelevant, PerfectMatch, Relevant, Irrelevant]
    assert test_rel == [[0, 1], [3], [8]]


def test_qqp_counts_skipped_rows() -> None:
    task = _load("qqp")
    assert task.skipped == {"train.tsv: empty question": 1}
    assert len(task.train) + len(task.dev) == 11 and len(task.test) == 4
    assert 'What does "carpe diem" mean?' in list(task.train["anchor"]) + task.dev.sentences1
    small = load_task("qqp", ROOT, train_size=3, dev_size=2, test_size=2)
    assert (len(small.train), len(small.dev), len(small.test)) == (3, 1, 2)


def test_antique_grades_relevance_and_gains() -> None:
    task = _load("antique")
    assert task.metric == "mrr" and task.binarize_threshold == 0.6
    assert sorted(set(list(task.train["label"]))) == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    test = task.test
    assert test.queries == ["How do birds navigate?", "What is the best way to sleep well?"]
    assert [r.tolist() for r in test.relevant] == [[1], [4]]  # grade 4 only (grades 2, 4, 1)
    assert test.graded_relevance(0).tolist() == [1.0, 3.0, 0.0]  # gains = grade - 1
    assert len(task.dev.queries) == 1 and set(task.dev.queries).isdisjoint(list(task.train["anchor"]))


def test_wiki_unsup_anchor_equals_positive_and_stsb_eval() -> None:
    task = _load("wiki-unsup")
    assert task.kind == "unsupervised" and task.metric == "spearman"
    assert list(task.train["anchor"]) == list(task.train["positive"])
    assert sorted(list(task.train["anchor"]))[0] == "It was founded in 1850."
    assert set(list(task.train["label"])) == {1.0}
    assert task.dev.sentences1 == _load("stsb").dev.sentences1
    unshuffled = load_task("wiki-unsup", ROOT, shuffle=False, limit=2)
    assert list(unshuffled.train["anchor"]) == ["YMCA in South Australia", "It was founded in 1850."]


# ------------------------------------------------------------------------------------------------
# generic
# ------------------------------------------------------------------------------------------------
def test_generic_csv_score_tsv_binary_jsonl_positive(tmp_path: Path) -> None:
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text('sentence1,sentence2,score\n"a, b",c,4\nd,"e\nf",2\ng,h,0\n', encoding="utf-8")
    t = load_task("generic", train=csv_file, dev=csv_file, score_range=(0, 5))
    assert t.kind == "regression" and t.metric == "spearman"
    assert list(t.train["anchor"]) == ["a, b", "d", "g"] and list(t.train["positive"])[1] == "e\nf"
    assert list(t.train["label"]) == pytest.approx([0.8, 0.4, 0.0])

    tsv = tmp_path / "pairs.tsv"
    tsv.write_text(
        "question1\tquestion2\tis_duplicate\n" + "".join(f"q{i}\tp{i}\t{i % 2}\n" for i in range(20))
    )
    t = load_task("generic", train=tsv, seed=3)
    assert t.kind == "classification" and t.metric == "f1"
    assert len(t.train) == 18 and len(t.dev) == 2 and not t.dev.graded

    jsonl = tmp_path / "pos.jsonl"
    jsonl.write_text("".join(json.dumps({"query": f"q{i % 4}", "answer": f"a{i}"}) + "\n" for i in range(12)))
    t = load_task("generic", train=jsonl, test=jsonl, task_name="mine")
    assert t.name == "mine" and t.kind == "ranking" and t.metric == "mrr"
    assert set(list(t.train["label"])) == {1.0}
    assert isinstance(t.test, RankingSplit) and t.test.queries == ["q0", "q1", "q2", "q3"]
    assert [len(r) for r in t.test.relevant] == [3, 3, 3, 3] and len(t.test.pool) == 12


def test_generic_dataset_input_and_explicit_columns() -> None:
    ds = Dataset.from_dict(
        {"left": ["x", "y", "z", "w"], "right": ["1", "2", "3", "4"], "y": [0.1, 0.9, 0.5, 1.0]}
    )
    t = load_task("generic", train=ds, dev=ds, text1="left", text2="right", label="y")
    assert t.kind == "regression"
    assert t.train.column_names == ["anchor", "positive", "label"]
    assert list(t.train["anchor"]) == ["x", "y", "z", "w"]


def test_group_split_sizes_and_determinism() -> None:
    tr, dev = group_split(list(range(4076)), 0.1, seed=0)
    assert (len(tr), len(dev)) == (3668, 408)
    assert np.array_equal(group_split(list(range(4076)), 0.1, seed=0)[1], dev)
    assert not np.array_equal(group_split(list(range(4076)), 0.1, seed=1)[1], dev)
    groups = ["a", "a", "b", "c", "c", "c", "d", "e", "f", "g"]
    tr, dev = group_split(groups, 0.2, seed=0)
    assert {groups[i] for i in tr}.isdisjoint({groups[i] for i in dev})
    assert sorted([*tr, *dev]) == list(range(10))


# ------------------------------------------------------------------------------------------------
# ranked negatives (PFCC-S scheme) with a deterministic fake encoder
# ------------------------------------------------------------------------------------------------
class OrderEncoder:
    """Embeds text t as a unit vector whose angle grows with the pool position of t: the ranking of the
    pool for any anchor placed at angle 0 is then the pool order."""

    def __init__(self, order: list[str]) -> None:
        self.angle = {t: i * 0.01 for i, t in enumerate(order)}

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        a = np.array([self.angle.get(t, 0.0) for t in texts])
        return np.stack([np.cos(a), np.sin(a)], axis=1)


def test_ranked_positions() -> None:
    assert ranked_positions(10_381).tolist() == [100 + 2**k for k in range(14)]
    assert ranked_positions(101).tolist() == [101]
    assert ranked_positions(100).tolist() == []


def test_sample_ranked_negatives_takes_positions_100_plus_2k() -> None:
    pool = [f"claim {i}" for i in range(300)]
    anchors = ["anchor A", "anchor B"]
    task = Task(
        name="toy",
        kind="ranking",
        train=Dataset.from_dict(
            {"anchor": anchors, "positive": ["claim 0", "claim 150"], "label": [1.0, 1.0]}
        ),
        dev=None,
        test=None,
        metric="mrr",
        extras={"pool": pool},
    )
    ds = sample_ranked_negatives(task, OrderEncoder(pool))
    assert ds.column_names == ["anchor", "positive", "label"]
    neg_a = [
        p
        for a, p, y in zip(list(ds["anchor"]), list(ds["positive"]), list(ds["label"]), strict=True)
        if a == "anchor A" and y == 0
    ]
    # ranking of A = pool order without its positive claim 0 -> rank r is claim r
    assert neg_a == [f"claim {r}" for r in (101, 102, 104, 108, 116, 132, 164, 228)]
    neg_b = [
        p
        for a, p, y in zip(list(ds["anchor"]), list(ds["positive"]), list(ds["label"]), strict=True)
        if a == "anchor B" and y == 0
    ]
    # claim 150 (B's positive) is removed from B's ranking: ranks >= 150 shift by one
    assert neg_b == [f"claim {r}" for r in (100, 101, 103, 107, 115, 131, 164, 228)]
    n_pos = sum(1 for y in list(ds["label"]) if y == 1.0)
    assert n_pos == 16  # 2 positive pairs oversampled 8x to balance 16 negatives


def test_load_task_pfcc_with_ranked_negatives_option() -> None:
    base = _load("pfcc")
    task = _load("pfcc", negatives="ranked", model=OrderEncoder(base.extras["pool"]))
    assert task.train.column_names == ["anchor", "positive", "label"]
    # the fixture pool has only 13 claims: no position 101 exists, so no negatives, positives kept once
    assert len(task.train) == len(base.train) and set(list(task.train["label"])) == {1.0}
    with pytest.raises(ValueError, match="needs model"):
        _load("pfcc", negatives="ranked")


def test_head_subsets_evaluation_splits() -> None:
    stsb = _load("stsb").dev.head(2)
    assert len(stsb) == 2 and stsb.labels.tolist() == pytest.approx([0.92, 0.08])
    cqa = _load("cqa-a").test
    small = cqa.head(1)
    assert small.queries == cqa.queries[:1] and small.pool == cqa.pool[:3]
    assert [c.tolist() for c in small.candidates] == [[0, 1, 2]] and small.relevant[0].tolist() == [0, 1]
    ant = _load("antique").test.head(1)
    assert ant.graded_relevance(0).tolist() == [1.0, 3.0, 0.0]
    pf = _load("pfcc").test.head(2)
    assert len(pf) == 2 and len(pf.pool) == 13 and pf.candidates is None
