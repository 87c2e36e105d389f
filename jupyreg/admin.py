"""Users and permissions of a team server (MLflow's basic-auth), as an admin manages them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyreg.entities import PERMISSIONS
from jupyreg.errors import InvalidArgument
from jupyreg.store import Store, experiment_id


def add_user(store: Store, username: str, password: str) -> None:
    """Create a user on the tracking server (needs an admin's credentials)."""
    with _user_admin(store, "adding a user") as users:
        users.create_user(username, password)


def grant(store: Store, username: str, name: str, permission: str) -> None:
    """Give ``username`` ``permission`` on the registered model ``name`` and on the
    experiment named after it, where registering logs its runs (created if missing).
    Granting again changes the permission."""
    level = permission.strip().upper()
    if level not in PERMISSIONS:
        raise InvalidArgument(
            f"unknown permission {permission!r}: choose one of {', '.join(PERMISSIONS)}"
        )
    from mlflow.exceptions import MlflowException

    with _user_admin(store, f"granting {level} on {name}") as users:
        experiment = experiment_id(store.client, name)
        for kind, resource in (("registered_model", name), ("experiment", experiment)):
            try:
                users.grant_user_permission(username, kind, resource, level)
            except MlflowException as exc:  # MLflow has no update: replace the grant
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                users.revoke_user_permission(username, kind, resource)
                users.grant_user_permission(username, kind, resource, level)


@contextmanager
def _user_admin(store: Store, what: str) -> Iterator[Any]:
    """MLflow's basic-auth client of the registry's server, its errors translated."""
    uri = store.registry_uri
    if not uri.startswith(("http://", "https://")):
        raise InvalidArgument(
            f"users live on a tracking server, not {uri}: pass --tracking-uri http://..."
        )
    from mlflow.server.auth.client import AuthServiceClient

    with store.translated(what):
        yield AuthServiceClient(uri)
