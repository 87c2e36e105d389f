"""Client of a jupyreg tracking server's lifecycle endpoints (``--app-name jupyreg``).

Against such a server the lifecycle runs server-side (authenticated author, permissions,
serialised steps); plain MLflow servers keep the client-side path.
"""

from __future__ import annotations

import functools
from typing import Any

from jupyreg import errors
from jupyreg.errors import PermissionDenied, RegistryError

INFO_ENDPOINT = "/api/2.0/jupyreg/info"
ACTION_ENDPOINT = "/api/2.0/jupyreg/{}"
_ERRORS = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, RegistryError)
}


class LifecycleServer:
    def __init__(self, uri: str) -> None:
        self.uri = uri

    def call(self, action: str, **payload: Any) -> dict[str, Any]:
        response = _http(self.uri, ACTION_ENDPOINT.format(action), "POST", json=payload)
        body = _json(response)
        if response.status_code == 401:
            raise PermissionDenied(
                f"{self.uri} needs credentials: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD"
            )
        if response.status_code >= 400:
            cls = _ERRORS.get(body.get("jupyreg_error", ""), RegistryError)
            if response.status_code == 403 and cls is RegistryError:
                cls = PermissionDenied
            raise cls(body.get("message") or f"{action} failed with HTTP {response.status_code}")
        return body


def _http(uri: str, endpoint: str, method: str, **kwargs: Any) -> Any:
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    return http_request(get_default_host_creds(uri), endpoint, method, **kwargs)


def _json(response: Any) -> dict[str, Any]:
    try:
        return response.json()
    except ValueError:
        return {}


@functools.cache
def discover(uri: str) -> LifecycleServer | None:
    """The jupyreg endpoints of the server at ``uri``, or None for a plain MLflow server."""
    if not uri.startswith(("http://", "https://")):
        return None
    response = _http(uri, INFO_ENDPOINT, "GET")
    if response.status_code == 401:
        raise PermissionDenied(
            f"{uri} needs credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if response.status_code == 200 and _json(response).get("app") == "jupyreg":
        return LifecycleServer(uri)
    return None
