"""The jupyter_server side of the JupyterLab sidebar: REST handlers under ``/jupyreg/api``.

Enabled by ``jupyter-config/jupyter_server_config.d/jupyreg.json``; configured with
``c.JupyRegServer.tracking_uri / registry_uri / user`` (see ``jupyreg.lab.settings``).
"""

from __future__ import annotations

from typing import Any


def _load_jupyter_server_extension(server_app: Any) -> None:
    from jupyreg.lab.handlers import setup_handlers
    from jupyreg.lab.settings import JupyRegServer

    settings = JupyRegServer(parent=server_app)
    setup_handlers(server_app.web_app, settings)
    server_app.log.info("jupyreg: model registry API at /jupyreg/api (%s)", settings.describe())
