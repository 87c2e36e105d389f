"""`jupyreg server`'s preparation: the auth config MLflow reads, private and exact."""

from __future__ import annotations

import os
import stat

from jupyreg.server.launch import server_environment, write_auth_config


def test_the_auth_config_keeps_a_percent_escaped_password_exactly(monkeypatch) -> None:
    from mlflow.server.auth.config import read_auth_config

    uri = "postgresql://auth:p%40ss%25word@db.internal:5432/auth"
    path = write_auth_config(uri, "READ", "admin", auth_cache_seconds=30)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", path)
        config = read_auth_config()
        assert config.database_uri == uri
        assert (config.default_permission, config.admin_username) == ("READ", "admin")
        assert config.auth_cache_ttl_seconds == 30
    finally:
        os.unlink(path)


def test_each_server_gets_its_own_new_private_config(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)  # set by conftest
    first = server_environment("sqlite:///a.db", "READ", "admin", None)
    second = server_environment("sqlite:///a.db", "READ", "admin", ["bob"])
    try:
        assert first["MLFLOW_AUTH_CONFIG_PATH"] != second["MLFLOW_AUTH_CONFIG_PATH"]
        assert second["JUPYREG_APPROVERS"] == "bob"
        assert first["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] == "10"
        assert first["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    finally:
        for env in (first, second):
            os.unlink(env["MLFLOW_AUTH_CONFIG_PATH"])


def test_the_workers_of_a_server_share_one_webhook_key_and_an_operators_wins(
    monkeypatch, capsys
) -> None:
    """Without one key per server, a webhook secret one worker encrypted is unreadable to
    the others and MLflow silently stops delivering that webhook."""
    from cryptography.fernet import Fernet

    monkeypatch.delenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", raising=False)
    made = server_environment(None, "READ", "admin", None)["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
    Fernet(made)  # a valid key
    assert "same on every replica" in capsys.readouterr().err
    assert (
        made
        != server_environment(None, "READ", "admin", None)["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
    )
    monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", made)
    env = server_environment(None, "READ", "admin", None)
    assert env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] == made
    assert env["MLFLOW_WEBHOOK_CACHE_TTL"] == "5" and env["JUPYREG_CREATOR_PERMISSION"] == "EDIT"


def test_a_backend_it_cannot_use_is_one_line_before_any_server_starts(tmp_path, capsys) -> None:
    from jupyreg.cli import EXIT_USAGE, main

    auth = f"sqlite:///{tmp_path / 'auth.db'}"
    argv = ["server", "--backend-store-uri", "foo://nowhere", "--auth-database-uri", auth]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "jupyreg: error: preparing the server's databases: Invalid database engine: 'foo'. "
        "Supported database engines are postgresql, mysql, sqlite, mssql"
    )
