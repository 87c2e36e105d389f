"""What changed in a version's lineage against another, and whether Production's data is stale.

Works on the flat lineage fields of a version (``jupyreg.tags.lineage_fields``):
``git.commit``, ``git.dirty``, ``data.<n>.path``, ``data.<n>.md5``, ``gpu.count``,
``gpu.name``. Any of them may be missing (versions registered by plain MLflow have none).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyreg.tags import datasets, gpu_summary

SHORT_SHA = 8


@dataclass(frozen=True)
class GitChange:
    """Commits of two versions and the files changed between them (None: unknown, see note)."""

    base: str | None
    other: str | None
    base_dirty: bool | None
    other_dirty: bool | None
    files: tuple[str, ...] | None
    note: str

    @property
    def changed(self) -> bool | None:
        if self.base is None or self.other is None:
            return None
        return self.base != self.other or bool(self.base_dirty or self.other_dirty)


@dataclass(frozen=True)
class DatasetChange:
    """One dataset path: its md5 in each version, and ``status``: added, removed,
    unchanged, changed, or unknown (a version recorded the path but no hash)."""

    path: str
    base_md5: str | None
    other_md5: str | None
    status: str


@dataclass(frozen=True)
class HardwareChange:
    """GPU summary of each version ("none", "2x A100", or None when not recorded)."""

    base: str | None
    other: str | None

    @property
    def changed(self) -> bool | None:
        if self.base is None or self.other is None:
            return None
        return self.base != self.other


@dataclass(frozen=True)
class LineageDiff:
    base: int
    other: int
    git: GitChange
    datasets: tuple[DatasetChange, ...]
    hardware: HardwareChange

    @property
    def datasets_changed(self) -> bool | None:
        """None when neither version recorded a dataset hash."""
        if not self.datasets:
            return None
        return any(d.status != "unchanged" for d in self.datasets)


@dataclass(frozen=True)
class StaleDataset:
    """A dataset whose md5 in a version differs from what DVC records in the workspace now."""

    path: str
    trained_md5: str
    workspace_md5: str
    source: str


FilesBetween = Callable[[str, str], tuple[str, ...] | None]


def diff_lineage(
    base: int,
    base_fields: Mapping[str, Any],
    other: int,
    other_fields: Mapping[str, Any],
    files_between: FilesBetween,
) -> LineageDiff:
    """``other``'s lineage against ``base``'s; ``files_between(a, b)`` names the files
    changed between two commits (see ``lineage.git.files_changed_between``)."""
    return LineageDiff(
        base=base,
        other=other,
        git=_git_change(base_fields, other_fields, files_between),
        datasets=_dataset_changes(datasets(base_fields), datasets(other_fields)),
        hardware=HardwareChange(gpu_summary(base_fields), gpu_summary(other_fields)),
    )


def stale_datasets(fields: Mapping[str, Any], cwd: Path) -> list[StaleDataset]:
    """Datasets of a version whose md5 differs from what the ``.dvc`` files at ``cwd``'s DVC
    root record now (as lineage capture reads them)."""
    trained = {path: md5 for path, md5 in datasets(fields).items() if md5}
    if not trained:
        return []
    from jupyreg.lineage import dvcfiles

    root = dvcfiles.find_root(cwd)
    if root is None:
        return []
    outputs, _ = dvcfiles.tracked_outputs(root)
    stale = []
    for path, md5 in trained.items():
        target = Path(os.path.normpath(root / path))
        exact = next((o for o in outputs if o.path == target), None)
        if exact is not None:
            recorded, source = exact.md5, exact.source
        else:
            holder = next((o for o in outputs if o.path in target.parents), None)
            if holder is None:
                continue
            recorded = dvcfiles.recorded_in_directory(root, holder, target)
            source = holder.source
        if recorded and str(recorded) != md5:  # YAML reads an all-digit md5 as a number
            stale.append(StaleDataset(path, md5, str(recorded), source))
    return stale


def _git_change(
    base: Mapping[str, Any], other: Mapping[str, Any], files_between: FilesBetween
) -> GitChange:
    base_commit, other_commit = base.get("git.commit"), other.get("git.commit")
    base_dirty, other_dirty = _flag(base.get("git.dirty")), _flag(other.get("git.dirty"))
    files: tuple[str, ...] | None = None
    if base_commit is None or other_commit is None:
        note = "unknown: no git commit recorded"
    elif base_commit == other_commit:
        files, note = (), "same commit"
    else:
        files = files_between(str(base_commit), str(other_commit))
        note = (
            f"{len(files)} file(s) changed"
            if files is not None
            else "files changed: unknown (the commits are not in the git repository here)"
        )
    if base_dirty or other_dirty:
        note += "; plus uncommitted changes"
    return GitChange(
        base=str(base_commit)[:SHORT_SHA] if base_commit else None,
        other=str(other_commit)[:SHORT_SHA] if other_commit else None,
        base_dirty=base_dirty,
        other_dirty=other_dirty,
        files=files,
        note=note,
    )


def _dataset_changes(
    base: Mapping[str, str | None], other: Mapping[str, str | None]
) -> tuple[DatasetChange, ...]:
    changes = []
    for path in sorted(set(base) | set(other)):
        old, new = base.get(path), other.get(path)
        if path not in base:
            status = "added"
        elif path not in other:
            status = "removed"
        elif old is None or new is None:
            status = "unknown"
        else:
            status = "unchanged" if old == new else "changed"
        changes.append(DatasetChange(path, old, new, status))
    return tuple(changes)


def _flag(value: Any) -> bool | None:
    return None if value is None else str(value).lower() == "true"
