"""Registry results (DataFrames, entities) as the JSON the sidebar reads."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from jupyreg.registry import VERSION_FIELDS

if TYPE_CHECKING:
    import pandas as pd


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


def error_body(error: Exception) -> dict[str, str]:
    return {"error": type(error).__name__, "message": str(error)}
