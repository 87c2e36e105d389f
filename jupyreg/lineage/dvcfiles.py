"""What DVC recorded for a repository: its outputs, and DVC's ``Repo`` for the rest.

The outputs are read straight from the ``.dvc`` and ``dvc.lock`` files that git lists:
DVC's own collection walks the whole workspace and parses with ruamel, which would cost
as much as ``dvc status``. tests/lineage/test_dvc_contract.py holds this reading to
DVC's own answer (``Repo.index.outs``). Everything else (state database, cache,
``.dvcignore``) comes from DVC's ``Repo``, imported on first use.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dvc.repo import Repo
    from dvc_data.hashfile._ignore import Ignore


@dataclass(frozen=True)
class Output:
    """One output DVC tracks: where it is and what DVC recorded for it."""

    path: Path
    md5: str | None
    size: int | None
    nfiles: int | None
    source: str  # the .dvc file, or "dvc.lock:<stage>", relative to the DVC root
    legacy: bool  # recorded by DVC 2 (md5 of text files after CRLF -> LF)
    external: bool = False  # a URL (s3://...), not a workspace path


def find_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding a ``.dvc`` directory."""
    for directory in (start, *start.parents):
        if (directory / ".dvc").is_dir():
            return directory
    return None


def tracked_outputs(root: Path) -> tuple[list[Output], list[str]]:
    """Every output of every ``.dvc`` file and ``dvc.lock`` under ``root``, with warnings."""
    try:
        import yaml
    except ImportError:
        return [], ["data: PyYAML is not installed; DVC files were not read"]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    outputs: list[Output] = []
    warnings: list[str] = []
    for dvc_file in _dvc_files(root):
        try:
            content = yaml.load(dvc_file.read_text(encoding="utf-8"), Loader=loader)
            for output in _outputs(root, dvc_file, content, loader):
                if output.external:
                    warnings.append(
                        f"data: {output.path} in {output.source} is outside the"
                        " workspace; not checked"
                    )
                else:
                    outputs.append(output)
        except (OSError, ValueError, yaml.YAMLError, TypeError, AttributeError) as exc:
            rel = dvc_file.relative_to(root)
            warnings.append(f"data: cannot read {rel} ({type(exc).__name__}: {exc})")
    return outputs, warnings


def recorded_in_directory(root: Path, output: Output, path: Path) -> str | None:
    """The md5 DVC recorded for ``path`` inside the tracked directory ``output``, from the
    directory's listing in DVC's cache, loaded by dvc-data (None when not available)."""
    if not output.md5 or not output.md5.endswith(".dir"):
        return None
    repo = open_repo(root, [])  # the capture's own (kept) Repo; it has warned already
    if repo is None:
        return None
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.errors import ObjectFormatError

    cache = repo.cache.legacy if output.legacy else repo.cache.local
    try:
        tree = Tree.load(cache, HashInfo(cache.hash_name, output.md5))
    except (OSError, ObjectFormatError, ValueError):
        return None
    _, hash_info = tree.get(path.relative_to(output.path).parts, (None, None))
    return hash_info.value if hash_info is not None else None


def open_repo(root: Path, warnings: list[str]) -> Repo | None:
    """DVC's ``Repo`` at ``root`` (for its state database and cache), or None with a
    warning when DVC cannot open it.

    Opening one costs more than the rest of a capture (its state database above all), so
    the last one opened is kept for the next capture while DVC's config files, the
    ``btime`` marker its state token uses and the ``DVC_*`` environment are unchanged. It
    is opened without git (``NoSCM``): faster, and DVC never edits a ``.gitignore`` then.
    """
    with _KEPT_LOCK:
        kept = _KEPT.get(root)
        if kept is not None and kept[0] == _fingerprint(kept[1], root):
            return kept[1]
        for _, old in _KEPT.values():
            old.close()
        _KEPT.clear()
        try:
            from dvc.exceptions import DvcException
            from dvc.repo import Repo
            from dvc.scm import NoSCM
        except ImportError as exc:
            warnings.append(f"data: DVC cannot be imported ({exc}); files are hashed without it")
            return None
        try:
            repo = Repo(str(root), scm=NoSCM(str(root)))
        except (DvcException, OSError, ValueError) as exc:
            warnings.append(
                f"data: DVC cannot open {root} ({type(exc).__name__}: {exc});"
                " every file is read to hash it"
            )
            return None
        _KEPT[root] = (_fingerprint(repo, root), repo)
        return repo


_KEPT: dict[Path, tuple[tuple[object, ...], Repo]] = {}
_KEPT_LOCK = threading.Lock()


def _fingerprint(repo: Repo, root: Path) -> tuple[object, ...]:
    """What a kept ``Repo`` depends on: its config files, btime, and DVC's environment."""
    files = [*repo.config.files.values(), root / ".dvc" / "tmp" / "btime"]
    environment = sorted((k, v) for k, v in os.environ.items() if k.startswith("DVC_"))
    return (*map(_stat, files), *environment)


def _stat(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def ignore_filter(repo: Repo) -> Ignore:
    """DVC's ``.dvcignore`` filter, as ``Repo.dvcignore`` makes it; made afresh for each
    capture, since the kept ``Repo`` would not see edits to ``.dvcignore`` files."""
    from dvc.ignore import DvcIgnoreFilter

    return DvcIgnoreFilter(repo.fs, repo.root_dir)


def _dvc_files(root: Path) -> list[Path]:
    """``*.dvc`` files and ``dvc.lock`` files: from git's index and untracked files when
    the repo is in git (fast, skips ignored data), else by walking the tree."""
    try:
        import git
    except ImportError:
        return _walk_for_dvc_files(root)
    try:
        listed = git.Git(root).ls_files(
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "*.dvc",
            "dvc.lock",
            "*/dvc.lock",
            kill_after_timeout=10,
        )
    except (OSError, git.GitError):
        return _walk_for_dvc_files(root)
    names = sorted({name for name in listed.split("\0") if name})
    return [root / name for name in names if (root / name).is_file()]


def _walk_for_dvc_files(root: Path) -> list[Path]:
    found = []
    for top, dirs, files in os.walk(root):
        tracked = {name.removesuffix(".dvc") for name in files if name.endswith(".dvc")}
        # Hidden directories and DVC-tracked data directories hold no DVC files.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in tracked)
        found += [Path(top, f) for f in sorted(files) if f.endswith(".dvc") or f == "dvc.lock"]
    return found


def _outputs(root: Path, dvc_file: Path, content: Any, loader: Any) -> list[Output]:
    rel = dvc_file.relative_to(root).as_posix()
    if dvc_file.name != "dvc.lock":
        base = dvc_file.parent / content.get("wdir", ".")
        return [_output(base, out, rel) for out in content.get("outs") or []]
    wdirs = _stage_wdirs(dvc_file.with_name("dvc.yaml"), loader)
    return [
        _output(dvc_file.parent / wdirs.get(stage.partition("@")[0], "."), out, f"{rel}:{stage}")
        for stage, definition in (content.get("stages") or {}).items()
        for out in definition.get("outs") or []
    ]


def _stage_wdirs(dvc_yaml: Path, loader: Any) -> dict[str, str]:
    """Stages of ``dvc.yaml`` that set ``wdir``: their lock paths are relative to it."""
    import yaml

    try:
        stages = yaml.load(dvc_yaml.read_text(encoding="utf-8"), Loader=loader)["stages"]
        return {name: s["wdir"] for name, s in stages.items() if "wdir" in s}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return {}


def _output(base: Path, out: dict[str, Any], source: str) -> Output:
    external = "://" in out["path"]
    return Output(
        path=Path(out["path"] if external else os.path.normpath(base / out["path"])),
        md5=str(out["md5"]) if out.get("md5") is not None else None,  # YAML: all-digit = int
        size=out.get("size"),
        nfiles=out.get("nfiles"),
        source=source,
        legacy="hash" not in out and "md5" in out,
        external=external,
    )
