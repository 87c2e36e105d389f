"""Contract tests: each call jupyreg makes into MLflow beyond its public client API
(``jupyreg.compat``), and each MLflow behaviour jupyreg relies on, against the installed
MLflow. CI runs this module on the oldest and the newest supported MLflow."""

from __future__ import annotations

import base64
import inspect
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jupyreg import compat, settings


def test_default_tracking_uri_is_mlflows(tmp_path: Path) -> None:
    code = "import mlflow; print(mlflow.get_tracking_uri())"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    reported = out.stdout.strip().splitlines()[-1]
    assert settings.absolute_sqlite(reported).replace(str(tmp_path), ".") in (
        settings.DEFAULT_TRACKING_URI,
        "sqlite:///./mlflow.db",
    )


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps(
            {"path": self.path, "authorization": self.headers.get("Authorization")}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_http_request_sends_mlflows_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        response = compat.http_request(uri, "/api/2.0/jupyreg/info", "GET")
    finally:
        server.shutdown()
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == "/api/2.0/jupyreg/info"
    assert body["authorization"] == "Basic " + base64.b64encode(b"alice:pw").decode()


def test_server_store_uris_read_what_mlflow_server_sets(monkeypatch) -> None:
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    monkeypatch.delenv(REGISTRY_STORE_URI_ENV_VAR, raising=False)
    monkeypatch.setenv(BACKEND_STORE_URI_ENV_VAR, "postgresql://db/x")
    assert compat.server_store_uris("sqlite:///d.db") == ("postgresql://db/x",) * 2
    monkeypatch.setenv(REGISTRY_STORE_URI_ENV_VAR, "postgresql://db/y")
    assert compat.server_store_uris("sqlite:///d.db") == ("postgresql://db/x", "postgresql://db/y")
    import mlflow.server

    source = inspect.getsource(mlflow.server)
    assert "BACKEND_STORE_URI_ENV_VAR" in source and "REGISTRY_STORE_URI_ENV_VAR" in source


def test_basic_auth_hooks_have_the_shape_jupyreg_uses() -> None:
    from mlflow.server import auth

    params = list(inspect.signature(auth._get_registered_model_permission).parameters)
    assert params == ["name"]
    assert not inspect.signature(auth.sender_is_admin).parameters
    route = ("/api/2.0/mlflow/registered-models/get", "GET")
    assert route in auth.BEFORE_REQUEST_VALIDATORS
    permission = auth.get_permission("MANAGE")
    assert (permission.can_read, permission.can_update, permission.can_manage) == (True,) * 3
    edit = auth.get_permission("EDIT")
    assert (edit.can_read, edit.can_update, edit.can_manage) == (True, True, False)


def test_the_auth_store_calls_and_the_prefix_variable_jupyreg_uses(tmp_path: Path) -> None:
    """A creator's permission is read and replaced through the auth store; the guard reads
    the static prefix from the variable `mlflow server --static-prefix` sets."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore
    from mlflow.server.handlers import STATIC_PREFIX_ENV_VAR

    assert STATIC_PREFIX_ENV_VAR == "_MLFLOW_STATIC_PREFIX"
    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{tmp_path / 'auth.db'}")
    store.create_user("alice", "a-long-password-1")
    store.grant_user_permission("alice", "registered_model", "m", "MANAGE")
    assert store.get_registered_model_permission("m", "alice").permission == "MANAGE"
    store.grant_user_permission("alice", "registered_model", "m", "EDIT")  # replaces it
    assert store.get_registered_model_permission("m", "alice").permission == "EDIT"


def test_registering_and_loading_never_touch_the_process_tracking_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model
) -> None:
    """Two registries in one process, the global tracking URI pointing at neither: the
    public logged-model API writes and reads through each registry's own URI."""
    from mlflow import MlflowClient

    from jupyreg import Registry

    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    ours = f"sqlite:///{tmp_path / 'ours.db'}"
    monkeypatch.chdir(tmp_path)
    reg = Registry(ours, user="alice")
    mv = reg.register(model, "m", metrics={"val": {"auc": 0.9}})
    assert reg.load("m", version=mv.version).predict(model.sample_input).shape == (3,)
    client = MlflowClient(ours, ours)
    run = client.get_run(mv.run_id)
    assert run.info.status == "FINISHED"
    (output,) = run.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert str(logged.status) == "READY" and logged.source_run_id == mv.run_id
    stored = client.get_model_version("m", str(mv.version))
    assert stored.source == logged.artifact_location and stored.run_id == mv.run_id
    assert not (tmp_path / "elsewhere.db").exists()


def test_migrations_run_before_a_server_starts(tmp_path: Path) -> None:
    import sqlite3

    backend, auth = tmp_path / "mlflow.db", tmp_path / "auth.db"
    compat.migrate_server_stores(f"sqlite:///{backend}", f"sqlite:///{auth}")
    tables = {row[0] for row in sqlite3.connect(backend).execute("SELECT name FROM sqlite_master")}
    assert {"registered_models", "model_versions", "webhooks"} <= tables
    auth_tables = {
        row[0] for row in sqlite3.connect(auth).execute("SELECT name FROM sqlite_master")
    }
    assert "users" in auth_tables
    (location,) = sqlite3.connect(backend).execute(
        "SELECT artifact_location FROM experiments WHERE experiment_id = 0"
    )
    assert location[0].startswith(compat.PROXIED_ARTIFACT_ROOT)
    assert compat.default_auth_database_uri().startswith("sqlite:///")


def test_webhook_delivery_has_the_shape_jupyreg_fires() -> None:
    from mlflow.entities.webhook import WebhookAction, WebhookEntity
    from mlflow.server import handlers
    from mlflow.webhooks.delivery import deliver_webhook

    assert WebhookEntity("model_version_tag") and WebhookEntity("model_version_alias")
    assert {WebhookAction(a) for a in ("set", "created", "deleted")}
    assert list(inspect.signature(deliver_webhook).parameters) == ["event", "payload", "store"]
    assert callable(handlers._get_model_registry_store)


def test_basic_auth_tables_jupyreg_patches() -> None:
    """The creator's grant is basic-auth's after-request handler of model creation, and
    basic-auth's permission lookups authenticate through the module's `authenticate_request`
    (which jupyreg keeps per request)."""
    from mlflow.server import auth

    create = ("/api/2.0/mlflow/registered-models/create", "POST")
    patched = hasattr(auth.authenticate_request, "once_per_request")  # a jupyreg app was made
    grant = auth.set_can_manage_registered_model_permission
    assert auth.AFTER_REQUEST_HANDLERS[create] is grant or patched
    assert "store.grant_user_permission(" in inspect.getsource(
        auth.set_can_manage_registered_model_permission
    )
    for lookup in (auth._get_registered_model_permission, auth.sender_is_admin):
        assert "authenticate_request()" in inspect.getsource(lookup)


def test_a_server_writes_run_artifacts_where_its_upload_handler_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxied run root resolves to --artifacts-destination (the server's own upload
    handler's resolution); any other root is written directly."""
    from mlflow.server import ARTIFACTS_DESTINATION_ENV_VAR, handlers

    monkeypatch.setenv(ARTIFACTS_DESTINATION_ENV_VAR, str(tmp_path / "destination"))
    monkeypatch.setattr(handlers, "_artifact_repo", None)  # resolved on first use
    compat.log_text_on_server("mlflow-artifacts:/1/r1/artifacts", "card", "model_card.md")
    written = tmp_path / "destination" / "1" / "r1" / "artifacts" / "model_card.md"
    assert written.read_text() == "card"
    compat.log_text_on_server((tmp_path / "direct").as_uri(), "other", "docs/card.md")
    assert (tmp_path / "direct" / "docs" / "card.md").read_text() == "other"


def test_reach_gives_up_at_once_whatever_the_environment_says(monkeypatch) -> None:
    """``compat.reach`` passes MLflow's retry settings per call: MLflow's environment
    (here: retry for hours) is not read, so library code never needs to set it."""
    import time

    from mlflow.exceptions import MlflowException

    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "120")
    started = time.monotonic()
    with pytest.raises(MlflowException, match="Connection refused|Failed to establish"):
        compat.reach(f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 5
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        compat.reach(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


def test_download_run_files_writes_each_file_without_a_progress_bar(tmp_path: Path, capfd):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    (tmp_path / "jupyreg").mkdir()
    for name in ("diff.patch", "cells.json"):
        (tmp_path / "jupyreg" / name).write_text(name)
    client.log_artifacts(run_id, str(tmp_path / "jupyreg"), "jupyreg")
    capfd.readouterr()
    listed = [f.path for f in client.list_artifacts(run_id, "jupyreg") if not f.is_dir]
    compat.download_run_files(client, run_id, listed, tmp_path / "out")
    assert sorted(listed) == ["jupyreg/cells.json", "jupyreg/diff.patch"]
    assert (tmp_path / "out/jupyreg/diff.patch").read_text() == "diff.patch"
    assert (tmp_path / "out/jupyreg/cells.json").read_text() == "cells.json"
    assert "Downloading artifacts" not in capfd.readouterr().err
