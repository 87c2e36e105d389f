"""State and logic of the compare panel, without widgets: which versions are compared, the
side-by-side table, metric deltas against Production, the chart series, the lineage diff
and the stale-Production hint.

All data comes from one ``Registry.version_records(name)`` call (a constant number of MLflow round
trips whatever the number of versions); changing the selection re-reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle
from jupyreg.errors import InvalidArgument, NotFound
from jupyreg.lineage.git import files_changed_between
from jupyreg.widgets.lineage_diff import LineageDiff, diff_lineage, stale_datasets
from jupyreg.widgets.numbers import Delta, fmt, metric_delta, number

if TYPE_CHECKING:
    from jupyreg.registry import Registry

_VERSION_FIELDS = ("stage", "author", "created")


@dataclass(frozen=True)
class Cell:
    version: int
    value: Any
    text: str
    differs: bool  # differs from the reference column of its row
    delta: Delta | None = None


@dataclass(frozen=True)
class Row:
    section: str
    field: str
    cells: tuple[Cell, ...]

    @property
    def differs(self) -> bool:
        return any(cell.differs for cell in self.cells)


class CompareController:
    """The compare panel's state: all versions of a model, the selected ones, the chart's
    metrics. Selection defaults to Production against the version up for approval (the
    newest pending request into Production, else any newest pending request), else against
    the newest version (else the two newest)."""

    def __init__(
        self,
        registry: Registry,
        name: str,
        versions: Iterable[int | str] | None = None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.cwd = Path.cwd()  # the workspace git and DVC are read from; set by refresh
        self.fields: dict[int, dict[str, Any]] = {}
        self.versions: list[int] = []  # oldest first
        self.production: int | None = None
        self.pending: list[int] = []  # versions with a pending request (into Production first)
        self.stale_hint: str | None = None
        self.selected: list[int] = []
        self.chart_metrics: list[str] = []
        self._files_between: dict[tuple[str, str], tuple[str, ...] | None] = {}
        self.refresh()
        if versions is not None:
            self.select(_version_numbers(versions))
        self.chart_metrics = self.metric_names()[:2]

    # data ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read every version (one batched registry call); keeps the selection where the
        versions still exist. Raises the registry's error, e.g. ``NotFound``."""
        self.cwd = Path.cwd()
        self.fields = {mv.version: mv.fields() for mv in self.registry.version_records(self.name)}
        self.versions = sorted(self.fields)
        holders = [v for v in self.versions if self.stage(v) == lifecycle.PRODUCTION]
        self.production = holders[-1] if holders else None
        requests = self.registry.request_records(self.name, status=lifecycle.PENDING)
        # requests into Production first, then the newest
        ranked = sorted(
            requests,
            key=lambda r: (r.to_stage == lifecycle.PRODUCTION, r.created_at),
            reverse=True,
        )
        self.pending = [r.version for r in ranked if r.version in self.fields]
        self._files_between.clear()
        self.stale_hint = self._stale_hint()
        kept = [v for v in self.selected if v in self.fields]
        self.selected = kept or self.default_selection()
        self.chart_metrics = [m for m in self.chart_metrics if m in self.metric_names()]

    def stage(self, version: int) -> str:
        return str(self.fields[version].get("stage", lifecycle.NONE))

    def default_selection(self) -> list[int]:
        newest_first = self.versions[::-1]
        production = self.production
        if production is None:
            return sorted(newest_first[:2])
        up_for_approval = [v for v in self.pending if v != production]
        others = up_for_approval or [v for v in newest_first if v != production]
        return sorted([production, *others[:1]])

    def select(self, versions: Iterable[int]) -> None:
        chosen = sorted(set(versions))
        unknown = [v for v in chosen if v not in self.fields]
        if unknown:
            known = ", ".join(map(str, self.versions)) or "none"
            raise NotFound(
                f"{self.name} has no version {unknown[0]} (versions: {known}); "
                f"reg.versions({self.name!r}) lists them"
            )
        if not chosen:
            raise InvalidArgument("choose at least one version to compare")
        self.selected = chosen

    def metric_names(self) -> list[str]:
        return sorted(
            {f[len("metrics.") :] for v in self.fields.values() for f in v if _is_metric(f)}
        )

    def choose_metrics(self, metrics: Iterable[str]) -> None:
        known = set(self.metric_names())
        self.chart_metrics = [m for m in metrics if m in known]

    # the table -------------------------------------------------------------------------

    @property
    def baseline(self) -> int | None:
        """Deltas are against Production, else against the oldest selected version."""
        if self.production is not None:
            return self.production
        return self.selected[0] if self.selected else None

    @property
    def reference(self) -> int | None:
        """The column other cells are compared with to highlight differences."""
        if not self.selected:
            return None
        return self.baseline if self.baseline in self.selected else self.selected[0]

    def rows(self, only_differences: bool = False) -> list[Row]:
        """Every field any selected version has, by section; one cell per selected version."""
        present = {f for v in self.selected for f in self.fields[v]}
        ordered = [f for f in _VERSION_FIELDS if f in present]
        ordered += sorted(f for f in present if _is_metric(f))
        ordered += sorted(f for f in present if f.startswith("params."))
        ordered += sorted(f for f in present - set(ordered))
        rows = [self._row(field) for field in ordered]
        return [r for r in rows if r.differs] if only_differences else rows

    def _row(self, field: str) -> Row:
        reference = self.fields[self.reference or self.selected[0]].get(field)
        section, label = _section(field)
        cells = []
        for version in self.selected:
            value = self.fields[version].get(field)
            delta = self.delta(label, version) if section == "metrics" else None
            cells.append(Cell(version, value, _text(value), repr(value) != repr(reference), delta))
        return Row(section, label, tuple(cells))

    def delta(self, metric: str, version: int) -> Delta | None:
        """``metric`` of ``version`` against the baseline; None for the baseline itself or
        where either value is missing or not a number."""
        baseline = self.baseline
        if baseline is None or version == baseline:
            return None
        return metric_delta(
            metric,
            self.fields[version].get(f"metrics.{metric}"),
            self.fields[baseline].get(f"metrics.{metric}"),
        )

    # the chart -------------------------------------------------------------------------

    def chart_series(self) -> dict[str, list[tuple[int, float]]]:
        """Each chosen metric across all versions that have it."""
        series: dict[str, list[tuple[int, float]]] = {}
        for metric in self.chart_metrics:
            points = [(v, number(self.fields[v].get(f"metrics.{metric}"))) for v in self.versions]
            series[metric] = [(v, value) for v, value in points if value is not None]
        return series

    def chart_png(self) -> bytes:
        from jupyreg.widgets.chart import metrics_chart

        return metrics_chart(self.chart_series(), self.production, self.selected)

    def chart_svg(self) -> str:
        """The chart as inline SVG whose colours follow the JupyterLab theme."""
        from jupyreg.widgets.chart import metrics_chart_svg

        return metrics_chart_svg(self.chart_series(), self.production, self.selected)

    # lineage ---------------------------------------------------------------------------

    def lineage_diffs(self) -> list[LineageDiff]:
        """Each selected version's lineage against the reference column."""
        base = self.reference
        if base is None:
            return []
        others = [v for v in self.selected if v != base]
        self._read_files_between(base, others)
        return [
            diff_lineage(base, self.fields[base], v, self.fields[v], self._changed_files)
            for v in others
        ]

    def _changed_files(self, base: str, other: str) -> tuple[str, ...] | None:
        return self._files_between.get((base, other))

    def _read_files_between(self, base: int, others: list[int]) -> None:
        """The git diffs the lineage diff needs, all in one batch (not a git call each)."""
        commit = self.fields[base].get("git.commit")
        if commit is None:
            return
        commits = {str(c) for v in others if (c := self.fields[v].get("git.commit")) is not None}
        unread = [(str(commit), c) for c in commits if (str(commit), c) not in self._files_between]
        if unread:
            self._files_between.update(files_changed_between(unread, self.cwd))

    def _stale_hint(self) -> str | None:
        """Says so when Production was trained on data whose DVC hash has since changed."""
        production = self.production
        if production is None:
            return None
        stale = stale_datasets(self.fields[production], self.cwd)
        if not stale:
            return None
        parts = [
            f"{s.path} (trained on md5 {s.trained_md5[:8]}, {s.source} now records "
            f"{s.workspace_md5[:8]})"
            for s in stale
        ]
        return (
            f"Production v{production} may be stale: its data changed since it was trained: "
            + "; ".join(parts)
        )


def _version_numbers(versions: Iterable[int | str]) -> list[int]:
    numbers = []
    for version in versions:
        try:
            numbers.append(int(str(version).strip().lstrip("vV")))
        except ValueError:
            raise InvalidArgument(f"version must be a number such as 3, not {version!r}") from None
    return numbers


def _is_metric(field: str) -> bool:
    return field.startswith("metrics.")


def _section(field: str) -> tuple[str, str]:
    if field in _VERSION_FIELDS:
        return "version", field
    for section in ("metrics", "params"):
        if field.startswith(section + "."):
            return section, field[len(section) + 1 :]
    return "lineage", field


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return fmt(value)
    return str(value)
