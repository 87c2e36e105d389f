"""What the gates judge is frozen at registration (issue 14, repro 5): the metrics are
recorded on the new version as ``jupyreg.metrics`` and the gates read that record, never
the run's metrics, which anyone who may log to the run can change afterwards."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from jupyreg import tags
from jupyreg.errors import InvalidArgument, PolicyViolation

NAME = "churn"


def register(reg, model, auc: float) -> int:
    return reg.register(model, NAME, metrics={"test": {"auc": auc}, "val": {"auc": 0.9}}).version


def test_the_record_is_written_at_registration(workdir, alice, model, sqlite_uri) -> None:
    version = register(alice, model, 0.8)
    recorded = MlflowClient(sqlite_uri, sqlite_uri).get_model_version(NAME, str(version)).tags
    assert json.loads(recorded[tags.METRICS_TAG]) == {"test.auc": 0.8, "val.auc": 0.9}
    assert "metrics" not in alice.get(NAME, version).lineage_fields  # not a lineage field


def test_a_threshold_gate_judges_the_registered_value(workdir, alice, model, sqlite_uri) -> None:
    version = register(alice, model, 0.8)
    alice.set_policy(NAME, thresholds=["test.auc >= 0.85"], approvals={})
    alice.transition(NAME, version, "Staging", reason="candidate")
    client = MlflowClient(sqlite_uri, sqlite_uri)
    client.log_metric(alice.get(NAME, version).run_id, "test.auc", 0.99)
    client.log_metric(alice.get(NAME, version).run_id, "late.metric", 1.0)
    with pytest.raises(PolicyViolation, match=r"test.auc >= 0.85: test.auc = 0.8\b"):
        alice.transition(NAME, version, "Production", reason="ship")
    with pytest.raises(PolicyViolation, match=r"test.auc = 0.8\b"):
        alice.request(NAME, version, "Production", reason="ship")
    assert alice.get(NAME, version).stage == "Staging"
    # what callers see is what the gates judged, and the change on the run is named
    shown = alice.get(NAME, version)
    assert shown.metrics == {"test.auc": 0.8, "val.auc": 0.9}
    assert any(
        "test.auc = 0.99 on the run, 0.8 registered" in w and "late.metric" in w
        for w in shown.warnings
    )
    assert alice.versions(NAME)["metrics.test.auc"].tolist() == [0.8]
    assert alice.compare(NAME).loc["metrics.test.auc"].iloc[0] == 0.8


def test_not_worse_than_production_compares_registered_values(
    workdir, alice, model, sqlite_uri
) -> None:
    first = register(alice, model, 0.95)
    alice.set_policy(NAME, approvals={})
    alice.transition(NAME, first, "Staging", reason="candidate")
    alice.transition(NAME, first, "Production", reason="first")
    alice.set_policy(NAME, not_worse_than_production=["test.auc"], approvals={})
    MlflowClient(sqlite_uri, sqlite_uri).log_metric(alice.get(NAME, first).run_id, "test.auc", 0.1)
    second = register(alice, model, 0.90)
    alice.transition(NAME, second, "Staging", reason="candidate")
    with pytest.raises(PolicyViolation, match=rf"0.9 is worse than Production v{first}'s 0.95"):
        alice.transition(NAME, second, "Production", reason="newer")


def test_a_version_without_a_record_fails_metric_gates_clearly(
    workdir, alice, model, sqlite_uri
) -> None:
    source = alice.get(NAME, register(alice, model, 0.99))
    client = MlflowClient(sqlite_uri, sqlite_uri)
    plain = int(client.create_model_version(NAME, source.source, run_id=source.run_id).version)
    assert alice.get(NAME, plain).metrics["test.auc"] == 0.99  # the run's, for display
    alice.set_policy(NAME, thresholds=["test.auc >= 0.85"], approvals={})
    alice.transition(NAME, plain, "Staging", reason="candidate")
    with pytest.raises(PolicyViolation) as refused:
        alice.transition(NAME, plain, "Production", reason="ship")
    message = str(refused.value)
    assert "1 gate(s) failed" in message
    assert "none were recorded when this version was registered" in message
    assert "reg.register(model, NAME, metrics=" in message
    # an unreadable record is no record
    client.set_model_version_tag(NAME, str(plain), tags.METRICS_TAG, '{"test.auc": "high"}')
    with pytest.raises(PolicyViolation, match="none were recorded"):
        alice.transition(NAME, plain, "Production", reason="ship")
    # gates that do not judge metrics still pass such a version
    alice.set_policy(NAME, thresholds=[], approvals={})
    assert alice.transition(NAME, plain, "Production", reason="ship").stage == "Production"


def test_a_record_too_large_is_refused_before_anything_is_written(
    workdir, alice, model, sqlite_uri
) -> None:
    metrics = {f"m{i:04d}." + "x" * 200: 0.5 for i in range(500)}
    with pytest.raises(InvalidArgument, match="more than the 100,000 MLflow keeps in a tag"):
        alice.register(model, NAME, metrics=metrics)
    client = MlflowClient(sqlite_uri, sqlite_uri)
    assert client.search_registered_models() == []
    assert client.get_experiment_by_name(NAME) is None


def test_the_record_is_reserved_but_written_at_creation() -> None:
    assert tags.is_reserved(tags.METRICS_TAG)
    assert not tags.written_by_lifecycle_only(tags.METRICS_TAG)
    assert tags.written_by_lifecycle_only(" JUPYREG.Metrics")  # another spelling
    assert tags.written_by_lifecycle_only(tags.KEPT_PREFIX + "1.event.x")
