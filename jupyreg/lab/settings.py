"""Server-side settings of the registry the sidebar talks to (``c.JupyRegServer.*``)."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from traitlets import Unicode
from traitlets.config import Configurable

from jupyreg.errors import InvalidArgument

if TYPE_CHECKING:
    from jupyreg.registry import Registry

SUPPORTED = "sqlite:///PATH (an existing MLflow database), postgresql[+DRIVER]://..., http(s)://..."
"""The registry URIs the sidebar's ``registryUri`` setting may name."""
CHOSEN_KEPT = 8
"""Registries chosen by the sidebar's setting kept open (the most recently used)."""


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
        self._chosen: OrderedDict[str, Registry] = OrderedDict()
        self._lock = threading.Lock()

    def registry(self, uri: str | None = None) -> Registry:
        """The server's Registry, built on first use (imports MLflow: call it from a worker
        thread, not the event loop). ``uri``: the registry the sidebar's settings chose
        (``registryUri``) instead of the configured one, checked by ``chosen_uri`` at each
        call; one Registry is kept for each of the last ``CHOSEN_KEPT`` URIs."""
        if uri:
            uri = chosen_uri(uri)
        with self._lock:
            from jupyreg.registry import Registry

            if uri:
                if uri not in self._chosen:
                    self._chosen[uri] = Registry(uri, uri, user=self.user)
                    while len(self._chosen) > CHOSEN_KEPT:
                        self._chosen.popitem(last=False)
                self._chosen.move_to_end(uri)
                return self._chosen[uri]
            if self._registry is None:
                self._registry = Registry(self.tracking_uri, self.registry_uri, user=self.user)
            return self._registry

    def describe(self) -> str:
        """For the log; never the URI itself, which may carry credentials."""
        where = "configured tracking_uri" if self.tracking_uri else "default tracking_uri"
        return f"{where}, user={self.user or 'default'}"


def chosen_uri(uri: str) -> str:
    """``uri`` (from the ``X-JupyReg-Registry-URI`` header) if the sidebar may use it;
    InvalidArgument (a 400) naming what is accepted otherwise.

    Accepted: the schemes jupyreg supports as a registry (``SUPPORTED``: SQLite, PostgreSQL,
    a tracking server), so that e.g. ``databricks`` or ``file:`` is a 400, not an MLflow
    failure. A SQLite URI must name an existing MLflow database: a read never creates a
    registry (DESIGN.md §9), and the header must not make the server create or migrate a
    SQLite file wherever the Jupyter user can write. Its path is not confined to the
    server's root directory: the header only chooses which of the user's own registries the
    sidebar shows, a user who may already read any of their files through a kernel, and a
    registry commonly lives outside the notebooks' folder (``~/mlflow.db``).
    """
    from jupyreg.lineage.scrub import scrub_url

    shown = scrub_url(uri)
    scheme = uri.partition(":")[0].lower() if ":" in uri else ""
    if scheme == "sqlite":
        _check_mlflow_database(uri, shown)
    elif scheme in ("http", "https"):
        try:
            host = urlsplit(uri).hostname
        except ValueError:
            host = None
        if not host:
            raise InvalidArgument(f"registry URI {shown!r} names no host; use {SUPPORTED}")
    elif scheme.split("+")[0] != "postgresql":  # PostgreSQL: a host, or the local socket
        raise InvalidArgument(
            f"registry URI {shown!r} is not one the sidebar opens: use {SUPPORTED}"
        )
    return uri


def _check_mlflow_database(uri: str, shown: str) -> None:
    """InvalidArgument unless ``uri`` names an existing SQLite file with MLflow's registry
    tables (read only: nothing is created or changed)."""
    import sqlite3

    from jupyreg.store import sqlite_path

    path = sqlite_path(uri)
    if path is None or not path.is_file():
        raise InvalidArgument(
            f"registry URI {shown!r} names no existing file: the sidebar only opens a registry "
            "that exists"
        )
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        with contextlib.closing(connection) as db:
            found = {
                row[0]
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
                    "('alembic_version', 'registered_models', 'model_versions')"
                )
            }
    except sqlite3.Error:
        found = set()
    if len(found) != 3:
        raise InvalidArgument(f"registry URI {shown!r}: {path} is not an MLflow database")
