"""One settings resolver for every front end: explicit > environment > [tool.jupyreg] >
MLflow's default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyreg import Registry, settings
from jupyreg.cli import main
from jupyreg.lab.settings import JupyRegServer

PYPROJECT = '[tool.jupyreg]\ntracking_uri = "sqlite:///from-pyproject.db"\nuser = "pat"\n'


@pytest.fixture
def project(workdir: Path) -> Path:
    (workdir / "pyproject.toml").write_text(PYPROJECT)
    return workdir


def test_each_setting_comes_from_the_first_source_that_sets_it(project, monkeypatch) -> None:
    resolved = settings.resolve()
    assert resolved.tracking_uri == f"sqlite:///{project / 'from-pyproject.db'}"
    assert resolved.registry_uri == resolved.tracking_uri and resolved.user == "pat"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env.db")
    monkeypatch.setenv("JUPYREG_USER", "env-user")
    assert settings.resolve().tracking_uri == f"sqlite:///{project / 'from-env.db'}"
    assert settings.resolve().user == "env-user"
    explicit = settings.resolve("sqlite:///explicit.db", user="me")
    assert explicit.tracking_uri == f"sqlite:///{project / 'explicit.db'}"
    assert (explicit.registry_uri, explicit.user) == (explicit.tracking_uri, "me")


def test_without_any_setting_it_is_mlflows_default(workdir) -> None:
    assert settings.resolve().tracking_uri == f"sqlite:///{workdir / 'mlflow.db'}"


def test_registry_honours_the_pyproject(project, model) -> None:
    reg = Registry()
    assert reg.tracking_uri == f"sqlite:///{project / 'from-pyproject.db'}"
    assert reg.user == "pat"
    reg.register(model, "m")
    assert (project / "from-pyproject.db").exists() and not (project / "mlflow.db").exists()


def test_cli_honours_the_pyproject(project, model, capsys) -> None:
    Registry(f"sqlite:///{project / 'from-pyproject.db'}").register(model, "m")
    assert main(["list", "--format", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["latest_version"]) == ("m", 1)
    assert not (project / "mlflow.db").exists()


def test_lab_honours_the_pyproject(project) -> None:
    registry = JupyRegServer().registry()
    assert registry.tracking_uri == f"sqlite:///{project / 'from-pyproject.db'}"
    assert (
        JupyRegServer(tracking_uri="sqlite:///lab.db").registry().tracking_uri.endswith("/lab.db")
    )


def test_a_malformed_policy_table_is_a_clear_error(workdir) -> None:
    from jupyreg.errors import InvalidArgument

    (workdir / "pyproject.toml").write_text('[tool.jupyreg]\npolicy = "strict"\n')
    with pytest.raises(InvalidArgument, match=r"\[tool.jupyreg.policy\] must be a table"):
        settings.resolve().default_policy()


def test_the_projects_policy_is_read_when_a_step_needs_it(workdir, model) -> None:
    reg = Registry(user="alice")
    reg.register(model, "m")
    assert reg.policy("m").approvals_for("Production") == 1
    (workdir / "pyproject.toml").write_text("[tool.jupyreg.policy]\napprovals = {}\n")
    assert reg.policy("m").approvals_for("Production") == 0
