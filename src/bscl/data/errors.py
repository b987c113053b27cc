"""Errors for bad input files, and the record of rows skipped by design."""

from __future__ import annotations

import logging
import os
from collections import Counter

logger = logging.getLogger("bscl.data")


class DataError(ValueError):
    """A malformed input file, a missing column, an empty text, a bad score or label.

    The message always names the file, the line (1-based physical line where the record starts) and
    the field. For in-memory data (a ``datasets.Dataset``) ``file`` names the split and ``row`` the
    0-based row index instead of a line.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
        row: int | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.row = row
        self.field = field
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class SkipLog(Counter):
    """Counts rows that a loader skips *by design* (never silently): reason -> number of rows.

    ``report(task_name)`` logs one line per reason; the counts end up in ``Task.skipped``.
    """

    def skip(self, reason: str, n: int = 1) -> None:
        self[reason] += n

    def report(self, task_name: str) -> None:
        for reason, n in sorted(self.items()):
            if n:
                logger.info("task %s: skipped %d rows by design: %s", task_name, n, reason)
