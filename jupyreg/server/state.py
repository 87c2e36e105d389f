"""What the guard reads of the server's own registry store."""

from __future__ import annotations

import contextlib
import functools
import posixpath
from urllib.parse import urlparse

from jupyreg.errors import RegistryUnavailable


class ServerState:
    """The guard's reads of the server's own registry store."""

    def __init__(self) -> None:
        from jupyreg.compat import server_store_uris
        from jupyreg.store import Store

        self.store = Store(*server_store_uris(default="sqlite:///mlflow.db"))
        self._held = contextlib.ExitStack()

    def hold(self, name: str) -> None:
        """Take the model's lifecycle lock until ``release``: the check and MLflow's own
        write then see the same stages (no step moves a version in between)."""
        self._held.enter_context(self.store.lock(name))

    def release(self) -> None:
        self._held.close()

    def stages(self, name: str) -> dict[int, str]:
        from jupyreg.lifecycle import PRODUCTION, STAGING

        held = (STAGING, PRODUCTION)
        return {
            s.version: s.stage if s.stage in held or s.legacy_stage not in held else s.legacy_stage
            for s in self.store.versions(name)
        }

    @functools.cached_property
    def _registered(self) -> list:
        from jupyreg.compat import sql_registered_files

        with self.store.translated("reading which files registered versions own"):
            found = sql_registered_files(self.store.client)
        if found is None:
            raise RegistryUnavailable(
                "jupyreg server needs a SQL backend store to tell who owns a file"
            )
        return found

    def registered_version_of(self, run_id: str | None, model_id: str | None) -> str | None:
        for files in self._registered:
            if (run_id and run_id in files.run_ids) or (model_id and model_id in files.model_ids):
                return f"{files.name} v{files.version}"
        return None

    def owner_of_path(self, path: str) -> str | None:
        from jupyreg.compat import artifacts_destination

        destination = artifacts_destination()
        for files in self._registered:
            for root in files.roots:
                owned = served_path(root, destination)
                if owned is not None and _overlap(path, owned):
                    return f"{files.name} v{files.version}"
        return None

    def experiment_holding(self, experiment_id: str) -> str | None:
        from jupyreg.lifecycle import PRODUCTION, STAGING

        for files in self._registered:
            if experiment_id in files.experiment_ids:
                stage = self.stages(files.name).get(files.version)
                if stage in (STAGING, PRODUCTION):
                    return f"{files.name} v{files.version} in {stage}"
        return None

    def keep_history(self, name: str, version: int) -> None:
        self.store.keep_history(name, version)


def served_path(uri: str, destination: str | None) -> str | None:
    """The path under the server's artifact root that serves ``uri`` (None: files the
    server's artifact routes never reach)."""
    if uri.startswith("mlflow-artifacts:"):
        path = urlparse(uri).path
    elif destination and uri.startswith(destination.rstrip("/") + "/"):
        path = uri[len(destination.rstrip("/")) :]
    else:
        return None
    return posixpath.normpath("/" + path).lstrip("/")


def _overlap(path: str, owned: str) -> bool:
    """Whether writing ``path`` touches ``owned``: the same, inside it, or a folder above."""
    if not path or not owned or path == owned:
        return True
    return path.startswith(owned + "/") or owned.startswith(path + "/")
