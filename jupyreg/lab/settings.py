"""Server-side settings of the registry the sidebar talks to (``c.JupyRegServer.*``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from traitlets import Unicode
from traitlets.config import Configurable

if TYPE_CHECKING:
    from jupyreg.registry import Registry


class JupyRegServer(Configurable):
    """Which MLflow registry the JupyterLab sidebar shows, and as whom it acts."""

    tracking_uri = Unicode(
        None,
        allow_none=True,
        config=True,
        help="MLflow tracking URI. Default: MLFLOW_TRACKING_URI, else [tool.jupyreg] "
        "tracking_uri of the project, else sqlite:///mlflow.db in the server's working directory.",
    )
    registry_uri = Unicode(
        None,
        allow_none=True,
        config=True,
        help="MLflow registry URI. Default: MLFLOW_REGISTRY_URI, else the tracking URI.",
    )
    user = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Identity recorded as author/reviewer. Default: JUPYREG_USER, else git "
        "user.email, else the OS user (as jupyreg.Registry decides).",
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._registry: Registry | None = None
        self._chosen: dict[str, Registry] = {}
        self._lock = threading.Lock()

    def registry(self, uri: str | None = None) -> Registry:
        """The server's Registry, built on first use (imports MLflow: call it from a worker
        thread, not the event loop). ``uri``: the registry the sidebar's settings chose
        (``registryUri``) instead of the configured one; one Registry per URI is kept."""
        with self._lock:
            from jupyreg.registry import Registry

            if uri:
                if uri not in self._chosen:
                    self._chosen[uri] = Registry(uri, uri, user=self.user)
                return self._chosen[uri]
            if self._registry is None:
                self._registry = Registry(self.tracking_uri, self.registry_uri, user=self.user)
            return self._registry

    def describe(self) -> str:
        """For the log; never the URI itself, which may carry credentials."""
        where = "configured tracking_uri" if self.tracking_uri else "default tracking_uri"
        return f"{where}, user={self.user or 'default'}"
