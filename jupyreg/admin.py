"""Users and permissions of a team server (MLflow's basic-auth), as an admin manages them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jupyreg.backend import Backend
from jupyreg.backend.remote import RemoteBackend
from jupyreg.entities import PERMISSIONS
from jupyreg.errors import InvalidArgument
from jupyreg.lineage.scrub import scrub_url
from jupyreg.store import Store, experiment_id

if TYPE_CHECKING:
    import pandas as pd


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
            f"users live on a tracking server, not {scrub_url(uri)}: pass --tracking-uri http://..."
        )
    from mlflow.server.auth.client import AuthServiceClient

    with store.translated(what):
        yield AuthServiceClient(uri)


DELIVERY_COLUMNS = [
    "id",
    "hook",
    "event",
    "name",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "created_at",
    "delivered_at",
]


class TeamAdmin:
    """``Registry``'s team-server administration: users, permissions, identity links,
    groups and webhooks."""

    _store: Store
    _backend: Backend

    def link_identity(
        self,
        username: str,
        issuer: str,
        claim: str,
        value: str,
        requires: Mapping[str, str] | None = None,
    ) -> None:
        """Let OIDC tokens from ``issuer`` whose ``claim`` is ``value`` (and that carry each
        of ``requires``, e.g. ``{"repository": "org/repo"}``) act as ``username`` (admins)."""
        self._team_server("linking an identity").call(
            "identities",
            op="link",
            user=username,
            issuer=issuer,
            claim=claim,
            value=value,
            requires=dict(requires or {}),
        )

    def identity_links(self) -> list[dict[str, Any]]:
        """Every identity link: username, issuer, claim, value, requires (admins)."""
        return self._team_server("listing identity links").call("identities")["links"]

    def change_group(self, group: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """Add and remove members of ``group``, which policies name as ``group:NAME`` (admins)."""
        server = self._team_server("changing a group")
        for op, users in (("add", add), ("remove", remove)):
            if users:
                server.call("groups", op=op, group=group, users=list(users))

    def groups(self) -> dict[str, list[str]]:
        """Every group of the team server and its members."""
        return self._team_server("listing groups").call("groups")["groups"]

    def webhook_deliveries(
        self, hook: str | None = None, status: str | None = None
    ) -> pd.DataFrame:
        """A team server's webhook deliveries, newest first (admins): id, hook, event, name,
        status (pending | delivered | failed), attempts, last_status_code, last_error,
        created_at, delivered_at. Embedded registries have none (``jupyreg watch``)."""
        import pandas as pd

        rows = self._team_server("reading webhook deliveries").call(
            "deliveries", hook=hook, status=status
        )["deliveries"]
        frame = pd.DataFrame(rows, columns=DELIVERY_COLUMNS)
        for column in ("created_at", "delivered_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def redeliver(self, delivery_id: str) -> dict[str, Any]:
        """Send a delivery again: same delivery id, signed afresh (admins)."""
        server = self._team_server("redelivering a webhook delivery")
        return server.call("redeliver", delivery_id=delivery_id)["delivery"]

    def test_webhook(self, hook_id: str) -> dict[str, Any]:
        """Send a signed test delivery to webhook ``hook_id`` now: status_code, error, ok."""
        return self._team_server("testing a webhook").call("test_webhook", hook=hook_id)

    def _team_server(self, what: str) -> RemoteBackend:
        backend = self._backend
        if not isinstance(backend, RemoteBackend):
            raise InvalidArgument(
                f"{what}: identity links, groups and webhook deliveries live on a jupyreg "
                "server, not "
                f"{scrub_url(self._store.registry_uri)}"
            )
        return backend

    def add_user(self, username: str, password: str) -> None:
        """Create a user on the tracking server (needs an admin's credentials)."""
        add_user(self._store, username, password)

    def grant(self, username: str, name: str, permission: str) -> None:
        """Give ``username`` READ, EDIT, MANAGE or NO_PERMISSIONS on model ``name`` and its
        experiment (made if missing); granting again changes the permission."""
        grant(self._store, username, name, permission)

    def add_webhook(
        self,
        url: str,
        *,
        secret: str | None = None,
        events: Sequence[str] | None = None,
        name: str | None = None,
    ) -> Any:
        """Register an MLflow webhook (signed with ``secret``) for stage-change events;
        ``jupyreg.webhooks`` says which event means what and verifies deliveries."""
        from jupyreg.webhooks import add_webhook

        return add_webhook(self._store, url, secret=secret, events=events, name=name)

    def webhooks(self) -> pd.DataFrame:
        from jupyreg.webhooks import webhooks_frame

        return webhooks_frame(self._store)
