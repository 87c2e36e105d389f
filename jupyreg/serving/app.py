"""The scoring app of ``jupyreg serve``: MLflow's scoring protocol (``/invocations`` with
MLflow's own input parsing, prediction and output, ``/ping``, ``/health``) on FastAPI and
uvicorn, as ``mlflow models serve`` runs it, over a ``Follower`` instead of one fixed model;
plus ``/version`` (what is served), ``/metrics`` (Prometheus) and, with a secret, ``/webhook``
(an MLflow webhook delivery makes the follower look at once). Every response carries
``X-Model-Version``: for ``/invocations``, the version that answered it. Bad input is a 4xx
with a one-line message, never a 500: a body nested too deeply to parse, a webhook delivery
that is unsigned, stale, replayed or not of the shape MLflow sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request  # at module level: FastAPI resolves handler annotations here
from fastapi.responses import JSONResponse, Response

from jupyreg import compat

if TYPE_CHECKING:
    from jupyreg.serving.follower import Follower, Requests
    from jupyreg.serving.replica import Replica
    from jupyreg.webhooks import StageEntry

VERSION_HEADER = "X-Model-Version"
CONFIG_ENV = "JUPYREG_SERVE_CONFIG"
"""JSON settings a worker process builds its app from (``jupyreg serve --workers N``)."""
JUPYREG_DELIVERY_HEADER = "X-Jupyreg-Delivery-Id"
"""A jupyreg server's delivery id, the same on each retry of one delivery (DESIGN.md §9)."""
TOO_DEEP = "the request body nests arrays or objects too deeply to parse"


class _Metrics:
    """Requests, errors and latency per served version, and the version being served."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        labels = ["model", "version"]
        self.requests = Counter(
            "jupyreg_serve_requests", "Scoring requests", labels, registry=self.registry
        )
        self.errors = Counter(
            "jupyreg_serve_errors", "Scoring requests that failed", labels, registry=self.registry
        )
        self.latency = Histogram(
            "jupyreg_serve_request_seconds",
            "Scoring latency",
            labels,
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.served = Gauge(
            "jupyreg_serve_model_version",
            "The version being served",
            ["model"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.swaps = Counter(
            "jupyreg_serve_swaps", "Versions swapped in", ["model"], registry=self.registry
        )

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)


def create_app(
    follower: Follower | Replica,
    *,
    webhook_secret: str | None = None,
    deliveries: Deliveries | None = None,
) -> FastAPI:
    """The scoring app serving whatever ``follower`` serves at each request. ``deliveries``:
    where the webhook deliveries already received are remembered (a server's workers share
    one); default: this app's own."""
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
    from mlflow.exceptions import MlflowException
    from prometheus_client import CONTENT_TYPE_LATEST

    app = FastAPI(title=f"jupyreg serve {follower.name}")
    app.add_middleware(_VersionHeader, follower=follower)
    requests = getattr(follower, "requests", None)
    if requests is not None:  # a Replica: its loads yield to the requests it counts
        app.add_middleware(_Counting, requests=requests)
    metrics = _Metrics()
    metrics.served.labels(follower.name).set(follower.version)
    timeout = MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()

    @follower.on_change
    def _swapped(new: Any, old: Any) -> None:
        metrics.served.labels(follower.name).set(new.version)
        metrics.swaps.labels(follower.name).inc()

    async def ping() -> Response:
        return Response(content="\n", status_code=200, media_type="application/json")

    app.get("/ping")(ping)
    app.get("/health")(ping)

    @app.get("/version")
    async def version() -> Response:
        served = follower.current
        body = {**served.describe(), "following": follower.following}
        return JSONResponse(body, headers={VERSION_HEADER: str(served.version)})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(content=metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        served = follower.current  # this request's model, whatever swaps meanwhile
        labels = (follower.name, str(served.version))
        headers = {VERSION_HEADER: labels[1]}
        started = time.perf_counter()
        data = await request.body()
        content_type = request.headers.get("content-type") or ""
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(_score, data, content_type, served.model),
                timeout=timeout,
            )
            response = Response(
                content=result.response,
                status_code=result.status,
                media_type=result.mimetype,
                headers=headers,
            )
        except MlflowException as exc:
            response = Response(
                content=exc.serialize_as_json(),
                status_code=exc.get_http_status_code(),
                media_type="application/json",
                headers=headers,
            )
        except TimeoutError:
            response = Response(
                content="Request processing time exceeded limit",
                status_code=504,
                media_type="application/json",
                headers=headers,
            )
        metrics.requests.labels(*labels).inc()
        if response.status_code >= 400:
            metrics.errors.labels(*labels).inc()
        metrics.latency.labels(*labels).observe(time.perf_counter() - started)
        return response

    if webhook_secret:
        received = deliveries or Deliveries()

        @app.post("/webhook")
        async def webhook(request: Request) -> Response:
            from jupyreg.errors import InvalidArgument, InvalidSignature

            try:
                entry = received.accept(request.headers, await request.body(), webhook_secret)
            except (InvalidSignature, InvalidArgument) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            if entry is not None and entry.name == follower.name:
                follower.check_now()
            return JSONResponse({"ok": True})

    return app


def _score(data: bytes, content_type: str, model: Any) -> Any:
    """``compat.score``, with the JSON that Python's parser refuses beyond what MLflow
    catches (nesting past its recursion limit, an integer past its digit limit) refused as
    bad input, as MLflow refuses other unparsable input."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    try:
        return compat.score(data, content_type, model)
    except RecursionError:
        raise MlflowException(TOO_DEEP, error_code=BAD_REQUEST) from None
    except ValueError as exc:
        if "integer string conversion" not in str(exc):  # CPython's words for that limit
            raise
        raise MlflowException(
            f"the request body holds an integer of more than {sys.get_int_max_str_digits()} digits",
            error_code=BAD_REQUEST,
        ) from None


class Deliveries:
    """The webhook deliveries already received, so that a signed delivery counts once: a
    replay within the signature's freshness window is refused. One empty file per delivery
    id in ``directory`` (created atomically, so the workers of one server sharing the
    directory agree), forgotten once no delivery carrying that id could pass the freshness
    check any more: what is kept is bounded by the deliveries of the last
    ``2 × TOLERANCE_SECONDS``, and only correctly signed ones are kept."""

    def __init__(self, directory: Path | None = None) -> None:
        if directory is None:
            self._own = tempfile.TemporaryDirectory(prefix="jupyreg-deliveries-")
            directory = Path(self._own.name)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory

    def accept(self, headers: Mapping[str, str], body: bytes, secret: str) -> StageEntry | None:
        """What a delivery means in lifecycle terms, once it is signed with ``secret``, fresh,
        of MLflow's shape and new: neither its ``X-MLflow-Delivery-Id`` (signed) nor, where
        a jupyreg server sent one, its ``X-Jupyreg-Delivery-Id`` (the same on each retry) was
        received before. Raises InvalidSignature or InvalidArgument, one line each."""
        from jupyreg.errors import InvalidArgument, InvalidSignature
        from jupyreg.webhooks import DELIVERY_HEADER, TOLERANCE_SECONDS, stage_entry, verify

        try:
            payload = verify(headers, body, secret)
        except RecursionError:
            raise InvalidArgument(f"{TOO_DEEP}: not an MLflow webhook payload") from None
        except ValueError as exc:  # not UTF-8, not JSON
            raise InvalidArgument(f"the delivery's body is not JSON ({exc})") from None
        shape = 'not an MLflow webhook payload: expected {"entity", "action", "data": {...}}'
        if not isinstance(payload, dict) or not isinstance(payload.get("data", {}), dict):
            raise InvalidArgument(shape)
        try:
            entry = stage_entry(payload)
        except (KeyError, TypeError, ValueError, OverflowError):  # name or version missing/bad
            raise InvalidArgument(f"{shape} with the model's name and version") from None
        for header in (DELIVERY_HEADER, JUPYREG_DELIVERY_HEADER):
            delivery = next((v for k, v in headers.items() if k.lower() == header.lower()), None)
            if delivery is not None and not self._claim(header, delivery, 2 * TOLERANCE_SECONDS):
                raise InvalidSignature(
                    f"delivery {delivery[:80]!r} ({header}) was already received: a replay"
                )
        return entry

    def _claim(self, header: str, delivery: str, keep_seconds: float) -> bool:
        """Whether ``delivery`` arrives for the first time (it is remembered from now)."""
        horizon = time.time() - keep_seconds
        for entry in os.scandir(self.directory):
            with contextlib.suppress(FileNotFoundError):  # another worker forgot it first
                if entry.stat().st_mtime < horizon:
                    os.unlink(entry.path)
        name = hashlib.sha256(f"{header.lower()}:{delivery}".encode()).hexdigest()
        try:
            os.close(os.open(self.directory / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        return True


class _VersionHeader:
    """ASGI middleware: ``X-Model-Version`` on every response that has none yet (the
    scoring route sets the version that answered; ``/ping``, errors, ... get the current)."""

    def __init__(self, app: Any, follower: Follower | Replica) -> None:
        self.app = app
        self.follower = follower

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        current = str(self.follower.version).encode()

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                if not any(key.lower() == b"x-model-version" for key, _ in headers):
                    headers.append((b"x-model-version", current))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


class _Counting:
    """ASGI middleware (the outermost): counts the requests being answered."""

    def __init__(self, app: Any, requests: Requests) -> None:
        self.app = app
        self.requests = requests

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # the lifespan "request" lasts as long as the app
            await self.app(scope, receive, send)
            return
        self.requests.started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.requests.finished()


def app_from_environment() -> FastAPI:
    """The app of one ``jupyreg serve`` worker: it serves what its supervisor verified
    (``JUPYREG_SERVE_CONFIG`` says where that is published)."""
    from jupyreg.serving.replica import Channel, Replica

    config = json.loads(os.environ[CONFIG_ENV])
    replica = Replica(
        Channel(config["state_dir"]),
        config["name"],
        config["following"],
        supervisor=config["supervisor"],
    )
    deliveries = Deliveries(Path(config["state_dir"]) / "deliveries")
    return _frozen(
        create_app(replica, webhook_secret=config.get("webhook_secret"), deliveries=deliveries)
    )


def _frozen(app: FastAPI) -> FastAPI:
    """Move what start-up allocated (MLflow, SQLAlchemy, the model) out of the garbage
    collector's reach: each request allocates enough to trigger collections, whose cost
    otherwise grows with that whole heap."""
    import gc

    gc.collect()
    gc.freeze()
    return app
