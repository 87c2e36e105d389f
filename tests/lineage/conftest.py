"""Real git and DVC repositories in temp dirs for the lineage tests.

Only the standard library and pytest are imported here, so the GPU test can run on a
machine whose Python has neither MLflow, GitPython nor DVC.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lineage_helpers import DVC, NOTEBOOK, commit_all, init_git, run


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our md5 cache in a temp dir; no notebook hint leaking in from the environment."""
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(tmp_path_factory.mktemp("jupyreg-cache")))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for var in ("JPY_SESSION_NAME", "DVC_SITE_CACHE_DIR", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A committed git repo with a notebook and a script."""
    root = tmp_path / "repo"
    root.mkdir()
    init_git(root)
    (root / "train.ipynb").write_text(json.dumps(NOTEBOOK, indent=1))
    (root / "train.py").write_text("print('train')\n")
    commit_all(root, "initial")
    return root


@pytest.fixture
def make_dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    return _dvc_repo_factory(tmp_path_factory)


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One git+DVC repo shared by read-only tests: a tracked file, a tracked directory,
    a pipeline stage in dvc.lock and a plain file; DVC's state is left where DVC puts it."""
    yield _dvc_repo_factory(tmp_path_factory)(pipeline=True)


def _dvc_repo_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    def make(*, git: bool = True, pipeline: bool = False, env: dict | None = None) -> Path:
        root = tmp_path_factory.mktemp("dvcrepo")
        data = root / "data"
        (data / "images" / "sub").mkdir(parents=True)
        (data / "train.csv").write_bytes(os.urandom(3 << 20))
        (data / "images" / "a.txt").write_text("a\n")
        (data / "images" / "b.txt").write_bytes(b"crlf\r\nline\r\n")
        (data / "images" / "sub" / "c.bin").write_bytes(b"\x00\x01" * 1000)
        (root / "plain.csv").write_text("x,y\n1,2\n")
        if git:
            init_git(root)
            run(DVC, "init", "-q", cwd=root, env=env)
        else:
            run(DVC, "init", "-q", "--no-scm", cwd=root, env=env)
        run(DVC, "config", "core.analytics", "false", cwd=root, env=env)
        targets = ["data/train.csv", "data/images"]
        run(DVC, "add", "-q", *targets, cwd=root, env=env)
        if pipeline:
            run(
                DVC,
                "stage",
                "add",
                "-q",
                "-n",
                "prepare",
                "-d",
                "plain.csv",
                "-o",
                "prepared.txt",
                "echo ready > prepared.txt",
                cwd=root,
                env=env,
            )
            run(DVC, "repro", "-q", cwd=root, env=env)
        if git:
            commit_all(root, "data")
        return root

    return make
