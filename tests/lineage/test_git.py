"""Git capture against real repositories, compared with git's own answers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lineage_helpers import commit_all, init_git, run

from jupyreg.lineage import capture
from jupyreg.lineage.git import files_changed_between
from jupyreg.lineage.scrub import scrub_url


def porcelain(root: Path) -> list[str]:
    return run("git", "status", "--porcelain", cwd=root).splitlines()


def test_clean_repo(git_repo: Path) -> None:
    lineage = capture(cwd=git_repo, notebook=git_repo / "train.ipynb", data=[])
    git = lineage.record["git"]
    assert git["commit"] == run("git", "rev-parse", "HEAD", cwd=git_repo).strip()
    assert git["branch"] == run("git", "branch", "--show-current", cwd=git_repo).strip() == "main"
    assert git["dirty"] is False and git["modified"] == [] == porcelain(git_repo)
    assert git["untracked"] == 0
    assert git["diff_sha256"] is None
    assert git["notebook_committed"] is True
    assert git["remote"] is None
    assert "jupyreg/git.diff" not in lineage.artifacts
    assert not [w for w in lineage.warnings if w.startswith("git:")]
    tags = lineage.to_tags()
    assert tags["jupyreg.git.commit"] == git["commit"]
    assert tags["jupyreg.git.dirty"] == "false"
    assert "jupyreg.git.diff_sha256" not in tags


def test_dirty_notebook(git_repo: Path) -> None:
    notebook = git_repo / "train.ipynb"
    notebook.write_text(notebook.read_text().replace("train()", "train(C=2)"))
    (git_repo / "train.py").write_text("print('staged change')\n")
    run("git", "add", "train.py", cwd=git_repo)

    lineage = capture(cwd=git_repo, notebook=notebook, data=[])
    git = lineage.record["git"]
    expected_diff = subprocess.run(
        ["git", "diff", "--binary", "HEAD"], cwd=git_repo, capture_output=True, check=True
    ).stdout
    assert git["dirty"] is True
    assert sorted(git["modified"]) == sorted(line[3:] for line in porcelain(git_repo))
    assert git["notebook_committed"] is False
    assert lineage.artifacts["jupyreg/git.diff"] == expected_diff
    assert b"staged change" in expected_diff and b"train(C=2)" in expected_diff
    assert git["diff_sha256"] == hashlib.sha256(expected_diff).hexdigest()
    assert lineage.to_tags()["jupyreg.git.diff_sha256"] == git["diff_sha256"]
    assert lineage.to_tags()["jupyreg.git.dirty"] == "true"
    assert "git: working tree is dirty (2 modified files)" in " ".join(lineage.warnings)
    assert any("train.ipynb is not committed" in w for w in lineage.warnings)


def test_notebook_not_yet_committed(git_repo: Path) -> None:
    notebook = git_repo / "new.ipynb"
    notebook.write_text((git_repo / "train.ipynb").read_text())
    (git_repo / "scratch.txt").write_text("x")

    git = capture(cwd=git_repo, notebook=notebook, data=[]).record["git"]
    untracked = [line for line in porcelain(git_repo) if line.startswith("??")]
    assert git["notebook_committed"] is False
    assert git["untracked"] == len(untracked) == 2
    assert git["dirty"] is False  # untracked files are counted, not a dirty tree


def test_detached_head(git_repo: Path) -> None:
    first = run("git", "rev-parse", "HEAD", cwd=git_repo).strip()
    (git_repo / "train.py").write_text("print('second')\n")
    commit_all(git_repo, "second")
    run("git", "checkout", "-q", "--detach", first, cwd=git_repo)

    lineage = capture(cwd=git_repo, data=[])
    assert lineage.record["git"]["commit"] == first
    assert lineage.record["git"]["branch"] == "detached"
    assert f"git: HEAD is detached at {first[:12]}" in lineage.warnings


def test_subdirectory_and_notebook_path_relative_to_repo_root(git_repo: Path) -> None:
    sub = git_repo / "notebooks"
    sub.mkdir()
    (sub / "explore.ipynb").write_text((git_repo / "train.ipynb").read_text())
    commit_all(git_repo, "notebooks")

    lineage = capture(cwd=sub, notebook="explore.ipynb", data=[])
    assert lineage.record["notebook"]["path"] == "notebooks/explore.ipynb"
    assert lineage.record["git"]["notebook_committed"] is True
    assert lineage.to_tags()["jupyreg.notebook.path"] == "notebooks/explore.ipynb"


def test_repository_without_commits(tmp_path: Path) -> None:
    init_git(tmp_path)
    (tmp_path / "a.py").write_text("a = 1\n")
    run("git", "add", "a.py", cwd=tmp_path)

    lineage = capture(cwd=tmp_path, data=[])
    git = lineage.record["git"]
    assert git["commit"] is None and git["dirty"] is True and git["modified"] == ["a.py"]
    assert b"a = 1" in lineage.artifacts["jupyreg/git.diff"]
    assert "git: the repository has no commit yet" in lineage.warnings


def test_no_git_repository(tmp_path: Path) -> None:
    lineage = capture(cwd=tmp_path, data=[])
    git = lineage.record["git"]
    assert all(value is None for value in git.values())
    assert any(w.startswith("git: ") and "not in a git repository" in w for w in lineage.warnings)
    assert not any(key.startswith("jupyreg.git.") for key in lineage.to_tags())


def test_no_git_executable(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    lineage = capture(cwd=git_repo, data=[])
    assert lineage.record["git"]["commit"] is None
    assert "git: the git executable was not found; commit not recorded" in lineage.warnings


def test_remote_credentials_are_removed(git_repo: Path) -> None:
    run("git", "remote", "add", "origin", "https://user:s3cr3t@example.com/x.git", cwd=git_repo)
    run(
        "git",
        "remote",
        "add",
        "backup",
        "ssh://git:pw123456@backup.example.com/x.git",
        cwd=git_repo,
    )
    lineage = capture(cwd=git_repo, data=[])
    assert lineage.record["git"]["remote"] == "https://example.com/x.git"
    assert lineage.to_tags()["jupyreg.git.remote"] == "https://example.com/x.git"
    assert "s3cr3t" not in str(lineage.to_tags())


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        ("https://user:token@host/x.git", "https://host/x.git"),
        ("https://ghp_abcdef123456@github.com/o/r.git", "https://github.com/o/r.git"),
        ("http://user:pw@host:8080/x.git?token=abc#frag", "http://host:8080/x.git"),
        ("https://host/x.git?access_token=abc", "https://host/x.git"),
        ("ssh://user:pw@host/x.git", "ssh://user@host/x.git"),
        ("ssh://git@host:2222/x.git", "ssh://git@host:2222/x.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
        ("https://user:pw@host:notaport/x.git", "https://host:notaport/x.git"),
        ("https://[::1]:8443/x.git", "https://[::1]:8443/x.git"),
    ],
)
def test_scrub_url(url: str, scrubbed: str) -> None:
    assert scrub_url(url) == scrubbed


def test_no_git_executable_in_a_fresh_interpreter(git_repo: Path, tmp_path: Path) -> None:
    """GitPython refuses to import without git on PATH: still a warning, not an error."""
    code = (
        "import json, sys; from jupyreg.lineage import capture; "
        f"print(json.dumps(capture(cwd={str(git_repo)!r}, data=[]).warnings))"
    )
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin)}
    env.pop("GIT_PYTHON_GIT_EXECUTABLE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "git: the git executable was not found; commit not recorded" in json.loads(out)


def test_gitpython_missing(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "git", None)
    lineage = capture(cwd=git_repo, data=[])
    assert lineage.record["git"]["commit"] is None
    assert "git: GitPython is not installed; commit not recorded" in lineage.warnings


def test_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    run("git", "init", "-q", "--bare", str(bare), cwd=tmp_path)
    lineage = capture(cwd=bare, data=[])
    assert all(value is None for value in lineage.record["git"].values())
    assert any("is a bare repository" in w for w in lineage.warnings)


def test_unreadable_repository_is_a_warning(git_repo: Path) -> None:
    (git_repo / ".git" / "index").write_bytes(b"not an index")
    lineage = capture(cwd=git_repo, data=[])
    assert lineage.record["git"]["commit"] is None
    assert any(w.startswith(f"git: cannot read {git_repo}") for w in lineage.warnings)


def test_files_changed_between_is_gits_diff_tree(git_repo: Path, tmp_path: Path) -> None:
    """The tree walk answers what `git diff-tree -r --name-only` answers: nested changes,
    additions, deletions, a mode change, a file replaced by a directory, no change."""
    commits = [run("git", "rev-parse", "HEAD", cwd=git_repo).strip()]
    nested = git_repo / "src" / "pkg"
    nested.mkdir(parents=True)
    (nested / "a.py").write_text("a = 1\n")
    (git_repo / "src" / "b.py").write_text("b = 1\n")
    commits.append(commit_all(git_repo, "nested"))
    (nested / "a.py").write_text("a = 2\n")
    (git_repo / "train.py").chmod(0o755)
    (git_repo / "src" / "b.py").unlink()
    commits.append(commit_all(git_repo, "edit, chmod, delete"))
    (git_repo / "train.ipynb").unlink()
    (git_repo / "train.ipynb").mkdir()
    (git_repo / "train.ipynb" / "inner.txt").write_text("now a directory\n")
    commits.append(commit_all(git_repo, "file to directory"))
    run("git", "commit", "-q", "--allow-empty", "-m", "nothing", cwd=git_repo)
    commits.append(run("git", "rev-parse", "HEAD", cwd=git_repo).strip())

    pairs = [(a, b) for a in commits for b in commits] + [(commits[0], "ab" * 20)]
    found = files_changed_between(pairs, git_repo / "src")
    for a, b in pairs[:-1]:
        listed = run("git", "diff-tree", "-r", "--name-only", "-z", a, b, cwd=git_repo)
        assert found[(a, b)] == tuple(sorted(filter(None, listed.split("\0")))), (a, b)
    assert found[(commits[0], "ab" * 20)] is None
    assert found[(commits[1], commits[2])] == ("src/b.py", "src/pkg/a.py", "train.py")
    assert files_changed_between(pairs[:2], tmp_path) == dict.fromkeys(pairs[:2])
