"""REST handlers under ``/jupyreg/api``: each parses the request, calls ``Registry`` in a
worker thread and serialises the answer. Registry errors become
``{"error": TypeName, "message": ...}`` with the status of ``jupyreg.errors.http_status``."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

from jupyreg.errors import InvalidArgument, RegistryError, http_status
from jupyreg.lab.serialize import (
    error_body,
    event_comments,
    request_review,
    staleness_json,
    version_extras,
)
from jupyreg.lab.settings import JupyRegServer
from jupyreg.serialize import to_json

if TYPE_CHECKING:
    from jupyreg.registry import Registry


REGISTRY_HEADER = "X-JupyReg-Registry-URI"


class RegistryCallFailed(tornado.web.HTTPError):
    """A registry error on its way to ``write_error``."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(http_status(error), reason=type(error).__name__)
        self.error = error


class RegistryHandler(APIHandler):
    def initialize(self, settings: JupyRegServer) -> None:
        self.jupyreg = settings

    async def call(self, action: Callable[[Registry], Any]) -> Any:
        """``action(registry)`` in a worker thread: MLflow calls block. The registry is the
        configured one, or the one the sidebar's ``registryUri`` setting names (sent as the
        ``X-JupyReg-Registry-URI`` header, never in a URL, which the access log records).
        That header is checked first (``settings.chosen_uri``): a scheme jupyreg supports
        (else 400 listing them) and, for SQLite, an existing MLflow database anywhere the
        user can read (a read never creates a registry; why not only under the root
        directory: see there)."""
        uri = self.request.headers.get(REGISTRY_HEADER, "").strip() or None
        try:
            return await IOLoop.current().run_in_executor(
                None, lambda: action(self.jupyreg.registry(uri))
            )
        except RegistryError as error:
            raise RegistryCallFailed(error) from error

    def body(self) -> dict[str, Any]:
        try:
            body = self.get_json_body() or {}
        except (tornado.web.HTTPError, UnicodeDecodeError):  # jupyter_server decodes unguarded
            raise RegistryCallFailed(InvalidArgument("the request body is not JSON")) from None
        if not isinstance(body, dict):
            raise RegistryCallFailed(InvalidArgument("the request body must be a JSON object"))
        return body

    def reply(self, payload: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        failure = exc_info[1] if exc_info else None
        if isinstance(failure, RegistryCallFailed):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(error_body(failure.error)))
        else:
            super().write_error(status_code, **kwargs)


class IdentityHandler(RegistryHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply({"user": await self.call(lambda registry: registry.user)})


class ModelsHandler(RegistryHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        """The models, each with ``staleness``: its Production against the git + DVC
        repository of the server's root directory (None without a Production version)."""
        root = self.root_dir
        models, stale = await self.call(lambda registry: _models_with_staleness(registry, root))
        self.reply({"models": [{**m, "staleness": stale.get(m["name"])} for m in to_json(models)]})

    @property
    def root_dir(self) -> str:
        """The directory the Jupyter server serves (its notebooks' repository)."""
        return str(self.settings.get("server_root_dir") or ".")


class VersionsHandler(RegistryHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        versions, pending = await self.call(
            lambda registry: (
                registry.version_records(name),
                registry.request_records(name, "pending"),
            )
        )
        self.reply(
            {
                "name": name,
                "versions": [version_extras(v, pending) for v in to_json(versions)],
            }
        )


class CardHandler(RegistryHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        """The model card (of ``?version=N``, else of Production): the whole Markdown, and
        its YAML front matter and body apart, for the sidebar to render the body."""
        from jupyreg.card import model_card
        from jupyreg.widgets.markup import split_front_matter

        version = self.get_query_argument("version", None) or None
        card = await self.call(lambda registry: model_card(registry, name, version))
        front_matter, body = split_front_matter(card)
        self.reply(
            {
                "name": name,
                "version": version,
                "card": card,
                "front_matter": front_matter,
                "body": body,
            }
        )


class HistoryHandler(RegistryHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        version = self.get_query_argument("version", None)
        events, requests = await self.call(
            lambda registry: (
                registry.history_records(name, version),
                registry.request_records(name, None),
            )
        )
        by_id = {r.id: r for r in requests}
        self.reply({"name": name, "history": [event_comments(e, by_id) for e in to_json(events)]})


class RequestsHandler(RegistryHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        name = self.get_query_argument("name", None) or None
        status = self.get_query_argument("status", "pending")
        wanted = None if status == "all" else status
        review = self.get_query_argument("review", "1") != "0"
        requests, versions, blocked = await self.call(
            lambda registry: _requests_for_review(registry, name, wanted, review)
        )
        self.reply(
            {
                "requests": [
                    {**request_review(r, versions[r["name"]]), "blocked": blocked.get(r["id"])}
                    if review
                    else r
                    for r in to_json(requests)
                ]
            }
        )

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.body()
        name, stage = _text(body, "name"), _text(body, "stage")
        request = await self.call(
            lambda registry: registry.request(
                name, body.get("version"), stage, reason=body.get("reason")
            )
        )
        self.reply({"request": to_json(request)}, status=201)


class DecisionHandler(RegistryHandler):
    @tornado.web.authenticated
    async def post(self, request_id: str, decision: str) -> None:
        comment = self.body().get("comment")
        decide = {
            "approve": lambda registry: registry.approve(request_id, comment=comment),
            "reject": lambda registry: registry.reject(request_id, comment=comment),
        }[decision]
        request = await self.call(decide)
        self.reply({"request": to_json(request)})


def _requests_for_review(
    registry: Registry, name: str | None, status: str | None, review: bool
) -> tuple[list[Any], dict[str, list[Any]], dict[str, str | None]]:
    """The requests, the versions of each model they concern (one batched read per
    model) for their metrics against Production, and why the reader may not approve each
    pending one (None: they may), as the lifecycle says."""
    requests = registry.request_records(name, status)
    names = sorted({r.name for r in requests}) if review else []
    policies = {n: registry.policy(n) for n in names}
    blocked = {
        r.id: registry.approval_blocker(r, policies[r.name])
        for r in requests
        if review and r.status == "pending"
    }
    return requests, {n: registry.version_records(n) for n in names}, blocked


STALENESS_TTL_S = 30.0
"""How long a model's staleness is reused by the listing (the sidebar polls every few
seconds; measuring costs git and registry reads). A new Production version, a commit or
``git add`` in the server's root repository measure again at once."""
_staleness_cache: dict[tuple[Any, ...], tuple[float, dict[str, Any] | None]] = {}
_staleness_lock = threading.Lock()


def _models_with_staleness(
    registry: Registry, root: str
) -> tuple[list[Any], dict[str, dict[str, Any] | None]]:
    models = registry.model_records()
    marker = _git_marker(root)
    found = {}
    for m in models:
        if m.production is None:
            continue
        key = (registry.registry_uri, m.name, m.production, root, marker)
        now = time.monotonic()
        with _staleness_lock:
            cached = _staleness_cache.get(key)
        if cached is not None and now - cached[0] < STALENESS_TTL_S:
            found[m.name] = cached[1]
            continue
        found[m.name] = staleness_json(registry, m.name, root)
        with _staleness_lock:
            stale_keys = [
                k for k, (at, _) in _staleness_cache.items() if now - at >= STALENESS_TTL_S
            ]
            for k in stale_keys:
                del _staleness_cache[k]
            _staleness_cache[key] = (now, found[m.name])
    return models, found


def _git_marker(root: str) -> tuple[int, ...] | None:
    """Changes when a commit is made or files are staged in ``root``'s repository (the
    modification times of its ``.git/HEAD`` and ``.git/index``)."""
    marks = []
    for name in ("HEAD", "index"):
        try:
            marks.append(os.stat(os.path.join(root, ".git", name)).st_mtime_ns)
        except OSError:
            marks.append(0)
    return tuple(marks)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RegistryCallFailed(InvalidArgument(f"the request body needs a non-empty {key!r}"))
    return value


def setup_handlers(web_app: Any, settings: JupyRegServer) -> None:
    base = url_path_join(web_app.settings["base_url"], "jupyreg", "api")
    routes = [
        ("identity", IdentityHandler),
        ("models", ModelsHandler),
        ("models/(?P<name>[^/]+)/versions", VersionsHandler),
        ("models/(?P<name>[^/]+)/history", HistoryHandler),
        ("models/(?P<name>[^/]+)/card", CardHandler),
        ("requests", RequestsHandler),
        ("requests/(?P<request_id>[^/]+)/(?P<decision>approve|reject)", DecisionHandler),
    ]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base, path), handler, {"settings": settings}) for path, handler in routes],
    )
