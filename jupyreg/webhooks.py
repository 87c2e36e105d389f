"""MLflow webhooks as jupyreg's CI/CD signal, and verification of their deliveries.

A jupyreg transition writes through MLflow's registry API, so MLflow (≥ 3.3, SQL
backends) delivers signed webhooks for it. "Version V of NAME entered Production" is the
``model_version_alias.created`` event with ``data = {"name": NAME, "alias":
"production", "version": V}``; every stage change also sends ``model_version_tag.set``
with ``data.key == "jupyreg.stage"`` and ``data.value`` the new stage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, MutableSet, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jupyreg.errors import InvalidSignature
from jupyreg.lifecycle import STAGE_ALIASES
from jupyreg.tags import STAGE_TAG

if TYPE_CHECKING:
    import pandas as pd

    from jupyreg.store import Store

DEFAULT_EVENTS = (
    "model_version_alias.created",
    "model_version_alias.deleted",
    "model_version_tag.set",
)
SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
TOLERANCE_SECONDS = 300


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise InvalidSignature(f"missing header {name}: not an MLflow webhook delivery")


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's webhook signature of ``body``: ``v1,`` + base64 HMAC-SHA256 of
    ``"{delivery_id}.{timestamp}.{body}"``, the ``X-MLflow-Signature`` header's value."""
    digest = hmac.new(
        secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    seen: MutableSet[str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The delivery's JSON payload, once its HMAC signature, freshness and (with ``seen``)
    uniqueness check out; raises InvalidSignature otherwise.

    MLflow signs ``"{delivery_id}.{timestamp}.{body}"`` with HMAC-SHA256 and sends
    ``v1,<base64>`` in ``X-MLflow-Signature``.
    """
    payload = body.decode("utf-8") if isinstance(body, bytes) else body
    delivery_id = _header(headers, DELIVERY_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    version, _, signature = _header(headers, SIGNATURE_HEADER).partition(",")
    if version != "v1":
        raise InvalidSignature(f"unsupported signature version {version!r} (expected v1)")
    expected = sign(secret, delivery_id, timestamp, payload).partition(",")[2]
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignature("signature mismatch: the body was altered or the secret is wrong")
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        raise InvalidSignature(f"timestamp {timestamp!r} is not a Unix time") from None
    if abs(age) > tolerance:
        raise InvalidSignature(
            f"delivery is {age:.0f} s old (tolerance {tolerance} s): refusing a possible replay"
        )
    if seen is not None:
        if delivery_id in seen:
            raise InvalidSignature(f"delivery {delivery_id} was already received: a replay")
        seen.add(delivery_id)
    return json.loads(payload)


@dataclass(frozen=True)
class StageEntry:
    """What a delivery means in lifecycle terms."""

    name: str
    version: int
    stage: str


def stage_entry(payload: Mapping[str, Any]) -> StageEntry | None:
    """The stage a version entered according to a verified payload, else None."""
    entity, action, data = payload.get("entity"), payload.get("action"), payload.get("data", {})
    if entity == "model_version_alias" and action == "created":
        stages = {alias: stage for stage, alias in STAGE_ALIASES.items()}
        if data.get("alias") in stages:
            return StageEntry(data["name"], int(data["version"]), stages[data["alias"]])
    if entity == "model_version_tag" and action == "set" and data.get("key") == STAGE_TAG:
        return StageEntry(data["name"], int(data["version"]), data["value"])
    return None


def add_webhook(
    store: Store,
    url: str,
    *,
    secret: str | None = None,
    events: Sequence[str] | None = None,
    name: str | None = None,
) -> Any:
    """Register an MLflow webhook (signed with ``secret``) for stage-change events."""
    with store.translated(f"creating a webhook for {url}"):
        return store.client.create_webhook(
            name=name or f"jupyreg-{len(store.client.list_webhooks()) + 1}",
            url=url,
            events=list(events or DEFAULT_EVENTS),
            secret=secret,
            description="jupyreg stage changes",
        )


def webhooks_frame(store: Store) -> pd.DataFrame:
    """The registered webhooks, one row each."""
    import pandas as pd

    with store.translated("listing webhooks"):
        hooks = list(store.client.list_webhooks())
    rows = [
        {
            "id": h.webhook_id,
            "name": h.name,
            "url": h.url,
            "status": str(h.status),
            "events": ",".join(str(e) for e in h.events),
        }
        for h in hooks
    ]
    return pd.DataFrame(rows, columns=["id", "name", "url", "status", "events"])
