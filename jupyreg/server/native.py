"""The guard for the routes MLflow's FastAPI app serves itself, not through Flask.

Under uvicorn, MLflow serves a few routers natively (artifact transfers, OpenTelemetry
trace ingestion, server jobs, the AI gateway, the assistant, MCP servers, skills): Flask's
``before_request`` never sees them. Two middlewares stand in for it:

- the gate, outermost: a native route is served only when its feature is
  (``routes.NATIVE``); an optional feature an operator enabled serves admins only; a
  native route no entry names is refused. It judges Flask's routes by their feature too,
  before MLflow's own middleware answers for some of them;
- the write guard, innermost (after basic-auth has authenticated the caller): a write
  with a Flask twin (an artifact upload is the same route under both) gets the verdict
  the Flask guard gives its twin.
"""

from __future__ import annotations

import base64
from typing import Any

from jupyreg.server import routes
from jupyreg.server.guard import Refusal, Request, admins_only, check, gate, not_served


def guard_native_routes(fastapi_app: Any, flask_app: Any, enabled: frozenset[str]) -> None:
    """Put the gate outermost and the write guard innermost in MLflow's FastAPI app."""
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.routing import Match, Mount

    native = [route for route in fastapi_app.router.routes if not isinstance(route, Mount)]

    def is_native(request: Any) -> bool:
        return any(route.matches(request.scope)[0] == Match.FULL for route in native)

    async def gate(request: Any, call_next: Any) -> Any:
        if is_native(request):
            feature, refusal = _gate(request.method, request.scope["path"], enabled)
            if refusal is None and feature not in routes.SERVED:  # enabled: admins only
                import anyio

                from jupyreg.compat import native_caller_is_admin

                if not await anyio.to_thread.run_sync(native_caller_is_admin, request):
                    refusal = admins_only(feature)
            if refusal is not None:
                return _response(refusal)
        else:
            refusal = _flask_gate(flask_app, request.method, request.scope["path"], enabled)
            if refusal is not None:
                return _response(refusal)
        return await call_next(request)

    async def guard_writes(request: Any, call_next: Any) -> Any:
        if request.method in routes.WRITE_METHODS and is_native(request):
            import anyio

            outcome = await anyio.to_thread.run_sync(_verdict, flask_app, request)
            if isinstance(outcome, Refusal):
                return _response(outcome)
        return await call_next(request)

    # the stack is built on the first request, from this list, outermost first
    fastapi_app.user_middleware.insert(0, Middleware(BaseHTTPMiddleware, dispatch=gate))
    fastapi_app.user_middleware.append(Middleware(BaseHTTPMiddleware, dispatch=guard_writes))


def _response(refusal: Refusal | dict) -> Any:
    """A refusal, or the empty answer of a feature the server does not serve."""
    from starlette.responses import JSONResponse

    if isinstance(refusal, dict):
        return JSONResponse(refusal)
    return JSONResponse(refusal.payload(), status_code=refusal.status)


def _gate(method: str, path: str, enabled: frozenset[str]) -> tuple[str, Refusal | None]:
    """A native route's feature, and the refusal of a route not classified or not served."""
    from jupyreg.compat import static_prefix

    feature = routes.native_feature(path, static_prefix())
    if feature is None:
        return "", Refusal(
            403, f"'{method} {path}' is a route jupyreg's guard does not know: it is refused"
        )
    return feature, None if routes.serves(feature, enabled) else not_served(feature)


def _flask_gate(
    flask_app: Any, method: str, path: str, enabled: frozenset[str]
) -> Refusal | dict | None:
    """The gate of a Flask route (None for a path no rule matches: Flask answers 404)."""
    from jupyreg.compat import static_prefix

    matched = _flask_rule(flask_app, method, path)
    if matched is None:
        return None
    rule, prefix = matched[0].rule, static_prefix()
    return gate(
        routes.route(method, rule, prefix), routes.route_name(method, rule, prefix), enabled
    )


def _flask_rule(flask_app: Any, method: str, path: str) -> tuple[Any, dict] | None:
    from werkzeug.exceptions import HTTPException

    try:
        return flask_app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    except HTTPException:
        return None


def _verdict(flask_app: Any, request: Any) -> Refusal | dict | None:
    from jupyreg.compat import static_prefix
    from jupyreg.server.state import ServerState

    path, method = request.scope["path"], request.method
    matched = _flask_rule(flask_app, method, path)
    if matched is None:  # no Flask twin: the gate has judged its feature
        return None
    rule, view_args = matched
    seen = Request(
        method=method,
        rule=rule.rule,
        args={key: request.query_params.getlist(key) for key in request.query_params},
        body=lambda: b"",  # the native routes with a twin take file content, never read here
        content_type=request.headers.get("content-type"),
        view_args=view_args,
        user=_basic_auth_user(request.headers.get("authorization", "")),
    )
    state = ServerState()
    try:
        return check(seen, state, static_prefix())
    finally:
        state.release()


def _basic_auth_user(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token).decode().partition(":")[0] or None
    except ValueError:
        return None
