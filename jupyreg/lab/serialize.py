"""Errors as the JSON the sidebar reads (records use ``jupyreg.serialize``)."""

from __future__ import annotations


def error_body(error: Exception) -> dict[str, str]:
    return {"error": type(error).__name__, "message": str(error)}
