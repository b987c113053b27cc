"""reporting layer: the run folder (:mod:`bscl.reporting.runfolder`), run reports (``report.md`` +
plots) and the ``encode`` / ``rank`` / ``report`` commands.

Public API: :func:`write_report`, :func:`format_table` (:mod:`bscl.reporting.report`);
:func:`~bscl.reporting.commands.encode_file`, :func:`~bscl.reporting.commands.rank_files`,
:func:`~bscl.reporting.commands.register` live in :mod:`bscl.reporting.commands` (import it directly).
"""

from bscl.reporting.report import format_table, write_report

__all__ = ["format_table", "write_report"]
