"""reporting layer: the run folder (:mod:`bscl.reporting.runfolder`), run reports (``report.md`` +
plots) and the ``encode`` / ``rank`` / ``report`` commands.

Public API: :func:`write_report`, :func:`format_table` (:mod:`bscl.reporting.report`);
:func:`~bscl.reporting.commands.encode_file`, :func:`~bscl.reporting.commands.rank_files`,
:func:`~bscl.reporting.commands.register` live in :mod:`bscl.reporting.commands` (import it directly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bscl._lazy import attach

if TYPE_CHECKING:
    from bscl.reporting.report import format_table, write_report

#: each public name and the module it comes from, imported on first use (:mod:`bscl._lazy`)
_LAZY: dict[str, str] = {
    "format_table": "bscl.reporting.report",
    "write_report": "bscl.reporting.report",
}

__all__ = ["format_table", "write_report"]


__getattr__, __dir__ = attach(__name__, _LAZY)
