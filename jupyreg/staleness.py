"""Has Production gone stale? Its code, data and age measured against the working repository.

What counts as a commit that touches code (``commits_behind``): a commit between the
version's recorded commit and HEAD, merges left out (the commits they bring in count),
that changes the recorded notebook, a source file (``CODE_SUFFIXES``) or a file that
defines the environment or the pipeline (``CODE_FILES``). DVC's data pointers (``*.dvc``,
``dvc.lock``) are not code: a data change shows in ``changed_data`` instead, and
documentation, CI settings or images change nothing the model was trained from.

A dataset is changed (``changed_data``) when what DVC records for it now, or its bytes in
the workspace, differ from the md5 recorded at registration; both are read as lineage
capture reads them (``jupyreg.lineage.data``), so unchanged files are not re-read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle
from jupyreg.errors import NotFound, hint

if TYPE_CHECKING:
    import git

    from jupyreg.entities import ModelVersion
    from jupyreg.registry import Registry

CODE_SUFFIXES = frozenset(
    {".py", ".pyx", ".pxd", ".ipynb", ".r", ".rmd", ".jl", ".sql", ".sh"}
    | {".c", ".cc", ".cpp", ".h", ".hpp", ".cu"}
)
"""Source files (compared lower-case)."""
CODE_FILES = frozenset(
    {
        "pyproject.toml", "setup.py", "setup.cfg", "pipfile", "pipfile.lock", "poetry.lock",
        "uv.lock", "environment.yml", "environment.yaml", "conda.yaml", "dvc.yaml",
        "params.yaml", "makefile", "dockerfile",
    }
)  # fmt: skip
"""Files that define the environment or the pipeline (compared lower-case), plus
``requirements*.txt``."""

_HEX_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")  # never an option or a ref expression
_DAY_S = 86_400


@dataclass(frozen=True)
class Staleness:
    """How far the Production version of ``name`` is behind the working repository."""

    version: int
    commits_behind: int | None  # None: unknown (see warnings)
    changed_data: list[str]
    age_days: float
    warnings: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def stale(self) -> bool:
        """Code or data changed since the version was trained."""
        return bool(self.commits_behind) or bool(self.changed_data)

    def summary(self) -> str:
        """One line for ``check``, ``jupyreg status`` and watch alerts."""
        subject = f"{self.name} Production v{self.version}".strip()
        if self.commits_behind is None:
            code = "code: unknown"
        else:
            plural = "s" * (self.commits_behind != 1)
            code = f"{self.commits_behind} commit{plural} touching code since training"
        data = (
            f"data changed: {', '.join(self.changed_data)}"
            if self.changed_data
            else "data unchanged"
        )
        verdict = "may be stale" if self.stale else "up to date"
        return f"{subject} {verdict}: {code}; {data}; {self.age_days:.1f} days in Production"

    __str__ = summary


def staleness(registry: Registry, name: str, repo_path: str | os.PathLike[str] = ".") -> Staleness:
    """The Production version of ``name`` against the git and DVC repository at
    ``repo_path``: code commits since its commit, datasets changed since, days in
    Production. Raises ``NotFound`` when no version is in Production."""
    number = registry.holder(name, lifecycle.PRODUCTION)
    if number is None:
        raise NotFound(
            f"{name} has no version in Production, so nothing can be stale",
            hint="promote one first ("
            + hint(
                f"reg.request({name!r}, VERSION, 'Production', reason=...)",
                *("request", name, "VERSION", "Production", "--reason", "TEXT"),
            )
            + ")",
        )
    mv = registry.get(name, number)
    here = Path(os.path.abspath(repo_path))
    warnings: list[str] = []
    if not mv.lineage:
        warnings.append(f"v{number} has no jupyreg lineage (registered by plain MLflow?)")
    behind = _commits_behind(mv, here, warnings)
    changed = _changed_data(mv, here, warnings)
    age = _days_in_production(registry, mv, warnings)
    return Staleness(number, behind, changed, age, warnings, name)


def stale_findings(
    registry: Registry, names: list[str], repo_path: str | os.PathLike[str] = "."
) -> list[dict[str, Any]]:
    """``check``'s rows for the models among ``names`` whose Production is stale."""
    found = []
    for name in names:
        if registry.holder(name, lifecycle.PRODUCTION) is None:
            continue
        measured = staleness(registry, name, repo_path)
        if measured.stale:
            found.append(
                {
                    "name": name,
                    "version": measured.version,
                    "problem": measured.summary(),
                    "repaired": False,
                    "kind": "stale",
                }
            )
    return found


def touches_code(path: str, notebook: str | None = None) -> bool:
    """Whether a changed file (posix path from the repository root) is code, by the rule
    of this module's docstring."""
    if notebook is not None and path == notebook:
        return True
    pure = PurePosixPath(path)
    lowered = pure.name.lower()
    if lowered.startswith("requirements") and lowered.endswith(".txt"):
        return True
    return lowered in CODE_FILES or pure.suffix.lower() in CODE_SUFFIXES


# code --------------------------------------------------------------------------------


def _commits_behind(mv: ModelVersion, here: Path, warnings: list[str]) -> int | None:
    recorded = mv.lineage.get("git") or {}
    commit = str(recorded.get("commit") or "").strip().lower()
    if not commit:
        warnings.append(f"git: v{mv.version} recorded no commit; code changes unknown")
        return None
    if not _HEX_COMMIT.match(commit):
        warnings.append(f"git: v{mv.version}'s recorded commit {commit[:64]!r} is not a commit id")
        return None
    if recorded.get("dirty"):
        warnings.append(
            f"git: v{mv.version} was trained with uncommitted changes (saved as "
            f"jupyreg/git.diff); commits are counted from {commit[:12]}"
        )
    try:
        import git
    except ImportError as exc:
        warnings.append(f"git: GitPython or git is not available ({exc}); code changes unknown")
        return None
    try:
        repo = git.Repo(here, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        warnings.append(f"git: {here} is not in a git repository; code changes unknown")
        return None
    with repo:
        try:
            return _count(repo, commit, _notebook(mv), mv.version, warnings)
        except (git.GitError, git.exc.ODBError, ValueError, OSError) as exc:
            warnings.append(f"git: cannot read {repo.working_dir} ({exc}); code changes unknown")
            return None


def _count(
    repo: git.Repo, commit: str, notebook: str | None, version: int, warnings: list[str]
) -> int | None:
    """Commits in ``commit..HEAD`` (merges left out) that change code."""
    import git

    from jupyreg.lineage.git import files_changed_between

    root = repo.working_tree_dir
    if not repo.head.is_valid():
        warnings.append(f"git: {root} has no commit yet; code changes unknown")
        return None
    try:
        base = repo.commit(commit)
    except (ValueError, git.exc.ODBError):  # not in this repository (or ambiguous)
        warnings.append(
            f"git: v{version}'s commit {commit[:12]} is not in the repository at {root} "
            "(another clone? `git fetch`); code changes unknown"
        )
        return None
    head = repo.head.commit
    if not repo.is_ancestor(base.hexsha, head.hexsha):
        warnings.append(
            f"git: v{version}'s commit {commit[:12]} is not an ancestor of HEAD "
            f"({head.hexsha[:12]}): another branch, or rewritten history; code changes unknown"
        )
        return None
    commits = list(repo.iter_commits(f"{base.hexsha}..{head.hexsha}", no_merges=True))
    pairs = [(c.parents[0].hexsha, c.hexsha) for c in commits if c.parents]
    changed = files_changed_between(pairs, Path(str(root)))
    count = 0
    for c in commits:
        if c.parents:
            files = changed.get((c.parents[0].hexsha, c.hexsha))
        else:  # a root commit brought in by a merge of an unrelated history
            files = tuple(str(b.path) for b in c.tree.traverse() if b.type == "blob")
        if files is None or any(touches_code(f, notebook) for f in files):
            count += 1
    return count


def _notebook(mv: ModelVersion) -> str | None:
    """The notebook's path from the repository root, as capture recorded it."""
    path = (mv.lineage.get("notebook") or {}).get("path")
    return str(path) if path and not os.path.isabs(str(path)) else None


# data --------------------------------------------------------------------------------


def _changed_data(mv: ModelVersion, here: Path, warnings: list[str]) -> list[str]:
    """Datasets whose DVC record or workspace md5 differs from the recorded md5."""
    recorded = {
        str(e["path"]): e.get("md5")
        for e in mv.lineage.get("data") or []
        if isinstance(e, dict) and e.get("path")
    }
    unhashed = [path for path, md5 in recorded.items() if not md5]
    if unhashed:
        warnings.append(f"data: recorded without a hash, not compared: {', '.join(unhashed)}")
    trained = {path: str(md5) for path, md5 in recorded.items() if md5}
    if not trained:
        return []
    from jupyreg.lineage import dvcfiles
    from jupyreg.lineage.capturing import cache_dir
    from jupyreg.lineage.data import capture_data

    root = dvcfiles.find_root(here) or here
    now = capture_data(list(trained), root, cache_dir())
    changed = []
    for entry in now.entries:
        path, md5 = entry["path"], trained.get(entry["path"])
        current = {str(v) for v in (entry["recorded_md5"], entry["md5"]) if v is not None}
        if md5 is None:
            continue
        if not current:
            warnings.append(f"data: {path} is neither in the workspace nor tracked by DVC now")
        elif current != {md5}:
            changed.append(path)
            warnings.append(_data_warning(path, md5, entry))
    explained = tuple(f"data: {path} " for path in changed)
    warnings.extend(w for w in now.warnings if not w.startswith(explained))
    return changed


def _data_warning(path: str, md5: str, entry: dict[str, Any]) -> str:
    parts = []
    if entry["recorded_md5"] is not None and str(entry["recorded_md5"]) != md5:
        parts.append(f"DVC now records {str(entry['recorded_md5'])[:12]} ({entry['source']})")
    if entry["md5"] is not None and str(entry["md5"]) != md5:
        parts.append(f"the workspace holds {str(entry['md5'])[:12]}")
    if entry["md5"] is None:
        parts.append("it is missing from the workspace")
    return f"data: {path} changed since training on md5 {md5[:12]}: " + "; ".join(parts)


# age ---------------------------------------------------------------------------------


def _days_in_production(registry: Registry, mv: ModelVersion, warnings: list[str]) -> float:
    """Days since the version's last move into Production (else since it was created)."""
    entered = [
        lifecycle.parse_iso(e.at)
        for e in registry.history_records(mv.name, mv.version)
        if e.to_stage == lifecycle.PRODUCTION
    ]
    if entered:
        since = max(entered)
    elif mv.created is not None:
        warnings.append(
            f"history: v{mv.version} has no event entering Production; age counted from "
            "its registration"
        )
        since = mv.created
    else:
        warnings.append(f"history: when v{mv.version} entered Production is unknown")
        return 0.0
    return max(0.0, (datetime.now(UTC) - since).total_seconds() / _DAY_S)
