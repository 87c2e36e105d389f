"""Keep secrets out of everything captured (DESIGN §7.4).

Credentials are removed from URLs, and the values of secret-looking environment
variables (tokens, passwords, keys) are redacted wherever they appear in text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|_KEY$|^KEY", re.I
)
_MIN_SECRET_LENGTH = 6
# scheme://user:password@ or http(s)://token@ inside free text.
_URL_USERINFO = re.compile(
    r"\b([a-z][a-z0-9+.-]*://)[^/\s@:]+:[^/\s@]*@|\b(https?://)[^/\s@]+@", re.I
)
_URL_USERINFO_BYTES = re.compile(_URL_USERINFO.pattern.encode(), re.I)


def scrub_url(url: str) -> str:
    """``url`` without credentials: userinfo (ssh keeps its user name), query and fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return scrub_urls_in(url)
    if not parts.scheme or not parts.netloc:
        return url  # scp-like `git@host:org/repo.git` carries no secret
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    if parts.username and parts.scheme.endswith("ssh"):
        host = f"{parts.username}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub_urls_in(text: str) -> str:
    """``text`` with the credentials of every URL in it removed."""
    return _URL_USERINFO.sub(r"\1\2", text)


class Scrubber:
    """Redacts the given secret values and URL credentials from text, bytes and records."""

    def __init__(self, secrets: frozenset[str]) -> None:
        # Longest first, so a secret containing another is redacted whole.
        self._secrets = sorted(secrets, key=len, reverse=True)
        self._encoded = [s.encode() for s in self._secrets]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Scrubber:
        environ = os.environ if environ is None else environ
        return cls(
            frozenset(
                value
                for name, value in environ.items()
                if _SECRET_NAME.search(name) and _looks_secret(value)
            )
        )

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return scrub_urls_in(text)

    def bytes(self, data: bytes) -> bytes:
        for secret in self._encoded:
            data = data.replace(secret, REDACTED.encode())
        return _URL_USERINFO_BYTES.sub(rb"\1\2", data)

    def record(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.record(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.record(item) for item in value]
        return value


def _looks_secret(value: str) -> bool:
    """Long enough to be a secret and not a plain path (``SSH_AUTH_SOCK``)."""
    if len(value) < _MIN_SECRET_LENGTH:
        return False
    return not (value.startswith(("/", "~")) and os.path.exists(os.path.expanduser(value)))
