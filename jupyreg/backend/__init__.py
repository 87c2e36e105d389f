"""Where lifecycle steps run, chosen once when a ``Registry`` first needs it.

- ``LocalBackend``: this process applies the rules to the store under the registry's
  lock (embedded SQLite, a PostgreSQL URI, the jupyreg server itself, and — best effort,
  repaired by ``check`` — a plain MLflow server);
- ``RemoteBackend``: a ``jupyreg server`` applies them (authenticated author,
  permissions, one serialised step on its side).

Reads go through the store on both (``jupyreg.queries``); only the policy in force is
read from where it is enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jupyreg.backend.base import Backend
from jupyreg.backend.local import Authorise, LocalBackend
from jupyreg.backend.remote import discover
from jupyreg.identity import check_claimed_user
from jupyreg.lifecycle import Actor
from jupyreg.store import Store

__all__ = ["Authorise", "Backend", "LocalBackend", "open_backend"]


def open_backend(
    store: Store,
    actor: Actor,
    default_policy: Callable[[], Mapping[str, Any]],
    authorise: Authorise | None = None,
    claimed: str | None = None,
) -> Backend:
    """The jupyreg server's endpoints when the registry is one (refused when ``claimed``, the
    user the caller says it acts for, is not whom the server authenticates and nothing
    attests it), else local rules."""
    remote = discover(store)
    if remote is not None:
        check_claimed_user(claimed, store.registry_uri)
        return remote
    return LocalBackend(store, actor, default_policy, authorise)
