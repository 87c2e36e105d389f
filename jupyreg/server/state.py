"""What the guard reads of the server's own registry store."""

from __future__ import annotations

import bisect
import contextlib
import posixpath
import threading
from collections.abc import Iterable
from typing import Any
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

    def registered_version_of(self, run_id: str | None, model_id: str | None) -> str | None:
        owners = self._owners()
        return owners.by_run.get(run_id or "") or owners.by_model.get(model_id or "")

    def owner_of_path(self, path: str) -> str | None:
        return self._owners().of_path(path)

    def experiment_holding(self, experiment_id: str) -> str | None:
        from jupyreg.lifecycle import PRODUCTION, STAGING

        for name, version in self._owners().by_experiment.get(experiment_id, ()):
            stage = self.stages(name).get(version)
            if stage in (STAGING, PRODUCTION):
                return f"{name} v{version} in {stage}"
        return None

    def keep_history(self, name: str, version: int) -> None:
        self.store.keep_history(name, version)

    def _owners(self) -> Owners:
        """The registered files, read again only when a version has changed since."""
        from jupyreg.compat import (
            artifacts_destination,
            sql_model_versions_changed,
            sql_registered_files,
        )

        with self.store.translated("reading which files registered versions own"):
            mark = sql_model_versions_changed(self.store.client)
            if mark is None:
                raise RegistryUnavailable(
                    "jupyreg server needs a SQL backend store to tell who owns a file"
                )
            key = self.store.registry_uri
            with _KNOWN_LOCK:
                known = _KNOWN.get(key)
            if known is not None and known[0] == mark:
                return known[1]
            owners = Owners(sql_registered_files(self.store.client) or [], artifacts_destination())
        with _KNOWN_LOCK:
            _KNOWN[key] = (mark, owners)
        return owners


_KNOWN: dict[str, tuple[tuple[int, int, int], Owners]] = {}
"""Per registry: the model_versions table's mark and the owners read at that mark."""
_KNOWN_LOCK = threading.Lock()


class Owners:
    """Registered versions (``NAME vN``) by the paths, runs, logged models and experiments
    that hold their files; a path's owner found in O(depth + log n)."""

    def __init__(self, registered: Iterable[Any], destination: str | None) -> None:
        self.by_path: dict[str, str] = {}
        self.by_run: dict[str, str] = {}
        self.by_model: dict[str, str] = {}
        self.by_experiment: dict[str, list[tuple[str, int]]] = {}
        for files in registered:
            holder = f"{files.name} v{files.version}"
            for root in files.roots:
                path = served_path(root, destination)
                if path is not None:
                    self.by_path.setdefault(path, holder)
            for run_id in files.run_ids:
                self.by_run.setdefault(run_id, holder)
            for model_id in files.model_ids:
                self.by_model.setdefault(model_id, holder)
            for experiment_id in set(files.experiment_ids):
                self.by_experiment.setdefault(experiment_id, []).append((files.name, files.version))
        self._paths = sorted(self.by_path)

    def of_path(self, path: str) -> str | None:
        """The owner of files at, under or above ``path`` (the root holds them all)."""
        if not path:
            return next(iter(self.by_path.values()), None)
        parts = path.split("/")
        for depth in range(len(parts), -1, -1):  # the path itself, then each folder above
            holder = self.by_path.get("/".join(parts[:depth]))
            if holder is not None:
                return holder
        below = bisect.bisect_left(self._paths, path + "/")
        if below < len(self._paths) and self._paths[below].startswith(path + "/"):
            return self.by_path[self._paths[below]]
        return None


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
