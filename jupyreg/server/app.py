"""The ``mlflow.app`` entry point ``jupyreg``: basic-auth plus the lifecycle endpoints."""

from __future__ import annotations

from typing import Any

import jupyreg
from jupyreg.errors import NotFound, RegistryBusy, RegistryError, http_status
from jupyreg.server.guard import refusal

INFO_ROUTE = "/api/2.0/jupyreg/info"
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


def _guard() -> Any:
    """Refuse direct writes that would bypass the lifecycle (403, with the right call)."""
    from flask import jsonify, request

    if request.method not in ("POST", "PATCH", "DELETE"):
        return None
    params = {**request.args.to_dict(), **(request.get_json(silent=True) or {})}
    user = request.authorization.username if request.authorization else None
    message = refusal(request.method, request.path, params, user)
    if message is None:
        return None
    response = jsonify({"error_code": "PERMISSION_DENIED", "message": f"jupyreg: {message}"})
    response.status_code = 403
    return response


def _info() -> Any:
    from flask import jsonify

    return jsonify({"app": "jupyreg", "version": jupyreg.__version__, "user": _username()})


def _act(action: str) -> Any:
    from flask import jsonify, request

    from jupyreg.compat import model_permission, sender_is_admin
    from jupyreg.server.actions import ACTIONS, Actions

    if action not in ACTIONS:
        return _error(NotFound(f"no jupyreg endpoint {action!r}: use one of {', '.join(ACTIONS)}"))
    body = request.get_json(silent=True) or {}
    try:
        actions = Actions(_username(), sender_is_admin(), model_permission)
        return jsonify(getattr(actions, action)(body))
    except RegistryError as exc:
        return _error(exc)


def _authenticated() -> bool:
    return True


def create_app(app: Any = None) -> Any:
    """MLflow's basic-auth app with jupyreg's guard and endpoints on the same Flask app."""
    from mlflow.server import app as mlflow_app
    from mlflow.server.auth import create_app as create_auth_app

    from jupyreg.compat import authorise_routes
    from jupyreg.server.actions import ACTIONS

    flask_app = app if app is not None else mlflow_app
    wrapped = create_auth_app(flask_app)
    # ours authorise per action and model inside the handler, after basic-auth has
    # authenticated the caller
    routes = [(INFO_ROUTE, "GET")]
    routes += [(ACTION_ROUTE.replace("<action>", action), "POST") for action in ACTIONS]
    authorise_routes(routes, _authenticated)
    flask_app.before_request(_guard)
    flask_app.add_url_rule(INFO_ROUTE, "jupyreg_info", _info, methods=["GET"])
    flask_app.add_url_rule(ACTION_ROUTE, "jupyreg_action", _act, methods=["POST"])
    return wrapped
