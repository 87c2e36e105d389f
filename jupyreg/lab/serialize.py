"""What the sidebar reads beyond the records (records use ``jupyreg.serialize``): errors
worded for the GUI from their parts (``code``, ``message``, ``field``), and the extra data
the sidebar's views show next to a record (a pending request's metrics against
Production, a version's allowed moves and pending requests, the review comments of a
history event)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from jupyreg.widgets.numbers import metric_deltas

if TYPE_CHECKING:
    from jupyreg.entities import ModelVersion
    from jupyreg.lifecycle import Request
    from jupyreg.registry import Registry

# What a sidebar user does about an argument at fault (``RegistryError.field``); the
# Python API and the CLI word their own (``jupyreg.errors.ask_for``).
_GUI_FIELD_HINT = {"reason": "write why in the Reason box"}


def error_body(error: Exception) -> dict[str, str]:
    """An error as the sidebar shows it: ``code`` (stable, machine-readable), ``message``
    worded for the GUI from the error's parts (the fact, then the GUI's own next step
    where the sidebar has one: ``hint``; the Python or CLI next step never shows), ``field``
    (the argument at fault) and ``detail``, the registry's own words."""
    code = getattr(error, "code", "error")
    message = getattr(error, "message", None) or str(error)
    field = getattr(error, "field", None)
    body = {"error": type(error).__name__, "code": code, "message": message}
    gui_hint = _GUI_FIELD_HINT.get(field) if field else None
    if gui_hint:
        body["hint"] = gui_hint
        body["message"] = f"{message}: {gui_hint}"
    if field:
        body["field"] = field
    body["detail"] = str(error)
    return body


def production_of(versions: Iterable[ModelVersion]) -> ModelVersion | None:
    holders = [mv for mv in versions if mv.stage == "Production"]
    return max(holders, key=lambda mv: mv.version) if holders else None


def request_review(request_json: dict[str, Any], versions: list[ModelVersion]) -> dict[str, Any]:
    """A request's JSON with what a reviewer decides on: the candidate's ``metrics``, the
    ``production`` version and its metrics, and ``deltas`` (candidate - Production, with
    direction; see ``jupyreg.widgets.numbers``)."""
    by_number = {mv.version: mv for mv in versions}
    candidate = by_number.get(int(request_json["version"]))
    production = production_of(versions)
    metrics = dict(candidate.metrics) if candidate else {}
    same = production is None or candidate is None or production.version == candidate.version
    deltas = {} if same else metric_deltas(metrics, production.metrics)
    return {
        **request_json,
        "metrics": metrics,
        "production": (
            {"version": production.version, "metrics": dict(production.metrics)}
            if production
            else None
        ),
        "deltas": {metric: delta.to_json() for metric, delta in deltas.items()},
    }


def version_extras(version_json: dict[str, Any], pending: Iterable[Request]) -> dict[str, Any]:
    """A version's JSON with the moves the lifecycle allows from its stage (``targets``)
    and its pending requests."""
    from jupyreg.lifecycle import ALLOWED_MOVES

    return {
        **version_json,
        "targets": list(ALLOWED_MOVES.get(version_json["stage"], ())),
        "pending_requests": [
            {"id": r.id, "to_stage": r.to_stage, "requested_by": r.requested_by}
            for r in pending
            if r.version == version_json["version"]
        ],
    }


def event_comments(event_json: dict[str, Any], requests: Mapping[str, Request]) -> dict[str, Any]:
    """A history event's JSON with its request's review ``comments`` ({by, at, comment})."""
    request = requests.get(event_json.get("request_id") or "")
    comments = []
    if request is not None:
        comments = [
            {"by": a.by, "at": a.at, "comment": a.comment} for a in request.approvals if a.comment
        ]
        if request.status == "rejected" and request.comment and request.decided_by:
            comments.append(
                {"by": request.decided_by, "at": request.decided_at, "comment": request.comment}
            )
    return {**event_json, "comments": comments}


def staleness_json(registry: Registry, name: str, root: str) -> dict[str, Any] | None:
    """Whether ``name``'s Production is stale against the git + DVC repository at ``root``
    (the Jupyter server's root directory): ``{stale, summary, version, commits_behind,
    changed_data, age_days, warnings}``; None without a Production version. Never raises:
    a failure to measure is reported as ``stale`` None with the reason as its summary (no
    git repository is not one: ``commits_behind`` is None, with a warning)."""
    from jupyreg.errors import NotFound
    from jupyreg.staleness import staleness

    try:
        found = staleness(registry, name, root)
    except NotFound:
        return None
    except Exception as exc:  # the model listing must never fail for it
        reason = f"staleness unknown: {type(exc).__name__}: {str(exc).strip()[:300]}"
        return {
            "stale": None,
            "summary": reason,
            "version": None,
            "commits_behind": None,
            "changed_data": [],
            "age_days": None,
            "warnings": [reason],
        }
    return {
        "stale": found.stale,
        "summary": found.summary(),
        "version": found.version,
        "commits_behind": found.commits_behind,
        "changed_data": list(found.changed_data),
        "age_days": round(found.age_days, 3),
        "warnings": list(found.warnings),
    }
