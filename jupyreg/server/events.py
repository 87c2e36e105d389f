"""The server's lifecycle writes fire MLflow's own webhook events, through jupyreg's outbox.

MLflow sends webhooks from its REST handlers; the server applies lifecycle steps straight
to its store, so each of those writes causes here the event a plain MLflow server fires
for the same REST call (``examples/ci`` and any MLflow webhook consumer work unchanged),
written as deliveries in the step's own transaction (``jupyreg.server.outbox``).
"""

from __future__ import annotations

from typing import Any

from jupyreg.compat import (
    Write,
    fire_webhook,
    log_text_on_server,
    sql_registry_store,
    subscribed_webhooks,
)
from jupyreg.server import outbox
from jupyreg.store import Store, translated


def webhook_events(writes: list[Write]) -> list[tuple[str, str, dict[str, str]]]:
    """The MLflow webhook events (entity, action, payload) MLflow's REST handlers fire for
    the same writes."""
    events = []
    for write in writes:
        if write.kind == "version_tag":
            payload = {"name": write.name, "version": str(write.version)}
            events.append(
                ("model_version_tag", "set", {**payload, "key": write.key, "value": write.value})
            )
        elif write.kind == "alias" and write.version is not None:
            payload = {"name": write.name, "alias": write.value, "version": str(write.version)}
            events.append(("model_version_alias", "created", payload))
        elif write.kind == "alias":
            events.append(
                ("model_version_alias", "deleted", {"name": write.name, "alias": write.value})
            )
    return events


class FiringStore(Store):
    """The server's store: its lifecycle writes fire webhooks once stored (a step's writes
    are one transaction: its webhooks go out after it commits), and it writes run artifacts
    (a model card) into its own artifact store, not through its REST API."""

    def log_text(self, run_id: str, text: str, path: str) -> None:
        with translated(f"writing {path} of run {run_id}", self.tracking_uri):
            log_text_on_server(self.client.get_run(run_id).info.artifact_uri, text, path)

    _hooks: dict[tuple[str, str], list[str]] | None = None
    """The webhooks of each event of the batch being applied, None off a SQL store."""

    def _apply(self, writes: list[Write]) -> None:
        sql = sql_registry_store(self.client)
        if sql is not None:
            outbox.create_tables(sql.engine)
            self._hooks = subscribed_webhooks(sql, [(e, a) for e, a, _ in webhook_events(writes)])
        super()._apply(writes)

    def _in_transaction(self, store: Any, session: Any, changed: list[Write]) -> None:
        hooks = self._hooks or {}
        outbox.enqueue(session, webhook_events(changed), lambda e, a: hooks.get((e, a), ()))

    def _written(self, writes: list[Write]) -> None:
        if self._hooks is not None:
            outbox.wake()  # committed with the step: this process's deliverer sends them
            return
        for entity, action, payload in webhook_events(writes):  # not SQL: MLflow's own pool
            fire_webhook(entity, action, payload)
