"""JupyterLab for the Galata tests: Galata's test settings, on 127.0.0.1, acting as bob."""

import os

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 - `c` is the config object jupyter provides
c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ.get("JUPYREG_UI_PORT", "8766"))  # noqa: F821 - config sets it
c.JupyRegServer.user = "bob"  # noqa: F821
c.LabApp.news_url = None  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821 - CI runs as root
