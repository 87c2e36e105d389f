"""Every call jupyreg makes into MLflow beyond its public client API, in one place.

Each is pinned by a contract test (tests/contract), which CI runs on the oldest and the
newest supported MLflow, so an MLflow release that moves one fails there, not in a user's
server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def http_request(uri: str, endpoint: str, method: str, **kwargs: Any) -> Any:
    """An HTTP request to a tracking server with MLflow's own credentials, retries and
    TLS settings (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``/``_TOKEN``, ...)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request as mlflow_http_request

    return mlflow_http_request(get_default_host_creds(uri), endpoint, method, **kwargs)


FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
"""MLflow's HTTP retry settings for a registry on a server, unless the user chose them:
MLflow's defaults retry an unreachable server for minutes; these give up in seconds."""


def fail_fast() -> None:
    """MLflow's client reads its retry settings from the environment at each request; there
    is no per-client knob, so the defaults a user has not set are set here."""
    import os

    for name, value in FAIL_FAST.items():
        os.environ.setdefault(name, value)


def server_store_uris(default: str) -> tuple[str, str]:
    """The backend and registry store URIs ``mlflow server`` hands its app (environment)."""
    import os

    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    backend = os.environ.get(BACKEND_STORE_URI_ENV_VAR) or default
    return backend, os.environ.get(REGISTRY_STORE_URI_ENV_VAR) or backend


def model_permission(name: str) -> Any:
    """The basic-auth permission of the current request's user on registered model ``name``."""
    from mlflow.server import auth

    return auth._get_registered_model_permission(name)


def static_prefix() -> str:
    """The path ``mlflow server --static-prefix`` serves everything under ('' for none)."""
    import os

    from mlflow.server.handlers import STATIC_PREFIX_ENV_VAR

    return os.environ.get(STATIC_PREFIX_ENV_VAR, "").rstrip("/")


def explicit_model_permission(name: str, username: str) -> str | None:
    """The permission ``username`` was granted on registered model ``name`` (None: none)."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import auth

    try:
        return str(auth.store.get_registered_model_permission(name, username).permission)
    except MlflowException:
        return None


def grant_model_permission(username: str, name: str, permission: str) -> None:
    """Set (create or replace) ``username``'s permission on registered model ``name``."""
    from mlflow.server import auth

    auth.store.grant_user_permission(username, "registered_model", name, permission)


def decide_creator_grant(decide: Callable[[str, str], str | None]) -> None:
    """Make basic-auth's grant to a new registered model's creator one write of the
    permission ``decide(username, name)`` returns (None: MLflow's own MANAGE). MANAGE
    followed by a second write would leave MANAGE behind a server killed between the two."""
    from flask import request
    from mlflow.server import auth

    original = auth.set_can_manage_registered_model_permission

    def grant(response: Any) -> None:
        login = request.authorization
        name = (response.json or {}).get("registered_model", {}).get("name")
        permission = decide(login.username, name) if login and name else None
        if permission is None:
            original(response)
        else:
            auth.store.grant_user_permission(login.username, "registered_model", name, permission)

    for table in (auth.AFTER_REQUEST_HANDLERS, auth.PARAMETERIZED_AFTER_REQUEST_HANDLERS):
        for key, handler in table.items():
            if handler is original:
                table[key] = grant


def authenticate_once_per_request() -> None:
    """Check a request's password once. Basic-auth re-authenticates on every permission
    lookup of a request (each a ~0.15 s password hash); a request's credentials cannot
    change while it runs, so the first answer is kept on the request (``flask.g``)."""
    from flask import g, has_request_context
    from mlflow.server import auth

    original = auth.authenticate_request
    if getattr(original, "once_per_request", False):
        return

    def authenticate() -> Any:
        if not has_request_context():  # FastAPI's own routes: no Flask request to keep it on
            return original()
        if "jupyreg_authentication" not in g:
            g.jupyreg_authentication = original()
        return g.jupyreg_authentication

    authenticate.once_per_request = True  # type: ignore[attr-defined]
    auth.authenticate_request = authenticate


def sender_is_admin() -> bool:
    from mlflow.server import auth

    return bool(auth.sender_is_admin())


def authorise_routes(routes: Iterable[tuple[str, str]], validator: Callable[[], bool]) -> None:
    """Let basic-auth pass ``(path, method)`` routes it has no validator for (it fails
    closed on unknown routes); the routes authorise per action themselves."""
    from mlflow.server import auth

    for route in routes:
        auth.BEFORE_REQUEST_VALIDATORS[route] = validator


def fire_webhook(entity: str, action: str, payload: dict[str, str]) -> None:
    """Deliver MLflow's webhook event ``entity.action`` from inside a tracking server, as its
    own REST handler for the same write does (signed, MLflow's headers, its delivery pool)."""
    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent
    from mlflow.server.handlers import _get_model_registry_store
    from mlflow.webhooks.delivery import deliver_webhook

    event = WebhookEvent(WebhookEntity(entity), WebhookAction(action))
    deliver_webhook(event=event, payload=payload, store=_get_model_registry_store())


PROXIED_ARTIFACT_ROOT = "mlflow-artifacts:/"
"""The default artifact root of a server that proxies artifacts (``--artifacts-destination``)."""


def log_text_on_server(artifact_uri: str, text: str, path: str) -> None:
    """Write ``text`` as ``path`` under a run's artifact root from inside a tracking server.
    A proxied root (``mlflow-artifacts:/``) is resolved to ``--artifacts-destination`` as
    the server's own upload handler resolves it; any other root is written directly."""
    import posixpath
    import tempfile
    from pathlib import Path

    from mlflow.server import handlers
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if artifact_uri.startswith(PROXIED_ARTIFACT_ROOT.rstrip("/")):
        path = handlers._get_proxied_run_artifact_destination_path(artifact_uri, path)
        repository = handlers._get_artifact_repo_mlflow_artifacts()
    else:
        repository = get_artifact_repository(artifact_uri)
    folder, file_name = posixpath.split(path)
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch, file_name)
        local.write_text(text, encoding="utf-8")
        repository.log_artifact(str(local), folder or None)


def migrate_server_stores(backend_store_uri: str, auth_uri: str) -> None:
    """Bring MLflow's tracking and auth databases to its current schema once, before a
    server's workers start: workers racing the same migrations on a first start die
    (duplicate alembic rows, tables that already exist)."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as AuthStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(backend_store_uri, PROXIED_ARTIFACT_ROOT)
    AuthStore().init_db(auth_uri)


def default_auth_database_uri() -> str:
    """The users database MLflow's basic-auth uses when the operator names none."""
    from mlflow.server.auth.config import read_auth_config

    return read_auth_config().database_uri


def score(data: bytes, content_type: str, model: Any) -> Any:
    """One ``/invocations`` request as ``mlflow models serve`` answers it: MLflow's own input
    parsing (JSON ``dataframe_split`` / ``dataframe_records`` / ``instances`` / ``inputs``,
    CSV, Parquet), prediction and output; returns its ``(response, status, mimetype)``
    tuple, raises ``MlflowException`` for bad input as MLflow's app does."""
    from mlflow.pyfunc import scoring_server

    schema = model.metadata.get_input_schema()
    return scoring_server.invocations(data, content_type, model, schema)


def sql_model_aliases(client: Any, names: Iterable[str]) -> dict[str, dict[str, int]] | None:
    """The aliases of registered models ``names`` in one query of MLflow's SQL registry
    store (``get_registered_model`` loads every version of the model with its tags to
    build ``latest_versions``: ~0.1 s for 100 versions); None for any other store, or
    where MLflow's store no longer has this shape (the caller then asks MLflow's API)."""
    try:
        from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModelAlias
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

        store = client._get_registry_client().store
        if not isinstance(store, SqlAlchemyStore):
            return None
        found: dict[str, dict[str, int]] = {name: {} for name in names}
        with store.ManagedSessionMaker() as session:
            rows = store._get_query(session, SqlRegisteredModelAlias).filter(
                SqlRegisteredModelAlias.name.in_(list(found))
            )
            for row in rows:
                found[row.name][row.alias] = int(row.version)
        return found
    except (ImportError, AttributeError):
        return None
