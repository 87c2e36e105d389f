"""What the guard reads of the server's own registry store."""

from __future__ import annotations

import contextlib


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
        query = f"run_id = '{run_id}'" if run_id else f"source_path LIKE '%{model_id}%'"
        found = self.store.versions(filter_string=query)
        return f"{found[0].name} v{found[0].version}" if found else None

    def keep_history(self, name: str, version: int) -> None:
        self.store.keep_history(name, version)
