"""jupyreg's MLflow run-context provider: every run any code starts with ``mlflow.start_run``
(scripts, autologging, framework callbacks, pipelines) carries jupyreg's lineage as tags.

MLflow loads it from the entry point ``mlflow.run_context_provider`` and asks it for tags
before it creates each run, so the run exists only after: what would be a run artifact in
jupyreg's own registration (the uncommitted diff) is kept in tags here, in pieces of
MLflow's run-tag size (``jupyreg.git.diff.<n>``). A capture never fails the user's run:
an error becomes the tag ``jupyreg.capture.warning``. ``JUPYREG_CAPTURE=0`` turns it off.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyreg.settings import CAPTURE_ENV, DATA_ENV, project_file, project_settings


class LineageRunContext:
    """Lineage tags for every run started in a process where jupyreg is installed.

    MLflow's ``RunContextProvider`` interface (``in_context``, ``tags``), not its class:
    MLflow imports this module while it imports itself."""

    def in_context(self) -> bool:
        return os.environ.get(CAPTURE_ENV, "1").strip().lower() not in ("0", "false", "no")

    def tags(self) -> dict[str, str]:
        try:
            return run_tags()
        except Exception as exc:  # never the user's run: the capture's failure is a tag
            from jupyreg.tags import CAPTURE_WARNING_TAG

            return {CAPTURE_WARNING_TAG: f"capture failed ({type(exc).__name__}: {exc})"[:500]}


def run_tags(cwd: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The lineage of the code running in ``cwd`` (the current directory) as run tags."""
    from jupyreg.lineage.capturing import DIFF_ARTIFACT, capture
    from jupyreg.tags import RUN_TAG_LENGTH, diff_tags, lineage_tags

    here = Path(cwd if cwd is not None else os.getcwd())
    lineage = capture(data=data_paths(here), cwd=here)
    found = lineage_tags(lineage.record, limit=RUN_TAG_LENGTH)
    return found | diff_tags(lineage.artifacts.get(DIFF_ARTIFACT))


def data_paths(cwd: Path) -> list[str] | None:
    """The datasets to record: ``JUPYREG_DATA``, else ``[tool.jupyreg] data`` (relative to
    its pyproject.toml), else None (every output DVC tracks)."""
    named = os.environ.get(DATA_ENV)
    if named is not None:
        return [path for path in named.split(os.pathsep) if path]
    listed = project_settings(cwd).get("data")
    if listed is None:
        return None
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        from jupyreg.errors import InvalidArgument

        raise InvalidArgument("[tool.jupyreg] data must be a list of paths")
    base = project_file(cwd).parent  # listed paths are the project's, wherever it runs
    return [os.path.join(base, path) for path in listed]
