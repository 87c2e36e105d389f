"""jupyreg's REST endpoints on the tracking server: permission check, then Registry.

Each action runs server-side against the server's own backend store, with the
authenticated user as the author, inside the Registry's per-model lock (a PostgreSQL
advisory lock, or a file lock for SQLite), so that replicas serialise.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from jupyreg import lifecycle, tags
from jupyreg.backend import Authorise
from jupyreg.errors import InvalidArgument, NotFound, PermissionDenied
from jupyreg.queries import version_number
from jupyreg.registry import Registry
from jupyreg.serialize import request_json, version_json

APPROVERS_ENV = "JUPYREG_APPROVERS"
"""Comma-separated users who may approve and apply Production changes besides MANAGE."""

Permission = Callable[[str], Any]  # model name -> MLflow Permission of the current user


def server_registry(
    user: str,
    authorise: Authorise | None = None,
    attestation: Mapping[str, str] | None = None,
) -> Registry:
    """The server's own registry acting for ``user``, in the groups its admins keep."""
    from jupyreg.compat import server_store_uris
    from jupyreg.server import identities
    from jupyreg.server.events import FiringStore

    backend, registry = server_store_uris(default="sqlite:///mlflow.db")
    return Registry(
        backend,
        registry,
        user=user,
        store_class=FiringStore,
        authorise=authorise,
        groups=identities.groups_of(identities.server_uri(), user),
        attestation=attestation,
    )


# input validation: every field of a body is typed and bounded before anything is read or
# written; bad input is InvalidArgument (400 INVALID_PARAMETER_VALUE), naming the field

MAX_NAME = 256
"""Characters of a registered model's name (MLflow's column)."""
MAX_VERSION = 2**31 - 1
"""The largest version number MLflow's integer column holds."""
MAX_TOKEN = 64
"""Characters of a stage name, a version given as text, or a request id."""


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _body(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidArgument(
            f"the request body must be a JSON object of fields, not {_kind(body)}"
        )
    return body


def _text_field(key: str, value: Any, limit: int) -> str:
    return lifecycle.bounded_text(value, f"field {key!r}", limit, _kind(value))


def _name(value: Any, key: str = "name") -> str:
    if not isinstance(value, str):
        raise InvalidArgument(
            f"field {key!r} must be a registered model's name (text), not {_kind(value)}"
        )
    name = _text_field(key, value, MAX_NAME)
    if not name.strip():
        raise InvalidArgument(f"missing field {key!r}")
    if "/" in name or ":" in name:
        raise InvalidArgument(f"field {key!r}: a model name cannot contain '/' or ':'")
    return name


def _version(value: Any) -> int:
    wrong = f"field 'version' must be a version number such as 3, not {_kind(value)}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidArgument(wrong)
    if isinstance(value, int) and not 1 <= value <= MAX_VERSION:
        raise InvalidArgument(f"field 'version' must be 1 to {MAX_VERSION}")
    number = version_number(
        _text_field("version", value, MAX_TOKEN) if isinstance(value, str) else value
    )
    if number > MAX_VERSION:
        raise InvalidArgument(f"field 'version' must be 1 to {MAX_VERSION}")
    return number


def _stage(value: Any) -> str:
    stage = _text_field("stage", value, MAX_TOKEN)
    try:
        return lifecycle.normalize_stage(stage)
    except InvalidArgument as exc:
        raise InvalidArgument(f"field 'stage': {exc}") from None


def _request_id(value: Any) -> str:
    return _text_field("request_id", value, MAX_TOKEN)


def _policy(value: Any) -> lifecycle.Policy:
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"field 'policy' must be a JSON object of policy settings, not {_kind(value)}"
        )
    return lifecycle.Policy.from_mapping(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "version": _version,
    "stage": _stage,
    "request_id": _request_id,
    "policy": _policy,
}


def _field(body: Mapping[str, Any], key: str) -> Any:
    """A required field, checked (and converted: a version number, a canonical stage, a
    Policy)."""
    value = _body(body).get(key)
    if value is None or value == "":
        raise InvalidArgument(f"missing field {key!r}")
    check = _CHECKS.get(key)
    return check(value) if check is not None else value


def _text(body: Mapping[str, Any], key: str) -> str | None:
    """An optional reason or comment: text of at most ``lifecycle.MAX_TEXT`` characters."""
    value = _body(body).get(key)
    if value is None:
        return None
    return lifecycle.check_text(_text_field(key, value, 2 * lifecycle.MAX_TEXT), f"field {key!r}")


class Actions:
    """The endpoints' logic for one authenticated user.

    ``run(action, body)`` is the entry point for a request: it refuses an unknown action
    (NotFound) and a body that is not a JSON object (InvalidArgument); each action checks
    its fields' types and bounds before anything is read or written."""

    def __init__(
        self,
        user: str,
        is_admin: bool,
        permission: Permission,
        attestation: Mapping[str, str] | None = None,
    ) -> None:
        self.user = user
        self.is_admin = is_admin
        self.permission = functools.cache(permission)  # asked before a step takes the
        # model's lock, answered from here under it (MLflow's check re-hashes the password)
        self.registry = server_registry(user, self._authorise_move, attestation)

    def run(self, action: str, body: Any) -> dict[str, Any]:
        """The endpoint ``action`` (one of ``ACTIONS``) on a request's decoded JSON body."""
        if not isinstance(action, str) or action not in ACTIONS:
            raise NotFound(
                f"no jupyreg endpoint {str(action)[:40]!r}: use one of {', '.join(ACTIONS)}"
            )
        return getattr(self, action)(_body(body))

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
        """Refuse early what the target alone rules out, and learn the caller's permission
        now: the step judges the move again under the lock, from that answer."""
        level = lifecycle.permission_for(lifecycle.normalize_stage(stage))
        self._require(name, level, action)
        if not self.is_admin:
            self.permission(name)

    def _authorise_move(self, name: str, version: int, current: str, target: str) -> None:
        """Under the model's lock, from its stage as it is then: moving into or out of
        Production needs MANAGE, other moves EDIT."""
        level = lifecycle.permission_for(target, current)
        self._require(name, level, f"moving v{version} from {current} to {target}")

    def transition(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name, stage = _field(body, "name"), _field(body, "stage")
        self._for_stage(name, stage, f"moving a version to {stage}")
        mv = self.registry.transition(name, _field(body, "version"), stage, _text(body, "reason"))
        return {"version": version_json(mv)}

    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _field(body, "name")
        self._require(name, "EDIT", "requesting a stage change")
        filed = self.registry.request(
            name, _field(body, "version"), _field(body, "stage"), _text(body, "reason")
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
        return {"request": request_json(decide(request_id, comment=_text(body, "comment")))}

    def cancel(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"request": request_json(self.registry.cancel(str(_field(body, "request_id"))))}

    def rollback(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _field(body, "name")
        self._require(name, "MANAGE", "a rollback of Production")
        return {"version": version_json(self.registry.rollback(name, _text(body, "reason")))}

    def policy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The policy in force (no ``policy`` field: READ), or a new one (MANAGE)."""
        name = _field(body, "name")
        if "policy" not in body:
            self._require(name, "READ", "reading the policy")
            return {"policy": self.registry.policy(name).to_dict()}
        self._require(name, "MANAGE", "changing the policy")
        policy = _field(body, "policy")
        changed = self.registry.set_policy(name, policy, reason=_text(body, "reason"))
        return {"policy": changed.to_dict()}

    def repair(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _body(body).get("name")
        name = None if name in (None, "") else _name(name)
        if name:
            self._require(name, "MANAGE", "repairing the registry")
        elif not self.is_admin:
            raise PermissionDenied("repairing every model needs an admin; name one model")
        problems = self.registry.check(name, repair=True, repo_path=None)
        return {"problems": problems.to_dict(orient="records")}

    def reproduction(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the outcome of a reproduction the caller ran (EDIT), stamped here with the
        caller and the time: the gate ``require_reproduced`` reads who reported it."""
        name = _field(body, "name")
        self._require(name, "EDIT", "keeping a reproduction")
        record = _reproduction(_field(body, "record"))
        return {"id": self.registry.keep_reproduction(name, _field(body, "version"), record)}

    def identities(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Identity links (admins): ``op`` list (default), link or unlink."""
        from jupyreg.compat import user_exists
        from jupyreg.server import identities

        self._require_admin("managing identity links")
        uri, op = identities.server_uri(), body.get("op", "list")
        if op == "link":
            user = _text_field("user", body.get("user"), identities.MAX_FIELD)
            if not user_exists(user):
                raise NotFound(f"no user {user!r} on this server: add it with jupyreg users add")
            requires = body.get("requires") or {}
            if not isinstance(requires, Mapping):
                raise InvalidArgument(f"field 'requires' must be an object, not {_kind(requires)}")
            identities.link(
                uri, user, body.get("issuer"), body.get("claim"), body.get("value"), requires
            )
        elif op == "unlink":
            identities.unlink(
                uri,
                _text_field("issuer", body.get("issuer"), identities.MAX_FIELD),
                _text_field("claim", body.get("claim"), identities.MAX_FIELD),
                _text_field("value", body.get("value"), identities.MAX_FIELD),
            )
        elif op != "list":
            raise InvalidArgument(f"field 'op' must be list, link or unlink, not {str(op)[:20]!r}")
        return {"links": identities.links(uri)}

    def groups(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Groups and their members: anyone signed in lists them (a policy names them);
        admins add or remove members (``op`` add / remove, ``group``, ``users``)."""
        from jupyreg.server import identities

        uri, op = identities.server_uri(), body.get("op", "list")
        if op in ("add", "remove"):
            self._require_admin("changing groups")
            users = body.get("users")
            if not isinstance(users, list) or not users:
                raise InvalidArgument("field 'users' must be a non-empty list of user names")
            group = body.get("group")
            identities.change_group(uri, group, **{op: users})
        elif op != "list":
            raise InvalidArgument(f"field 'op' must be list, add or remove, not {str(op)[:20]!r}")
        return {"groups": identities.groups(uri)}

    def deliveries(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Webhook deliveries, newest first (admins, who manage webhooks): ``hook`` and
        ``status`` filter them."""
        from jupyreg.server import outbox

        self._require_admin("reading webhook deliveries")
        hook, status = body.get("hook"), body.get("status")
        hook = None if hook in (None, "") else _text_field("hook", hook, MAX_NAME)
        status = None if status in (None, "") else _text_field("status", status, MAX_TOKEN)
        return {"deliveries": outbox.listing(outbox_engine(), hook, status)}

    def redeliver(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Send a delivery again, same id, signed afresh (admins)."""
        from jupyreg.server import outbox

        self._require_admin("redelivering a webhook delivery")
        delivery = _text_field("delivery_id", _field(body, "delivery_id"), MAX_TOKEN)
        record = outbox.redeliver(outbox_engine(), delivery)
        outbox.wake()
        return {"delivery": record}

    def test_webhook(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A signed ping to a webhook, sent now, as its deliveries are (admins)."""
        from jupyreg.compat import webhook_or_none
        from jupyreg.server import outbox

        self._require_admin("testing a webhook")
        hook_id = _text_field("hook", _field(body, "hook"), MAX_NAME)
        hook = webhook_or_none(outbox_store(), hook_id)
        if hook is None:
            raise NotFound(f"no webhook {hook_id!r}: see jupyreg webhooks list")
        payload = {"webhook_id": hook_id, "message": "a test delivery from jupyreg"}
        code, error = outbox.send(hook, str(uuid.uuid4()), "webhook.test", payload, outbox.now_ms())
        return {"status_code": code, "error": error, "ok": error is None}

    def _require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise PermissionDenied(f"{action} needs an admin; {self.user} is not one")


def outbox_store() -> Any:
    """MLflow's SQL registry store of the server's database, opened with its URIs (not
    MLflow's server store, whose first use sets the process's registry URI)."""
    from jupyreg.compat import server_store_uris, sql_registry_store
    from jupyreg.store import Store

    backend, registry = server_store_uris(default="sqlite:///mlflow.db")
    store = sql_registry_store(Store(backend, registry).client)
    if store is None:
        raise InvalidArgument("webhook deliveries need the server's registry on a SQL database")
    return store


def outbox_engine() -> Any:
    """The registry database's engine, the outbox's tables made."""
    from jupyreg.server import outbox

    engine = outbox_store().engine
    outbox.create_tables(engine)
    return engine


def _reproduction(value: Any) -> dict[str, Any]:
    """A reproduction's record: a JSON object with a true/false ``ok``, small enough for
    a version tag; ``author``, ``at`` and ``id`` are the server's to set."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"field 'record' must be a JSON object, not {_kind(value)}")
    if not isinstance(value.get("ok"), bool):
        raise InvalidArgument("field 'record' needs 'ok': true or false")
    record = {k: v for k, v in value.items() if k not in ("author", "at", "id")}
    if len(json.dumps(record)) > tags.MAX_TAG_LENGTH // 2:
        raise InvalidArgument(
            f"field 'record' is over {tags.MAX_TAG_LENGTH // 2} characters as JSON: "
            "leave out what is not the outcome"
        )
    return record


def _approvers() -> set[str]:
    return {u.strip() for u in os.environ.get(APPROVERS_ENV, "").split(",") if u.strip()}


ACTIONS = (
    *("transition", "request", "approve", "reject", "cancel", "rollback", "policy", "repair"),
    *("reproduction", "identities", "groups", "deliveries", "redeliver", "test_webhook"),
)
