"""Errors raised by jupyreg. Each message says what was wrong and what to do next.

Every error carries a stable machine-readable ``code`` (one per class), its ``message``
(what was wrong), a ``hint`` (what to do next, worded for the front end in use when it
was raised; None when the message says it all) and, for a missing or malformed argument, the
``field`` at fault: a front end that words errors itself (the lab) reads ``code``,
``message`` and ``field``, never the text."""

from __future__ import annotations

import shlex
import warnings
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


# How each front end asks for a missing argument (``field``); the lab words its own.
_FIELD_WORDING = {
    "reason": {
        "python": "pass reason='why this change'",
        "cli": "pass --reason TEXT",
        "magic": "pass --reason TEXT",
    },
}


def ask_for(field: str) -> str:
    """How the front end in use asks for the argument ``field`` (``"reason"``)."""
    wording = _FIELD_WORDING[field]
    return wording.get(_FRONT_END.get(), wording["python"])


class RegistryError(Exception):
    """Base class of every error jupyreg raises on purpose. ``str(error)`` is
    ``message`` followed by ``: hint`` when there is one."""

    code = "registry_error"

    def __init__(self, message: str = "", *, hint: str | None = None, field: str | None = None):
        self.message = message
        self.hint = hint
        self.field = field
        super().__init__(f"{message}: {hint}" if hint else message)


class NotFound(RegistryError, LookupError):
    """A registered model, version or request does not exist."""

    code = "not_found"


class InvalidArgument(RegistryError, ValueError):
    """An argument is malformed (empty reason, non-numeric metric, unsupported model...)."""

    code = "invalid_argument"


class DuplicateVersion(InvalidArgument):
    """The model is identical to an existing version (``version``); nothing registered."""

    code = "duplicate_version"

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message)
        self.version = version


class InvalidTransition(RegistryError):
    """The requested stage move is not allowed from the version's current stage."""

    code = "invalid_transition"


class ApprovalRequired(RegistryError):
    """The move needs approval: file a request with ``Registry.request`` instead."""

    code = "approval_required"


class PolicyViolation(RegistryError):
    """A policy rule (self-approval, gates, double decision) refuses the action."""

    code = "policy_violation"


class PermissionDenied(RegistryError):
    """The server refused the action for the authenticated user."""

    code = "permission_denied"


class RegistryUnavailable(RegistryError):
    """The tracking/registry store cannot be reached."""

    code = "registry_unavailable"


class RegistryBusy(RegistryUnavailable):
    """Too many lifecycle steps are queued for the model: retry after ``retry_after`` s."""

    code = "registry_busy"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReproducible(RegistryError):
    """A version cannot be re-run: no recorded commit, a diff that does not apply, a
    dataset neither in DVC's cache nor on a remote, a transcript that registers nothing."""

    code = "not_reproducible"


class NotServable(RegistryError):
    """A version a server will not swap in: its files do not load, its input schema would
    break the served version's callers, or it fails on its own input example."""

    code = "not_servable"


class InvalidSignature(RegistryError):
    """A webhook delivery whose signature, timestamp or delivery id does not check out."""

    code = "invalid_signature"


class SplitReferences(UserWarning):
    """``models:/NAME/STAGE`` and ``models:/NAME@alias`` name different versions: a stage
    was changed outside jupyreg (``check --repair`` brings them back in step)."""


def warn_split(message: str | None) -> None:
    """Warn (``SplitReferences``) with ``message``, if any, at the caller's caller: the
    user's line that read the model."""
    if message:
        warnings.warn(SplitReferences(message), stacklevel=3)


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
