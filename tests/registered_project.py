"""A real git + DVC project to register versions from (model card and staleness tests).

Building one runs git and DVC (seconds), copying one takes milliseconds: tests build a
template once per module and copy it (``copy_project``); git and DVC work on the copy
(DVC's state database only misses, which costs a re-hash of a tiny file).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jupyreg import Registry
from jupyreg.lineage import Lineage
from tests.lineage.lineage_helpers import DVC, NOTEBOOK, commit_all, init_git, run

NAME = "fraud-detector"
REMOTE_USER, REMOTE_TOKEN = "ci-bot", "ghp_s3cr3tRemoteToken42"
REMOTE = f"https://{REMOTE_USER}:{REMOTE_TOKEN}@git.example.com/org/fraud.git"
METRICS = {"val": {"auc": 0.9132}, "test": {"auc": 0.9007}}


def build_project(root: Path) -> Path:
    """A committed repo: a notebook, code, docs, a DVC-tracked dataset, and a remote whose
    URL carries credentials. The registry's files (mlflow.db, mlruns/) are ignored by git."""
    (root / ".gitignore").write_text("mlflow.db*\nmlruns/\nmlartifacts/\n.cache/\n")
    (root / "train.ipynb").write_text(json.dumps(NOTEBOOK, indent=1))
    (root / "features.py").write_text("SCALE = 1\n")
    (root / "README.md").write_text("# fraud\n")
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    init_git(root)
    run("git", "remote", "add", "origin", REMOTE, cwd=root)
    run(DVC, "init", "-q", cwd=root)
    run(DVC, "add", "-q", "data/train.csv", cwd=root)
    commit_all(root, "project")
    return root


def copy_project(template: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template at ``root``, made the working directory (lineage is captured
    from there), with jupyreg's md5 cache inside it."""
    shutil.copytree(template, root, symlinks=True, dirs_exist_ok=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(root / ".cache"))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    return root


def register(
    reg: Registry, model, name: str = NAME, *, lineage: Lineage | None = None, **kwargs
) -> int:
    """A version of ``name`` registered from the working directory's project."""
    return reg.register(
        model,
        name,
        metrics=METRICS,
        params={"C": 0.5},
        data=["data/train.csv"],
        notebook="train.ipynb",
        description="Scores card transactions; trained on the 2026 Q3 extract.",
        tags={"team": "risk"},
        lineage=lineage,
        **kwargs,
    ).version


def promote(requester: Registry, approver: Registry, version: int, name: str = NAME) -> str:
    """Staging, then Production by ``requester``'s request and ``approver``'s approval."""
    requester.transition(name, version, "Staging", reason="candidate for the Q4 release")
    request = requester.request(name, version, "Production", reason="beats v0 on val.auc")
    approver.approve(request.id, comment="checked the eval notebook")
    return request.id
