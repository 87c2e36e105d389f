"""Datasets a model was trained on: their DVC md5, and whether the workspace still matches.

Unchanged files are never re-read (see ``hashing``). A path DVC does not track is hashed
the same way DVC would, so its md5 can be compared with a later ``dvc add``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyreg.lineage import dvcfiles
from jupyreg.lineage.hashing import (
    CACHE,
    COMPUTED,
    DVC_STATE,
    Md5Lookup,
    files_under,
    md5_of_directory,
    own_state,
)

if TYPE_CHECKING:
    from dvc.repo import Repo

_NO_REPO = "data: no DVC repository found; pass data paths to record datasets"


@dataclass
class DataCapture:
    """The ``data`` section of the record and its warnings."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def capture_data(
    paths: Sequence[str | os.PathLike[str]] | None, cwd: Path, cache_dir: Path | None
) -> DataCapture:
    """One entry per dataset: ``paths``, or by default every output DVC tracks.

    Hashes are looked up in DVC's state database for a DVC repository, else in jupyreg's
    (in ``cache_dir``); DVC is imported only when there is something to hash.
    """
    root = dvcfiles.find_root(cwd)
    if root is None and paths is None:
        return DataCapture(warnings=[_NO_REPO])
    result = DataCapture()
    outputs: list[dvcfiles.Output] = []
    if root is not None:
        outputs, result.warnings = dvcfiles.tracked_outputs(root)
    targets = (
        [output.path for output in outputs]
        if paths is None
        else [Path(os.path.normpath(cwd / path)) for path in paths]
    )
    if not targets:
        return result
    repo = dvcfiles.open_repo(root, result.warnings) if root is not None else None
    with nullcontext(repo.state) if repo else own_state(cache_dir) as state:
        lookup = Md5Lookup(state, DVC_STATE if repo else CACHE)
        base = root or cwd
        for path in dict.fromkeys(targets):
            recorded = _recorded(path, outputs, base)
            entry, warning = _measure(path, recorded, lookup, repo, base)
            result.entries.append(entry)
            if warning:
                result.warnings.append(warning)
    return result


@dataclass(frozen=True)
class _Recorded:
    md5: str | None
    source: str
    verb: str  # what the user ran to record it, for the staleness warning
    legacy: bool


def _recorded(path: Path, outputs: list[dvcfiles.Output], root: Path) -> _Recorded | None:
    """What DVC recorded for ``path``: as an output, or as a file in a tracked directory."""
    exact = next((output for output in outputs if output.path == path), None)
    output = exact or next((output for output in outputs if output.path in path.parents), None)
    if output is None:
        return None
    md5 = output.md5 if exact else dvcfiles.recorded_in_directory(root, output, path)
    verb = "`dvc repro`" if ":" in output.source else "`dvc add`"
    return _Recorded(md5, output.source, verb, output.legacy)


def _measure(
    path: Path, recorded: _Recorded | None, lookup: Md5Lookup, repo: Repo | None, root: Path
) -> tuple[dict[str, Any], str | None]:
    shown = _shown(path, root)
    entry: dict[str, Any] = {
        "path": shown,
        "md5": None,
        "recorded_md5": recorded.md5 if recorded else None,
        "size": None,
        "nfiles": None,
        "dvc": recorded is not None,
        "stale": False,
        "source": recorded.source if recorded else None,
        "hashed_from": None,
    }
    if path.is_dir():
        # DVC's .dvcignore applies inside its repository only.
        inside = repo is not None and path.is_relative_to(root)
        ignore = dvcfiles.ignore_filter(repo) if inside else None
        files = files_under(path, ignore)
        hashed = lookup.md5_many([file for _, file in files])
        entry["md5"] = md5_of_directory(
            (rel, hashed[file]) for rel, file in files if file in hashed
        )
        entry["size"] = sum(h.size for h in hashed.values())
        entry["nfiles"] = len(hashed)
        entry["hashed_from"] = _dearest({h.source for h in hashed.values()})
    elif (hashed := lookup.md5_many([path]).get(path)) is not None:
        entry.update(md5=hashed.md5, size=hashed.size, hashed_from=hashed.source)
    return entry, _judge(entry, recorded)


def _judge(entry: dict[str, Any], recorded: _Recorded | None) -> str | None:
    """Mark the entry stale when the workspace no longer matches DVC; say why."""
    shown, md5 = entry["path"], entry["md5"]
    if recorded is None:
        if md5 is None:
            return f"data: {shown} does not exist"
        return f"data: {shown} is not under DVC (md5 recorded, but DVC cannot restore it)"
    if md5 is None:
        entry["stale"] = True
        return f"data: {shown} is tracked by DVC ({recorded.source}) but missing; `dvc pull`?"
    if recorded.md5 is None or md5 == recorded.md5:
        return None
    entry["stale"] = True
    warning = (
        f"data: {shown} changed since {recorded.verb} (recorded md5 {recorded.md5} in "
        f"{recorded.source}, workspace md5 {md5})"
    )
    if recorded.legacy:
        warning += "; it was recorded by DVC 2, which hashed text files with CRLF as LF"
    return warning


def _dearest(sources: set[str]) -> str | None:
    """The most expensive way any file of a directory was hashed (None when empty)."""
    return next((s for s in (COMPUTED, CACHE, DVC_STATE) if s in sources), None)


def _shown(path: Path, root: Path) -> str:
    """The path as recorded: relative to the DVC root (or cwd) when inside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
