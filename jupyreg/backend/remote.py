"""Lifecycle steps run by a ``jupyreg server`` (``mlflow server --app-name jupyreg``): one
HTTP request per step to its ``/api/2.0/jupyreg/*`` endpoints; plain MLflow servers keep the
local path."""

from __future__ import annotations

import random
import time
from typing import Any

from jupyreg import errors, serialize
from jupyreg.backend.base import Backend
from jupyreg.entities import ModelVersion
from jupyreg.errors import PermissionDenied, RegistryError, RegistryUnavailable
from jupyreg.lifecycle import Policy, Request
from jupyreg.lineage.scrub import scrub_url
from jupyreg.store import Store

INFO_ENDPOINT = "/api/2.0/jupyreg/info"
ACTION_ENDPOINT = "/api/2.0/jupyreg/{}"
DISCOVERY_ATTEMPTS = 3
BUSY_RETRY_SECONDS = 15
_ERRORS = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, RegistryError)
}


class RemoteBackend(Backend):
    def policy(self, name: str) -> Policy:
        return Policy.from_mapping(self._post("policy", name=name)["policy"])

    def set_policy(self, name: str, policy: Policy, reason: str) -> Policy:
        body = self._post("policy", name=name, policy=policy.to_dict(), reason=reason)
        return Policy.from_mapping(body["policy"])

    def transition(self, name: str, version: int, target: str, reason: str) -> ModelVersion:
        body = self._post("transition", name=name, version=version, stage=target, reason=reason)
        return serialize.version_from_json(body["version"])

    def request(self, name: str, version: int, target: str, reason: str) -> Request:
        body = self._post("request", name=name, version=version, stage=target, reason=reason)
        return serialize.request_from_json(body["request"])

    def decide(self, request_id: str, verb: str, comment: str) -> Request:
        body = self._post(verb, request_id=request_id, comment=comment)
        return serialize.request_from_json(body["request"])

    def rollback(self, name: str, reason: str) -> ModelVersion:
        return serialize.version_from_json(
            self._post("rollback", name=name, reason=reason)["version"]
        )

    def keep_reproduction(self, name: str, version: int, record: dict[str, Any]) -> str:
        return self._post("reproduction", name=name, version=version, record=record)["id"]

    def finish(self, name: str | None = None) -> None:
        """The server finishes interrupted steps itself (on start and at each step)."""

    def repair(self, name: str | None) -> list[dict[str, Any]]:
        return self._post("repair", name=name)["problems"]

    def groups_of(self, user: str) -> frozenset[str]:
        groups = self._post("groups")["groups"]
        return frozenset(group for group, members in groups.items() if user in members)

    def call(self, action: str, **payload: Any) -> dict[str, Any]:
        """The server's endpoint ``action`` (its administration: identities, groups)."""
        return self._post(action, **payload)

    def _post(self, action: str, **payload: Any) -> dict[str, Any]:
        """One request per step. A busy server's 503 (or 429) is retried after the
        Retry-After it sends (jittered, so that clients refused together do not come back
        together), for ``BUSY_RETRY_SECONDS`` at most; an unreachable server is not retried
        here (MLflow's few fast retries apply), so it fails in seconds."""
        uri = self.store.registry_uri
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        while True:
            with self.store.translated(f"{action} on {uri}"):
                response = _http(
                    uri,
                    ACTION_ENDPOINT.format(action),
                    "POST",
                    json=payload,
                    retry_codes=(),
                    raise_on_status=False,
                )
            wait = _retry_after(response)
            if wait is None or time.monotonic() + wait > deadline:
                break
            time.sleep(wait * random.uniform(0.5, 1.5))
        body = _json(response)
        if response.status_code == 401:
            raise _needs_credentials(uri)
        if response.status_code >= 400:
            cls = _ERRORS.get(body.get("jupyreg_error", ""), RegistryError)
            if response.status_code == 403 and cls is RegistryError:
                cls = PermissionDenied
            raise cls(body.get("message") or f"{action} failed with HTTP {response.status_code}")
        return body


def discover(store: Store) -> RemoteBackend | None:
    """The jupyreg endpoints of the server at the registry URI, or None for anything else.

    A transient failure is retried a few times and then raised, never remembered: the next
    call asks again (a server restarting must not send a client around the lifecycle)."""
    uri = store.registry_uri
    if not uri.startswith(("http://", "https://")):
        return None
    for attempt in range(DISCOVERY_ATTEMPTS):
        with store.translated(f"contacting {uri}"):  # seconds, not MLflow's minutes
            response = _http(uri, INFO_ENDPOINT, "GET", max_retries=1, timeout=5)
        if response.status_code == 401:
            raise _needs_credentials(uri)
        if response.status_code < 500:
            is_jupyreg = response.status_code == 200 and _json(response).get("app") == "jupyreg"
            return RemoteBackend(store) if is_jupyreg else None
        time.sleep(0.2 * 2**attempt)
    raise RegistryUnavailable(
        f"the registry at {scrub_url(uri)} answered HTTP {response.status_code} "
        f"{DISCOVERY_ATTEMPTS} times; "
        "check the tracking server's log, then retry"
    )


def _retry_after(response: Any) -> float | None:
    """Seconds a busy server asks the client to wait, None when it is not busy."""
    if response.status_code not in (429, 503):
        return None
    try:
        return max(0.1, float(response.headers.get("Retry-After", 1)))
    except ValueError:
        return 1.0


def _needs_credentials(uri: str) -> PermissionDenied:
    return PermissionDenied(
        f"{scrub_url(uri)} needs credentials: set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD"
    )


def _http(uri: str, endpoint: str, method: str, **kwargs: Any) -> Any:
    from jupyreg.compat import http_request

    return http_request(uri, endpoint, method, **kwargs)


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
