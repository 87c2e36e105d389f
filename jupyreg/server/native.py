"""The guard for the writes MLflow's FastAPI app serves itself, not through Flask.

Under uvicorn, MLflow serves a few routes natively (artifact uploads, OpenTelemetry trace
ingestion, server jobs, the AI gateway, the assistant, MCP servers): Flask's
``before_request`` never sees them. This middleware sits innermost, after basic-auth has
authenticated the caller, and gives each such write the same verdict the Flask guard
gives its Flask twin (an artifact upload is the same route under both); a native write
with no twin must be one ``routes.NATIVE_OPEN`` names.
"""

from __future__ import annotations

import base64
from typing import Any

from jupyreg.server import routes
from jupyreg.server.guard import Refusal, Request, check


def guard_native_routes(fastapi_app: Any, flask_app: Any) -> None:
    """Append the guard as the innermost middleware of MLflow's FastAPI app."""
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.routing import Match, Mount

    native = [route for route in fastapi_app.router.routes if not isinstance(route, Mount)]

    async def dispatch(request: Any, call_next: Any) -> Any:
        if request.method in routes.WRITE_METHODS and any(
            route.matches(request.scope)[0] == Match.FULL for route in native
        ):
            import anyio
            from starlette.responses import JSONResponse

            outcome = await anyio.to_thread.run_sync(_verdict, flask_app, request)
            if isinstance(outcome, Refusal):
                return JSONResponse(outcome.payload(), status_code=outcome.status)
        return await call_next(request)

    # innermost: the stack is built on the first request, from this list, outermost first
    fastapi_app.user_middleware.append(Middleware(BaseHTTPMiddleware, dispatch=dispatch))


def _verdict(flask_app: Any, request: Any) -> Refusal | dict | None:
    from werkzeug.exceptions import HTTPException

    from jupyreg.compat import static_prefix
    from jupyreg.server.state import ServerState

    path, method = request.url.path, request.method
    try:
        rule, view_args = flask_app.url_map.bind("localhost").match(
            path, method=method, return_rule=True
        )
    except HTTPException:  # no Flask twin
        if routes.native_open(path, static_prefix()):
            return None
        return Refusal(403, f"'{method} {path}' is a write jupyreg's guard does not know")
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
