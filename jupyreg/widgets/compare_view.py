"""The compare panel: a thin ipywidgets view over ``CompareController``."""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as w

from jupyreg.errors import RegistryError
from jupyreg.widgets import markup
from jupyreg.widgets.comparison import Cell, CompareController
from jupyreg.widgets.lineage_diff import LineageDiff
from jupyreg.widgets.numbers import NUMBER_STYLE, fmt_delta, number


class ComparePanel(w.VBox):
    """Versions side by side: pick versions and chart metrics; Refresh re-reads the registry."""

    def __init__(self, controller: CompareController) -> None:
        self.controller = controller
        self.version_select = w.SelectMultiple(description="versions", rows=6)
        self.metric_select = w.SelectMultiple(description="chart", rows=6)
        self.differences_only = w.Checkbox(value=True, description="only differences", indent=False)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.hint = w.HTML()
        self.status = w.HTML()
        self.table = w.HTML()
        self.chart = w.HTML()  # inline SVG in the theme's colours (chart.py)
        self.lineage = w.HTML()
        self._rendering = False
        super().__init__(
            [
                w.HTML(f"<b>Compare {escape(controller.name)}</b>"),
                self.hint,
                w.HBox(
                    [
                        self.version_select,
                        self.metric_select,
                        w.VBox([self.refresh_button, self.differences_only]),
                    ]
                ),
                self.status,
                self.table,
                self.chart,
                self.lineage,
            ]
        )
        self.version_select.observe(self._on_versions, names="value")
        self.metric_select.observe(self._on_metrics, names="value")
        self.differences_only.observe(self._on_differences_only, names="value")
        self.refresh_button.on_click(self._on_refresh)
        self.render()

    def render(self) -> None:
        """Show the controller's state in every widget."""
        c = self.controller
        self._rendering = True
        try:
            self.version_select.options = [
                (f"v{v} ({c.stage(v)})", v) for v in reversed(c.versions)
            ]
            self.version_select.value = tuple(c.selected)
            self.metric_select.options = c.metric_names()
            self.metric_select.value = tuple(c.chart_metrics)
        finally:
            self._rendering = False
        hint = c.stale_hint
        self.hint.value = (
            f"<span style='color:{markup.WARN_COLOUR}'>⚠ {escape(hint)}</span>" if hint else ""
        )
        self.table.value = self._table()
        self.chart.value = c.chart_svg()
        self.lineage.value = self._lineage()

    def _table(self) -> str:
        c = self.controller
        if not c.selected:
            return "<i>no versions registered yet</i>"
        header = ["", *(f"v{v} ({c.stage(v)})" for v in c.selected)]
        rows: list[list[str]] = []
        section = None
        for row in c.rows(only_differences=self.differences_only.value):
            if row.section != section:
                section = row.section
                rows.append([f"<td colspan='{len(header)}'><b>{section}</b></td>"])
            rows.append([escape(row.field), *(_cell(cell) for cell in row.cells)])
        baseline = c.baseline
        note = (
            f"<small>Highlighted: differs from v{c.reference}. Deltas against "
            + (f"Production v{baseline}" if baseline == c.production else f"v{baseline}")
            + "; lower is better for loss/error/rmse/mae/mse/latency.</small>"
        )
        return markup.table(header, rows, raw=True) + note

    def _lineage(self) -> str:
        diffs = self.controller.lineage_diffs()
        if not diffs:
            return ""
        return "<b>lineage</b>" + "".join(_lineage_lines(d) for d in diffs)

    def _on_versions(self, change: dict[str, Any]) -> None:
        if not self._rendering:
            self._try(lambda: self.controller.select(change["new"]))

    def _on_metrics(self, change: dict[str, Any]) -> None:
        if not self._rendering:
            self._try(lambda: self.controller.choose_metrics(change["new"]))

    def _on_differences_only(self, _: Any = None) -> None:
        self.table.value = self._table()

    def _on_refresh(self, _: Any = None) -> None:
        self._try(self.controller.refresh)

    def _try(self, action: Any) -> None:
        try:
            action()
        except RegistryError as exc:
            self.status.value = markup.message(False, markup.one_line(exc))
        else:
            self.status.value = ""
        self.render()


def _cell(cell: Cell) -> str:
    text = escape(cell.text)
    if cell.delta is not None:
        delta = cell.delta
        colour = {
            "better": markup.BETTER_COLOUR,
            "worse": markup.WORSE_COLOUR,
        }.get(delta.direction, markup.MUTED_COLOUR)
        arrow = {"better": "▲", "worse": "▼"}.get(delta.direction, "=")
        text += (
            f" <span style='color:{colour}'>({fmt_delta(delta.difference)} {arrow} "
            f"{delta.direction})</span>"
        )
    styles = [markup.DIFFERS_STYLE if cell.differs else ""]
    if number(cell.value) is not None:
        styles.append(NUMBER_STYLE)
    return markup.cell(text, ";".join(s for s in styles if s))


def _lineage_lines(diff: LineageDiff) -> str:
    git = diff.git

    def commit(sha: str | None, dirty: bool | None) -> str:
        state = "" if dirty is None else " (dirty)" if dirty else " (clean)"
        return f"{sha or '?'}{state}"

    lines = [
        f"git {commit(git.base, git.base_dirty)} → {commit(git.other, git.other_dirty)}: "
        + git.note
        + (": " + ", ".join(git.files[:20]) if git.files else "")
        + (f" … and {len(git.files) - 20} more" if git.files and len(git.files) > 20 else ""),
    ]
    if diff.datasets:
        changes = [
            f"{d.path} {d.status}"
            + (f" ({d.base_md5[:8]} → {d.other_md5[:8]})" if d.status == "changed" else "")
            for d in diff.datasets
        ]
        lines.append("datasets: " + "; ".join(changes))
    else:
        lines.append("datasets: unknown (no dataset hashes recorded)")
    hw = diff.hardware
    verdict = {True: "changed", False: "unchanged", None: "unknown"}[hw.changed]
    lines.append(f"hardware {verdict}: {hw.base or '?'} → {hw.other or '?'}")
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<div>v{diff.other} against v{diff.base}:<ul style='margin:0'>{items}</ul></div>"
