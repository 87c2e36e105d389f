"""Errors raised by jupyreg. Each message says what was wrong and what to do next."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class of every error jupyreg raises on purpose."""


class NotFound(RegistryError, LookupError):
    """A registered model, version or request does not exist."""


class InvalidArgument(RegistryError, ValueError):
    """An argument is malformed (empty reason, non-numeric metric, unsupported model...)."""


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


class InvalidSignature(RegistryError):
    """A webhook delivery whose signature, timestamp or delivery id does not check out."""


REFUSALS = (InvalidTransition, ApprovalRequired, PolicyViolation, PermissionDenied)
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
