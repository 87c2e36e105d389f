"""Who is acting: the author of events and requests in embedded mode."""

from __future__ import annotations

import getpass
import os
import subprocess
import warnings

from jupyreg.errors import PermissionDenied
from jupyreg.workload import can_attest

UNATTESTED_ENV = "JUPYREG_UNATTESTED_USER"
"""``warn``: a claimed user the server will not record is a warning, not a refusal."""


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


def check_claimed_user(claimed: str | None, registry_uri: str) -> None:
    """Refuse (or, with ``JUPYREG_UNATTESTED_USER=warn``, warn) when a team server is asked
    to act for ``claimed`` (``user=``, ``--user``, ``JUPYREG_USER``) while it authenticates
    someone else and no workload token vouches for the claim: the server would record the
    authenticated account as if it were the person."""
    authenticated = (os.environ.get("MLFLOW_TRACKING_USERNAME") or "").strip()
    claimed = (claimed or "").strip()
    if not claimed or not authenticated or claimed == authenticated or can_attest():
        return
    message = (
        f"you claim to be {claimed} but the server authenticates {authenticated} "
        "(MLFLOW_TRACKING_USERNAME), and would record that account: attest who you are with "
        "an OIDC token (in GitHub Actions: `permissions: id-token: write`; elsewhere: "
        "JUPYREG_OIDC_TOKEN) linked by an admin (jupyreg users link-identity), sign in as "
        f"{claimed}, or unset JUPYREG_USER"
    )
    if os.environ.get(UNATTESTED_ENV, "").strip().lower() == "warn":
        warnings.warn(message, stacklevel=3)
        return
    raise PermissionDenied(message)
