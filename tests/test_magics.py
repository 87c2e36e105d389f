"""The magics in-process (an IPython shell): parsing, settings and every bad-input path."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from mlflow import MlflowClient

from jupyreg.magics import JupyReg
from tests.conftest import free_port

NAME = "fraud-detector"
TRAIN = """
import numpy as np
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = rng.normal(size=(100, 3)); y = (X[:, 0] > 0).astype(int)
clf = LogisticRegression(C=2.0).fit(X, y)
metrics = {"val": {"auc": 0.91}, "test": {"auc": 0.9}}
"""


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    return InteractiveShell.instance()


@pytest.fixture
def magics(shell, sqlite_uri, monkeypatch) -> JupyReg:
    monkeypatch.setenv("JUPYREG_USER", "alice")
    instance = JupyReg(shell)
    shell.register_magics(instance)
    shell.user_ns.pop("model", None)
    shell.run_line_magic("config", f"JupyReg.tracking_uri = {sqlite_uri!r}")
    yield instance
    shell.configurables.remove(instance)


def registered(uri: str) -> list:
    return MlflowClient(uri, uri).search_model_versions()


def test_cell_magic_runs_the_cell_and_registers(shell, magics, sqlite_uri) -> None:
    mv = shell.run_cell_magic("register", f"{NAME} --model clf --metrics metrics", TRAIN)
    assert (mv.name, mv.version, mv.stage) == (NAME, 1, "None")
    assert mv.metrics == {"val.auc": 0.91, "test.auc": 0.9} and mv.params["C"] == "2.0"
    assert "clf" in shell.user_ns
    html = mv._repr_html_()
    assert NAME in html and "val.auc" in html and "warnings" in html


def test_line_magic_registers_an_existing_variable(shell, magics) -> None:
    shell.run_cell(TRAIN)
    mv = shell.run_line_magic(
        "register", f"{NAME} --model clf --stage staging --reason 'smoke tested' --description d"
    )
    assert (mv.stage, mv.description) == ("Staging", "d")


def test_a_failing_cell_registers_nothing(shell, magics, sqlite_uri) -> None:
    with pytest.raises(UsageError, match="the cell raised ValueError; nothing was registered"):
        shell.run_cell_magic("register", f"{NAME} --model clf", "raise ValueError('boom')")
    assert registered(sqlite_uri) == []


@pytest.mark.parametrize(
    ("line", "setup", "message"),
    [
        ("", "", "the following arguments are required: name"),
        (f"{NAME} --bogus 1", "", "unrecognized arguments: --bogus"),
        (f"{NAME} --model nothere", "", "--model: no variable 'nothere'"),
        (
            f"{NAME} --model x",
            "x = 42",
            "InvalidArgument: cannot register an object of type builtins.int",
        ),
        (f"{NAME} --model clf --metrics m", "m = [1]", "metrics must be a dict"),
        (f"{NAME} --model clf --metrics m", "m = {'auc': float('nan')}", "'auc' is nan"),
        (f"{NAME} --model clf --metrics m", "m = {'auc': 'good'}", "'auc' must be a number"),
        (f"{NAME} --model clf --stage Production", "", "allowed moves are to Staging"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(shell, magics, sqlite_uri, line, setup, message):
    shell.run_cell(TRAIN + "\n" + setup)
    with pytest.raises(UsageError, match=message) as raised:
        shell.run_line_magic("register", line)
    assert "\n" not in str(raised.value)
    assert registered(sqlite_uri) == []


def test_unreachable_registry_keeps_the_model_for_a_retry(shell, magics, sqlite_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    shell.run_line_magic("config", f"JupyReg.tracking_uri = 'http://127.0.0.1:{free_port()}'")
    with pytest.raises(UsageError, match="RegistryUnavailable.*still in `clf`.*%register"):
        shell.run_cell_magic("register", f"{NAME} --model clf", TRAIN)
    assert "clf" in shell.user_ns
    shell.run_line_magic("config", f"JupyReg.tracking_uri = {sqlite_uri!r}")
    assert shell.run_line_magic("register", f"{NAME} --model clf").version == 1


def _fail_then_reach(shell, sqlite_uri, monkeypatch, line: str) -> None:
    """``%%register LINE`` over TRAIN against a closed port, then the registry reachable."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    shell.run_line_magic("config", f"JupyReg.tracking_uri = 'http://127.0.0.1:{free_port()}'")
    with pytest.raises(UsageError, match="RegistryUnavailable.*with this cell's lineage"):
        shell.run_cell_magic("register", line, TRAIN)
    shell.run_line_magic("config", f"JupyReg.tracking_uri = {sqlite_uri!r}")


def test_a_retry_keeps_the_metrics_and_lineage_of_the_failed_cell(
    shell, magics, sqlite_uri, monkeypatch, capsys
) -> None:
    _fail_then_reach(
        shell, sqlite_uri, monkeypatch, f"{NAME} --model clf --metrics metrics --description d"
    )
    captured_at = magics._failed[NAME].lineage.record["captured_at"]
    shell.run_cell("metrics = {'val': {'auc': 0.5}}")  # the retry keeps what the cell was given
    mv = shell.run_line_magic("register", f"{NAME} --model clf")
    assert "retrying the registration" in capsys.readouterr().out
    assert mv.metrics == {"val.auc": 0.91, "test.auc": 0.9}
    assert (mv.description, mv.params["C"]) == ("d", "2.0")
    assert mv.lineage["captured_at"] == captured_at
    assert NAME not in magics._failed


def test_a_retry_line_replaces_what_it_names(shell, magics, sqlite_uri, monkeypatch) -> None:
    _fail_then_reach(shell, sqlite_uri, monkeypatch, f"{NAME} --model clf --metrics metrics")
    shell.run_cell("better = {'val': {'auc': 0.95}}")
    mv = shell.run_line_magic("register", f"{NAME} --model clf --metrics better")
    assert mv.metrics == {"val.auc": 0.95}


def test_a_model_refit_in_place_does_not_reuse_the_failed_cells_lineage(
    shell, magics, sqlite_uri, monkeypatch
) -> None:
    _fail_then_reach(shell, sqlite_uri, monkeypatch, f"{NAME} --model clf --metrics metrics")
    captured_at = magics._failed[NAME].lineage.record["captured_at"]
    shell.run_cell("clf.fit(X[:50], y[:50])")  # same object, fitted again
    with pytest.raises(UsageError, match=r"`clf` changed \(fitted again\?\).*dropped"):
        shell.run_line_magic("register", f"{NAME} --model clf")
    assert registered(sqlite_uri) == []
    mv = shell.run_line_magic("register", f"{NAME} --model clf")  # as it is now
    assert mv.version == 1 and mv.metrics == {}
    assert mv.lineage["captured_at"] != captured_at


def test_another_model_in_the_variable_is_registered_as_itself(
    shell, magics, sqlite_uri, monkeypatch
) -> None:
    _fail_then_reach(shell, sqlite_uri, monkeypatch, f"{NAME} --model clf --metrics metrics")
    shell.run_cell("clf = LogisticRegression(C=3.0).fit(X, y)")
    mv = shell.run_line_magic("register", f"{NAME} --model clf")
    assert mv.metrics == {} and mv.params["C"] == "3.0"


def test_registry_verbs(shell, magics, sqlite_uri, capsys, monkeypatch) -> None:
    shell.run_cell_magic("register", f"{NAME} --model clf", TRAIN)
    assert shell.run_line_magic("registry", "list")["name"].tolist() == [NAME]
    assert shell.run_line_magic("registry", f"versions {NAME}")["version"].tolist() == [1]
    shell.run_line_magic("registry", f"promote {NAME} 1 Staging --reason candidate")
    shell.run_line_magic("registry", f"request {NAME} 1 Production --reason 'beats v0'")
    request_id = shell.run_line_magic("registry", "requests")["id"].iloc[0]
    assert f"request {request_id}: {NAME} v1 -> Production is pending" in capsys.readouterr().out
    with pytest.raises(UsageError, match="PolicyViolation: alice cannot approve their own"):
        shell.run_line_magic("registry", f"approve {request_id}")
    shell.run_line_magic("config", "JupyReg.user = 'bob'")
    shell.run_line_magic("registry", f"approve {request_id} --comment 'looks good'")
    assert "is approved (by bob)" in capsys.readouterr().out
    history = shell.run_line_magic("registry", f"history {NAME}")
    assert history["to_stage"].tolist() == ["Staging", "Production"]
    assert shell.run_line_magic("registry", "check").empty


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "required: verb"),
        ("frobnicate", "invalid choice"),
        ("versions", "required: name"),
        ("history nope", "NotFound: no registered model named 'nope'"),
        ("promote x 1 Staging", "required: --reason"),
        ("request 'x", "No closing quotation"),
    ],
)
def test_registry_bad_input(shell, magics, line, message) -> None:
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("registry", line)


def test_help_is_the_docstring(shell, magics) -> None:
    assert "Register a model as a new version" in magics.register_magic.__doc__
    assert "--metrics" in magics.register_magic.__doc__
    assert "%registry list" in magics.registry_magic.__doc__
    assert shell.run_line_magic("registry", "-h") is None


def test_settings_precedence(shell, magics, workdir, monkeypatch) -> None:
    (workdir / "pyproject.toml").write_text(
        '[tool.jupyreg]\ntracking_uri = "sqlite:///from-pyproject.db"\nuser = "pat"\n'
    )
    shell.run_line_magic("config", "JupyReg.tracking_uri = None")
    shell.run_line_magic("config", "JupyReg.user = None")
    monkeypatch.delenv("JUPYREG_USER")
    registry = magics.get_registry()
    assert registry.tracking_uri == f"sqlite:///{workdir / 'from-pyproject.db'}"
    assert registry.user == "pat"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env.db")
    shell.run_line_magic("config", "JupyReg.user = 'quinn'")  # a change rebuilds the registry
    assert magics.get_registry().tracking_uri == f"sqlite:///{workdir / 'from-env.db'}"
    shell.run_line_magic("config", "JupyReg.tracking_uri = 'sqlite:///from-config.db'")
    assert magics.get_registry().tracking_uri == f"sqlite:///{workdir / 'from-config.db'}"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(line=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_argument_string_is_success_or_usage_error(shell, magics, line) -> None:
    for magic in ("register", "registry"):
        with contextlib.suppress(UsageError):
            shell.run_line_magic(magic, line)
