"""Webhook deliveries of a team server, kept in its registry database: a durable outbox.

A lifecycle step's writes and the deliveries they cause (one per active webhook subscribed
to each event) are one transaction: a committed step always has its deliveries, a step
rolled back has none. A deliverer thread in every server process sends them, signed as
MLflow signs its own webhooks (same headers, payload shape and HMAC; existing receivers
keep working) plus ``X-Jupyreg-Delivery-Id``; both delivery-id headers stay the same on
every retry (receivers dedupe on them), the signature and its timestamp are made at each
sending. Replicas claim a delivery attempt by a compare-and-set of its attempt count (one
replica wins each attempt, on PostgreSQL and SQLite alike). A model's deliveries to one
webhook go out in step order: a later one waits while an earlier one is pending. A
failed attempt is retried with exponential backoff and jitter until
``JUPYREG_WEBHOOK_RETRY_SECONDS`` (default 24 h) after the step, then the delivery is
``failed``; every attempt is recorded (time, status code, latency, error).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jupyreg import webhooks
from jupyreg.errors import InvalidArgument, NotFound

DELIVERY_HEADER = "X-Jupyreg-Delivery-Id"
RETRY_ENV = "JUPYREG_WEBHOOK_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 24 * 3600
BACKOFF_MAX_ENV = "JUPYREG_WEBHOOK_BACKOFF_MAX_SECONDS"
DEFAULT_BACKOFF_MAX = 60.0
LEASE_MS = 30_000
"""How long a claimed attempt is the claimer's: a process killed while sending leaves it
to be claimed again after this long."""
POLL_SECONDS = 0.5
REQUEST_TIMEOUT = 10
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
_log = logging.getLogger(__name__)


@functools.cache
def _tables() -> tuple[Any, Any, Any]:
    import sqlalchemy as sa

    metadata = sa.MetaData()
    deliveries = sa.Table(
        "jupyreg_webhook_deliveries",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),  # step order
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("hook", sa.String(256), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("retry_from", sa.BigInteger, nullable=False),  # the retry window's start
        sa.Column("next_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger),
        sa.Index("jupyreg_webhook_deliveries_status", "status", "seq"),
    )
    attempts = sa.Table(
        "jupyreg_webhook_attempts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(36), nullable=False, index=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
    )
    return metadata, deliveries, attempts


_made: set[int] = set()


def create_tables(engine: Any) -> None:
    """The outbox's tables in the registry database (kept when they exist); once per
    engine in a process."""
    if id(engine) in _made:
        return
    metadata, _, _ = _tables()
    metadata.create_all(engine)
    _made.add(id(engine))


def now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


# writing: inside the step's transaction ------------------------------------------


def enqueue(
    session: Any,
    events: Sequence[tuple[str, str, Mapping[str, str]]],
    hooks: Callable[[str, str], Iterable[str]],
) -> int:
    """Add, in ``session`` (the step's transaction), one pending delivery per event
    (``entity``, ``action``, payload) and active webhook subscribed to it
    (``hooks(entity, action)`` lists them). Returns how many."""
    _, deliveries, _ = _tables()
    now = now_ms()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "hook": hook,
            "event": f"{entity}.{action}",
            "name": str(payload.get("name", "")),
            "payload": json.dumps(dict(payload)),
            "status": PENDING,
            "attempts": 0,
            "created_at": now,
            "retry_from": now,
            "next_at": now,
        }
        for entity, action, payload in events
        for hook in hooks(entity, action)
    ]
    if rows:
        session.execute(deliveries.insert(), rows)
    return len(rows)


# sending: a thread in every server process ----------------------------------------


class Deliverer(threading.Thread):
    """Claims due deliveries and sends them, until the process ends. ``wake()`` after a
    commit sends without waiting for the next poll."""

    def __init__(self, engine: Any, webhook: Any) -> None:
        """``webhook(hook_id)``: MLflow's webhook (url, secret, status), None if deleted."""
        super().__init__(name="jupyreg-webhook-deliverer", daemon=True)
        self.engine, self.webhook = engine, webhook
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        create_tables(self.engine)
        while True:
            try:
                while self.deliver_due():
                    pass
            except Exception:  # the database went away for a moment: try again later
                _log.warning("jupyreg: webhook deliveries not sent this round", exc_info=True)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def deliver_due(self) -> int:
        """Send every delivery due now that this process claims; returns how many."""
        claimed = claim(self.engine)
        for row in claimed:
            self._send(row)
        return len(claimed)

    def _send(self, row: Any) -> None:
        try:
            hook = self.webhook(row.hook)
        except Exception as exc:  # e.g. its secret was encrypted with another key
            error = (
                f"the webhook could not be read ({type(exc).__name__}): every replica needs "
                "the same MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
            )
            _record(self.engine, row, None, 0, error)
            return
        if hook is None or not _active(hook):
            _record(self.engine, row, None, 0, "the webhook was deleted or deactivated", final=True)
            return
        started = time.monotonic()
        code, error = send(hook, row.id, row.event, json.loads(row.payload), row.created_at)
        latency = int((time.monotonic() - started) * 1000)
        _record(self.engine, row, code, latency, error)


_running: dict[int, Deliverer] = {}  # process id -> its deliverer (a fork starts its own)
_start = threading.Lock()


def ensure_deliverer(engine: Any, webhook: Any) -> None:
    """Start this process's deliverer, once."""
    if os.getpid() in _running:
        return
    with _start:
        if os.getpid() not in _running:
            deliverer = Deliverer(engine, webhook)
            _running[os.getpid()] = deliverer
            deliverer.start()


def running() -> bool:
    """Whether this process's deliverer has started."""
    return os.getpid() in _running


def wake() -> None:
    """Tell this process's deliverer that a step has committed deliveries."""
    deliverer = _running.get(os.getpid())
    if deliverer is not None:
        deliverer.wake()


def _active(hook: Any) -> bool:
    status = getattr(hook, "status", None)
    return status is None or bool(status.is_active())


def claim(engine: Any) -> list[Any]:
    """The deliveries this process may send now: the oldest pending delivery of each
    (webhook, model) when it is due, each claimed by a compare-and-set of its attempt
    count (no two processes send the same attempt), with a lease of ``LEASE_MS``."""
    import sqlalchemy as sa

    _, deliveries, _ = _tables()
    now = now_ms()
    with engine.connect() as connection:
        pending = connection.execute(
            sa.select(deliveries)
            .where(deliveries.c.status == PENDING)
            .order_by(deliveries.c.seq)
            .limit(1000)
        ).all()
    heads: dict[tuple[str, str], Any] = {}
    for row in pending:
        heads.setdefault((row.hook, row.name), row)
    claimed = []
    for row in heads.values():
        if row.next_at > now:
            continue
        with engine.begin() as connection:
            won = connection.execute(
                deliveries.update()
                .where(
                    (deliveries.c.seq == row.seq)
                    & (deliveries.c.attempts == row.attempts)
                    & (deliveries.c.status == PENDING)
                )
                .values(attempts=row.attempts + 1, next_at=now + LEASE_MS)
            ).rowcount
        if won == 1:
            claimed.append(row)
    return claimed


def send(
    hook: Any, delivery_id: str, event: str, payload: Mapping[str, Any], created_ms: int
) -> tuple[int | None, str | None]:
    """One signed POST of a delivery, as MLflow sends its webhooks (its headers, payload
    shape and HMAC-SHA256 signature, made now); returns (status code, error)."""
    import requests

    from jupyreg.compat import check_webhook_url

    entity, _, action = event.partition(".")
    body = json.dumps(
        {"entity": entity, "action": action, "timestamp": _iso(created_ms), "data": payload}
    )
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        webhooks.DELIVERY_HEADER: delivery_id,
        webhooks.TIMESTAMP_HEADER: timestamp,
        DELIVERY_HEADER: delivery_id,
    }
    if getattr(hook, "secret", None):
        headers[webhooks.SIGNATURE_HEADER] = webhooks.sign(
            hook.secret, delivery_id, timestamp, body
        )
    try:
        check_webhook_url(hook.url)
        response = requests.post(
            hook.url, data=body.encode(), headers=headers, timeout=REQUEST_TIMEOUT
        )
    except Exception as exc:  # refused, unreachable, timed out, a URL MLflow forbids
        return None, f"{type(exc).__name__}: {str(exc)[:300]}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _record(
    engine: Any, row: Any, code: int | None, latency_ms: int, error: str | None, final: bool = False
) -> None:
    """Keep the attempt, and the delivery's state after it: delivered, pending again after
    a backoff, or failed once the retry window is over."""
    _, deliveries, attempts = _tables()
    now = now_ms()
    values: dict[str, Any] = {"last_status_code": code, "last_error": error}
    if error is None:
        values |= {"status": DELIVERED, "delivered_at": now}
    elif final or now - row.retry_from > _retry_seconds() * 1000:
        values["status"] = FAILED
    else:
        values["next_at"] = now + int(_backoff(row.attempts + 1) * 1000)
    with engine.begin() as connection:
        connection.execute(
            attempts.insert().values(
                delivery_id=row.id, at=now, status_code=code, latency_ms=latency_ms, error=error
            )
        )
        connection.execute(
            deliveries.update()
            .where((deliveries.c.seq == row.seq) & (deliveries.c.status == PENDING))
            .values(**values)
        )


def _retry_seconds() -> float:
    return float(os.environ.get(RETRY_ENV) or DEFAULT_RETRY_SECONDS)


def _backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from 1 s up to the maximum, jittered
    so that deliveries that failed together do not come back together."""
    ceiling = float(os.environ.get(BACKOFF_MAX_ENV) or DEFAULT_BACKOFF_MAX)
    return min(2.0 ** max(0, attempt - 1), ceiling) * random.uniform(0.5, 1.5)


# reading and acting: the admin API ------------------------------------------------


def listing(
    engine: Any, hook: str | None = None, status: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Delivery records, newest first: id, hook, event, name, status, attempts,
    last_status_code, last_error, created_at, delivered_at."""
    import sqlalchemy as sa

    if status is not None and status not in STATUSES:
        raise InvalidArgument(f"unknown delivery status {status!r}: use {', '.join(STATUSES)}")
    _, deliveries, _ = _tables()
    query = sa.select(deliveries).order_by(deliveries.c.seq.desc()).limit(limit)
    if hook:
        query = query.where(deliveries.c.hook == hook)
    if status:
        query = query.where(deliveries.c.status == status)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [_record_of(row) for row in rows]


def _record_of(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "hook": row.hook,
        "event": row.event,
        "name": row.name,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "delivered_at": _iso(row.delivered_at),
    }


def redeliver(engine: Any, delivery_id: str) -> dict[str, Any]:
    """Send a delivery again (same id, signed afresh, a new retry window), whatever its
    state."""
    import sqlalchemy as sa

    _, deliveries, _ = _tables()
    with engine.begin() as connection:
        changed = connection.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(status=PENDING, next_at=now_ms(), retry_from=now_ms())
        ).rowcount
        if not changed:
            raise NotFound(f"no webhook delivery {delivery_id!r}: see jupyreg webhooks deliveries")
        row = connection.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).one()
    return _record_of(row)


LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METRICS_WINDOW_MS = 24 * 3600 * 1000
"""The attempts the latency histogram counts: those of the last 24 hours."""


def metrics_text(engine: Any) -> tuple[bytes, str]:
    """The outbox in Prometheus' text format (prometheus-client), read from the database
    so that every replica's scrape says the same: deliveries by status, and the attempts
    of the last 24 hours by outcome with their latency. Returns (body, content type)."""
    import sqlalchemy as sa
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    _, deliveries, attempts = _tables()
    since = now_ms() - METRICS_WINDOW_MS
    with engine.connect() as connection:
        by_status = dict(
            connection.execute(
                sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
            ).all()
        )
        recent = connection.execute(
            sa.select(attempts.c.latency_ms, attempts.c.error).where(attempts.c.at >= since)
        ).all()

    class Outbox:
        def collect(self) -> Iterable[Any]:
            gauge = GaugeMetricFamily(
                "jupyreg_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
            )
            for status in STATUSES:
                gauge.add_metric([status], by_status.get(status, 0))
            yield gauge
            outcome = GaugeMetricFamily(
                "jupyreg_webhook_attempts_recent",
                "Delivery attempts of the last 24 hours by outcome",
                labels=["outcome"],
            )
            failed = sum(1 for _, error in recent if error)
            outcome.add_metric(["ok"], len(recent) - failed)
            outcome.add_metric(["error"], failed)
            yield outcome
            seconds = [latency / 1000 for latency, _ in recent]
            buckets = [(str(b), sum(1 for x in seconds if x <= b)) for b in LATENCY_BUCKETS]
            yield HistogramMetricFamily(
                "jupyreg_webhook_attempt_latency_seconds",
                "Latency of the delivery attempts of the last 24 hours",
                buckets=[*buckets, ("+Inf", len(seconds))],
                sum_value=sum(seconds),
            )

    registry = CollectorRegistry()
    registry.register(Outbox())
    return generate_latest(registry), CONTENT_TYPE_LATEST
