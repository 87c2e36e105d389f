"""Git state of the code a model was trained from, read with GitPython.

GitPython is imported on first use only (it costs ~0.1 s), never by ``import jupyreg``.
Refs, config, commits and trees are read by its object model over GitPython's default
object database (``GitCmdObjectDB``: persistent ``git cat-file`` processes, ended when the
repo is closed; the pure-Python ``GitDB`` is deprecated by GitPython for security and speed,
and measured no faster here). What only git itself knows
(index and worktree against HEAD, untracked files, the diff) comes from two commands at
most, run by GitPython with ``GIT_OPTIONAL_LOCKS=0`` so capture never takes the index
lock: ``git status --porcelain=v2`` (git's stable machine format) and ``git diff``.
"""

from __future__ import annotations

import configparser
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyreg.lineage.scrub import scrub_url

if TYPE_CHECKING:
    import git

_TIMEOUT_S = 10
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")  # hex only: never an option or a ref expression
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_NO_EXECUTABLE = "git: the git executable was not found; commit not recorded"
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
        import git
    except ImportError as exc:  # GitPython refuses to import when git is not on PATH
        if exc.name == "git":
            return _unavailable("git: GitPython is not installed; commit not recorded")
        return _unavailable(_NO_EXECUTABLE)
    try:
        repo = git.Repo(cwd, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return _unavailable(f"git: {cwd} is not in a git repository; commit not recorded")
    with repo:
        if repo.working_tree_dir is None:
            return _unavailable(
                f"git: {repo.git_dir} is a bare repository (no working tree); commit not recorded"
            )
        root = Path(repo.working_tree_dir)
        repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")
        try:
            return _capture(repo, root, _relative(notebook, root))
        except git.GitCommandNotFound:
            return _unavailable(_NO_EXECUTABLE, root)
        except (git.GitCommandError, git.exc.ODBError, ValueError, OSError) as exc:
            return _unavailable(f"git: cannot read {root} ({_reason(exc)}); commit not recorded")


def _capture(repo: git.Repo, root: Path, notebook_rel: str | None) -> GitCapture:
    head = repo.head
    commit = head.commit if head.is_valid() else None
    status = repo.git.status(
        "--porcelain=v2",
        "-z",
        "--untracked-files=normal",
        stdout_as_string=False,
        kill_after_timeout=_TIMEOUT_S,
    )
    modified, untracked = _parse_status(status.decode(errors="replace"))
    result = GitCapture(info={}, root=root)
    if modified:
        result.diff = repo.git.diff(
            "--binary",
            "--no-color",
            "--no-ext-diff",
            commit.hexsha if commit else _EMPTY_TREE,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=_TIMEOUT_S,
        )
    result.info = {
        "commit": commit.hexsha if commit else None,
        "branch": "detached" if head.is_detached else head.reference.name,
        "dirty": bool(modified),
        "modified": modified,
        "untracked": len(untracked),
        "diff_sha256": hashlib.sha256(result.diff).hexdigest() if result.diff else None,
        "notebook_committed": _notebook_committed(notebook_rel, modified, commit),
        "remote": _remote(repo),
    }
    result.warnings = _warnings(result.info, notebook_rel)
    return result


def _parse_status(out: str) -> tuple[list[str], list[str]]:
    """Modified (staged, unstaged or unmerged) and untracked paths from
    ``git status --porcelain=v2 -z``."""
    modified: list[str] = []
    untracked: list[str] = []
    fields = iter(out.split("\0"))
    for entry in fields:
        if entry.startswith("1 "):
            modified.append(entry.split(" ", 8)[8])
        elif entry.startswith("2 "):
            modified.append(entry.split(" ", 9)[9])
            next(fields, None)  # a rename's original path
        elif entry.startswith("u "):
            modified.append(entry.split(" ", 10)[10])
        elif entry.startswith("? "):
            untracked.append(entry[2:])
    return modified, untracked


def _notebook_committed(
    notebook_rel: str | None, modified: list[str], commit: git.Commit | None
) -> bool | None:
    """True when the notebook is in HEAD and unchanged; None when outside the repo."""
    if notebook_rel is None:
        return None
    if notebook_rel in modified or commit is None:
        return False
    try:
        commit.tree.join(notebook_rel)
    except KeyError:
        return False
    return True


def _remote(repo: git.Repo) -> str | None:
    """The ``origin`` URL (else the first remote's), without credentials."""
    urls: dict[str, str] = {}
    for remote in repo.remotes:
        try:
            urls[remote.name] = remote.url
        except configparser.Error:  # a remote section without a url
            continue
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


def _reason(exc: Exception) -> str:
    """The last line of git's complaint (GitPython quotes it as ``stderr: '...'``), else of
    the exception's message."""
    text = str(getattr(exc, "stderr", None) or exc).strip().removeprefix("stderr:")
    lines = text.strip().strip("'").strip().splitlines()
    return lines[-1].strip() if lines else type(exc).__name__


def _unavailable(warning: str, root: Path | None = None) -> GitCapture:
    info = dict.fromkeys(_FIELDS)
    return GitCapture(info=info, warnings=[warning], root=root)


def files_changed_between(
    pairs: Iterable[tuple[str, str]], cwd: Path
) -> dict[tuple[str, str], tuple[str, ...] | None]:
    """The files changed between each (base, other) pair of commits in the repo at ``cwd``;
    None for a pair whose commits (or the repo) are not there.

    GitPython reads the commits and trees itself (no git process, whatever the number of
    pairs), and only the subtrees that differ. Commits must be hex: no ref expression.
    """
    found: dict[tuple[str, str], tuple[str, ...] | None] = dict.fromkeys(pairs)
    wanted = [p for p in found if _COMMIT.match(p[0]) and _COMMIT.match(p[1])]
    if not wanted:
        return found
    try:
        import git
    except ImportError:
        return found
    try:
        repo = git.Repo(cwd, search_parent_directories=True)
    except (OSError, ValueError, git.GitError):
        return found
    with repo:
        try:
            trees = _trees(repo, {c for pair in wanted for c in pair})
            for a, b in wanted:
                if a in trees and b in trees:
                    found[(a, b)] = tuple(sorted(set(_changed(trees[a], trees[b]))))
        except (OSError, ValueError, git.GitError, git.exc.ODBError):
            pass  # git went away mid-way: the pairs not reached stay unknown
    return found


def _trees(repo: git.Repo, commits: set[str]) -> dict[str, git.Tree]:
    """The root tree of each commit that resolves in ``repo``."""
    import git

    trees = {}
    for commit in commits:
        try:
            trees[commit] = repo.commit(commit).tree
        except (ValueError, git.exc.ODBError):
            continue  # unknown, ambiguous or not a commit
    return trees


def _changed(a: git.Tree | None, b: git.Tree | None) -> Iterator[str]:
    """Paths that differ between two trees (either may be absent), like ``git diff-tree -r
    --name-only``: entries with the same id and mode are skipped without being read."""
    import git

    # Keyed by path: a submodule entry's name would read .gitmodules.
    ours = {entry.path: entry for entry in a} if a is not None else {}
    theirs = {entry.path: entry for entry in b} if b is not None else {}
    for path in ours.keys() | theirs.keys():
        old, new = ours.get(path), theirs.get(path)
        if old is not None and new is not None and (old.binsha, old.mode) == (new.binsha, new.mode):
            continue
        subtrees = [entry if isinstance(entry, git.Tree) else None for entry in (old, new)]
        if any(subtrees):
            yield from _changed(*subtrees)
        for entry in (old, new):
            if entry is not None and not isinstance(entry, git.Tree):
                yield entry.path
