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


def sender_is_admin() -> bool:
    from mlflow.server import auth

    return bool(auth.sender_is_admin())


def authorise_routes(routes: Iterable[tuple[str, str]], validator: Callable[[], bool]) -> None:
    """Let basic-auth pass ``(path, method)`` routes it has no validator for (it fails
    closed on unknown routes); the routes authorise per action themselves."""
    from mlflow.server import auth

    for route in routes:
        auth.BEFORE_REQUEST_VALIDATORS[route] = validator
