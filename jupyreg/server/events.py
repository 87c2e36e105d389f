"""The server's lifecycle writes fire MLflow's own webhook events.

MLflow sends webhooks from its REST handlers; the server applies lifecycle steps straight
to its store, so each of those writes fires here the event a plain MLflow server fires
for the same REST call: ``examples/ci`` and any MLflow webhook consumer work unchanged.
"""

from __future__ import annotations

from jupyreg.compat import fire_webhook, log_text_on_server
from jupyreg.store import Store, translated


class FiringStore(Store):
    """The server's store: its lifecycle writes fire webhooks, and it writes run artifacts
    (a model card) into its own artifact store, not through its REST API."""

    def log_text(self, run_id: str, text: str, path: str) -> None:
        with translated(f"writing {path} of run {run_id}", self.tracking_uri):
            log_text_on_server(self.client.get_run(run_id).info.artifact_uri, text, path)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        super().set_version_tag(name, version, key, value)
        fire_webhook(
            "model_version_tag",
            "set",
            {"name": name, "version": str(version), "key": key, "value": value},
        )

    def point_alias(self, name: str, alias: str, version: int | None) -> bool:
        changed = super().point_alias(name, alias, version)
        if changed and version is not None:
            fire_webhook(
                "model_version_alias",
                "created",
                {"name": name, "alias": alias, "version": str(version)},
            )
        elif changed:
            fire_webhook("model_version_alias", "deleted", {"name": name, "alias": alias})
        return changed
