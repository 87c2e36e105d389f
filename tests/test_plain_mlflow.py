"""The seed's plain-MLflow snippets keep working on a jupyreg registry, and vice versa."""

from __future__ import annotations

import platform
import warnings

import mlflow
import pytest
from mlflow import MlflowClient

from jupyreg import Registry

NAME = "fraud-detector-v2"


@pytest.fixture
def plain_mlflow(sqlite_uri: str):
    mlflow.set_tracking_uri(sqlite_uri)
    mlflow.set_registry_uri(sqlite_uri)
    yield mlflow
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_versions_logged_by_plain_mlflow_are_listed_and_promotable(plain_mlflow, alice, bob, model):
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=NAME, pip_requirements=["scikit-learn"]
        )
    assert alice.models()["name"].tolist() == [NAME]
    versions = alice.versions(NAME)
    assert versions[["version", "stage", "author"]].values.tolist()[0][:2] == [1, "None"]
    # the run-context provider recorded the lineage of the code that started the run
    assert alice.get(NAME, 1).lineage["entry"]["kind"] == "script"
    assert alice.get(NAME, 1).lineage_fields["python"] == platform.python_version()

    alice.transition(NAME, 1, "Staging", reason="from the seed")
    bob.approve(alice.request(NAME, 1, "Production", reason="seed model").id)
    # the seed's inference service, unchanged
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}/Production")
    assert list(loaded.predict(model.sample_input)) == list(model.predict(model.sample_input))
    assert mlflow.pyfunc.load_model(f"models:/{NAME}@production") is not None


def test_legacy_stage_transitions_by_plain_clients_are_adopted(plain_mlflow, alice, model):
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=NAME, pip_requirements=["scikit-learn"]
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MlflowClient().transition_model_version_stage(NAME, "1", "Staging")
    assert alice.get(NAME, 1).stage == "Staging"  # MLflow's own stage is honoured
    assert alice.check(NAME)["problem"].tolist() == [
        "in Staging without any history event",
        "alias 'staging' points at None, should be 1",
    ]
    alice.check(NAME, repair=True)
    assert alice.check(NAME).empty
    assert alice.history(NAME)["to_stage"].tolist() == ["Staging"]
    assert Registry(alice.registry_uri, user="bob").get(NAME, 1).aliases == ("staging",)
