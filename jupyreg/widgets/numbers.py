"""One rule for numbers, shared by the panels and the lab sidebar's API (the sidebar's
TypeScript ``format.ts`` follows the same rule): 4 significant digits, shown right-aligned
in tabular figures, and a metric's delta against a baseline with its direction."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jupyreg import lifecycle

SIGNIFICANT = 4
NUMBER_STYLE = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"


@dataclass(frozen=True)
class Delta:
    """A metric of one version against the baseline (Production when there is one)."""

    value: float
    baseline: float
    difference: float
    better: bool | None  # None: equal

    @property
    def direction(self) -> str:
        if self.better is None:
            return "same"
        return "better" if self.better else "worse"

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "baseline": self.baseline,
            "difference": self.difference,
            "direction": self.direction,
        }


def number(value: Any) -> float | None:
    """``value`` as a finite-or-infinite float; None for missing, booleans, text, NaN."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def fmt(value: float | int) -> str:
    """4 significant digits (0.92741 -> 0.9274, 0.92655 -> 0.9266); integers as they are."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{SIGNIFICANT}g}"


def fmt_delta(difference: float) -> str:
    """A signed difference with 4 significant digits: +0.0008603, -0.01, ±0."""
    if difference == 0:
        return "±0"
    return f"{difference:+.{SIGNIFICANT}g}"


def metric_delta(metric: str, value: Any, baseline: Any) -> Delta | None:
    """``value`` against ``baseline`` for ``metric``; None where either is not a number.
    Lower is better for losses, errors and latencies (``lifecycle.lower_is_better``)."""
    value, base = number(value), number(baseline)
    if value is None or base is None:
        return None
    difference = value - base
    if difference == 0:
        return Delta(value, base, 0.0, None)
    improved = difference < 0 if lifecycle.lower_is_better(metric) else difference > 0
    return Delta(value, base, difference, improved)


def metric_deltas(metrics: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Delta]:
    """Every metric both have, against ``baseline``."""
    found = {}
    for metric in sorted(set(metrics) & set(baseline)):
        delta = metric_delta(metric, metrics[metric], baseline[metric])
        if delta is not None:
            found[metric] = delta
    return found
