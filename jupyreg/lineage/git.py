"""Git state of the code a model was trained from, read with the ``git`` binary.

The binary is used instead of GitPython: it is always what the user's own git sees,
costs no import, and the few calls needed run concurrently. ``GIT_OPTIONAL_LOCKS=0``
keeps ``git status`` from taking the index lock: capture never writes to the repo.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyreg.lineage.scrub import scrub_url

_TIMEOUT_S = 10
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")  # hex only: git never sees an option
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_FIELDS = (
    "commit",
    "branch",
    "dirty",
    "modified",
    "untracked",
    "diff_sha256",
    "notebook_committed",
    "remote",
)


@dataclass
class GitCapture:
    """The ``git`` section of the record, its warnings, and the uncommitted diff."""

    info: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    diff: bytes | None = None
    root: Path | None = None


def capture_git(cwd: Path, notebook: Path | None = None) -> GitCapture:
    """Commit, branch, dirty state and diff, remote, and whether ``notebook`` is committed."""
    try:
        root = Path(_git(cwd, "rev-parse", "--show-toplevel").decode().strip())
    except FileNotFoundError:
        return _unavailable("git: the git executable was not found; commit not recorded")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return _unavailable(f"git: {cwd} is not in a git repository ({_reason(exc)})")

    notebook_rel = _relative(notebook, root)
    status, remotes, tracked_notebook = _git_concurrently(
        root,
        ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal"],
        ["config", "-z", "--get-regexp", r"^remote\..*\.url$"],
        ["ls-files", "-z", "--", notebook_rel] if notebook_rel else None,
    )
    if status is None:
        return _unavailable("git: `git status` failed; commit not recorded", root)
    commit, branch, modified, untracked = _parse_status(status.decode(errors="replace"))

    result = GitCapture(info={}, root=root)
    if modified:
        base = "HEAD" if commit else _EMPTY_TREE
        try:
            result.diff = _git(root, "diff", "--binary", "--no-color", "--no-ext-diff", base)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            result.warnings.append(f"git: could not read the uncommitted diff ({_reason(exc)})")
    result.info = {
        "commit": commit,
        "branch": branch,
        "dirty": bool(modified),
        "modified": modified,
        "untracked": len(untracked),
        "diff_sha256": hashlib.sha256(result.diff).hexdigest() if result.diff else None,
        "notebook_committed": _notebook_committed(notebook_rel, modified, tracked_notebook),
        "remote": _remote(remotes),
    }
    result.warnings[:0] = _warnings(result.info, notebook_rel)
    return result


def _git(cwd: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=_git_env(),
        capture_output=True,
        check=True,
        timeout=_TIMEOUT_S,
    ).stdout


def _git_concurrently(root: Path, *commands: list[str] | None) -> list[bytes | None]:
    """Run independent git commands at once; a failed or skipped one gives None."""
    procs = [
        subprocess.Popen(
            ["git", *cmd],
            cwd=root,
            env=_git_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if cmd
        else None
        for cmd in commands
    ]
    outputs: list[bytes | None] = []
    for proc in procs:
        if proc is None:
            outputs.append(None)
            continue
        try:
            out, _ = proc.communicate(timeout=_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            out = None
        outputs.append(out if proc.returncode == 0 else None)
    return outputs


def _git_env() -> dict[str, str]:
    return {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}


def _parse_status(out: str) -> tuple[str | None, str | None, list[str], list[str]]:
    """Parse ``git status --porcelain=v2 --branch -z``: commit, branch, modified, untracked."""
    commit = branch = None
    modified: list[str] = []
    untracked: list[str] = []
    fields = iter(out.split("\0"))
    for entry in fields:
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry.removeprefix("# branch.head ")
            branch = "detached" if head == "(detached)" else head
        elif entry.startswith("1 "):
            modified.append(entry.split(" ", 8)[8])
        elif entry.startswith("2 "):
            modified.append(entry.split(" ", 9)[9])
            next(fields, None)  # a rename's original path
        elif entry.startswith("u "):
            modified.append(entry.split(" ", 10)[10])
        elif entry.startswith("? "):
            untracked.append(entry[2:])
    return commit, branch, modified, untracked


def _notebook_committed(
    notebook_rel: str | None, modified: list[str], tracked: bytes | None
) -> bool | None:
    """True when the notebook is tracked and unchanged; None when outside the repo."""
    if notebook_rel is None:
        return None
    if notebook_rel in modified:
        return False
    return bool(tracked)


def _remote(config: bytes | None) -> str | None:
    """The ``origin`` URL (else the first remote's), without credentials."""
    if not config:
        return None
    urls: dict[str, str] = {}
    for entry in config.decode(errors="replace").split("\0"):
        key, _, url = entry.partition("\n")
        if url:
            urls[key.removeprefix("remote.").removesuffix(".url")] = url
    if not urls:
        return None
    return scrub_url(urls.get("origin") or next(iter(urls.values())))


def _warnings(info: dict[str, Any], notebook_rel: str | None) -> list[str]:
    warnings = []
    if info["commit"] is None:
        warnings.append("git: the repository has no commit yet")
    if info["branch"] == "detached" and info["commit"]:
        warnings.append(f"git: HEAD is detached at {info['commit'][:12]}")
    if info["dirty"]:
        count = len(info["modified"])
        warnings.append(
            f"git: working tree is dirty ({count} modified file{'s' * (count != 1)}); "
            "the diff is saved as jupyreg/git.diff"
        )
    if info["notebook_committed"] is False:
        warnings.append(f"git: notebook {notebook_rel} is not committed as it is")
    return warnings


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _reason(exc: subprocess.SubprocessError) -> str:
    lines = (getattr(exc, "stderr", None) or b"").decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _unavailable(warning: str, root: Path | None = None) -> GitCapture:
    info = dict.fromkeys(_FIELDS)
    return GitCapture(info=info, warnings=[warning], root=root)


def files_changed_between(
    pairs: Iterable[tuple[str, str]], cwd: Path
) -> dict[tuple[str, str], tuple[str, ...] | None]:
    """The files changed between each (base, other) pair of commits in the repo at ``cwd``,
    in two git calls whatever the number of pairs; None for a pair whose commits (or the
    repo) are not there. Commits are checked to be hex so git never sees an option."""
    found: dict[tuple[str, str], tuple[str, ...] | None] = dict.fromkeys(pairs)
    wanted = [p for p in found if _COMMIT.match(p[0]) and _COMMIT.match(p[1])]
    commits = sorted({c for p in wanted for c in p})
    checked = _git_fed(cwd, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], commits)
    if checked is None:
        return found
    full = {
        commit: line.split()[0]
        for commit, line in zip(commits, checked.splitlines(), strict=False)
        if line.endswith(" commit")
    }
    present = [(a, b) for a, b in wanted if a in full and b in full]
    lines = [f"{full[a]} {full[b]}" for a, b in present]
    # -z output: per pair, the base's full id (--always: even when nothing changed), names
    listed = _git_fed(cwd, ["diff-tree", "--stdin", "-r", "--name-only", "--always", "-z"], lines)
    if listed is None:
        return found
    tokens, at = listed.split("\0"), 0
    for index, pair in enumerate(present):
        if at >= len(tokens) or tokens[at] != full[pair[0]]:
            break  # not the shape expected: leave the rest unknown rather than guess
        following = full[present[index + 1][0]] if index + 1 < len(present) else ""
        end = at + 1
        while end < len(tokens) and tokens[end] and tokens[end] != following:
            end += 1
        found[pair] = tuple(tokens[at + 1 : end])
        at = end
    return found


def _git_fed(cwd: Path, args: list[str], lines: list[str]) -> str | None:
    """``git ARGS`` fed ``lines`` on stdin; None when there is nothing to ask or git fails."""
    if not lines:
        return None
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input="".join(f"{line}\n" for line in lines),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S * 3,
            env=_git_env(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
