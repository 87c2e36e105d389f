"""`reproduce` for every entry kind (issue 25): versions registered by plain MLflow from a
script, from a command run through `jupyreg run`, and from a `dvc repro` stage, in a real
git + DVC repository, are replayed in a worktree at their commit (diff applied, data
checked out by hash) against a throwaway MLflow store, and their metrics compared.

Each reproduction is one replay in a subprocess (it imports MLflow: seconds), after one
training subprocess. The data are not separable, so the metric depends on the rows: the
version reproduced was trained on data that has changed since, and the dirty tree's diff
changes which rows it trains on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyreg import Registry
from jupyreg.lineage.entry import ENTRY_ARGV_ENV
from tests.lineage.lineage_helpers import DVC, commit_all, init_git, md5, run
from tests.test_entry_paths import NAME, SEED_SCRIPT

BIN = Path(sys.executable).parent
HEADER = "x0,x1,label\n"
DATA = HEADER + "".join(f"{i % 7},{i % 5},{int((i * 7) % 11 > 4)}\n" for i in range(60))
MORE = "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(40))  # val_auc 0.55 -> 0.53
STAGE = (
    "stages:\n  train:\n    cmd: python train.py --C 0.5\n    deps: [data/train.csv, train.py]\n"
)
# not committed: trains on the last 50 rows (val_auc 0.58; the commit gives 0.55)
DIRTY_EDIT = ('pd.read_csv("data/train.csv")', 'pd.read_csv("data/train.csv").tail(50)')


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed git + DVC repository: data/train.csv under DVC, the seed's train.py, a
    dvc.yaml with the stage `train`; the registry (mlflow.db) lies outside it."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    init_git(root)
    run(DVC, "init", "-q", cwd=root)
    (root / "data" / "train.csv").write_text(DATA)
    run(DVC, "add", "-q", "data/train.csv", cwd=root)
    (root / "train.py").write_text(SEED_SCRIPT.replace("{name}", NAME))
    (root / "dvc.yaml").write_text(STAGE)
    (root / ".gitignore").write_text("mlartifacts/\nmlruns/\n")
    commit_all(root, "train")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(tmp_path / "cache"))
    return root


def _train(repo: Path, uri: str, *argv: str | Path) -> subprocess.CompletedProcess[str]:
    """``argv`` run in ``repo`` as a user's shell runs it: the virtualenv first on PATH, no
    MLflow or jupyreg settings but the tracking URI."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "JUPYREG_", "CUDA_", "NVIDIA_", "DVC_STAGE"))
    }
    environ |= {
        "MLFLOW_TRACKING_URI": uri,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{BIN}{os.pathsep}{environ.get('PATH', '')}",
    }
    done = subprocess.run(
        [str(a) for a in argv], cwd=repo, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _change_the_data(repo: Path) -> None:
    """More rows, recorded by `dvc add` (not committed): a replay needs the old bytes."""
    (repo / "data" / "train.csv").write_text(DATA + MORE)
    run(DVC, "add", "-q", "data/train.csv", cwd=repo)


def _reproduced(repo: Path, uri: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """v1 of NAME reproduced without asking: (what the kept outcome says ran, the plan)."""
    reg = Registry(uri, user="bob")
    before = reg.get(NAME, 1)
    result = reg.reproduce(NAME, 1, confirm=False, repo_path=repo)
    plan = capsys.readouterr().err
    assert result.ok, result.text()
    assert result.reproduced == result.recorded == before.metrics
    assert set(result.deltas.values()) == {0.0}
    assert result.environment == []  # this interpreter, these packages, no GPU
    assert reg.versions(NAME)["version"].tolist() == [1]  # the replay registered none here
    after = reg.get(NAME, 1)
    assert after.reproduced == "passed"
    (kept,) = [json.loads(v) for k, v in after.tags.items() if "reproduction." in k]
    assert run("git", "worktree", "list", cwd=repo).count("\n") == 1  # the worktree is gone
    return kept["ran"], plan


def test_a_script_from_a_dirty_tree_reproduces_with_its_diff_and_old_data(
    repo: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    script = repo / "train.py"
    script.write_text(script.read_text().replace(*DIRTY_EDIT))
    _train(repo, sqlite_uri, sys.executable, "train.py", "--C", "0.5")
    _change_the_data(repo)
    version = Registry(sqlite_uri).get(NAME, 1)
    assert version.metrics["val_auc"] == pytest.approx(0.58)
    recorded = version.lineage
    assert recorded["entry"]["kind"] == "script" and recorded["git"]["dirty"] is True
    assert recorded["data"][0]["md5"] != md5(repo / "data" / "train.csv")

    ran, plan = _reproduced(repo, sqlite_uri, capsys)
    assert ran == "script" and "with its recorded uncommitted diff" in plan
    assert f"runs     {sys.executable} train.py --C 0.5" in plan
    assert script.read_text().count(".tail(50)") == 1  # the workspace is untouched


def test_a_command_of_jupyreg_run_records_it_and_reproduces(
    repo: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["python", "train.py", "--C", "0.5"]
    _train(repo, sqlite_uri, sys.executable, "-m", "jupyreg", "run", "--", *command)
    fields = Registry(sqlite_uri).get(NAME, 1).lineage_fields
    assert fields["entry.kind"] == "command" and fields["entry.path"] == "train.py"
    assert json.loads(fields["entry.argv"]) == command
    _change_the_data(repo)

    ran, plan = _reproduced(repo, sqlite_uri, capsys)
    assert ran == "command"
    assert "entry    command train.py, run in the root" in plan
    assert f"runs     {sys.executable} train.py --C 0.5" in plan


def test_a_dvc_stage_reproduces_through_dvc_repro(
    repo: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _train(repo, sqlite_uri, DVC, "repro", "-q")
    fields = Registry(sqlite_uri).get(NAME, 1).lineage_fields
    assert (fields["entry.kind"], fields["entry.stage"]) == ("dvc-stage", "train")
    assert fields["entry.path"] == "dvc.yaml"
    _change_the_data(repo)

    ran, plan = _reproduced(repo, sqlite_uri, capsys)
    assert ran == "dvc-stage"
    assert "entry    dvc-stage train" in plan
    assert "-m dvc repro --force --single-item train" in plan


def test_jupyreg_run_exits_as_a_shell_would(tmp_path: Path) -> None:
    jupyreg = [sys.executable, "-m", "jupyreg"]
    done = subprocess.run(
        [*jupyreg, "run", "--", "no-such-command", "--flag"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 127
    assert done.stderr == "jupyreg: run: no-such-command: command not found\n"
    done = subprocess.run([*jupyreg, "run"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "COMMAND" in done.stderr
    probe = "import os, sys; print(os.environ[sys.argv[1]]); sys.exit(3)"
    done = subprocess.run(
        [*jupyreg, "run", "--", sys.executable, "-c", probe, ENTRY_ARGV_ENV],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3  # the child's status; its stdout is ours
    assert json.loads(done.stdout) == [sys.executable, "-c", probe, ENTRY_ARGV_ENV]
