"""Registry results (DataFrames, entities) as the JSON the sidebar reads."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from jupyreg.errors import (
    REFUSALS,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RegistryError,
    RegistryUnavailable,
)

if TYPE_CHECKING:
    import pandas as pd

VERSION_FIELDS = (
    "version",
    "stage",
    "aliases",
    "created",
    "author",
    "run_id",
    "git_commit",
    "git_dirty",
    "data",
    "gpu",
)
"""Columns of ``Registry.versions``; every other column is a metric."""


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN -> null, timestamps -> ISO 8601 (UTC)."""
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))


def version_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``Registry.versions`` rows with their metrics grouped under ``metrics``."""
    rows = []
    for row in records(frame):
        version = {k: row.get(k) for k in VERSION_FIELDS}
        version["aliases"] = [a for a in (row.get("aliases") or "").split(",") if a]
        version["metrics"] = {
            k: v for k, v in row.items() if k not in VERSION_FIELDS and v is not None
        }
        rows.append(version)
    return rows


def request_record(request: Any) -> dict[str, Any]:
    return dataclasses.asdict(request)


def error_status(error: RegistryError) -> int:
    """The HTTP status of a registry error (refusals are conflicts, except permissions)."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, InvalidArgument):
        return 400
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, REFUSALS):
        return 409
    if isinstance(error, RegistryUnavailable):
        return 503
    return 500


def error_body(error: Exception) -> dict[str, str]:
    return {"error": type(error).__name__, "message": str(error)}
