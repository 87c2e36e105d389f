"""The metrics-across-versions chart, rendered to PNG bytes with matplotlib (imported here,
only when a chart is drawn; no pyplot, so no global figure state or GUI backend)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

PRODUCTION_COLOUR = "#047857"


def metrics_chart(
    series: Mapping[str, Sequence[tuple[int, float]]],
    production: int | None,
    selected: Sequence[int] = (),
) -> bytes:
    """One line per metric over version numbers; Production as a green band and star,
    the selected versions' points ringed."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2), dpi=96, layout="constrained")
    axes = figure.add_subplot()
    chosen = set(selected)
    for metric, points in series.items():
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        (line,) = axes.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=metric)
        ringed = [(x, y) for x, y in points if x in chosen]
        if ringed:
            rx, ry = zip(*ringed, strict=True)
            axes.scatter(rx, ry, s=60, facecolors="none", edgecolors=line.get_color())
        star = [y for x, y in points if x == production]
        if star:
            axes.scatter([production], star, marker="*", s=160, color=PRODUCTION_COLOUR, zorder=3)
    if production is not None:
        axes.axvline(production, color=PRODUCTION_COLOUR, alpha=0.3, linewidth=6)
        axes.annotate(
            f"Production v{production}",
            (production, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            color=PRODUCTION_COLOUR,
            fontsize=8,
        )
    axes.set_xlabel("version")
    axes.xaxis.get_major_locator().set_params(integer=True)
    if any(series.values()):
        axes.legend(fontsize=8, loc="best")
    else:
        axes.text(0.5, 0.5, "no metric chosen", ha="center", va="center", transform=axes.transAxes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
