"""Result records that accumulate, and the results-file sections generated from them.

One finished (task, recipe, seed) run folder -> one small JSON record under
``RESULTS_DIR/<task>/<recipe>/seed-<n>.json``: the resolved config, task, recipe, seed, side
("bscl" or "sentence-transformers"), primary metric, dev and test metrics of the dev-chosen
checkpoint, training seconds, package versions, git commit (``-dirty`` when tracked files differ
from it), machine and date. Records are committed; a grid fills up over several invocations.

Every folder and file is an argument; the repository's ``benchmarks/results`` and
``benchmarks/RESULTS.md`` are only the defaults of the command-line options
(:func:`add_results_arguments`). :func:`regenerate` rebuilds every generated section of a results
file between ``<!-- results:begin TASK -->`` and ``<!-- results:end -->`` (a task with records but no
markers gets a new section at the end); ``bscl results`` (:mod:`bscl.experiments.pages`) does it for
every page of the repository. Records of another setting live in a folder of their own
(``--results-dir benchmarks/results-epochs5``) and fill sections named after it
(``<!-- results-epochs5:begin TASK -->``, :func:`table_kind`). Per task one section
(:func:`section`): a table (recipe, n seeds, mean +- sample standard deviation of the primary test
metric, dev beside it, training minutes, the verdicts), a one-line verdict, the ``bscl compare``
commands that make its records and a figure beside the results file
(``figures/<kind>-<task>.svg``, :func:`bscl.experiments.figures.plot_recipes`). A recipe is *ahead of*
(or *behind*) the best sentence-transformers recipe only when the difference of the means exceeds
both standard deviations; otherwise it is *level*. With fewer than two seeds on either side there is
no standard deviation and no verdict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import statistics
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bscl.experiments.figures import plot_recipes
from bscl.reporting import runfolder as RF
from bscl.reporting.atomic import atomic_write_text
from bscl.reporting.report import format_table, load_metrics

PathLike = str | os.PathLike[str]

#: the defaults of ``--results-dir`` / ``--results-file`` (the repository's committed records and tables)
RESULTS_DIR = Path("benchmarks/results")
RESULTS_FILE = Path("benchmarks/RESULTS.md")
SCHEMA = 1
ST = "sentence-transformers"
ZERO_SHOT = "zero-shot"  #: the side of the pretrained model's record (evaluated, not trained)
#: fields that identify a result: a record that differs in one of them is a different result
RESULT_FIELDS = ("task", "recipe", "seed", "config", "dev", "test", "train_seconds")
PACKAGES = ("torch", "transformers", "sentence-transformers", "bscl")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: a generated section: ``<!-- KIND:begin TASK -->`` ... ``<!-- KIND:end -->`` (kinds: "results", the
#: head-to-head tables of ``bscl results``; "grid", the paper-grid tables of ``bscl reproduce``)
BEGIN = "<!-- {kind}:begin {task} -->"
END = "<!-- {kind}:end -->"
GRID_KIND = "grid"  #: the marker kind of the paper-grid tables (``bscl.experiments.reproduce.regenerate``)


def _markers(kind: str) -> re.Pattern[str]:
    k = re.escape(kind)
    return re.compile(rf"<!-- {k}:begin (?P<task>\S+) -->\n(?P<body>.*?)<!-- {k}:end -->", re.DOTALL)


# --------------------------------------------------------------------------------------------------
# writing records
# --------------------------------------------------------------------------------------------------
def read_run(run_dir: PathLike) -> dict[str, Any]:
    """``metrics.json`` of a finished run folder (clear error when unfinished)."""
    metrics = load_metrics(run_dir)
    if "after" not in metrics or "best_seed" not in metrics:
        raise ValueError(
            f"{Path(run_dir) / 'metrics.json'}: the run is not finished (no 'after' / 'best_seed')"
        )
    return metrics


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(folder: PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` of the checkout holding ``folder`` (default: this package), plus
    ``-dirty`` when tracked files differ from it; None outside a git checkout."""
    where = str(folder if folder is not None else Path(__file__).resolve().parent)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", where, *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def machine() -> dict[str, Any]:
    out: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return out


def side_of(config: Mapping[str, Any]) -> str:
    """``sentence-transformers`` for a peer recipe (``--loss.name st-*``), else ``bscl``."""
    from bscl.training.peers import PEER_LOSSES

    return ST if (config.get("loss") or {}).get("name") in PEER_LOSSES else "bscl"


def make_record(run_dir: PathLike, recipe: str, side: str | None = None) -> dict[str, Any]:
    """The record of a finished run folder (the seed kept on dev); ``side`` default: from the config."""
    if not NAME.match(recipe):
        raise ValueError(f"recipe name {recipe!r}: use letters, digits, '.', '_' and '-' only")
    metrics = read_run(run_dir)
    config = metrics.get("config") or {}
    seed = int(metrics["best_seed"])
    seed_result = (metrics.get("seeds") or {}).get(str(seed), {})
    return {
        "schema": SCHEMA,
        "task": metrics.get("task") or (config.get("data") or {}).get("task"),
        "recipe": recipe,
        "seed": seed,
        "side": side if side is not None else side_of(config),
        "primary": metrics.get("primary"),
        # the version of the task's split its dev and test numbers are of (TaskSpec.split_version)
        "split": RF.stored_split(metrics.get("data")),
        "dev": metrics["after"]["dev"],
        "test": metrics["after"]["test"],
        "train_seconds": seed_result.get("train_seconds"),
        "config": config,
        "run_dir": str(run_dir),
        "versions": package_versions(),
        # the checkout the run was made in (a run folder outside any checkout: this package's)
        "git": git_commit(run_dir) or git_commit(),
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def record_path(results_dir: PathLike, task: str, recipe: str, seed: int) -> Path:
    return Path(results_dir) / task / recipe / f"seed-{seed}.json"


def write_record(record: Mapping[str, Any], results_dir: PathLike, force: bool = False) -> Path:
    """Write ``record`` atomically to its path; an existing record of the same result is kept as is,
    a different one is an error unless ``force``."""
    path = record_path(results_dir, record["task"], record["recipe"], record["seed"])
    check_record_split(record, path)
    if path.is_file():
        old = RF.read_json_object(path)
        differ = [k for k in RESULT_FIELDS if old.get(k) != record.get(k)]
        if not differ:
            return path
        if not force:
            raise ValueError(
                f"{path}: a different record exists (fields {', '.join(differ)} differ); "
                "pass --force to overwrite it, or use another recipe name"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    return path


def check_record_split(record: Mapping[str, Any], path: PathLike) -> None:
    """A ValueError when ``record`` (at ``path``) is of another split of its task's files than the
    loader makes now (:attr:`bscl.data.spec.TaskSpec.split_version`): its dev and test numbers are
    not the current split's, so it is neither written as one nor taken as one."""
    stored, current = RF.stored_split(record), RF.split_of(record.get("task"))
    if stored != current:
        raise ValueError(
            f"{path}: a record of split {stored} of {record.get('task')}'s data; the loader now makes "
            f"split {current}: keep it in another --results-dir (history) and run the cell again"
        )


def matching_record(
    paths: Iterable[Path], differ: Callable[[dict[str, Any] | None], str | None], hint: str
) -> tuple[Path, dict[str, Any]] | None:
    """The record among ``paths`` whose config is the wanted one (``differ(config)`` is None; else it
    names the differences), or None when there is no record; a record of other options or of another
    split of the task's data (:func:`check_record_split`) is an error (``hint``: what to do instead), raised
    before anything trains: its result could not be written."""
    for path in paths:
        record = RF.read_json_object(Path(path))
        check_record_split(record, path)
        diff = differ(record.get("config"))
        if diff is not None:
            raise ValueError(f"{path} is the record of other options ({diff}); {hint}")
        return Path(path), record
    return None


# --------------------------------------------------------------------------------------------------
# tables (pure functions)
# --------------------------------------------------------------------------------------------------
def load_records(results_dir: PathLike) -> list[dict[str, Any]]:
    """Every ``<task>/<recipe>/seed-<n>.json`` under ``results_dir`` (sorted by path)."""
    out = []
    for path in sorted(Path(results_dir).glob("*/*/seed-*.json")):
        rec = RF.read_json_object(path)
        for key in ("task", "recipe", "seed", "test"):
            if key not in rec:
                raise ValueError(f"{path}: field {key!r} missing")
        out.append(rec)
    return out


@dataclass
class Summary:
    """One recipe of one task over its seeds."""

    recipe: str
    side: str
    n: int
    test_mean: float
    test_std: float | None  #: sample standard deviation (n - 1); None for one seed
    dev_mean: float | None
    dev_std: float | None
    train_minutes: float | None  #: mean over seeds
    verdict: str = ""
    vs_zero_shot: str = ""


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def summarize(records: Iterable[Mapping[str, Any]], metric: str) -> list[Summary]:
    """Per recipe: mean and sample std over seeds of ``test[metric]`` and ``dev[metric]``, sorted by
    test mean (best first), with verdicts against the best sentence-transformers recipe."""
    by_recipe: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_recipe.setdefault(r["recipe"], []).append(r)
    rows = []
    for recipe, recs in by_recipe.items():
        test = [float(r["test"][metric]) for r in recs if metric in r.get("test", {})]
        if not test:
            continue
        dev = [float(r["dev"][metric]) for r in recs if metric in (r.get("dev") or {})]
        secs = [float(r["train_seconds"]) for r in recs if r.get("train_seconds") is not None]
        tm, ts = _mean_std(test)
        dm, ds = _mean_std(dev)
        rows.append(
            Summary(
                recipe,
                str(recs[0].get("side", "bscl")),
                len(test),
                tm,  # type: ignore[arg-type]
                ts,
                dm,
                ds,
                statistics.fmean(secs) / 60 if secs else None,
            )
        )
    rows.sort(key=lambda s: -s.test_mean)
    for s in rows:
        s.verdict = verdict(s, rows)
        s.vs_zero_shot = versus_zero_shot(s, rows)
    return rows


def beyond(diff: float, spread: float) -> bool:
    """``|diff| > spread``, a tie counted as not beyond: metrics that count queries (k / 198) give
    differences that equal the standard deviation exactly, which floating point may put on either side."""
    return abs(diff) > spread and not math.isclose(abs(diff), spread, rel_tol=1e-9, abs_tol=1e-12)


def standing(row: Summary, best: Summary) -> str | None:
    """``row`` against ``best`` (the best sentence-transformers recipe): "ahead" / "behind" only when
    the means differ by more than both sample standard deviations, else "level"; None when either
    side has fewer than two seeds (no standard deviation)."""
    if row.test_std is None or best.test_std is None:
        return None
    diff = row.test_mean - best.test_mean
    if beyond(diff, max(row.test_std, best.test_std)):
        return "ahead" if diff > 0 else "behind"
    return "level"


def best_peer(rows: Sequence[Summary]) -> Summary | None:
    """The best sentence-transformers recipe (highest test mean), None without one."""
    peers = [r for r in rows if r.side == ST]
    return max(peers, key=lambda r: r.test_mean) if peers else None


def verdict(row: Summary, rows: Sequence[Summary]) -> str:
    """Against the best sentence-transformers recipe (highest test mean): "ahead" / "behind" only when
    the means differ by more than both sample standard deviations, else "level"."""
    best = best_peer(rows)
    if best is None:
        return "no sentence-transformers recipe yet"
    if row is best:
        return "best sentence-transformers recipe"
    if row.side != "bscl":  # other sentence-transformers recipes, zero-shot
        return ""
    where = standing(row, best)
    diff = row.test_mean - best.test_mean
    if where is None:
        return f"no verdict (n < 2) vs {best.recipe}"
    if where == "level":
        return f"level with {best.recipe} ({diff:+.4f}, within the spread)"
    return f"{'ahead of' if where == 'ahead' else 'behind'} {best.recipe} ({diff:+.4f})"


def zero_shot_standing(row: Summary, zero: Summary) -> str | None:
    """``row`` against the pretrained model: "above" / "below" only when its mean differs from the
    zero-shot score by more than its own sample standard deviation (zero-shot is deterministic: one
    record, no spread), else "level"; None for one seed."""
    if row.test_std is None:
        return None
    diff = row.test_mean - zero.test_mean
    if beyond(diff, row.test_std):
        return "above" if diff > 0 else "below"
    return "level"


def versus_zero_shot(row: Summary, rows: Sequence[Summary]) -> str:
    """A trained recipe against the pretrained model (the rule for "fine-tuning helps",
    :func:`zero_shot_standing`); empty without a zero-shot record or for the zero-shot row itself."""
    zero = [r for r in rows if r.side == ZERO_SHOT]
    if not zero or row.side == ZERO_SHOT:
        return ""
    diff = row.test_mean - zero[0].test_mean
    where = zero_shot_standing(row, zero[0])
    if where is None:
        return f"{diff:+.4f} (n < 2)"
    if where == "level":
        return f"level ({diff:+.4f}, within sd {row.test_std:.4f})"
    return f"{where} ({diff:+.4f}, sd {row.test_std:.4f})"


@dataclass
class Headline:
    """One setting of one task in a line: its best bscl recipe against its best sentence-transformers
    recipe (each the highest test mean of its side, preferring recipes with two seeds or more, so
    that both sides are chosen alike), and the zero-shot row."""

    bscl: Summary | None
    peer: Summary | None
    zero: Summary | None

    @property
    def standing(self) -> str | None:
        """ "ahead" / "level" / "behind" (:func:`standing`); None without both sides or two seeds."""
        if self.bscl is None or self.peer is None:
            return None
        return standing(self.bscl, self.peer)

    @property
    def diff(self) -> float | None:
        if self.bscl is None or self.peer is None:
            return None
        return self.bscl.test_mean - self.peer.test_mean


def headline(rows: Sequence[Summary]) -> Headline:
    """The :class:`Headline` of a task's :func:`summarize` rows."""

    def best(side: str) -> Summary | None:
        mine = [r for r in rows if r.side == side]
        spread = [r for r in mine if r.n >= 2] or mine
        return max(spread, key=lambda r: r.test_mean) if spread else None

    zero = [r for r in rows if r.side == ZERO_SHOT]
    return Headline(best("bscl"), best(ST), zero[0] if zero else None)


def verdict_line(rows: Sequence[Summary]) -> str:
    """The one-line verdict of a task's table: its best bscl recipe against its best
    sentence-transformers recipe (:class:`Headline`), and against zero-shot."""
    head = headline(rows)
    if head.bscl is None or head.peer is None:
        missing = "bscl" if head.bscl is None else "sentence-transformers"
        return f"Verdict: none (no {missing} recipe in this setting)."
    where, diff = head.standing, head.diff
    said = {
        None: f"has no verdict against `{head.peer.recipe}` (fewer than two seeds; {diff:+.4f})",
        "level": f"is level with `{head.peer.recipe}` ({diff:+.4f}, within the spread)",
        "ahead": f"is ahead of `{head.peer.recipe}` by {diff:+.4f} (beyond both spreads)",
        "behind": f"is behind `{head.peer.recipe}` by {diff:+.4f} (beyond both spreads)",
    }[where]
    line = (
        f"Verdict: `{head.bscl.recipe}` (the best bscl recipe) {said}, the best sentence-transformers recipe"
    )
    if head.zero is not None:
        line += f"; against zero-shot it is {zero_shot_standing(head.bscl, head.zero) or 'without a verdict (n < 2)'}"
    return line + "."


def _pm(mean: float | None, std: float | None, n: int) -> str | None:
    if mean is None:
        return None
    return f"{mean:.4f} ± {std:.4f} (n={n})" if std is not None else f"{mean:.4f} (n={n})"


def table(task: str, records: Sequence[Mapping[str, Any]], metric: str) -> str:
    """The Markdown table of one task's records (``metric``: its primary metric)."""
    rows = [
        {
            "recipe": s.recipe,
            "side": s.side,
            "n": s.n,
            "test": _pm(s.test_mean, s.test_std, s.n),
            "dev": _pm(s.dev_mean, s.dev_std, s.n),
            "minutes": None if s.train_minutes is None else f"{s.train_minutes:.1f}",
            "vs zero-shot": s.vs_zero_shot,
            "verdict": s.verdict,
        }
        for s in summarize(records, metric)
    ]
    headers = [
        "recipe",
        "side",
        "seeds",
        f"test {metric} (mean ± sd)",
        f"dev {metric}",
        "train min",
        "vs zero-shot",
        "verdict",
    ]
    return format_table(rows, list(rows[0]) if rows else ["recipe"], headers=headers if rows else None)


def primary_of(task: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The task's primary metric: its spec's, else the records' ``primary``."""
    from bscl.data import TASK_SPECS

    if task in TASK_SPECS:
        return TASK_SPECS[task].metric
    for r in records:
        if r.get("primary"):
            return str(r["primary"])
    raise ValueError(f"task {task!r}: no spec and no record names its primary metric")


def by_task(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Task -> its records; a task's records must all be of one split of its data."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        out.setdefault(r["task"], []).append(r)
    for task, recs in out.items():
        splits = sorted({RF.stored_split(r) for r in recs})
        if len(splits) > 1:  # numbers of two dev / test splits in one table would not compare
            raise ValueError(
                f"records of {task} are of splits {splits} of its data; keep each split's records in "
                "their own results folder"
            )
    return out


def tables(records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Task -> table, for every task with records."""
    return {task: table(task, recs, primary_of(task, recs)) for task, recs in by_task(records).items()}


def _number(value: float) -> str:
    return f"{value:g}"


def _setting(config: Mapping[str, Any]) -> tuple[str, str, int | None]:
    train, data = config.get("train") or {}, config.get("data") or {}
    return str(train.get("model")), _number(float(train.get("epochs", 1.0))), data.get("train_subset")


def setting_of(records: Sequence[Mapping[str, Any]]) -> str:
    """What the trained records of a table share, in words: model, epochs, training data
    ("minilm, 1 epoch, full training set"); values that differ are joined with "/"."""
    trained = [_setting(r.get("config") or {}) for r in records if r.get("side") != ZERO_SHOT]
    if not trained:
        return "zero-shot only"
    models = "/".join(sorted({m for m, _e, _s in trained}))
    epochs = sorted({e for _m, e, _s in trained}, key=float)
    subsets = sorted({"full training set" if s is None else f"{s:,} training pairs" for _m, _e, s in trained})
    unit = "epoch" if epochs == ["1"] else "epochs"
    return f"{models}, {'/'.join(epochs)} {unit}, {'/'.join(subsets)}"


#: how ``bscl compare`` names its recipes; records named otherwise (ablations) were made by other commands
COMPARE_RECIPE = re.compile(rf"^(bscl-|st-|{re.escape(ZERO_SHOT)}$)")


def compare_commands(
    task: str,
    records: Sequence[Mapping[str, Any]],
    results_dir: PathLike = RESULTS_DIR,
    results_file: PathLike | None = None,
) -> list[str]:
    """The ``bscl compare`` commands that make ``records`` (one task's) from nothing: per model, epochs,
    training subset and number of seeds one command (seeds 0 to n-1 of each recipe; zero-shot with the
    first); ``--results-dir`` / ``--results-file`` / ``--output-dir`` where they are not the defaults.
    Empty when a record's recipe is not named as ``bscl compare`` names them."""
    if not records or not all(COMPARE_RECIPE.match(str(r["recipe"])) for r in records):
        return []
    groups: dict[tuple[str, str, int | None, int], list[str]] = {}
    rows = summarize(records, primary_of(task, records))
    for row in rows:
        if row.side == ZERO_SHOT:
            continue
        recs = [r for r in records if r["recipe"] == row.recipe]
        key = (*_setting(recs[0].get("config") or {}), max(int(r["seed"]) for r in recs) + 1)
        groups.setdefault(key, []).append(row.recipe)
    zero = [r.recipe for r in rows if r.side == ZERO_SHOT]
    if not groups:
        groups[("minilm", "1", None, 1)] = []
    folder = Path(results_dir)
    where = []
    if folder != RESULTS_DIR:
        where += ["--output-dir", f"runs/{folder.name}", "--results-dir", folder.as_posix()]
    if results_file is not None:
        where += ["--results-file", Path(results_file).as_posix()]
    out = []
    for i, ((model, epochs, subset, seeds), names) in enumerate(groups.items()):
        names = (zero if i == 0 else []) + names
        args = ["bscl", "compare", task, "--recipes", ",".join(names), "--seeds", str(seeds)]
        args += ["--epochs", epochs, "--model", model]
        if subset is not None:
            args += ["--train-subset", str(subset)]
        out.append(" ".join(args + where))
    return out


def figure_path(results_file: PathLike, kind: str, task: str) -> Path:
    """Where the figure of ``task``'s section of kind ``kind`` is written: ``figures/<kind>-<task>.svg``
    beside ``results_file``."""
    return Path(results_file).parent / "figures" / f"{kind}-{task}.svg"


def section(
    task: str, records: Sequence[Mapping[str, Any]], kind: str, results_dir: PathLike, results_file: PathLike
) -> str:
    """The generated section of one task in ``results_file``: its table, the one-line verdict, the
    commands that make its records, and its figure (written to ``figures/<kind>-<task>.svg`` beside
    ``results_file``; the section links it)."""
    metric = primary_of(task, records)
    rows = summarize(records, metric)
    setting = setting_of(records)
    written = figure_path(results_file, kind, task)
    figure = written.relative_to(Path(results_file).parent)
    plot_recipes(records, metric, written, title=f"{task}: {setting}")
    lines = [table(task, records, metric), "", verdict_line(rows), ""]
    lines.append(f"Setting: {setting}; records in `{Path(results_dir).as_posix()}/{task}/`.")
    commands = compare_commands(task, records, results_dir)
    if commands:
        lines += ["", "```", *commands, "```"]
    lines += ["", f"![{task}: each seed a point, mean and sd as tick and bar]({figure.as_posix()})"]
    return "\n".join(lines)


def fill(
    text: str,
    generated: Mapping[str, str],
    kind: str = "results",
    heading: str = "### {task}: generated by `bscl results` from benchmarks/results/{task}/",
    only: Iterable[str] | None = None,
) -> str:
    """``text`` with each ``KIND:begin TASK`` section replaced by ``generated[TASK]`` (sections of
    tasks without records say so); tasks with no section get one (``heading``) appended at the end.
    ``only``: replace the sections of these tasks alone (the others are left as they are)."""
    seen: set[str] = set()
    keep = None if only is None else set(only)

    def sub(m: re.Match[str]) -> str:
        task = m.group("task")
        seen.add(task)
        if keep is not None and task not in keep:
            return m.group(0)
        body = generated.get(task, "(no records yet)")
        return f"{BEGIN.format(kind=kind, task=task)}\n{body}\n{END.format(kind=kind)}"

    out = _markers(kind).sub(sub, text)
    missing = [t for t in generated if t not in seen and (keep is None or t in keep)]
    if missing:
        out = out.rstrip("\n") + "\n"
        for task in missing:
            out += (
                f"\n{heading.format(task=task)}\n\n"
                f"{BEGIN.format(kind=kind, task=task)}\n{generated[task]}\n{END.format(kind=kind)}\n"
            )
    return out


def table_kind(results_dir: PathLike) -> str:
    """The marker kind of the tables generated from ``results_dir``: the folder's name. The default
    folder (benchmarks/results) fills ``<!-- results:begin TASK -->`` sections; the records of another
    setting (``bscl compare --epochs 5 --results-dir benchmarks/results-epochs5``) fill sections of
    their own, ``<!-- results-epochs5:begin TASK -->``, in the same RESULTS.md, so that two settings'
    tables never overwrite each other."""
    name = Path(results_dir).name
    if not NAME.match(name):
        raise ValueError(f"--results-dir {results_dir}: its folder name {name!r} must match {NAME.pattern}")
    if name == GRID_KIND:
        raise ValueError(
            f"--results-dir {results_dir}: 'grid' names the paper-grid tables; use another folder name"
        )
    return name


def regenerate(results_dir: PathLike, results_file: PathLike) -> str:
    """Rebuild the generated sections of ``results_file`` from the records of ``results_dir`` (the
    sections of its :func:`table_kind`, :func:`section`; the figures beside ``results_file``); returns
    the new text."""
    path = Path(results_file)
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    kind = table_kind(results_dir)
    heading = f"### {{task}}: generated by `bscl results --results-dir {Path(results_dir).as_posix()}`"
    generated = {
        task: section(task, recs, kind, results_dir, path)
        for task, recs in by_task(load_records(results_dir)).items()
    }
    new = fill(text, generated, kind=kind, heading=heading)
    if new != text:
        atomic_write_text(path, new)
    return new


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
def add_results_arguments(
    p: argparse.ArgumentParser,
    results_dir: PathLike = RESULTS_DIR,
    dir_help: str | None = None,
    file_help: str | None = None,
) -> None:
    """``--results-dir`` (default ``results_dir``) and ``--results-file``: where the records and the
    generated tables are (the only place the repository's folders are named)."""
    p.add_argument("--results-dir", default=str(results_dir), help=dir_help)
    p.add_argument("--results-file", default=str(RESULTS_FILE), help=file_help)
