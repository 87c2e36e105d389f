"""Workload identity on a team server: OIDC tokens (GitHub Actions' and any other trusted
issuer's) verified with PyJWT against the issuer's published keys, then mapped to a
registry user by the identity links admins keep (``jupyreg.server.identities``).

A client sends the token in ``X-Jupyreg-Oidc-Token`` beside its basic auth (the service
account). A token that is present is verified or the request is refused; never ignored.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from jupyreg.errors import InvalidArgument
from jupyreg.workload import AUDIENCE_ENV, DEFAULT_AUDIENCE, TOKEN_HEADER

__all__ = ["AUDIENCE_ENV", "DEFAULT_AUDIENCE", "TOKEN_HEADER", "TokenRefused", "verify"]

ISSUERS_ENV = "JUPYREG_OIDC_ISSUERS"
"""The issuers a server trusts (comma-separated), set by ``--trust-oidc-issuer``; the
audience tokens must be for is ``AUDIENCE_ENV`` (``--oidc-audience``), the one the client
asks GitHub for."""
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
"""Asymmetric signatures only: a token signed with a shared secret ("HS256") or none
("none") is refused whatever the issuer publishes."""
KEY_CACHE_SECONDS = 300
ATTESTED_CLAIMS = ("repository", "workflow", "ref", "environment")
"""Claims an event's attestation keeps beside issuer, subject and run URL."""


class TokenRefused(Exception):
    """The token does not identify anyone: ``status`` 401 (not valid) or 403 (valid, but
    it may not act as anyone here); ``str()`` is the one-line reason."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def check_issuer(url: str) -> str:
    """``url`` as a trusted issuer: https, or http on a loopback address (tests)."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return url.strip().rstrip("/")
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return url.strip().rstrip("/")
    raise InvalidArgument(
        f"an OIDC issuer must be an https:// URL (or http on loopback), not {url!r}"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_issuers() -> tuple[str, ...]:
    raw = os.environ.get(ISSUERS_ENV, "")
    return tuple(check_issuer(u) for u in raw.split(",") if u.strip())


def audience() -> str:
    return os.environ.get(AUDIENCE_ENV) or DEFAULT_AUDIENCE


def verify(token: str) -> dict[str, Any]:
    """The claims of ``token`` once its issuer is trusted, its signature checks out with
    that issuer's published keys, and it is for this server's audience and current."""
    import jwt

    issuers = trusted_issuers()
    if not issuers:
        raise TokenRefused("this server trusts no OIDC issuer (jupyreg server --trust-oidc-issuer)")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRefused("the OIDC token is not a JWT") from None
    issuer = str(unverified.get("iss", "")).rstrip("/")
    if issuer not in issuers:  # nothing is fetched for an issuer not trusted
        raise TokenRefused(f"the OIDC token's issuer {issuer[:100]!r} is not trusted here")
    try:
        key = _keys(issuer).get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=audience(),
            issuer=unverified["iss"],
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("the OIDC token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused(
            f"the OIDC token is not for this server's audience {audience()!r}"
        ) from None
    except jwt.InvalidSignatureError:
        raise TokenRefused(f"the OIDC token's signature does not match {issuer}'s keys") from None
    except jwt.PyJWKClientError as exc:
        raise TokenRefused(f"the OIDC token's key is not among {issuer}'s: {exc}") from None
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"the OIDC token is not valid: {exc}") from None


@functools.cache
def _keys(issuer: str) -> Any:
    """The issuer's key set, as its discovery document names it (fetched once per process;
    PyJWKClient refetches the keys every ``KEY_CACHE_SECONDS``)."""
    from jwt import PyJWKClient

    try:
        with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as r:
            jwks_uri = json.load(r)["jwks_uri"]
    except (OSError, ValueError, KeyError) as exc:
        _keys.cache_clear()  # try again on the next token
        raise TokenRefused(f"{issuer}'s OIDC discovery document could not be read: {exc}") from None
    return PyJWKClient(jwks_uri, cache_keys=True, lifespan=KEY_CACHE_SECONDS, timeout=10)


def attestation(claims: Mapping[str, Any], relayed_by: str) -> dict[str, str]:
    """What an event keeps of a verified token: who issued it for which subject, the
    repository, workflow, ref and environment, the run's URL, and the account that
    relayed it. Never the token itself."""
    issuer = str(claims["iss"]).rstrip("/")
    kept = {"issuer": issuer, "subject": str(claims.get("sub", ""))}
    kept |= {claim: str(claims[claim]) for claim in ATTESTED_CLAIMS if claims.get(claim)}
    if claims.get("repository") and claims.get("run_id"):
        kept["run_url"] = (
            f"{_web_origin(issuer)}/{claims['repository']}/actions/runs/{claims['run_id']}"
        )
    kept["relayed_by"] = relayed_by
    return kept


def _web_origin(issuer: str) -> str:
    """Where the issuer's runs are shown: github.com for GitHub's issuer, the issuer's own
    origin for GitHub Enterprise Server (``https://HOST/_services/token``) and others."""
    if issuer == GITHUB_ISSUER:
        return "https://github.com"
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"
