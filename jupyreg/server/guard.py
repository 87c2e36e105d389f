"""The server's guard: every request is classified by its route (``routes.ROUTES``): a
feature the server does not serve is not there (404), an admins' route refuses the rest,
and every write is read once, exactly as MLflow's handler will read it, then allowed,
checked, or refused by the route's class.

The lifecycle's own state (every ``jupyreg.*`` tag, the stage aliases, MLflow's legacy
stage, the versions that hold a stage, a registered version's files) changes only through
jupyreg's endpoints, which check permissions and policy and record who did it.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jupyreg import lifecycle, tags
from jupyreg.server import routes

_ENDPOINTS = "POST /api/2.0/jupyreg/{transition,request,approve,reject,cancel,rollback}"
_HELD = (lifecycle.STAGING, lifecycle.PRODUCTION)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_BINARY_BODY = frozenset({"artifact_path", "run_artifacts"})
"""Checks of routes whose body is file content, not a JSON request."""
READ = "read"
_ENABLE = "jupyreg server --enable-mlflow-feature"


@dataclass(frozen=True)
class Refusal:
    status: int  # 400: the request is malformed; 403: it would bypass the lifecycle
    message: str

    def payload(self) -> dict[str, str]:
        """The JSON error body, in MLflow's shape."""
        code = _ERROR_CODES.get(self.status, "INVALID_PARAMETER_VALUE")
        return {"error_code": code, "message": f"jupyreg: {self.message}"}


_ERROR_CODES = {403: "PERMISSION_DENIED", 404: "ENDPOINT_NOT_FOUND"}


class State(Protocol):
    """What the guard reads of the registry (the server's own store)."""

    def stages(self, name: str) -> dict[int, str]:
        """Each version's stage (jupyreg's tag, else MLflow's legacy stage); {} if unknown."""

    def registered_version_of(self, run_id: str | None, model_id: str | None) -> str | None:
        """``NAME vN`` of a registered version backed by this run or logged model, or None."""

    def owner_of_path(self, path: str) -> str | None:
        """``NAME vN`` of a registered version whose model files or run artifacts are at,
        under or above ``path`` (relative to the server's artifact root), or None."""

    def experiment_holding(self, experiment_id: str) -> str | None:
        """``NAME vN in STAGE`` of a Staging/Production version whose run or logged model
        is in this experiment, or None."""

    def keep_history(self, name: str, version: int) -> None:
        """Copy a version's history where deleting the version cannot remove it."""

    def hold(self, name: str) -> None:
        """Hold the model's lifecycle lock until the request is answered."""


@dataclass(frozen=True)
class Request:
    method: str
    rule: str  # the matched Flask URL rule
    args: Mapping[str, list[str]]  # the query string, every value of every key
    body: Callable[[], bytes]  # read only where the route's body is a JSON request
    content_type: str | None
    view_args: Mapping[str, Any]
    user: str | None


@dataclass(frozen=True)
class Write:
    """A request the guard has read: its route's class (``READ`` for a read), whether it
    serves admins only, and the parameters MLflow will act on."""

    kind: str
    params: dict[str, Any]
    admin: bool = False


def check(
    request: Request,
    state: State,
    static_prefix: str = "",
    enabled: frozenset[str] = frozenset(),
    admin: bool = False,
) -> Refusal | dict:
    """A refusal, or the parameters MLflow's handler will act on ({} for a plain read)."""
    write = read(request, static_prefix, enabled)
    if isinstance(write, Refusal):
        return write
    return judge(write, request.user, state, admin)


def gate(route: routes.Route | None, name: str, enabled: frozenset[str]) -> Refusal | dict | None:
    """Before anything else: an unclassified route is refused, and a feature the server
    does not serve is not there, except for the empty answer to a read the UI always
    makes (``routes.EMPTY``: the answer to send, with 200)."""
    if route is None:
        return Refusal(403, f"'{name}' is a route jupyreg's guard does not know: it is refused")
    if not routes.serves(route.feature, enabled):
        return dict(routes.EMPTY[name]) if name in routes.EMPTY else not_served(route.feature)
    return None


def not_served(feature: str) -> Refusal:
    return Refusal(
        404,
        f"this server does not serve MLflow's {feature} ({routes.OPTIONAL[feature]}); an "
        f"operator may turn it on for admins with '{_ENABLE} {feature}'",
    )


def admins_only(feature: str) -> Refusal:
    return Refusal(403, f"MLflow's {feature} on this server is for admins only")


def read(
    request: Request, static_prefix: str = "", enabled: frozenset[str] = frozenset()
) -> Refusal | Write:
    """The first half, before authentication: classify the request, read a write and
    refuse a malformed or unknown one (nothing of the registry is looked at, so nothing of
    it is told)."""
    route = routes.route(request.method, request.rule, static_prefix)
    name = routes.route_name(request.method, request.rule, static_prefix)
    refusal = gate(route, name, enabled)
    if isinstance(refusal, Refusal):
        return refusal
    assert route is not None
    kind = route.write
    if kind is None or refusal is not None:  # a read, or a stand-in its front end answers
        return Write(READ, {}, route.admin)
    strict = kind != routes.OPEN or name in routes.REGISTRY or name == routes.JUPYREG
    body = kind not in _BINARY_BODY and request.method in routes.WRITE_METHODS
    params = _params(request, body=body, strict=strict)
    if isinstance(params, Refusal):
        return params
    if name in routes.REGISTRY:
        shape = _shape(params)
        if shape is not None:
            return shape
    return Write(kind, params, route.admin)


def judge(write: Write, user: str | None, state: State, admin: bool = False) -> Refusal | dict:
    """The second half, once the caller is authenticated: admins' routes refuse the rest,
    then the route's own check (``admin``: the caller is one)."""
    if write.admin and not admin:
        return Refusal(403, "this route is for admins only")
    if write.kind in (routes.OPEN, READ):
        return write.params
    if write.kind == routes.LIFECYCLE:
        return Refusal(
            403,
            f"stage changes go through the lifecycle: reg.transition / reg.request ({_ENDPOINTS})",
        )
    try:
        refusal = _CHECKS[write.kind](write.params, Caller(user, admin), state)
    except (TypeError, ValueError) as exc:
        refusal = Refusal(400, str(exc))
    return refusal or write.params


_TEXT_FIELDS = ("name", "new_name", "key", "alias", "value", "description", "source", "run_id")


def _shape(params: Mapping[str, Any]) -> Refusal | None:
    """The registry's fields have the types MLflow's handlers assume (a list where a name
    belongs crashes them)."""
    for field in _TEXT_FIELDS:
        if field in params and not isinstance(params[field], str):
            return Refusal(400, f"{field!r} must be a string, not {type(params[field]).__name__}")
    if "version" in params:
        try:
            _version(params)
        except ValueError as exc:
            return Refusal(400, str(exc))
    return None


def _params(request: Request, body: bool, strict: bool) -> Refusal | dict[str, Any]:
    """The request's parameters as MLflow's handler reads them: the JSON body (parsed
    whatever the content type, a double-encoded string decoded again), the query string,
    and the URL's own parts. A query string that disagrees with the body is refused: MLflow's
    authorisation may read one and its handler the other."""
    query: dict[str, str] = {}
    for key, values in request.args.items():
        if len(set(values)) > 1:
            return Refusal(400, f"query parameter {key!r} is given more than once")
        query[key] = values[0]
    parsed = _json_object(request.body(), strict) if body else {}
    if isinstance(parsed, Refusal):
        return parsed
    if strict and parsed and not _is_json(request.content_type):
        return Refusal(400, "send the request body as JSON (Content-Type: application/json)")
    for key in query.keys() & parsed.keys():
        if str(parsed[key]) != query[key]:
            return Refusal(400, f"the query string and the body name different {key!r}")
    return {**query, **parsed, **request.view_args}


def _json_object(raw: bytes, strict: bool) -> Refusal | dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except RecursionError:
        return Refusal(400, "the request body is nested too deeply")
    except ValueError:
        return Refusal(400, "the request body is not valid JSON") if strict else {}
    if isinstance(parsed, str):  # older MLflow clients double-encode; MLflow decodes again
        try:
            parsed = json.loads(parsed)
        except (RecursionError, ValueError):
            return Refusal(400, "the request body is a string that is not encoded JSON")
    if isinstance(parsed, dict):
        return parsed
    return Refusal(400, f"the request body must be a JSON object, not {type(parsed).__name__}")


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


# the checks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    name: str | None
    admin: bool


Check = Callable[[Mapping[str, Any], Caller, State], "Refusal | None"]


def _text(params: Mapping[str, Any], field: str) -> str:
    value = params.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field!r} must be a non-empty string")
    return value


def _version(params: Mapping[str, Any]) -> int:
    value = params.get("version")
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or len(text) > 10 or int(text) >= 2**31:
        raise ValueError("'version' must be a version number")
    return int(text)


def _tag(managed: str) -> Check:
    """The check of a tag route: every ``jupyreg.*`` key, in any spelling, is refused."""

    def check_tag(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
        key = _text(params, "key")
        if tags.is_reserved(key):
            return Refusal(403, f"'{key}' is managed by jupyreg ({managed})")
        return None

    return check_tag


def _alias(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    alias = _text(params, "alias")
    if tags.is_reserved_alias(alias):  # any case, spacing or look-alike letters
        return Refusal(
            403,
            f"the alias '{alias}' is reserved: 'staging' and 'production' "
            f"follow the lifecycle stage; use reg.transition / reg.request "
            f"({_ENDPOINTS})",
        )
    return None


def _new_tags(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    raw = params.get("tags") or []
    if not isinstance(raw, list) or not all(
        isinstance(t, dict)
        and isinstance(t.get("key"), str)
        and isinstance(t.get("value", ""), str)
        for t in raw
    ):
        raise ValueError('\'tags\' must be a list of {"key": string, "value": string}')
    keys = [t["key"] for t in raw]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"'tags' names {', '.join(map(repr, repeated))} more than once")
    return [(t["key"], t.get("value", "")) for t in raw]


def _new_model(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    _text(params, "name")
    for key, _ in _new_tags(params):
        if tags.is_reserved(key):
            return Refusal(403, f"'{key}' is managed by jupyreg and cannot be set at creation")
    return None


def _new_version(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    _text(params, "name")
    for key, value in _new_tags(params):
        if key == tags.STAGE_TAG and value != lifecycle.NONE:
            return Refusal(
                403, "a new version starts in stage None: request a stage change afterwards"
            )
        if tags.written_by_lifecycle_only(key):
            return Refusal(403, f"'{key}' is managed by jupyreg and cannot be set at creation")
        if key == tags.AUTHOR_TAG and caller.name is not None and value != caller.name:
            return Refusal(
                403,
                f"the author of a new version is the authenticated user ({caller.name}), "
                f"not {value!r}",
            )
    return None


def _delete_version(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    name, version = _text(params, "name"), _version(params)
    state.hold(name)
    stage = state.stages(name).get(version)
    if stage in _HELD:
        return Refusal(
            403,
            f"{name} v{version} is in {stage}: archive it first with "
            f"reg.transition({name!r}, {version}, 'Archived', reason=...) "
            "(POST /api/2.0/jupyreg/transition); an Archived version may be "
            "deleted",
        )
    if stage is not None:
        state.keep_history(name, version)
    return None


def _holding_model(verb: str) -> Check:
    def check_model(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
        name = _text(params, "name")
        state.hold(name)
        held = sorted((v, s) for v, s in state.stages(name).items() if s in _HELD)
        if not held:
            return None
        holding = ", ".join(f"v{v} in {s}" for v, s in held)
        return Refusal(
            403,
            f"{name} cannot be {verb}: it holds {holding}; archive those "
            "versions first (reg.transition(..., 'Archived', reason=...))",
        )

    return check_model


def _artifact_path(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    """Who owns a path is read from the stores (the artifact roots of registered versions
    and their runs), never from its shape: an experiment's artifact location may sit
    anywhere under the root, under another experiment's id included."""
    path = str(params.get("artifact_path", ""))
    if ".." in path.split("/"):
        return Refusal(400, "an artifact path may not contain '..'")
    holder = state.owner_of_path(posixpath.normpath("/" + path).lstrip("/"))
    return _immutable_files(holder) if holder else None


def _run_artifacts(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    run_id = params.get("run_uuid") or params.get("run_id")
    return _immutable(state, str(run_id), None) if run_id else None


def _upload_url(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    run_id, model_id = params.get("run_id"), params.get("model_id")
    return _immutable(state, str(run_id or ""), str(model_id or ""))


def _logged_model(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    return _immutable(state, None, _text(params, "model_id"))


def _run_delete(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    return _immutable(state, _text(params, "run_id"), None)


def _immutable(state: State, run_id: str | None, model_id: str | None) -> Refusal | None:
    run_id = run_id if run_id and _RUN_ID.match(run_id) else None
    model_id = model_id if model_id and _MODEL_ID.match(model_id) else None
    if run_id is None and model_id is None:
        return None
    holder = state.registered_version_of(run_id, model_id)
    return _immutable_files(holder) if holder else None


def _immutable_files(holder: str) -> Refusal:
    return Refusal(
        403,
        f"the files of a registered version ({holder}) are immutable: "
        "register a new version instead",
    )


def _new_experiment(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    """Only an admin chooses where an experiment keeps its files: a location under another
    experiment's (or on the server's own disk or bucket) is a side door to their files."""
    _text(params, "name")
    if params.get("artifact_location") and not caller.admin:
        return Refusal(
            403,
            "only an admin may choose an experiment's artifact_location: leave it out and "
            "the server keeps the files under its artifact root",
        )
    return None


def _experiment_lifecycle(
    params: Mapping[str, Any], caller: Caller, state: State
) -> Refusal | None:
    """The experiment of a Staging or Production version stays, under its name."""
    holder = state.experiment_holding(_text(params, "experiment_id"))
    if holder is None:
        return None
    return Refusal(
        403,
        f"this experiment holds {holder}: it cannot be deleted or renamed until that "
        "version is archived (reg.transition(..., 'Archived', reason=...))",
    )


def _webhook(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
    """A webhook's events are ones MLflow knows (an unknown one crashes its handler)."""
    from jupyreg.compat import webhook_event_problem

    events = params.get("events")
    if events is None:
        return None
    if not isinstance(events, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("entity"), str)
        and isinstance(e.get("action"), str)
        for e in events
    ):
        raise ValueError('\'events\' must be a list of {"entity": string, "action": string}')
    for event in events:
        problem = webhook_event_problem(event["entity"], event["action"])
        if problem is not None:
            return Refusal(400, problem)
    return None


def _search(kind: str) -> Check:
    """A search's filter is one MLflow can parse (some it cannot crash its handler)."""

    def check_search(params: Mapping[str, Any], caller: Caller, state: State) -> Refusal | None:
        from jupyreg.compat import search_filter_problem

        text = params.get("filter")
        problem = search_filter_problem(kind, str(text)) if text else None
        return Refusal(400, problem) if problem else None

    return check_search


_CHECKS: dict[str, Check] = {
    "model_tag": _tag(
        "its policy and lifecycle steps): use reg.set_policy (POST /api/2.0/jupyreg/policy) "
        "or the lifecycle calls"
    ),
    "version_tag": _tag(
        "stages, history, requests and the record the gates judge, frozen at registration): "
        f"change stages with reg.transition / reg.request / reg.approve ({_ENDPOINTS}"
    ),
    "alias": _alias,
    "new_model": _new_model,
    "new_version": _new_version,
    "delete_version": _delete_version,
    "delete_model": _holding_model("deleted"),
    "rename_model": _holding_model("renamed"),
    "artifact_path": _artifact_path,
    "run_artifacts": _run_artifacts,
    "upload_url": _upload_url,
    "logged_model": _logged_model,
    "run_delete": _run_delete,
    "new_experiment": _new_experiment,
    "experiment_lifecycle": _experiment_lifecycle,
    "webhook": _webhook,
    "search_models": _search("models"),
    "search_versions": _search("versions"),
}
