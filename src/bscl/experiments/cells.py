"""What ``bscl compare`` and ``bscl reproduce`` share: a cell's config from layered recipes, the
comparison of a stored config with the wanted one, the ``--stage.key=value`` printer of ``--dry-run``,
and the run-or-skip-and-record step of one cell.

A *cell* is one ``bscl train`` run (:func:`bscl.run.run_training`) of a comparison or of the paper's
grid, with its own output folder and its own record (:mod:`bscl.experiments.records`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bscl.experiments import records
from bscl.reporting.runfolder import config_diff
from bscl.training.config import RunConfig, from_dict

Recipe = dict[str, dict[str, Any]]  #: ``{section: {field: value}}`` over RunConfig's sections
Differ = Callable[[dict[str, Any] | None], str | None]  #: stored config -> None (same) or the differences


def merge_recipes(base: Recipe, *more: Recipe) -> Recipe:
    """A copy of ``base`` with the fields of each of ``more`` set on top, section by section
    (``merge_recipes(paper, {"train": {"interpolate": 0.5}})`` keeps the recipe's other train fields)."""
    out = {section: dict(values) for section, values in base.items()}
    for m in more:
        for section, values in m.items():
            out.setdefault(section, {}).update(values)
    return out


def cell_config(*layers: Recipe, source: str) -> RunConfig:
    """RunConfig defaults <- each of ``layers`` in turn (section by section); ``source`` names the
    cell in error messages."""
    return from_dict(merge_recipes({}, *layers), source=source)


def same_config(stored: dict[str, Any] | None, wanted: dict[str, Any] | None) -> bool:
    """Whether a finished cell's stored config is the wanted one (the run folder's guard,
    :func:`bscl.reporting.runfolder.config_diff`: an option added to the config after the cell ran
    counts as equal when the wanted value is that option's default; output-only options are ignored)."""
    if stored is None or wanted is None:
        return stored == wanted
    return not config_diff(stored, wanted, more_seeds=False)  # a cell's seeds are its result


def config_difference(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> str | None:
    """None when ``stored`` is the config ``wanted`` (see :func:`same_config`), else the differences."""
    if same_config(stored, wanted):
        return None
    return (
        "; ".join(config_diff(stored, wanted, more_seeds=False)) if stored is not None else "no config stored"
    )


def option_flags(cfg: RunConfig) -> list[str]:
    """The ``bscl train`` options that give ``cfg``: ``--stage.key=value`` for every value that is not
    the default."""
    default = RunConfig().to_dict()
    return [
        f"--{stage}.{key}={value}"
        for stage, values in cfg.to_dict().items()
        for key, value in values.items()
        if value != default[stage][key]
    ]


def run_or_skip(
    label: str,
    folder: Path,
    *,
    recorded: list[Path],
    differ: Differ,
    hint: str,
    finished: Callable[[], dict[str, Any] | None],
    run: Callable[[], dict[str, Any]],
    record: Callable[[dict[str, Any]], Path],
    announce_finished: bool = True,
    announce_run: str | None = None,
) -> tuple[Path, dict[str, Any], bool]:
    """One cell: its record among ``recorded`` of the same options is its result (nothing runs: a
    fresh clone with the committed records trains nothing); a record of other options is refused
    before anything trains (``hint``: what to do instead). Otherwise the finished cell folder
    (``finished()``: what it stored, with its ``config``; None when unfinished) is read back, a
    folder of other options refused, or the cell is ``run()`` (an interrupted one resumes), and then
    recorded (``record(result)`` writes the record and returns its path).

    Returns ``(record path, result, from the record)``; ``result`` is the record itself when the
    cell was recorded already."""
    found = records.matching_record(recorded, differ, hint)
    if found is not None:
        print(f"{label}: recorded in {found[0]}, skipped", flush=True)
        return found[0], found[1], True
    stored = finished()
    if stored is not None:
        diff = differ(stored.get("config"))
        if diff is not None:
            raise ValueError(
                f"{folder} was run with other options ({diff}); use another --output-dir or delete {folder}"
            )
        if announce_finished:
            print(f"{label}: finished, skipped", flush=True)
        result = stored
    else:
        if announce_run is not None:
            print(announce_run, flush=True)
        result = run()
    return record(result), result, False


class CellProgress:
    """``cell k of n`` lines with the time left, estimated from the cells trained so far.

    ``to_train``: how many of the ``total`` cells are expected to train (not recorded yet, not the
    untrained zero-shot cell). Before the first of them has finished, the estimate comes from
    ``recorded_seconds`` (the train seconds of the comparison's cells recorded earlier) when there
    are any."""

    def __init__(self, total: int, to_train: int, recorded_seconds: list[float] | None = None) -> None:
        self.total = total
        self.to_train = to_train
        self.recorded = list(recorded_seconds or [])
        self.seconds: list[float] = []  #: wall seconds of each cell trained in this invocation

    def line(self, k: int, label: str) -> str:
        """The progress line printed before cell ``k`` (1-based)."""
        left = self.to_train - len(self.seconds)
        if left <= 0:
            eta = "nothing left to train"
        elif self.seconds:
            each = sum(self.seconds) / len(self.seconds)
            eta = f"about {_minutes(each * left)} left: {left} cells to train at {each:.0f} s each so far"
        elif self.recorded:
            each = sum(self.recorded) / len(self.recorded)
            eta = f"about {_minutes(each * left)} left: {left} cells to train at {each:.0f} s each (train time of the recorded cells)"
        else:
            eta = f"{left} cells to train; the time left is estimated once the first has finished"
        return f"cell {k} of {self.total}: {label} ({eta})"

    def trained(self, seconds: float) -> None:
        """A cell expected to train has trained, in ``seconds`` of wall time."""
        self.seconds.append(seconds)

    def skipped(self) -> None:
        """A cell expected to train was found finished (its run folder) and was not trained."""
        self.to_train -= 1


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
