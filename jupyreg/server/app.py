"""The ``mlflow.app`` entry point ``jupyreg``: basic-auth plus the lifecycle endpoints."""

from __future__ import annotations

from typing import Any

import jupyreg
from jupyreg.errors import RegistryBusy, RegistryError, http_status

INFO_ROUTE = "/api/2.0/jupyreg/info"
METRICS_ROUTE = "/api/2.0/jupyreg/metrics"
ACTION_ROUTE = "/api/2.0/jupyreg/<action>"

_CODES = {
    404: "RESOURCE_DOES_NOT_EXIST",
    400: "INVALID_PARAMETER_VALUE",
    403: "PERMISSION_DENIED",
    409: "INVALID_STATE",
    503: "TEMPORARILY_UNAVAILABLE",
    500: "INTERNAL_ERROR",
}


def _error(exc: RegistryError) -> Any:
    from flask import jsonify

    status = http_status(exc)
    response = jsonify(
        {"error_code": _CODES[status], "message": str(exc), "jupyreg_error": type(exc).__name__}
    )
    response.status_code = status
    if isinstance(exc, RegistryBusy):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _username() -> str:
    from flask import request

    return request.authorization.username  # basic-auth has authenticated the request


def _deliverer() -> None:
    """This server process's webhook deliverer, started by its first request."""
    from jupyreg.compat import webhook_or_none
    from jupyreg.server import outbox
    from jupyreg.server.actions import outbox_store

    if outbox.running():
        return
    try:
        store = outbox_store()
        outbox.ensure_deliverer(store.engine, lambda hook_id: webhook_or_none(store, hook_id))
    except Exception as exc:  # never the request: the next one tries again
        from flask import current_app

        current_app.logger.warning("jupyreg: webhook deliverer not started: %s", exc)


def _read() -> Any:
    """Before authentication: refuse a route not classified or a feature not served, then
    read every write that carries credentials as MLflow's handler will, and refuse a
    malformed or unknown one (400 / 403) before MLflow's own checks trip over it; one
    without credentials gets basic-auth's 401 first."""
    from flask import g, jsonify, request

    from jupyreg.compat import static_prefix
    from jupyreg.server.guard import Refusal, gate
    from jupyreg.server.routes import enabled_features, route, route_name

    if request.url_rule is None:
        return None  # no such route: Flask answers 404
    rule, prefix = request.url_rule.rule, static_prefix()
    refusal = gate(
        route(request.method, rule, prefix),
        route_name(request.method, rule, prefix),
        enabled_features(),
    )
    if isinstance(refusal, dict):
        return jsonify(refusal)  # the empty answer of a feature the server does not serve
    if refusal is not None:
        return _refused(refusal)
    if request.authorization is None:
        return None
    write = _written()
    if isinstance(write, Refusal):
        return _refused(write)
    g.jupyreg_write = write
    return None


def _written() -> Any:
    """The request as the guard reads it: a ``Write`` (of kind ``READ`` for a read), a
    ``Refusal``, or None (no such route)."""
    from flask import request

    from jupyreg.compat import static_prefix
    from jupyreg.server.guard import Request, read
    from jupyreg.server.routes import enabled_features

    if request.url_rule is None:
        return None  # no such route: Flask answers 404
    seen = Request(
        method=request.method,
        rule=request.url_rule.rule,
        args=request.args.to_dict(flat=False),
        body=lambda: request.get_data(cache=True),
        content_type=request.content_type,
        view_args=request.view_args or {},
        user=None,
    )
    return read(seen, static_prefix(), enabled_features())


def _guard() -> Any:
    """Once basic-auth has authenticated the caller: admins' routes refuse the rest, and a
    write gets its route's own check (403 for one that would bypass the lifecycle, with
    the call to use)."""
    from flask import g, request

    from jupyreg.compat import sender_is_admin
    from jupyreg.server.guard import READ, Refusal, judge
    from jupyreg.server.state import ServerState

    # read here when _read left it to basic-auth (no credentials) and basic-auth let it by
    write = g.pop("jupyreg_write", None) or _written()
    if write is None:
        return None
    if isinstance(write, Refusal):
        return _refused(write)
    if write.kind == READ and not write.admin:
        return None  # most requests: nothing to read of the registry or of the caller
    user = request.authorization.username if request.authorization else None
    admin = user is not None and sender_is_admin()
    state = g.jupyreg_state = ServerState()  # released when the request ends
    try:
        outcome = judge(write, user, state, admin)
    except RegistryError as exc:  # the model's lock is busy, the store unreachable
        return _error(exc)
    if isinstance(outcome, Refusal):
        return _refused(outcome)
    g.jupyreg_params = outcome
    return None


def _freeze_run_lineage(response: Any) -> Any:
    """After MLflow created a model version (a plain MLflow client's registration, whose
    run jupyreg's run-context provider recorded): that lineage is written onto the version,
    frozen at registration as jupyreg's own are. The version stands if this fails: its
    lineage is then read from its run."""
    from flask import current_app, request

    rule = request.url_rule.rule if request.url_rule is not None else ""
    if (
        request.method != "POST"
        or not rule.endswith(_CREATE_VERSION)
        or response.status_code != 200
    ):
        return response
    created = (response.get_json(silent=True) or {}).get("model_version") or {}
    try:
        from jupyreg.server.state import ServerState

        ServerState().store.freeze_run_lineage(created["name"], int(created["version"]))
    except Exception as exc:  # never the registration: it is made and answered
        current_app.logger.warning("jupyreg: lineage of %s not frozen: %s", created, exc)
    return response


_CREATE_VERSION = "/mlflow/model-versions/create"


def _refused(refusal: Any) -> Any:
    from flask import jsonify

    response = jsonify(refusal.payload())
    response.status_code = refusal.status
    return response


def _release(exc: BaseException | None) -> None:
    from flask import g

    state = g.pop("jupyreg_state", None)
    if state is not None:
        state.release()


def _creator_permission(username: str, name: str) -> str | None:
    """What a new model's creator gets (None: MLflow's MANAGE, for admins, who have every
    permission anyway): what an admin granted on the name before it existed, else the
    configured default; never MANAGE from a request alone, whatever its tags say."""
    from jupyreg.compat import explicit_model_permission, sender_is_admin
    from jupyreg.server.roles import creator_permission

    if sender_is_admin():
        return None
    return creator_permission(explicit_model_permission(name, username))


def _info() -> Any:
    from flask import jsonify

    return jsonify({"app": "jupyreg", "version": jupyreg.__version__, "user": _username()})


def _attest() -> Any:
    """Once basic-auth has authenticated the caller: a request that carries an OIDC token
    (``X-Jupyreg-Oidc-Token``) has it verified and mapped to a registry user, or is refused
    (401: not a valid token; 403: valid, but linked to no one here) before anything is
    read or written. The token is not kept, logged or echoed."""
    from flask import g, request

    from jupyreg.compat import user_exists
    from jupyreg.server import identities, oidc

    token = request.headers.get(oidc.TOKEN_HEADER)
    if token is None or request.authorization is None:
        return None  # no credentials: basic-auth has refused it already
    try:
        claims = oidc.verify(token.strip())
        user = identities.linked_user(identities.server_uri(), claims)
        if not user_exists(user):
            raise oidc.TokenRefused(f"the token is linked to {user}, who is not a user here", 403)
    except oidc.TokenRefused as exc:
        return _token_refused(exc)
    g.jupyreg_attested = (user, oidc.attestation(claims, request.authorization.username))
    return None


def _token_refused(exc: Any) -> Any:
    from flask import jsonify

    code = "UNAUTHENTICATED" if exc.status == 401 else "PERMISSION_DENIED"
    response = jsonify({"error_code": code, "message": str(exc)})
    response.status_code = exc.status
    return response


def _metrics() -> Any:
    """The webhook outbox's Prometheus metrics (admins: the server's operators)."""
    from flask import Response

    from jupyreg.compat import sender_is_admin
    from jupyreg.errors import PermissionDenied
    from jupyreg.server.actions import outbox_engine
    from jupyreg.server.outbox import metrics_text

    if not sender_is_admin():
        return _error(PermissionDenied(f"{_username()} is not an admin: metrics are for admins"))
    body, content_type = metrics_text(outbox_engine())
    return Response(body, content_type=content_type)


def _act(action: str) -> Any:
    """One lifecycle endpoint, as the authenticated user or, for an attested request, as
    the user its workload identity is linked to (with that user's permissions)."""
    from flask import g, jsonify

    from jupyreg.compat import act_as, model_permission, sender_is_admin
    from jupyreg.server.actions import Actions

    body = {k: v for k, v in g.get("jupyreg_params", {}).items() if k != "action"}
    user, attestation = g.get("jupyreg_attested") or (_username(), None)
    if attestation is not None:
        act_as(user)
    try:
        actions = Actions(user, sender_is_admin(), model_permission, attestation)
        return jsonify(actions.run(action, body))
    except RegistryError as exc:
        return _error(exc)


def _authenticated() -> bool:
    return True


def create_app(app: Any = None) -> Any:
    """MLflow's basic-auth app with jupyreg's guard and endpoints on the same Flask app."""
    from mlflow.server import app as mlflow_app
    from mlflow.server.auth import create_app as create_auth_app

    from jupyreg.compat import (
        authenticate_once_per_request,
        authorise_routes,
        decide_creator_grant,
        static_prefix,
    )
    from jupyreg.server.actions import ACTIONS
    from jupyreg.server.native import guard_native_routes
    from jupyreg.server.routes import enabled_features

    flask_app = app if app is not None else mlflow_app
    authenticate_once_per_request()
    decide_creator_grant(_creator_permission)
    flask_app.before_request(_deliverer)
    flask_app.before_request(_read)  # before basic-auth's checks, which assume a sane body
    wrapped = create_auth_app(flask_app)
    if wrapped is not flask_app:  # under uvicorn: FastAPI serves some routes itself
        guard_native_routes(wrapped, flask_app, enabled_features())
    prefixes = sorted({"", static_prefix()})  # served under --static-prefix as MLflow is
    # ours authorise per action and model inside the handler, after basic-auth has
    # authenticated the caller
    routes = [
        (prefix + route, "GET") for prefix in prefixes for route in (INFO_ROUTE, METRICS_ROUTE)
    ]
    routes += [
        (prefix + ACTION_ROUTE.replace("<action>", action), "POST")
        for prefix in prefixes
        for action in ACTIONS
    ]
    authorise_routes(routes, _authenticated)
    flask_app.before_request(_attest)
    flask_app.before_request(_guard)
    flask_app.after_request(_freeze_run_lineage)
    flask_app.teardown_request(_release)
    for prefix in prefixes:
        flask_app.add_url_rule(prefix + INFO_ROUTE, f"jupyreg_info{prefix}", _info, methods=["GET"])
        flask_app.add_url_rule(
            prefix + METRICS_ROUTE, f"jupyreg_metrics{prefix}", _metrics, methods=["GET"]
        )
        flask_app.add_url_rule(
            prefix + ACTION_ROUTE, f"jupyreg_action{prefix}", _act, methods=["POST"]
        )
    return wrapped
