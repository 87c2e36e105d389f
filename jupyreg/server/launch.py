"""``jupyreg server``: start ``mlflow server --app-name jupyreg`` with sensible defaults."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

from jupyreg.server import oidc
from jupyreg.server.actions import APPROVERS_ENV
from jupyreg.server.roles import CREATOR_PERMISSION_ENV
from jupyreg.server.routes import ENABLED_ENV, OPTIONAL

AUTHORIZATION_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"
POOL = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "10", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "10"}
"""Database connections of MLflow's store per worker (docs/deploy.md sizes PostgreSQL)."""
NO_JOB_RUNNER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""jupyreg uses none of MLflow's server jobs; their runner is 8 more processes per server
(and outlives a SIGTERM). An operator who wants them sets the variable."""
WEBHOOK_KEY = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
"""MLflow encrypts webhook secrets with it; unset, each worker makes its own key and cannot
read the secrets of webhooks another worker created (their deliveries silently stop)."""
WEBHOOK_CACHE = {"MLFLOW_WEBHOOK_CACHE_TTL": "5"}
"""Each worker remembers the webhook list per event this many seconds (MLflow's default,
60, lets a webhook added on one replica miss a minute of moves on another)."""


def server_arguments(
    backend_store_uri: str,
    artifacts_destination: str,
    host: str,
    port: int,
    workers: int,
    static_prefix: str | None = None,
) -> list[str]:
    """The arguments of MLflow's ``mlflow server`` command for this server."""
    prefix = ["--static-prefix", static_prefix] if static_prefix else []
    return [
        "server",
        "--app-name",
        "jupyreg",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *prefix,
    ]


def server_environment(
    auth_database_uri: str | None,
    default_permission: str,
    admin_username: str,
    approvers: list[str] | None,
    auth_cache_seconds: int = 0,
    creator_permission: str = "EDIT",
    mlflow_features: list[str] | None = None,
    oidc_issuers: list[str] | None = None,
    oidc_audience: str | None = None,
) -> dict[str, str]:
    """The server's environment: a stable Flask secret (shared by its workers), an auth
    config naming the users database, the approvers list, what a creator gets, the
    optional MLflow features it serves (none unless named) and the OIDC issuers it trusts."""
    issuers = [oidc.check_issuer(url) for url in oidc_issuers or ()]
    unknown = sorted(set(mlflow_features or ()) - OPTIONAL.keys())
    if unknown:
        known = ", ".join(sorted(OPTIONAL))
        raise ValueError(f"unknown MLflow feature {', '.join(unknown)}: choose from {known}")
    env = dict(os.environ)
    env[ENABLED_ENV] = ",".join(sorted(set(mlflow_features or ())))
    env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(32))
    if WEBHOOK_KEY not in env:
        env[WEBHOOK_KEY] = _fernet_key()
        print(
            f"jupyreg server: webhook secrets are encrypted with a key made for this run; set "
            f"{WEBHOOK_KEY} (same on every replica) to keep webhooks working across restarts",
            file=sys.stderr,
        )
    for name, value in {**POOL, **NO_JOB_RUNNER, **WEBHOOK_CACHE}.items():
        env.setdefault(name, value)
    if auth_database_uri:
        env["MLFLOW_AUTH_CONFIG_PATH"] = write_auth_config(
            auth_database_uri, default_permission, admin_username, auth_cache_seconds
        )
    if approvers:
        env[APPROVERS_ENV] = ",".join(approvers)
    env[CREATOR_PERMISSION_ENV] = creator_permission
    env[oidc.ISSUERS_ENV] = ",".join(issuers)
    env[oidc.AUDIENCE_ENV] = oidc_audience or oidc.DEFAULT_AUDIENCE
    return env


def _fernet_key() -> str:
    """A key as ``cryptography.fernet.Fernet.generate_key`` makes one (32 random bytes)."""
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def write_auth_config(
    database_uri: str, default_permission: str, admin_username: str, auth_cache_seconds: int = 0
) -> str:
    """MLflow's basic-auth config in a new private file (mode 0600: the database URI may
    carry a password), written with configparser as MLflow reads it (``%`` escaped).
    ``auth_cache_seconds`` > 0 lets each worker remember a checked password that long
    (MLflow's password hashing costs ~0.1 s per request; a revoked password keeps working
    until the cache forgets it)."""
    import configparser

    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": default_permission,
        "database_uri": database_uri.replace("%", "%%"),
        "admin_username": admin_username,
        "authorization_function": AUTHORIZATION_FUNCTION,
        "auth_cache_ttl_seconds": str(auth_cache_seconds),
    }
    handle, path = tempfile.mkstemp(prefix="jupyreg-auth-", suffix=".ini")
    with os.fdopen(handle, "w") as file:
        config.write(file)
    return path


def run_server(
    backend_store_uri: str = "sqlite:///mlflow.db",
    artifacts_destination: str = "./mlartifacts",
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 2,
    auth_database_uri: str | None = None,
    default_permission: str = "READ",
    admin_username: str = "admin",
    approvers: list[str] | None = None,
    auth_cache_seconds: int = 0,
    creator_permission: str = "EDIT",
    static_prefix: str | None = None,
    mlflow_features: list[str] | None = None,
    oidc_issuers: list[str] | None = None,
    oidc_audience: str | None = None,
) -> None:
    """Prepare the databases once, then run MLflow's ``mlflow server`` command in this
    process (it forwards signals to its uvicorn workers): migrations and interrupted
    lifecycle steps are dealt with before any worker starts. MLflow is imported once, here;
    the preparation runs in a forked child that inherits it, so that no database connection
    of it stays open in this process while the server runs."""
    from mlflow.cli import cli as mlflow_cli

    arguments = server_arguments(
        backend_store_uri, artifacts_destination, host, port, workers, static_prefix
    )
    env = server_environment(
        auth_database_uri,
        default_permission,
        admin_username,
        approvers,
        auth_cache_seconds,
        creator_permission,
        mlflow_features,
        oidc_issuers,
        oidc_audience,
    )
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as child:
            child.submit(prepare_databases, backend_store_uri, auth_database_uri).result()
        os.environ.update(env)
        mlflow_cli.main(arguments, prog_name="mlflow")
    finally:  # the private auth config this run wrote (it may name a password) goes with it
        if auth_database_uri:
            os.unlink(env["MLFLOW_AUTH_CONFIG_PATH"])


def prepare_databases(backend_store_uri: str, auth_database_uri: str | None) -> None:
    """MLflow's schemas current, jupyreg's identity tables beside its users, and every step
    a crash interrupted finished. Failures are jupyreg's one-line errors (the CLI prints
    them), not MLflow's or SQLAlchemy's tracebacks."""
    from jupyreg.compat import default_auth_database_uri, migrate_server_stores
    from jupyreg.registry import Registry
    from jupyreg.server.identities import create_tables
    from jupyreg.store import translated

    auth = auth_database_uri or default_auth_database_uri()
    with translated("preparing the server's databases", backend_store_uri):
        migrate_server_stores(backend_store_uri, auth)
        create_tables(auth)
    Registry(backend_store_uri, user="jupyreg server").finish_steps()
