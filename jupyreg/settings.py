"""Where every front end gets its settings from: one resolver.

Precedence, for each setting: an explicit argument (``Registry(...)``, a CLI flag,
``%config JupyReg.*``, ``c.JupyRegServer.*``) > the environment (``MLFLOW_TRACKING_URI``,
``MLFLOW_REGISTRY_URI``, ``JUPYREG_USER``) > ``[tool.jupyreg]`` in the project's
pyproject.toml > the default (MLflow's ``sqlite:///mlflow.db`` in the current directory).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyreg.errors import InvalidArgument

CAPTURE_ENV = "JUPYREG_CAPTURE"
"""``0`` turns off the lineage every MLflow run gets (jupyreg's run-context provider)."""
DATA_ENV = "JUPYREG_DATA"
"""The datasets a run records (paths, ``os.pathsep``-separated), else ``[tool.jupyreg]
data``, else every output DVC tracks."""

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""MLflow's own default (pinned to MLflow by a contract test)."""


@dataclass(frozen=True)
class Settings:
    tracking_uri: str
    registry_uri: str
    user: str | None
    """The declared identity, if any (``jupyreg.identity`` completes it)."""
    project_dir: Path = field(default_factory=Path.cwd)
    """Where the project's pyproject.toml is looked up from."""
    artifact_location: str | None = None
    """Where the experiments jupyreg creates keep their artifacts (None: MLflow decides)."""

    def default_policy(self) -> dict[str, Any]:
        """``[tool.jupyreg.policy]``, read when a step needs it (the policy lives with the
        code and may change while a notebook runs)."""
        policy = project_settings(self.project_dir).get("policy", {})
        if not isinstance(policy, Mapping):
            raise InvalidArgument("[tool.jupyreg.policy] must be a table of policy settings")
        return dict(policy)


def resolve(
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    user: str | None = None,
    start: str | Path | None = None,
) -> Settings:
    """The settings in force, each from the first source that sets it."""
    project_dir = Path(start or Path.cwd()).absolute()
    project = project_settings(project_dir)
    if tracking_uri:  # an explicit tracking URI is also the registry unless one is given
        registry = registry_uri
    else:
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or project.get("tracking_uri")
        registry = (
            registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or project.get("registry_uri")
        )
    tracking = absolute_sqlite(str(tracking_uri or DEFAULT_TRACKING_URI))
    return Settings(
        tracking_uri=tracking,
        registry_uri=absolute_sqlite(str(registry)) if registry else tracking,
        user=user or os.environ.get("JUPYREG_USER") or project.get("user") or None,
        project_dir=project_dir,
        artifact_location=artifact_location(
            os.environ.get("JUPYREG_ARTIFACT_ROOT") or project.get("artifact_location"), tracking
        ),
    )


def project_settings(start: str | Path | None = None) -> dict[str, Any]:
    """The ``[tool.jupyreg]`` table of the project's pyproject.toml (``project_file``)."""
    candidate = project_file(start)
    if candidate is None:
        return {}
    try:
        data = tomllib.loads(candidate.read_text())
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read {candidate}: {exc}") from None
    return dict(data.get("tool", {}).get("jupyreg", {}))


def project_file(start: str | Path | None = None) -> Path | None:
    """The project's pyproject.toml: the nearest one at or above ``start`` (the current
    directory by default), as packaging tools find it."""
    here = Path(start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def artifact_location(configured: str | None, tracking_uri: str) -> str | None:
    """``JUPYREG_ARTIFACT_ROOT`` / ``[tool.jupyreg] artifact_location`` (a relative path is
    pinned to the current directory), else ``mlartifacts`` beside an embedded SQLite
    registry, so that its models stay with it whatever the current directory (MLflow's
    default is ``./mlruns`` of each process); else None, where a server decides."""
    if configured:
        text = str(configured)
        return text if "://" in text else str(Path(text).absolute())
    if tracking_uri.startswith("sqlite:///") and ":memory:" not in tracking_uri:
        database = Path(tracking_uri[len("sqlite:///") :].split("?")[0])
        return str(database.parent / "mlartifacts")
    return None


def absolute_sqlite(uri: str) -> str:
    """Pin ``sqlite:///relative.db`` to the current directory so a later chdir changes nothing."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        return prefix + str(Path(uri[len(prefix) :]).absolute())
    return uri
