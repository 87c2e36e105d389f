"""What DVC recorded for a repository, read from its files without importing DVC.

Importing DVC costs ~0.2 s and ``dvc status`` ~0.3 s; the ``.dvc`` files, ``dvc.lock``
and DVC's state database hold everything capture needs, so we read them directly.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DVC_MAJOR_VERSION = 3  # part of DVC's state-directory token


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
    """The md5 DVC recorded for ``path`` inside the tracked directory ``output``, read from
    the directory's ``.dir`` listing in the default cache (None when not available)."""
    if not output.md5 or not output.md5.endswith(".dir"):
        return None
    object_path = root / ".dvc" / "cache" / "files" / "md5" / output.md5[:2] / output.md5[2:]
    rel = path.relative_to(output.path).as_posix()
    try:
        listing = json.loads(object_path.read_bytes())
        return next((e.get("md5") for e in listing if e.get("relpath") == rel), None)
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def state_db(root: Path) -> Path | None:
    """DVC's state database for ``root``: ``<site_cache_dir>/repo/<token>/hashes/local``.

    The token is DVC's: md5 of ``(root, None, btime, user, major version, salt 0)``, where
    btime is the mtime of ``.dvc/tmp/btime``.
    """
    try:
        btime = os.path.getmtime(root / ".dvc" / "tmp" / "btime")
        user = getpass.getuser()
    except (OSError, KeyError):  # getuser raises KeyError for an unnamed uid
        return None
    token_source = (str(root), None, btime, user, _DVC_MAJOR_VERSION, 0)
    token = hashlib.md5(str(token_source).encode(), usedforsecurity=False).hexdigest()
    db = _site_cache_dir(root) / "repo" / token / "hashes" / "local" / "cache.db"
    return db if db.is_file() else None


def _site_cache_dir(root: Path) -> Path:
    """Where DVC keeps per-repo state: env, then config, then the platform default."""
    configured = os.environ.get("DVC_SITE_CACHE_DIR") or _config(root, "core", "site_cache_dir")
    if configured:
        return root / configured
    if sys.platform == "darwin":
        return Path("/Library/Caches/dvc")
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", "C:/ProgramData"), "iterative", "dvc", "Cache")
    return Path("/var/tmp/dvc")


def _config(root: Path, section: str, key: str) -> str | None:
    """A DVC config value; local, repo, global then system config, like DVC merges them."""
    import configparser

    global_dir = os.environ.get("DVC_GLOBAL_CONFIG_DIR") or Path.home() / ".config" / "dvc"
    system_dir = os.environ.get("DVC_SYSTEM_CONFIG_DIR") or "/etc/xdg/dvc"
    for file in (
        root / ".dvc" / "config.local",
        root / ".dvc" / "config",
        Path(global_dir, "config"),
        Path(system_dir, "config"),
    ):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(file, encoding="utf-8")
        except configparser.Error:
            continue
        if parser.has_option(section, key):
            return parser.get(section, key)
    return None


def _dvc_files(root: Path) -> list[Path]:
    """``*.dvc`` files and ``dvc.lock`` files: from git's index and untracked files when
    the repo is in git (fast, skips ignored data), else by walking the tree."""
    try:
        listed = subprocess.run(
            [
                "git",
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                "*.dvc",
                "dvc.lock",
                "*/dvc.lock",
            ],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=10,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return _walk_for_dvc_files(root)
    names = sorted({name for name in listed.decode().split("\0") if name})
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
        md5=out.get("md5"),
        size=out.get("size"),
        nfiles=out.get("nfiles"),
        source=source,
        legacy="hash" not in out and "md5" in out,
        external=external,
    )
