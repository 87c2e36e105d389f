"""Who owns an artifact path, as the team server's guard reads it from the stores: by the
locations of registered versions' files, their runs and logged models, never by the
path's shape; read again only when a version has changed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from jupyreg.server.state import Owners, ServerState, served_path


def test_the_path_that_serves_an_artifact_uri() -> None:
    assert served_path("mlflow-artifacts:/7/x/models/m-1/artifacts", None) == (
        "7/x/models/m-1/artifacts"
    )
    assert served_path("mlflow-artifacts://host:5000/7/x/", None) == "7/x"
    assert served_path("mlflow-artifacts:/7/./x//y", None) == "7/x/y"
    assert served_path("s3://bucket/root/7/run/artifacts", "s3://bucket/root") == "7/run/artifacts"
    assert served_path("s3://bucket/rootless/7", "s3://bucket/root") is None
    assert served_path("file:///srv/elsewhere", "s3://bucket/root") is None  # never served


def _files(name: str, version: int, *roots: str, run: str = "", model: str = "") -> object:
    return SimpleNamespace(
        name=name,
        version=version,
        roots=roots,
        run_ids=(run,) if run else (),
        model_ids=(model,) if model else (),
        experiment_ids=("7",),
    )


def test_a_path_at_inside_or_above_registered_files_has_their_owner() -> None:
    owners = Owners(
        [
            _files("m", 1, "mlflow-artifacts:/7/x/models/m-1/artifacts", run="r1", model="m-1"),
            _files("m", 2, "mlflow-artifacts:/8/r2/artifacts", run="r2"),
        ],
        None,
    )
    for path in (
        "7/x/models/m-1/artifacts",
        "7/x/models/m-1/artifacts/MLmodel",
        "7/x/models/m-1",
        "7/x",
        "7",
    ):
        assert owners.of_path(path) == "m v1", path
    assert owners.of_path("8/r2/artifacts/jupyreg/git.diff") == "m v2"
    for path in ("7/x/models/m-10/artifacts/MLmodel", "7/y", "70", "8/r3/artifacts"):
        assert owners.of_path(path) is None, path
    assert owners.of_path("") in ("m v1", "m v2")  # the whole root
    assert owners.by_run == {"r1": "m v1", "r2": "m v2"} and owners.by_model == {"m-1": "m v1"}


def test_the_owners_are_read_again_once_a_version_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(BACKEND_STORE_URI_ENV_VAR, uri)
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("e", artifact_location="mlflow-artifacts:/3/x")
    client.create_registered_model("m")
    runs = [client.create_run(experiment) for _ in range(2)]
    source = f"mlflow-artifacts:/3/x/{runs[0].info.run_id}/artifacts/model"
    client.create_model_version("m", source, run_id=runs[0].info.run_id)
    state = ServerState()
    first = f"3/x/{runs[0].info.run_id}/artifacts/MLmodel"
    second = f"3/x/{runs[1].info.run_id}/artifacts/MLmodel"
    assert state.owner_of_path(first) == "m v1"
    assert state.owner_of_path(second) is None
    source = f"mlflow-artifacts:/3/x/{runs[1].info.run_id}/artifacts/model"
    client.create_model_version("m", source, run_id=runs[1].info.run_id)
    assert ServerState().owner_of_path(second) == "m v2"
    assert ServerState().registered_version_of(runs[1].info.run_id, None) == "m v2"
    client.delete_model_version("m", "2")
    assert ServerState().owner_of_path(second) is None
