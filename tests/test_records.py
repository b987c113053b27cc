"""Result records and the generated RESULTS.md tables: pure functions on hand-made records."""

from __future__ import annotations

import json

import pytest

from bscl.experiments import records as R


def rec(recipe, seed, test, dev=None, side="bscl", seconds=120.0, task="stsb"):
    return {"task": task, "recipe": recipe, "seed": seed, "side": side, "primary": "spearman",
            "test": {"spearman": test}, "dev": {"spearman": dev if dev is not None else test + 0.04},
            "train_seconds": seconds, "config": {"loss": {"name": recipe}}}  # fmt: skip


def test_mean_and_sample_std_by_hand():
    rows = R.summarize([rec("a", 0, 0.80), rec("a", 1, 0.82), rec("a", 2, 0.84)], "spearman")
    (a,) = rows
    assert a.n == 3 and a.test_mean == pytest.approx(0.82)
    # sample std: sqrt(((-0.02)^2 + 0 + 0.02^2) / (3 - 1)) = 0.02
    assert a.test_std == pytest.approx(0.02)
    assert a.dev_mean == pytest.approx(0.86) and a.train_minutes == pytest.approx(2.0)


ST = R.ST


def verdicts(records):
    return {s.recipe: s.verdict for s in R.summarize(records, "spearman")}


def test_verdict_ahead_only_beyond_both_standard_deviations():
    peer = [rec("st-cosent", 0, 0.80, side=ST), rec("st-cosent", 1, 0.82, side=ST)]  # mean .81, sd .01414
    worse_peer = [rec("st-cosine", 0, 0.70, side=ST), rec("st-cosine", 1, 0.71, side=ST)]
    # mean 0.83, sd 0.00707: diff +0.02 > max(0.01414, 0.00707) -> ahead
    ahead = [rec("bscl-paper", 0, 0.825), rec("bscl-paper", 1, 0.835)]
    # mean 0.82, sd 0.02828: diff +0.01 < 0.02828 -> level
    level = [rec("bscl-ours", 0, 0.80), rec("bscl-ours", 1, 0.84)]
    # mean 0.76, sd 0: diff -0.05 -> behind
    behind = [rec("bscl-x", 0, 0.76), rec("bscl-x", 1, 0.76)]
    # a tie with the larger sd is level: 157, 154, 160 of 198 vs the peer's 154 and 154 of 198 (sd 0):
    # the difference, 3/198, is the recipe's own sd, 3/198
    tie = [rec("bscl-tie", s, k / 198) for s, k in enumerate((157, 154, 160))]
    assert verdicts([rec("st-x", s, 154 / 198, side=ST) for s in (0, 1)] + tie)["bscl-tie"].startswith(
        "level"
    )
    v = verdicts(peer + worse_peer + ahead + level + behind)
    assert v["st-cosent"] == "best sentence-transformers recipe" and v["st-cosine"] == ""
    assert v["bscl-paper"].startswith("ahead of st-cosent (+0.0200")
    assert v["bscl-ours"].startswith("level with st-cosent (+0.0100")
    assert v["bscl-x"].startswith("behind st-cosent (-0.0500")


def test_no_verdict_with_one_seed_or_without_peers():
    v = verdicts([rec("st-mnrl", 0, 0.5, side=ST), rec("bscl-paper", 0, 0.9)])
    assert v["bscl-paper"] == "no verdict (n < 2) vs st-mnrl"
    assert verdicts([rec("bscl-paper", 0, 0.9)])["bscl-paper"] == "no sentence-transformers recipe yet"


def test_versus_zero_shot_counts_only_a_gap_beyond_the_recipes_own_spread():
    zero = [rec("zero-shot", 0, 0.70, side=R.ZERO_SHOT)]
    above = [rec("a", 0, 0.78), rec("a", 1, 0.80), rec("a", 2, 0.82)]  # mean .80, sd .02: +.10 > .02
    level = [rec("b", 0, 0.69), rec("b", 1, 0.71), rec("b", 2, 0.73)]  # mean .71, sd .02: +.01 < .02
    below = [rec("c", 0, 0.60, side=ST), rec("c", 1, 0.62, side=ST)]  # mean .61, sd .01414: -.09
    narrow = [rec("d", 0, 0.70), rec("d", 1, 0.72)]  # mean .71, sd .01414: +.01 < .01414 -> level
    one = [rec("e", 0, 0.95)]
    rows = {
        s.recipe: s.vs_zero_shot for s in R.summarize(zero + above + level + below + narrow + one, "spearman")
    }
    assert rows["a"] == "above (+0.1000, sd 0.0200)"
    assert rows["b"] == "level (+0.0100, within sd 0.0200)"
    assert rows["c"] == "below (-0.0900, sd 0.0141)"
    assert rows["d"] == "level (+0.0100, within sd 0.0141)"
    assert rows["e"] == "+0.2500 (n < 2)"
    assert rows["zero-shot"] == ""
    # a tie is not "more than the spread": 156, 154, 155 of 198 queries against 154 of 198 differ by
    # 1/198 on average, and their sample sd is 1/198 too
    tie = [rec("f", s, k / 198) for s, k in enumerate((156, 154, 155))]
    rows = {
        s.recipe: s.vs_zero_shot
        for s in R.summarize([rec("zero-shot", 0, 154 / 198, side=R.ZERO_SHOT)] + tie, "spearman")
    }
    assert rows["f"] == "level (+0.0051, within sd 0.0051)"
    # without a zero-shot record the column stays empty
    assert {s.vs_zero_shot for s in R.summarize(above + level, "spearman")} == {""}


def test_table_and_fill_between_markers():
    records = [
        rec("st-cosent", 0, 0.80, side=ST),
        rec("st-cosent", 1, 0.82, side=ST),
        rec("bscl-paper", 0, 0.9),
    ]
    text = "# R\n\nintro\n<!-- results:begin stsb -->\nold table\n<!-- results:end -->\n\nafter\n"
    out = R.fill(text, R.tables(records))
    assert "old table" not in out and out.startswith("# R\n\nintro\n<!-- results:begin stsb -->\n| recipe |")
    assert out.endswith("<!-- results:end -->\n\nafter\n")
    assert (
        "| st-cosent | sentence-transformers | 2 | 0.8100 ± 0.0141 (n=2) | 0.8500 ± 0.0141 (n=2) | 2.0 |"
        in out
    )
    assert "| bscl-paper | bscl | 1 | 0.9000 (n=1) |" in out
    assert R.fill(out, R.tables(records)) == out  # idempotent
    # a task with records but no section gets one at the end; a section without records says so
    more = R.fill(text, R.tables([rec("bscl-paper", 0, 0.7, task="mrpc")]))
    assert "<!-- results:begin stsb -->\n(no records yet)\n<!-- results:end -->" in more
    assert more.rstrip().endswith("<!-- results:end -->") and "<!-- results:begin mrpc -->" in more


def test_records_of_another_setting_fill_sections_of_their_own(tmp_path):
    def write(folder, recipe, test):
        path = folder / "stsb" / recipe / "seed-0.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(rec(recipe, 0, test)))

    write(tmp_path / "results", "bscl-paper", 0.81)
    write(tmp_path / "results-epochs5", "bscl-paper", 0.86)
    out = tmp_path / "RESULTS.md"
    out.write_text("# R\n<!-- results:begin stsb -->\nold\n<!-- results:end -->\n")
    R.regenerate(tmp_path / "results-epochs5", out)
    R.regenerate(tmp_path / "results", out)
    text = out.read_text()
    one, five = text.split("<!-- results-epochs5:begin stsb -->")
    assert "| 0.8100 (n=1) |" in one and "0.86" not in one and "old" not in text
    assert "| 0.8600 (n=1) |" in five and "0.81" not in five
    heading = (
        f"### stsb: generated by `bscl results --results-dir {(tmp_path / 'results-epochs5').as_posix()}`"
    )
    assert one.rstrip().endswith(heading) and five.rstrip().endswith("<!-- results-epochs5:end -->")
    assert R.table_kind(tmp_path / "results") == "results"
    with pytest.raises(ValueError, match="folder name"):
        R.table_kind(tmp_path / "bad name")
    with pytest.raises(ValueError, match="paper-grid"):
        R.table_kind(tmp_path / "results" / "grid")


def finished_run(folder, test=0.8):
    folder.mkdir(parents=True)
    metrics = {"config": {"data": {"task": "stsb"}, "loss": {"name": "st-cosent"}}, "task": "stsb",
               "primary": "spearman", "seeds": {"1": {"train_seconds": 60.0, "dev": {"spearman": 0.9},
                                                      "test": {"spearman": test}}},
               "best_seed": 1, "after": {"dev": {"spearman": 0.9}, "test": {"spearman": test}}}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_record_from_a_run_folder_and_overwrite_rules(tmp_path):
    record = R.make_record(finished_run(tmp_path / "run"), "st-cosent")
    assert (record["task"], record["recipe"], record["seed"], record["side"]) == ("stsb", "st-cosent", 1, ST)
    assert record["test"] == {"spearman": 0.8} and record["train_seconds"] == 60.0
    assert set(record["versions"]) == {"torch", "transformers", "sentence-transformers", "bscl"}
    assert record["git"] is None or len(record["git"].removesuffix("-dirty")) == 40
    assert record["machine"]["cpu_count"] >= 1 and record["date"].endswith("+00:00")
    results = tmp_path / "results"
    path = R.write_record(record, results)
    assert path == results / "stsb" / "st-cosent" / "seed-1.json"
    assert json.loads(path.read_text())["test"] == {"spearman": 0.8}
    assert R.write_record({**record, "date": "later"}, results) == path  # same result: kept
    assert json.loads(path.read_text())["date"] == record["date"]
    other = R.make_record(finished_run(tmp_path / "run2", test=0.7), "st-cosent")
    with pytest.raises(ValueError, match="--force"):
        R.write_record({**other, "run_dir": record["run_dir"]}, results)
    R.write_record(other, results, force=True)
    assert json.loads(path.read_text())["test"] == {"spearman": 0.7}
    assert [r["recipe"] for r in R.load_records(results)] == ["st-cosent"]


def test_unfinished_run_and_bad_names_are_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"seeds": {}}))
    with pytest.raises(ValueError, match="not finished"):
        R.make_record(tmp_path / "run", "x")
    with pytest.raises(ValueError, match="recipe name"):
        R.make_record(tmp_path / "run", "../x")


def test_records_carry_the_split_of_their_task_and_another_split_is_refused(tmp_path):
    # a run folder from before split versions: split 1; stsb's loader makes split 1
    record = R.make_record(finished_run(tmp_path / "run"), "st-cosent")
    assert record["split"] == 1
    # PFCC-S's loader makes split 2 (dev grouped by tweet and verified claim)
    hp1 = {"has_positive@1": 0.8}
    pfcc = {**rec("bscl-paper", 0, 0.8, task="pfcc"), "primary": "has_positive@1", "test": hp1, "dev": hp1}
    with pytest.raises(ValueError, match="split 1 of pfcc's data; the loader now makes split 2"):
        R.write_record(pfcc, tmp_path / "results")  # no split stored: split 1
    assert not (tmp_path / "results").exists()
    path = R.write_record({**pfcc, "split": 2}, tmp_path / "results")
    assert json.loads(path.read_text())["split"] == 2
    assert R.matching_record([path], lambda config: None, "hint") is not None
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**pfcc, "split": 1}))
    with pytest.raises(ValueError, match="old.json: a record of split 1"):
        R.matching_record([old], lambda config: None, "hint")
    # one table never mixes the numbers of two splits
    with pytest.raises(ValueError, match=r"splits \[1, 2\]"):
        R.tables([{**pfcc, "split": 1}, {**pfcc, "seed": 1, "split": 2}])
    table = R.tables([{**pfcc, "split": 2}, {**pfcc, "seed": 1, "split": 2}])["pfcc"]
    assert "| bscl-paper | bscl | 2 | 0.8000 ± 0.0000 (n=2) |" in table


def test_bscl_results_regenerates_the_committed_pages_and_figures_byte_identical(tmp_path, monkeypatch):
    from pathlib import Path

    from bscl.experiments import pages

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # the pages name the records folders as given
    bench = Path("benchmarks")
    copies = {name: tmp_path / name for name in ("RESULTS.md", "ABLATIONS.md", "README.md")}
    for name, copy in copies.items():
        copy.write_bytes((root / name if name == "README.md" else bench / name).read_bytes())
    pages.regenerate_all(
        bench,
        results_file=copies["RESULTS.md"],
        ablations_file=copies["ABLATIONS.md"],
        readme=copies["README.md"],
    )
    for name, copy in copies.items():
        assert copy.read_bytes() == (root / name if name == "README.md" else bench / name).read_bytes(), name
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.svg"))
    assert figures and figures == sorted(p.name for p in (bench / "figures").glob("*.svg"))
    for name in figures:
        assert (tmp_path / "figures" / name).read_bytes() == (bench / "figures" / name).read_bytes(), name


def write_records(folder, task, recipe, tests, side="bscl", epochs=1.0):
    for seed, test in enumerate(tests):
        path = folder / task / recipe / f"seed-{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = rec(recipe, seed, test, side=side, task=task)
        record["config"] = {"train": {"model": "minilm", "epochs": epochs}, "data": {}}
        path.write_text(json.dumps(record))


def test_verdict_line_sets_each_sides_best_recipe_against_the_other():
    rows = R.summarize(
        [rec("bscl-a", s, t) for s, t in enumerate((0.85, 0.86))]
        + [rec("bscl-b", 0, 0.99)]  # one seed: not the best bscl recipe while one has two
        + [rec("st-x", s, t, side=ST) for s, t in enumerate((0.80, 0.81))]
        + [rec("zero-shot", 0, 0.70, side=R.ZERO_SHOT)],
        "spearman",
    )
    line = R.verdict_line(rows)
    assert line.startswith("Verdict: `bscl-a` (the best bscl recipe) is ahead of `st-x` by +0.0500")
    assert line.endswith("against zero-shot it is above.")
    assert R.verdict_line(R.summarize([rec("bscl-a", 0, 0.8)], "spearman")).startswith("Verdict: none")


def test_summary_prefers_the_paper_epochs_where_both_best_recipes_have_two_seeds(tmp_path):
    from bscl.experiments import pages

    one, five = tmp_path / "results", tmp_path / pages.PAPER_EPOCHS
    for task in ("stsb", "wiki-unsup"):
        write_records(one, task, "bscl-paper", (0.90, 0.91))
        write_records(one, task, "st-cosine", (0.80, 0.81), side=ST)
    write_records(five, "stsb", "bscl-paper", (0.85, 0.86), epochs=5.0)
    write_records(five, "stsb", "st-cosine", (0.86, 0.87), epochs=5.0, side=ST)
    write_records(five, "wiki-unsup", "bscl-paper", (0.85,), epochs=5.0)  # one seed: not enough
    write_records(five, "wiki-unsup", "st-cosine", (0.86, 0.87), epochs=5.0, side=ST)
    text = pages.summary(tmp_path)
    stsb, wiki = (
        next(line for line in text.splitlines() if line.startswith(f"| {t} ")) for t in ("stsb", "wiki-unsup")
    )
    assert "minilm, 5 epochs, full training set" in stsb and "behind (-0.0100)" in stsb
    assert "minilm, 1 epoch, full training set" in wiki and "ahead (+0.1000)" in wiki
    assert (
        "ahead of the best sentence-transformers recipe on wiki-unsup; level on none; behind on stsb ("
        in text
    )


def test_sections_carry_the_commands_that_make_their_records(tmp_path):
    records = [rec("bscl-paper", s, 0.8) for s in range(3)] + [rec("zero-shot", 0, 0.7, side=R.ZERO_SHOT)]
    records += [rec("st-cosine", 0, 0.7, side=ST)]
    for r in records:
        r["config"] = {"train": {"model": "minilm", "epochs": 5.0}, "data": {}}
    assert R.compare_commands("stsb", records, tmp_path / "results-epochs5") == [
        f"bscl compare stsb --recipes zero-shot,bscl-paper --seeds 3 --epochs 5 --model minilm "
        f"--output-dir runs/results-epochs5 --results-dir {(tmp_path / 'results-epochs5').as_posix()}",
        f"bscl compare stsb --recipes st-cosine --seeds 1 --epochs 5 --model minilm "
        f"--output-dir runs/results-epochs5 --results-dir {(tmp_path / 'results-epochs5').as_posix()}",
    ]
    assert R.compare_commands("stsb", [rec("padfree-1500x2", 0, 0.8)]) == []  # not a compare recipe
