"""The whole lifecycle once more through a real `mlflow server` process (REST store)."""

from __future__ import annotations

import io
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from jupyreg import Registry
from jupyreg.errors import ApprovalRequired, NotFound, PolicyViolation, RegistryUnavailable
from jupyreg.serving.follower import Follower, load_model
from tests.conftest import free_port

pytestmark = pytest.mark.server
NAME = "server-model"


def test_lifecycle_over_rest(mlflow_server: str, model, workdir) -> None:
    alice = Registry(mlflow_server, user="alice")
    bob = Registry(mlflow_server, user="bob")
    first = alice.register(model, NAME, metrics={"val": {"auc": 0.8}})
    second = alice.register(
        model, NAME, metrics={"val": {"auc": 0.9}}, stage="Staging", reason="candidate"
    )
    assert (first.version, second.version, second.stage) == (1, 2, "Staging")
    with pytest.raises(ApprovalRequired):
        alice.transition(NAME, 2, "Production", reason="ship")
    request = alice.request(NAME, 2, "Production", reason="better")
    with pytest.raises(PolicyViolation, match="own request"):
        alice.approve(request.id)
    bob.approve(request.id, comment="ok")

    client = MlflowClient(mlflow_server, mlflow_server)
    assert client.get_model_version(NAME, "2").current_stage == "Production"
    aliases = client.get_registered_model(NAME).aliases
    assert {alias: int(v) for alias, v in aliases.items()} == {"production": 2}
    mlflow.set_tracking_uri(mlflow_server)
    try:
        for uri in (f"models:/{NAME}/Production", f"models:/{NAME}@production"):
            assert len(mlflow.pyfunc.load_model(uri).predict(model.sample_input)) == 3
    finally:
        mlflow.set_tracking_uri(None)
    assert alice.versions(NAME)["aliases"].tolist() == ["", "production"]
    assert alice.history(NAME)[["version", "to_stage", "author"]].values.tolist() == [
        [2, "Staging", "alice"],
        [2, "Production", "bob"],
    ]
    assert alice.requests(status="approved")["id"].tolist() == [request.id]
    assert len(bob.load(NAME).predict(model.sample_input)) == 3
    assert alice.check(NAME).empty
    with pytest.raises(NotFound, match="no version 9"):
        alice.get(NAME, 9)

    # what `jupyreg serve`'s supervisor does where the artifact store is remote (here MLflow's
    # artifact proxy): it downloads a version once, into its own directory, for its workers
    supervisor = Follower(
        bob, NAME, log=io.StringIO(), start=False, models_dir=workdir / "models", keep_models=False
    )
    assert supervisor.version == 2 and supervisor.current.model is None
    assert Path(supervisor.current.path).is_relative_to(workdir / "models" / "v2")
    assert len(load_model(supervisor.current.path).predict(model.sample_input)) == 3


def test_unreachable_server_is_a_clear_error(workdir, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    registry = Registry(f"http://127.0.0.1:{free_port()}", user="alice")
    with pytest.raises(RegistryUnavailable, match="cannot be reached.*then retry"):
        registry.models()
