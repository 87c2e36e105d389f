"""The server's lifecycle writes fire MLflow's own webhook events.

MLflow sends webhooks from its REST handlers; the server applies lifecycle steps straight
to its store, so each of those writes fires here the event a plain MLflow server fires
for the same REST call: ``examples/ci`` and any MLflow webhook consumer work unchanged.
"""

from __future__ import annotations

from jupyreg.compat import Write, fire_webhook, log_text_on_server
from jupyreg.store import Store, translated


class FiringStore(Store):
    """The server's store: its lifecycle writes fire webhooks once stored (a step's writes
    are one transaction: its webhooks go out after it commits), and it writes run artifacts
    (a model card) into its own artifact store, not through its REST API."""

    def log_text(self, run_id: str, text: str, path: str) -> None:
        with translated(f"writing {path} of run {run_id}", self.tracking_uri):
            log_text_on_server(self.client.get_run(run_id).info.artifact_uri, text, path)

    def _written(self, writes: list[Write]) -> None:
        for write in writes:
            if write.kind == "version_tag":
                payload = {"name": write.name, "version": str(write.version)}
                fire_webhook(
                    "model_version_tag", "set", {**payload, "key": write.key, "value": write.value}
                )
            elif write.kind == "alias" and write.version is not None:
                payload = {"name": write.name, "alias": write.value, "version": str(write.version)}
                fire_webhook("model_version_alias", "created", payload)
            elif write.kind == "alias":
                fire_webhook(
                    "model_version_alias", "deleted", {"name": write.name, "alias": write.value}
                )
