"""jupyreg: a model registry that lives in the notebook, built on MLflow.

Importing this package stays light: MLflow, DVC and pandas are imported only when a
registry call needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyreg import errors
from jupyreg.errors import RegistryError

__version__ = "0.1.0"
__all__ = ["Registry", "RegistryError", "errors", "follow", "load_ipython_extension"]

if TYPE_CHECKING:
    from jupyreg.panels import Registry
    from jupyreg.serving.follower import follow


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from jupyreg.panels import Registry

        return Registry
    if name == "follow":
        from jupyreg.serving.follower import follow

        return follow
    raise AttributeError(f"module 'jupyreg' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """jupyter_server: the REST API of the JupyterLab sidebar lives in ``jupyreg.lab``."""
    return [{"module": "jupyreg.lab"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """JupyterLab: the built sidebar (``jupyreg/labextension``, built from ``labextension/``)."""
    return [{"src": "labextension", "dest": "jupyreg"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyreg``: registers the ``%%register`` and ``%registry`` magics."""
    from jupyreg.magics import load_ipython_extension as load

    load(ipython)
