"""jupyreg's REST endpoints on the tracking server: permission check, then Registry.

Each action runs server-side against the server's own backend store, with the
authenticated user as the author, inside the Registry's per-model lock (a PostgreSQL
advisory lock, or a file lock for SQLite), so that replicas serialise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from jupyreg import lifecycle
from jupyreg.errors import InvalidArgument, PermissionDenied
from jupyreg.registry import Registry
from jupyreg.serialize import request_json, version_json

APPROVERS_ENV = "JUPYREG_APPROVERS"
"""Comma-separated users who may approve and apply Production changes besides MANAGE."""

Permission = Callable[[str], Any]  # model name -> MLflow Permission of the current user


def server_registry(user: str) -> Registry:
    from jupyreg.compat import server_store_uris
    from jupyreg.server.events import FiringStore

    backend, registry = server_store_uris(default="sqlite:///mlflow.db")
    return Registry(backend, registry, user=user, store_class=FiringStore)


def _field(body: Mapping[str, Any], key: str) -> Any:
    if body.get(key) in (None, ""):
        raise InvalidArgument(f"missing field {key!r}")
    return body[key]


class Actions:
    """The endpoints' logic for one authenticated user."""

    def __init__(self, user: str, is_admin: bool, permission: Permission) -> None:
        self.user = user
        self.is_admin = is_admin
        self.permission = permission
        self.registry = server_registry(user)

    def _require(self, name: str, level: str, action: str) -> None:
        if self.is_admin:
            return
        if level == "MANAGE" and self.user in _approvers():
            return
        granted = self.permission(name)
        allowed = {
            "READ": granted.can_read,
            "EDIT": granted.can_update,
            "MANAGE": granted.can_manage,
        }[level]
        if not allowed:
            raise PermissionDenied(
                f"{self.user} has {granted.name} on {name}; {action} needs {level}"
                + (" (or membership of the approvers list)" if level == "MANAGE" else "")
            )

    def _for_stage(self, name: str, stage: str, action: str) -> None:
        level = lifecycle.permission_for(lifecycle.normalize_stage(stage))
        self._require(name, level, action)

    def transition(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name, stage = _field(body, "name"), _field(body, "stage")
        self._for_stage(name, stage, f"moving a version to {stage}")
        mv = self.registry.transition(name, _field(body, "version"), stage, body.get("reason"))
        return {"version": version_json(mv)}

    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _field(body, "name")
        self._require(name, "EDIT", "requesting a stage change")
        filed = self.registry.request(
            name, _field(body, "version"), _field(body, "stage"), body.get("reason")
        )
        return {"request": request_json(filed)}

    def approve(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._decide(body, self.registry.approve, "approving")

    def reject(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._decide(body, self.registry.reject, "rejecting")

    def _decide(self, body: Mapping[str, Any], decide: Callable[..., Any], verb: str) -> dict:
        request_id = str(_field(body, "request_id"))
        pending = self.registry.get_request(request_id)
        self._for_stage(pending.name, pending.to_stage, f"{verb} a request for {pending.to_stage}")
        return {"request": request_json(decide(request_id, comment=body.get("comment")))}

    def cancel(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"request": request_json(self.registry.cancel(str(_field(body, "request_id"))))}

    def rollback(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _field(body, "name")
        self._require(name, "MANAGE", "a rollback of Production")
        return {"version": version_json(self.registry.rollback(name, body.get("reason")))}

    def policy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The policy in force (no ``policy`` field: READ), or a new one (MANAGE)."""
        name = _field(body, "name")
        if "policy" not in body:
            self._require(name, "READ", "reading the policy")
            return {"policy": self.registry.policy(name).to_dict()}
        self._require(name, "MANAGE", "changing the policy")
        policy = lifecycle.Policy.from_mapping(_field(body, "policy"))
        return {"policy": self.registry.set_policy(name, policy).to_dict()}

    def repair(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if name:
            self._require(name, "MANAGE", "repairing the registry")
        elif not self.is_admin:
            raise PermissionDenied("repairing every model needs an admin; name one model")
        problems = self.registry.check(name, repair=True)
        return {"problems": problems.to_dict(orient="records")}


def _approvers() -> set[str]:
    return {u.strip() for u in os.environ.get(APPROVERS_ENV, "").split(",") if u.strip()}


ACTIONS = ("transition", "request", "approve", "reject", "cancel", "rollback", "policy", "repair")
