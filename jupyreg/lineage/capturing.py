"""``capture()``: one call that records where a model came from.

Each part (notebook, git, data, hardware, environment) degrades on its own: a missing
tool or an unexpected error gives None fields and a warning, never an exception, so a
registration is never blocked by lineage.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from jupyreg.lineage.data import DataCapture, capture_data
from jupyreg.lineage.entry import NOTEBOOK, SCRIPT, Entry, detect_entry
from jupyreg.lineage.environment import EnvironmentCapture, capture_environment
from jupyreg.lineage.git import GitCapture, capture_git
from jupyreg.lineage.hardware import HardwareCapture, capture_hardware
from jupyreg.lineage.notebook import UNKNOWN_NOTEBOOK, NotebookCapture, capture_notebook
from jupyreg.lineage.record import Lineage
from jupyreg.lineage.scrub import Scrubber, redact_detected
from jupyreg.lineage.transcript import capture_transcript

DIFF_ARTIFACT = "jupyreg/git.diff"
NOTEBOOK_ARTIFACT = "jupyreg/notebook.ipynb"
PACKAGES_ARTIFACT = "jupyreg/installed-packages.txt"
TRANSCRIPT_ARTIFACT = "jupyreg/transcript.json"
_SCANNED_FOR_SECRETS = (DIFF_ARTIFACT, NOTEBOOK_ARTIFACT, TRANSCRIPT_ARTIFACT)
"""What people wrote, where detect-secrets looks for the secrets no variable names."""

T = TypeVar("T")


def capture(
    data: Sequence[str | os.PathLike[str]] | None = None,
    notebook: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    user_ns: Mapping[str, Any] | None = None,
    model: Any = None,
) -> Lineage:
    """Capture git, notebook, data, hardware and environment lineage from ``cwd``.

    ``data``: dataset paths; None means every output DVC tracks in the repository.
    ``notebook``: the notebook path, else it is discovered (``user_ns`` helps in VS Code).
    ``model``: the model object, for its pinned requirements.
    """
    captured_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    warnings: list[str] = []
    here = _directory(cwd, warnings)
    nb = _safely(
        "notebook",
        lambda: capture_notebook(notebook, here, user_ns),
        NotebookCapture(None, {"path": None, "sha256": None, "source": None}),
        warnings,
    )
    git = _safely("git", lambda: capture_git(here, nb.path), GitCapture({}), warnings)
    datasets = _safely(
        "data", lambda: capture_data(data, here, cache_dir()), DataCapture(), warnings
    )
    hardware = _safely("hardware", capture_hardware, HardwareCapture({}), warnings)
    environment = _safely(
        "environment",
        lambda: capture_environment(model),
        EnvironmentCapture({}, [], []),
        warnings,
    )
    nb.info["path"] = _notebook_path(nb, git.root)
    entry = _safely(
        "entry",
        lambda: detect_entry(git.root, here, notebook_path=nb.info["path"]),
        Entry(SCRIPT, None, (), None),
        warnings,
    )
    if entry.kind != NOTEBOOK:  # a script or a pipeline has no notebook: nothing is missing
        nb.warnings = [w for w in nb.warnings if w != UNKNOWN_NOTEBOOK]
    for part in (nb, git, datasets, hardware):
        warnings.extend(part.warnings)
    transcript = _safely(
        "transcript", lambda: capture_transcript(user_ns, here, git.root), None, warnings
    )

    scrubber = Scrubber.from_environ()
    artifacts = _scrubbed_artifacts(
        {
            DIFF_ARTIFACT: git.diff,
            NOTEBOOK_ARTIFACT: nb.snapshot,
            PACKAGES_ARTIFACT: "".join(f"{line}\n" for line in environment.installed).encode(),
            TRANSCRIPT_ARTIFACT: transcript,
        },
        scrubber,
        warnings,
    )
    record = scrubber.record(
        {
            "git": git.info,
            "notebook": nb.info,
            "entry": entry.info(),
            "data": datasets.entries,
            "hardware": hardware.info,
            "environment": environment.info,
            "warnings": warnings,
            "captured_at": captured_at,
        }
    )
    return Lineage(
        record=record,
        warnings=tuple(record["warnings"]),
        artifacts=artifacts,
        requirements=tuple(environment.requirements),
    )


def _scrubbed_artifacts(
    artifacts: dict[str, bytes | None], scrubber: Scrubber, warnings: list[str]
) -> dict[str, bytes]:
    """Artifacts with secrets redacted; the user is told, since their code holds a secret."""
    scrubbed = {}
    for name, content in artifacts.items():
        if content:
            scrubbed[name] = scrubber.bytes(content)
            if name in _SCANNED_FOR_SECRETS:
                scrubbed[name] = redact_detected(scrubbed[name], name, warnings)
            if scrubbed[name] != content:
                warnings.append(f"secrets: credentials found in {name} were redacted")
    return scrubbed


def cache_dir() -> Path | None:
    """jupyreg's md5 cache (a dvc-data state database) for files outside DVC repositories:
    under ``$JUPYREG_CACHE_DIR``, else ``$XDG_CACHE_HOME/jupyreg``."""
    configured = os.environ.get("JUPYREG_CACHE_DIR")
    if configured:
        return Path(configured, "md5-state")
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no home directory
        return None
    return Path(base, "jupyreg", "md5-state")


def _safely(section: str, produce: Callable[[], T], fallback: T, warnings: list[str]) -> T:
    """Run one part of the capture; an unexpected error becomes a warning."""
    try:
        return produce()
    except Exception as exc:  # lineage must never block a registration
        warnings.append(f"{section}: capture failed ({type(exc).__name__}: {exc})")
        return fallback


def _directory(cwd: str | os.PathLike[str] | None, warnings: list[str]) -> Path:
    """The absolute capture directory (not resolved: DVC keys its state by this path)."""
    try:
        return Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    except OSError as exc:  # the working directory was deleted under the kernel
        warnings.append(f"capture: no working directory ({exc.strerror or exc})")
        return Path(os.sep)


def _notebook_path(nb: NotebookCapture, root: Path | None) -> str | None:
    """The notebook's path as recorded: relative to the repository root where it lies in it."""
    if nb.path is None or root is None:
        return nb.info["path"]
    return _relative_or_absolute(nb.path, root)


def _relative_or_absolute(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
