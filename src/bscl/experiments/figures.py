"""The head-to-head figure: each recipe's seeds as points, their mean and spread, zero-shot as a line.

One function, used by ``bscl results`` (a figure per task next to the results page) and by
``bscl compare`` (a figure in its report folder). The figure is an SVG written deterministically (no
date, a fixed id salt), so regenerating it from the same records gives the same bytes.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bscl.reporting.atomic import atomic_write_text

PathLike = str | os.PathLike[str]

ST = "sentence-transformers"
ZERO_SHOT = "zero-shot"
#: colour per side (colour-blind safe pair from matplotlib's "tab10")
COLOURS = {"bscl": "#1f77b4", ST: "#ff7f0e"}


def _seed_values(records: Sequence[Mapping[str, Any]], metric: str) -> dict[str, tuple[str, list[float]]]:
    """recipe -> (side, test values over its seeds), in record order."""
    out: dict[str, tuple[str, list[float]]] = {}
    for r in records:
        value = (r.get("test") or {}).get(metric)
        if value is None:
            continue
        side = str(r.get("side", "bscl"))
        out.setdefault(str(r["recipe"]), (side, []))[1].append(float(value))
    return out


def plot_recipes(
    records: Sequence[Mapping[str, Any]],
    metric: str,
    path: PathLike,
    *,
    title: str,
) -> Path:
    """Write the head-to-head figure of one task's records to ``path`` (SVG) and return the path.

    One row per trained recipe, sorted by mean test ``metric`` (best on top); each seed a point, the
    mean a vertical tick with a bar of one sample standard deviation either side; bscl recipes and
    sentence-transformers recipes in two colours; the zero-shot record (side ``zero-shot``) as a dashed
    vertical line. Raises ``ValueError`` when no record has ``test[metric]``.
    """
    from matplotlib import rcParams
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    values = _seed_values(records, metric)
    zero = [v for side, vs in values.values() if side == ZERO_SHOT for v in vs]
    trained = {k: v for k, v in values.items() if v[0] != ZERO_SHOT}
    if not trained and not zero:
        raise ValueError(f"no record has a test {metric!r}: nothing to plot for {title!r}")
    order = sorted(trained, key=lambda k: statistics.fmean(trained[k][1]))  # best ends on top

    rcParams["svg.hashsalt"] = "bscl"
    height = 1.6 + 0.32 * max(len(order), 1)
    fig = Figure(figsize=(8.0, height))
    ax = fig.subplots()
    for y, recipe in enumerate(order):
        side, vs = trained[recipe]
        colour = COLOURS.get(side, "#555555")
        ax.scatter(vs, [y] * len(vs), s=18, color=colour, alpha=0.6, zorder=3)
        mean = statistics.fmean(vs)
        sd = statistics.stdev(vs) if len(vs) > 1 else 0.0
        ax.errorbar([mean], [y], xerr=[sd], fmt="|", markersize=14, color=colour, capsize=3, zorder=4)
    if zero:
        ax.axvline(zero[0], color="#444444", linestyle="--", linewidth=1, zorder=2)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(-0.7, max(len(order), 1) - 0.3)
    ax.set_xlabel(f"test {metric}: points are seeds, tick and bar mean ± sd")
    fig.suptitle(title)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=COLOURS["bscl"], label="bscl"),
        Line2D([], [], marker="o", linestyle="", color=COLOURS[ST], label=ST),
    ]
    if zero:
        handles.append(Line2D([], [], linestyle="--", color="#444444", label=f"zero-shot ({zero[0]:.4f})"))
    ax.legend(
        handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False
    )
    fig.tight_layout()

    import io

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, buf.getvalue())
    return out
