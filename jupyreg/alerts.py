"""Human-readable alerts about a stage change, posted as Slack/Teams incoming-webhook bodies
(``{"text": ...}``): which version entered the stage, who approved it and why, and how its
metrics compare with the version it replaced. ``jupyreg watch --post`` and ``jupyreg serve
--alert-url`` send them."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jupyreg.errors import RegistryError

if TYPE_CHECKING:
    from jupyreg.registry import Registry


def change_details(
    registry: Registry, name: str, stage: str, version: int | None, previous: int | None
) -> list[str]:
    """Lines saying who moved ``version`` into ``stage`` and why, and its metric deltas
    against ``previous``; what cannot be read is left out (an alert never fails on it)."""
    if version is None:
        return []
    lines = []
    try:
        entries = [e for e in registry.history_records(name, version) if e.to_stage == stage]
        if entries:
            event = entries[-1]
            who = f"moved by {event.author}"
            if event.request_id:
                request = registry.get_request(event.request_id)
                approvers = ", ".join(a.by for a in request.approvals) or event.author
                who = f"approved by {approvers} (requested by {request.requested_by})"
            lines.append(f"{who}: {event.reason}")
        if previous is not None:
            lines.extend(
                metric_deltas(
                    registry.get(name, version).metrics,
                    registry.get(name, previous).metrics,
                    previous,
                )
            )
    except RegistryError as exc:
        lines.append(f"(details unavailable: {exc})")
    return lines


def metric_deltas(
    metrics: Mapping[str, float], previous: Mapping[str, float], previous_version: int
) -> list[str]:
    """``metrics vs v2: test.auc 0.91 (+0.02), ...`` for the metrics both versions have."""
    shared = sorted(set(metrics) & set(previous))
    if not shared:
        return []
    parts = [f"{m} {metrics[m]:g} ({metrics[m] - previous[m]:+.4g})" for m in shared]
    return [f"metrics vs v{previous_version}: " + ", ".join(parts)]


def post(url: str, text: str, extra: Mapping[str, Any] | None = None, *, who: str) -> bool:
    """POST ``{"text": text, **extra}`` as JSON to ``url``; a failure is reported on stderr
    (as ``who``) and never raised: an alert must not stop what it reports on."""
    body = json.dumps({"text": text, **(extra or {})}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except OSError as exc:
        print(f"{who}: posting to {url} failed: {exc}", file=sys.stderr)
        return False
