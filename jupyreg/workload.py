"""A workload's attested identity, client side: the OIDC token a CI job sends to a jupyreg
server beside its service account's basic auth, so that the server records the person
the token names (``jupyreg users link-identity``), not the service account.

``OidcTokenHeader`` is an MLflow request-header provider (entry point
``mlflow.request_header_provider``): every request MLflow's client makes in a process
where jupyreg is installed carries the token when there is one, jupyreg's lifecycle calls
included. The token is ``JUPYREG_OIDC_TOKEN``, else, inside a GitHub Actions job with
``permissions: id-token: write``, one GitHub issues for the audience
``JUPYREG_OIDC_AUDIENCE`` (default ``jupyreg``), fetched once and reused until a minute
before it expires. Imports nothing heavy: MLflow loads it on every client start.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from jupyreg.errors import PermissionDenied

TOKEN_HEADER = "X-Jupyreg-Oidc-Token"
TOKEN_ENV = "JUPYREG_OIDC_TOKEN"
AUDIENCE_ENV = "JUPYREG_OIDC_AUDIENCE"
DEFAULT_AUDIENCE = "jupyreg"
GITHUB_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
RENEW_SECONDS = 60
"""A fetched token is fetched again this long before it expires."""

_lock = threading.Lock()
_fetched: dict[str, tuple[str, float]] = {}  # audience -> (token, expires at)


def can_attest() -> bool:
    """Whether this process has a token to send (given, or GitHub Actions can issue one)."""
    return bool(
        os.environ.get(TOKEN_ENV)
        or (os.environ.get(GITHUB_REQUEST_URL) and os.environ.get(GITHUB_REQUEST_TOKEN))
    )


def workload_token() -> str | None:
    """The token to send: ``JUPYREG_OIDC_TOKEN``, else a GitHub Actions job's, else None."""
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given:
        return given
    url, bearer = os.environ.get(GITHUB_REQUEST_URL), os.environ.get(GITHUB_REQUEST_TOKEN)
    if not (url and bearer):
        return None
    audience = os.environ.get(AUDIENCE_ENV) or DEFAULT_AUDIENCE
    with _lock:
        token, expires = _fetched.get(audience, ("", 0.0))
        if time.time() < expires - RENEW_SECONDS:
            return token
        token = _github_token(url, bearer, audience)
        _fetched[audience] = (token, _expiry(token))
        return token


def _github_token(url: str, bearer: str, audience: str) -> str:
    """GitHub's OIDC token for ``audience``, as actions/core's ``getIDToken`` asks for it."""
    joiner = "&" if urllib.parse.urlsplit(url).query else "?"
    request = urllib.request.Request(
        f"{url}{joiner}audience={urllib.parse.quote(audience)}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.load(response)["value"])
    except (OSError, ValueError, KeyError) as exc:
        raise PermissionDenied(
            f"GitHub Actions did not issue an OIDC token for audience {audience!r} ({exc}): "
            "give the job `permissions: id-token: write`"
        ) from None


def _expiry(token: str) -> float:
    """The token's ``exp`` (read, not verified: the server verifies); 0 when unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0


class OidcTokenHeader:
    """MLflow's ``RequestHeaderProvider`` interface, duck-typed (no MLflow import)."""

    def in_context(self) -> bool:
        return can_attest()

    def request_headers(self) -> dict[str, Any]:
        token = workload_token()
        return {TOKEN_HEADER: token} if token else {}
