"""Helpers for the panel tests: versions with chosen metrics and tags, promotions."""

from __future__ import annotations

from mlflow import MlflowClient

from jupyreg import tags

NAME = "fraud-detector"


def register(reg, model, metrics: dict[str, float], **tags: str) -> int:
    """Register a version with ``metrics``; ``tags`` (jupyreg lineage tags, dots written as
    ``__``) are set afterwards as plain MLflow tags, the way older versions carry them."""
    version = reg.register(model, NAME, metrics=metrics).version
    set_tags(reg, version, **tags)
    return version


def set_tags(reg, version: int, **tags: str) -> None:
    client = MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.registry_uri)
    for key, value in tags.items():
        client.set_model_version_tag(NAME, str(version), key.replace("__", "."), value)


def promote(requester, approver, version: int) -> None:
    """None -> Staging -> Production through a request and an approval."""
    requester.transition(NAME, version, "Staging", reason="candidate")
    request = requester.request(NAME, version, "Production", reason="better auc")
    approver.approve(request.id, comment="ok")


def record_reproduction(reg, name: str, version: int, ok: bool) -> None:
    """A reproduction's outcome on the version, as ``jupyreg reproduce`` keeps it."""
    key, value = tags.reproduction_tag(
        f"2026112{version}T000000000000Z-0000000{version}", {"ok": ok}
    )
    client = MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.registry_uri)
    client.set_model_version_tag(name, str(version), key, value)
