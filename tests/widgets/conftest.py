"""Fixtures of the panel tests: each test gets its own registry, copied from one template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def empty_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite database with its schema, made once: creating one runs
    MLflow's migrations (seconds), copying it takes milliseconds."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def sqlite_uri(workdir: Path, empty_registry_db: Path) -> str:
    shutil.copyfile(empty_registry_db, workdir / "mlflow.db")
    return f"sqlite:///{workdir / 'mlflow.db'}"
