"""Errors raised by jupyreg. Each message says what was wrong and what to do next."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_FRONT_END: ContextVar[str] = ContextVar("jupyreg_front_end", default="python")
_VERB_PREFIX = {"cli": "jupyreg", "magic": "%registry"}


@contextmanager
def front_end(name: str) -> Iterator[None]:
    """Word the next steps that errors raised inside suggest for front end ``name``:
    ``"python"`` (the default: ``reg.versions('m')``), ``"cli"`` (`jupyreg versions m`) or
    ``"magic"`` (`%registry versions m`)."""
    token = _FRONT_END.set(name)
    try:
        yield
    finally:
        _FRONT_END.reset(token)


def hint(python: str, *verb: str) -> str:
    """A next step in the words of the front end in use: the ``python`` call, or the
    shared verb (``"versions", name``) of the CLI or ``%registry``."""
    prefix = _VERB_PREFIX.get(_FRONT_END.get())
    if prefix is None or not verb:
        return python
    return f"`{prefix} {shlex.join(verb)}`"


class RegistryError(Exception):
    """Base class of every error jupyreg raises on purpose."""


class NotFound(RegistryError, LookupError):
    """A registered model, version or request does not exist."""


class InvalidArgument(RegistryError, ValueError):
    """An argument is malformed (empty reason, non-numeric metric, unsupported model...)."""


class DuplicateVersion(InvalidArgument):
    """The model is identical to an existing version (``version``); nothing registered."""

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message)
        self.version = version


class InvalidTransition(RegistryError):
    """The requested stage move is not allowed from the version's current stage."""


class ApprovalRequired(RegistryError):
    """The move needs approval: file a request with ``Registry.request`` instead."""


class PolicyViolation(RegistryError):
    """A policy rule (self-approval, gates, double decision) refuses the action."""


class PermissionDenied(RegistryError):
    """The server refused the action for the authenticated user."""


class RegistryUnavailable(RegistryError):
    """The tracking/registry store cannot be reached."""


class RegistryBusy(RegistryUnavailable):
    """Too many lifecycle steps are queued for the model: retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReproducible(RegistryError):
    """A version cannot be re-run: no recorded commit, a diff that does not apply, a
    dataset neither in DVC's cache nor on a remote, a transcript that registers nothing."""


class NotServable(RegistryError):
    """A version a server will not swap in: its files do not load, its input schema would
    break the served version's callers, or it fails on its own input example."""


class InvalidSignature(RegistryError):
    """A webhook delivery whose signature, timestamp or delivery id does not check out."""


REFUSALS = (
    InvalidTransition,
    ApprovalRequired,
    PolicyViolation,
    PermissionDenied,
    NotReproducible,
    NotServable,
)
"""Errors that mean "the registry refused the action" (CLI exit code 1)."""


def http_status(error: RegistryError) -> int:
    """The HTTP status a REST front end answers an error with (refusals are conflicts)."""
    for cls, status in (
        (NotFound, 404),
        (InvalidArgument, 400),
        (PermissionDenied, 403),
        (RegistryUnavailable, 503),
    ):
        if isinstance(error, cls):
            return status
    return 409 if isinstance(error, REFUSALS) else 500
