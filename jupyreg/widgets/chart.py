"""The metrics-across-versions chart, drawn with matplotlib (imported here, only when a
chart is drawn; no pyplot, so no global figure state or GUI backend).

The panel shows it as inline SVG on a transparent background whose text, axes and
Production marks are JupyterLab's ``--jp-*`` colours, so the chart follows the light or
dark theme the notebook is shown in (and changes with it, without a redraw). The PNG form
(``metrics_chart``) keeps a light style for front ends without the variables."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence

PRODUCTION_COLOUR = "#047857"
# Colours no chart uses, swapped for CSS variables in the SVG text.
_INK, _PRODUCTION = "#010203", "#020304"
THEME_COLOURS = {
    _INK: "var(--jp-ui-font-color1, #333333)",
    _PRODUCTION: "var(--jp-success-color1, #047857)",
}
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def metrics_chart(
    series: Mapping[str, Sequence[tuple[int, float]]],
    production: int | None,
    selected: Sequence[int] = (),
) -> bytes:
    """The chart as PNG bytes (dark text on a transparent background)."""
    figure = _figure(series, production, selected, "#333333", PRODUCTION_COLOUR)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", transparent=True)
    return buffer.getvalue()


def metrics_chart_svg(
    series: Mapping[str, Sequence[tuple[int, float]]],
    production: int | None,
    selected: Sequence[int] = (),
) -> str:
    """The chart as an inline ``<svg>`` element whose ink follows the JupyterLab theme."""
    from matplotlib import rc_context

    with rc_context({"svg.fonttype": "none"}):
        figure = _figure(series, production, selected, _INK, _PRODUCTION)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", transparent=True)
    svg = _PROLOGUE.sub("", buffer.getvalue(), count=1)
    for sentinel, variable in THEME_COLOURS.items():
        svg = svg.replace(sentinel, variable)
    return svg.replace("<svg ", "<svg class='jupyreg-chart' role='img' ", 1)


def _figure(
    series: Mapping[str, Sequence[tuple[int, float]]],
    production: int | None,
    selected: Sequence[int],
    ink: str,
    production_colour: str,
):
    """One line per metric over version numbers; Production as a band and star, the
    selected versions' points ringed."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    style = {
        "text.color": ink,
        "axes.labelcolor": ink,
        "axes.edgecolor": ink,
        "xtick.color": ink,
        "ytick.color": ink,
        "axes.facecolor": "none",
        "figure.facecolor": "none",
        "savefig.facecolor": "none",
        "legend.facecolor": "none",
        "legend.edgecolor": ink,
        "legend.labelcolor": ink,
    }
    with rc_context(style):
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
                axes.scatter(
                    [production], star, marker="*", s=160, color=production_colour, zorder=3
                )
        if production is not None:
            axes.axvline(production, color=production_colour, alpha=0.3, linewidth=6)
            axes.annotate(
                f"Production v{production}",
                (production, 1),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12),
                textcoords="offset points",
                color=production_colour,
                fontsize=8,
            )
        axes.set_xlabel("version")
        axes.xaxis.get_major_locator().set_params(integer=True)
        if any(series.values()):
            axes.legend(fontsize=8, loc="best")
        else:
            axes.text(
                0.5, 0.5, "no metric chosen", ha="center", va="center", transform=axes.transAxes
            )
    return figure
