"""``bscl results``: the repository's result pages, regenerated from the committed records.

- ``benchmarks/RESULTS.md``: per task and setting the head-to-head section (table, one-line verdict,
  the commands that make its records, figure; :func:`bscl.experiments.records.section`) of every
  settings folder ``benchmarks/results*`` the page has markers for (the default folder's new tasks get
  a section of their own), and the paper-grid sections (:func:`bscl.experiments.reproduce.regenerate`);
  the figures go to ``benchmarks/figures/``.
- ``benchmarks/ABLATIONS.md``: the sections of ``benchmarks/results/ablations``.
- ``README.md``: the results summary (:func:`summary`).

Everything is rebuilt from the records alone, so regenerating from the same records gives the same
bytes (a test checks the committed pages and figures). ``bscl results --commands TASK`` prints the
commands that make a task's committed records from nothing (``benchmarks/reproduce.sh TASK``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bscl.data import TASK_SPECS
from bscl.experiments import records, reproduce
from bscl.reporting.atomic import atomic_write_text
from bscl.reporting.report import format_table

#: the folder of the committed records and pages (``benchmarks/results*``, ``RESULTS.md``, ...)
BENCH = records.RESULTS_DIR.parent
README = Path("README.md")
#: the settings folder of the head-to-head at the paper's epochs (5; the paper trains 5-7)
PAPER_EPOCHS = "results-epochs5"
#: the README's generated section: ``<!-- summary:begin tasks -->`` ... ``<!-- summary:end -->``
SUMMARY_KIND, SUMMARY_KEY = "summary", "tasks"


def settings_folders(bench: Path, results_file: Path) -> list[Path]:
    """The head-to-head settings folders shown on ``results_file``: the default one (its new tasks get
    sections), and every other ``results*`` folder whose marker kind the page has (a folder the page
    does not show, such as the records of an earlier split of a task's data, is left out)."""
    text = results_file.read_text(encoding="utf-8") if results_file.is_file() else ""
    out = []
    for folder in sorted(p for p in bench.glob("results*") if p.is_dir()):
        if folder.name == records.RESULTS_DIR.name or f"<!-- {records.table_kind(folder)}:begin " in text:
            out.append(folder)
    return out


def _tasks_in_order(tasks: set[str]) -> list[str]:
    return [t for t in TASK_SPECS if t in tasks] + sorted(tasks - set(TASK_SPECS))


def _cell(row: records.Summary | None) -> tuple[str, str]:
    if row is None:
        return "–", "–"
    std = f" ± {row.test_std:.4f}" if row.test_std is not None else ""
    return f"`{row.recipe}`", f"{row.test_mean:.4f}{std} (n={row.n})"


def summary(bench: Path = BENCH) -> str:
    """The README's results summary: per task, bscl's best recipe against the best
    sentence-transformers recipe (:class:`bscl.experiments.records.Headline`: each side's highest
    test mean, preferring recipes with two seeds or more), both as mean ± sd with n, the setting,
    zero-shot and the verdict, then one generated sentence that counts the verdicts.

    The rule for the setting: a verdict that rests on one epoch is shown with the cells at the paper's
    epochs (5; ``benchmarks/results-epochs5/<task>``) where those exist: that folder is used for a
    task when its best bscl recipe and its best sentence-transformers recipe there both have two
    seeds or more; otherwise the task's row comes from the default folder (``benchmarks/results``,
    one epoch), and the setting column says so. Some sentence-transformers losses start slowly, so a
    one-epoch verdict is labelled as one.
    """
    default = {
        t: recs for t, recs in records.by_task(records.load_records(bench / records.RESULTS_DIR.name)).items()
    }
    paper_dir = bench / PAPER_EPOCHS
    paper = records.by_task(records.load_records(paper_dir)) if paper_dir.is_dir() else {}
    rows = []
    said: dict[str, list[str]] = {"ahead": [], "level": [], "behind": [], "no verdict": []}
    for task in _tasks_in_order(set(default) | set(paper)):
        chosen = None
        for recs in (paper.get(task), default.get(task)):
            if not recs:
                continue
            head = records.headline(records.summarize(recs, records.primary_of(task, recs)))
            two_seeds = all(r is not None and r.n >= 2 for r in (head.bscl, head.peer))
            if two_seeds or recs is default.get(task):
                chosen = (recs, head)
                break
        if chosen is None:
            continue
        recs, head = chosen
        where = head.standing
        said[where or "no verdict"].append(task)
        bscl, bscl_test = _cell(head.bscl)
        peer, peer_test = _cell(head.peer)
        rows.append(
            {
                "task": f"{task} ({records.primary_of(task, recs)})",
                "setting": records.setting_of(recs),
                "bscl": bscl,
                "bscl test": bscl_test,
                "peer": peer,
                "peer test": peer_test,
                "zero-shot": f"{head.zero.test_mean:.4f}" if head.zero is not None else "–",
                "verdict": f"{where or 'no verdict'}"
                + (f" ({head.diff:+.4f})" if head.diff is not None else ""),
            }
        )
    headers = [
        "task (test metric)",
        "setting",
        "best bscl recipe",
        "mean ± sd (n)",
        "best sentence-transformers recipe",
        "mean ± sd (n)",
        "zero-shot",
        "bscl vs sentence-transformers",
    ]
    text = format_table(rows, list(rows[0]) if rows else ["task"], headers=headers if rows else None)

    def tasks(names: list[str]) -> str:
        return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) or "none"

    sentence = (
        f"bscl's best recipe is ahead of the best sentence-transformers recipe on {tasks(said['ahead'])}; "
        f"level on {tasks(said['level'])}; behind on {tasks(said['behind'])}"
        + (f"; without a verdict on {tasks(said['no verdict'])}" if said["no verdict"] else "")
        + " (ahead or behind only where the means differ by more than both standard deviations over seeds)."
    )
    return f"{text}\n\n{sentence}"


def regenerate_all(
    bench: Path = BENCH,
    *,
    results_file: Path | None = None,
    ablations_file: Path | None = None,
    readme: Path | None = README,
) -> list[Path]:
    """Rebuild every generated section of the result pages and the figures from the records under
    ``bench``; the pages default to ``bench/RESULTS.md``, ``bench/ABLATIONS.md`` and ``README.md``
    (None: leave the README alone). Returns the pages written."""
    bench = Path(bench)
    results_file = Path(results_file) if results_file is not None else bench / records.RESULTS_FILE.name
    ablations_file = Path(ablations_file) if ablations_file is not None else bench / "ABLATIONS.md"
    for folder in settings_folders(bench, results_file):
        records.regenerate(folder, results_file)
    grid = bench / records.RESULTS_DIR.name / records.GRID_KIND
    if grid.is_dir():
        for task in sorted(p.name for p in grid.iterdir() if p.is_dir()):
            reproduce.regenerate(task, grid, results_file)
    ablations = bench / records.RESULTS_DIR.name / "ablations"
    pages = [results_file]
    if ablations.is_dir():
        records.regenerate(ablations, ablations_file)
        pages.append(ablations_file)
    if readme is not None:
        text = Path(readme).read_text(encoding="utf-8")
        new = records.fill(
            text, {SUMMARY_KEY: summary(bench)}, kind=SUMMARY_KIND, heading="## Results", only=[SUMMARY_KEY]
        )
        if new != text:
            atomic_write_text(Path(readme), new)
        pages.append(Path(readme))
    return pages


def reproduce_commands(task: str, bench: Path = BENCH, into: Path | None = None) -> list[str]:
    """The commands that make ``task``'s committed records from nothing: its paper grid
    (``bscl reproduce``) and every head-to-head setting the results page shows (``bscl compare``).
    ``into``: a folder for the new records and their page (``INTO/results*``, ``INTO/RESULTS.md``);
    by default the committed folders, where every recorded cell is read back instead of trained."""
    bench = Path(bench)
    results_file = bench / records.RESULTS_FILE.name
    page = None if into is None else Path(into) / records.RESULTS_FILE.name
    out = []
    grid = bench / records.RESULTS_DIR.name / records.GRID_KIND
    if (grid / task).is_dir():
        target = None if into is None else Path(into) / records.RESULTS_DIR.name / records.GRID_KIND
        command = reproduce.grid_command(task, grid, target, page)
        if command:
            out.append(command)
    for folder in settings_folders(bench, results_file):
        recs = [r for r in records.load_records(folder) if r["task"] == task]
        target = folder if into is None else Path(into) / folder.name
        out += records.compare_commands(task, recs, target, page)
    return out


def _results(ns: argparse.Namespace) -> int:
    if ns.commands:
        for line in reproduce_commands(ns.commands, into=ns.into):
            print(line)
        return 0
    if ns.record:
        for run_dir in ns.record:
            path = records.write_record(
                records.make_record(run_dir, ns.recipe), ns.results_dir or records.RESULTS_DIR, force=ns.force
            )
            print(f"record: {path}")
    if ns.results_dir is None and ns.results_file is None and not ns.record:
        for page in regenerate_all():
            print(f"regenerated: {page}")
        return 0
    results_dir = ns.results_dir or records.RESULTS_DIR
    results_file = ns.results_file or records.RESULTS_FILE
    records.regenerate(results_dir, results_file)
    print(f"tables regenerated in {results_file} from {results_dir}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results-dir",
        default=None,
        help="only this records folder's sections (default: every page, from the committed records)",
    )
    p.add_argument(
        "--results-file", default=None, help=f"the page of --results-dir (default {records.RESULTS_FILE})"
    )
    p.add_argument(
        "--record", nargs="*", default=None, metavar="RUN_DIR", help="first record these run folders"
    )
    p.add_argument("--recipe", default="manual", help="recipe name of the --record folders")
    p.add_argument("--force", action="store_true", help="overwrite a different record of the same name")
    p.add_argument(
        "--commands",
        default=None,
        metavar="TASK",
        help="print the commands that make TASK's committed records",
    )
    p.add_argument(
        "--into", default=None, type=Path, help="with --commands: the folder for the new records and page"
    )


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "results",
        help="regenerate README's summary, benchmarks/RESULTS.md, ABLATIONS.md and the figures from the records",
        description=__doc__.split("\n\n")[0],
    )
    add_arguments(p)
    p.set_defaults(func=_results)
    return p


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bscl.experiments.pages", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    ns = p.parse_args(argv)
    try:
        return _results(ns)
    except (ValueError, FileNotFoundError) as err:
        print(f"bscl results: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
