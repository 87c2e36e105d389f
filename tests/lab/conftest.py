"""A real jupyter_server (pytest-jupyter) with the jupyreg extension on a seeded SQLite registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 - jp_fetch, jp_serverapp and their hooks

from tests.conftest import register_versions

MODEL = "fraud-detector"


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, model) -> tuple[Path, str]:
    """fraud-detector v1 (Staging, with alice's pending Production request) and v2 (None),
    registered once per module; each test gets a copy of the database."""
    from jupyreg import Registry

    root = tmp_path_factory.mktemp("seed")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "JUPYREG_USER"):
            patch.delenv(var, raising=False)
        alice = Registry(f"sqlite:///{root / 'mlflow.db'}", user="alice")
        register_versions(alice, model, MODEL, 2)
        alice.transition(MODEL, 1, "Staging", reason="best validation AUC")
        request = alice.request(MODEL, 1, "Production", reason="beats the baseline")
    return root / "mlflow.db", request.id


@pytest.fixture
def seeded(seeded_template: tuple[Path, str], sqlite_uri: str, workdir: Path) -> dict[str, Any]:
    """The seeded registry in place of the test's empty one (``sqlite_uri``'s file)."""
    database, request_id = seeded_template
    shutil.copy(database, workdir / "mlflow.db")
    return {"name": MODEL, "request_id": request_id}


@pytest.fixture
def jp_server_config(workdir: Path):
    """The server acts as bob on the test's registry (the seeded copy, when seeded)."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyreg": True}},
        "JupyRegServer": {"tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}", "user": "bob"},
    }


@pytest.fixture
def api(jp_fetch):
    """``await api("GET", "models")`` -> (status, JSON body); never raises on 4xx/5xx."""

    async def call(method: str, *path: str, body: Any = None, **kwargs: Any):
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method == "POST":
            kwargs["body"] = "{}"
        response = await jp_fetch(
            "jupyreg", "api", *path, method=method, raise_error=False, **kwargs
        )
        return response.code, json.loads(response.body or b"null")

    return call
