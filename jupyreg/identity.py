"""Who is acting: the author of events and requests in embedded mode."""

from __future__ import annotations

import getpass
import os
import subprocess


def resolve_user(user: str | None = None, registry_uri: str = "") -> str:
    """The user a tracking server at ``registry_uri`` authenticates (MLflow's basic-auth
    credentials: a server records that one whatever a client declares), else ``user``, else
    ``JUPYREG_USER``, else git's ``user.email``, else the OS user."""
    remote = registry_uri.startswith(("http://", "https://"))
    sources = (
        lambda: os.environ.get("MLFLOW_TRACKING_USERNAME") if remote else None,
        lambda: user,
        lambda: os.environ.get("JUPYREG_USER"),
        _git_email,
    )
    for source in sources:
        candidate = source()
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _git_email() -> str | None:
    try:
        out = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
