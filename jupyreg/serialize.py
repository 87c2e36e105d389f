"""Records as JSON: the one serializer of each record, shared by the server's endpoints and
their client, the CLI's ``--format json`` and the lab sidebar's REST API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jupyreg.entities import ModelVersion, RegisteredModel
from jupyreg.lifecycle import Approval, Request, TransitionEvent


def _iso(moment: datetime | None) -> str | None:
    from jupyreg.lifecycle import iso

    return iso(moment) if moment else None


def model_json(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "latest_version": model.latest_version,
        "production": model.production,
        "staging": model.staging,
        "description": model.description,
        "updated": _iso(model.updated),
        "split": model.split,
    }


def version_json(mv: ModelVersion) -> dict[str, Any]:
    from jupyreg.frames import lineage_summary

    return {
        "name": mv.name,
        "version": mv.version,
        "stage": mv.stage,
        "aliases": list(mv.aliases),
        "created": _iso(mv.created),
        "author": mv.author,
        "run_id": mv.run_id,
        "description": mv.description,
        "metrics": dict(mv.metrics),
        "params": dict(mv.params),
        **lineage_summary(mv.lineage_fields),
        "reproduced": mv.reproduced,
        "warnings": list(mv.warnings),
        "source": mv.source,
        "lineage": mv.lineage,
        "tags": dict(mv.tags),
    }


def version_from_json(body: Mapping[str, Any]) -> ModelVersion:
    from jupyreg.lifecycle import parse_iso

    return ModelVersion(
        name=str(body["name"]),
        version=int(body["version"]),
        stage=str(body["stage"]),
        run_id=body.get("run_id"),
        aliases=tuple(body.get("aliases") or ()),
        created=parse_iso(body["created"]) if body.get("created") else None,
        author=body.get("author"),
        description=body.get("description"),
        source=body.get("source"),
        metrics=dict(body.get("metrics") or {}),
        params=dict(body.get("params") or {}),
        lineage=dict(body.get("lineage") or {}),
        tags=dict(body.get("tags") or {}),
        warnings=tuple(body.get("warnings") or ()),
    )


def event_json(event: TransitionEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "version": event.version,
        "from_stage": event.from_stage,
        "to_stage": event.to_stage,
        "author": event.author,
        "reason": event.reason,
        "at": event.at,
        "request_id": event.request_id,
        "repaired_by": event.repaired_by,
        "attestation": dict(event.attestation) if event.attestation else None,
    }


def request_json(request: Request) -> dict[str, Any]:
    return {
        "id": request.id,
        "name": request.name,
        "version": request.version,
        "to_stage": request.to_stage,
        "status": request.status,
        "requested_by": request.requested_by,
        "reason": request.reason,
        "created_at": request.created_at,
        "approvals": [
            {"by": a.by, "at": a.at, "comment": a.comment, "attestation": a.attestation}
            for a in request.approvals
        ],
        "decided_by": request.decided_by,
        "comment": request.comment,
        "decided_at": request.decided_at,
    }


def request_from_json(body: Mapping[str, Any]) -> Request:
    return Request(
        id=str(body["id"]),
        name=str(body["name"]),
        version=int(body["version"]),
        to_stage=str(body["to_stage"]),
        requested_by=str(body["requested_by"]),
        reason=str(body["reason"]),
        created_at=str(body["created_at"]),
        status=str(body["status"]),
        approvals=tuple(Approval(**a) for a in body.get("approvals") or ()),
        decided_by=body.get("decided_by"),
        comment=body.get("comment"),
        decided_at=body.get("decided_at"),
    )


def to_json(record: Any) -> Any:
    """Any record (or list of records) as JSON-ready data."""
    from jupyreg.lifecycle import Policy

    if isinstance(record, list | tuple):
        return [to_json(r) for r in record]
    for cls, serializer in (
        (RegisteredModel, model_json),
        (ModelVersion, version_json),
        (TransitionEvent, event_json),
        (Request, request_json),
    ):
        if isinstance(record, cls):
            return serializer(record)
    if isinstance(record, Policy):
        return record.to_dict()
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.asdict(record)  # a report such as Staleness
    raise TypeError(f"no JSON form for {type(record).__name__}")
