"""Refusal of MLflow REST writes that would bypass the lifecycle.

The lifecycle's own state (stage tags, history events, requests, the policy, the stage
aliases and MLflow's legacy stage) may only change through jupyreg's endpoints, which
check permissions and policy and record who did it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyreg import lifecycle, tags

_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
_ENDPOINTS = "POST /api/2.0/jupyreg/{transition,request,approve,reject,cancel,rollback}"


def refusal(method: str, path: str, params: Mapping[str, Any], user: str | None) -> str | None:
    """Why the request must be refused (a message pointing to the right call), or None."""
    route = next((path[len(p) :] for p in _PREFIXES if path.startswith(p)), None)
    if route is None:
        return None
    key = str(params.get("key", ""))
    if route in ("model-versions/set-tag", "model-versions/delete-tag") and tags.is_reserved(key):
        return (
            f"'{key}' is managed by jupyreg (stages, history, requests and the lineage the "
            f"gates judge): change stages with reg.transition / reg.request / reg.approve "
            f"({_ENDPOINTS})"
        )
    if route in ("registered-models/set-tag", "registered-models/delete-tag") and (
        tags.is_reserved(key)
    ):
        return (
            f"'{key}' is managed by jupyreg (its policy and lifecycle steps): use "
            "reg.set_policy (POST /api/2.0/jupyreg/policy) or the lifecycle calls"
        )
    if (
        route == "registered-models/alias"
        and params.get("alias") in lifecycle.STAGE_ALIASES.values()
    ):
        return (
            f"the '{params.get('alias')}' alias follows the lifecycle stage: use "
            f"reg.transition / reg.request ({_ENDPOINTS})"
        )
    if route == "model-versions/transition-stage":
        return (
            f"stage changes go through jupyreg's lifecycle: use reg.transition / "
            f"reg.request ({_ENDPOINTS})"
        )
    if route in ("model-versions/create", "registered-models/create"):
        return _creation_refusal(params.get("tags") or [], user)
    return None


def _creation_refusal(new_tags: list[Mapping[str, Any]], user: str | None) -> str | None:
    for tag in new_tags:
        key, value = str(tag.get("key", "")), str(tag.get("value", ""))
        if key == tags.STAGE_TAG and value != lifecycle.NONE:
            return "a new version starts in stage None: request a stage change afterwards"
        if tags.written_by_lifecycle_only(key):
            return f"'{key}' is managed by jupyreg and cannot be set at creation"
        if key == tags.AUTHOR_TAG and user is not None and value != user:
            return f"the author of a new version is the authenticated user ({user}), not {value!r}"
    return None
