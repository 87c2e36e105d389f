"""`%%register` in a real kernel (nbclient) inside real git + DVC repositories: every
captured field checked against ground truth computed independently."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.lineage.lineage_helpers import DVC, commit_all, init_git, md5, run

NAME = "fraud-detector"
TOKEN = "ghp_plantedSecretToken1234567890abcdef"
TRAIN = """\
import numpy as np
from sklearn.linear_model import LogisticRegression
data = np.loadtxt("data/train.csv", delimiter=",")
clf = LogisticRegression().fit(data[:, :2], data[:, 2])
metrics = {"val": {"auc": 0.91}, "test": {"auc": 0.90}}
"""


def _dataset(rows: int = 200) -> str:
    lines = [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def _notebook(uri: str, register_line: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"%load_ext jupyreg\n%config JupyReg.tracking_uri = {uri!r}"),
        nbformat.v4.new_code_cell(f"%%register {register_line}\n{TRAIN}"),
    ]
    return nb


def _execute(nb_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run the notebook in a real kernel, telling it its path as JupyterLab does."""
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb_path))
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(nb_path.parent)}},
    ).execute()
    return nb


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git + DVC repo with data/train.csv under DVC and a credentialed remote."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("JUPYREG_USER", "alice")
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text(_dataset())
    init_git(root)
    run(
        "git",
        "remote",
        "add",
        "origin",
        f"https://alice:{TOKEN}@github.com/acme/fraud.git",
        cwd=root,
    )
    run(DVC, "init", "-q", cwd=root)
    run(DVC, "add", "-q", "data/train.csv", cwd=root)
    (root / ".gitignore").write_text("mlflow.db\nmlruns/\nmlartifacts/\n.ipynb_checkpoints/\n")
    return root


def _version_tags(uri: str) -> dict[str, str]:
    (mv,) = MlflowClient(uri, uri).search_model_versions(f"name = '{NAME}'")
    return mv.tags


def test_clean_repo_records_commit_data_hash_notebook_and_no_gpu(repo, monkeypatch) -> None:
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    nb_path = repo / "train.ipynb"
    nbformat.write(
        _notebook(uri, f"{NAME} --model clf --metrics metrics --data data/train.csv"), nb_path
    )
    commit = commit_all(repo, "notebook")
    nb = _execute(nb_path, monkeypatch)

    tags = _version_tags(uri)
    dvc_md5 = next(
        line.split(": ")[1]
        for line in (repo / "data/train.csv.dvc").read_text().splitlines()
        if "md5:" in line
    )
    assert tags["jupyreg.git.commit"] == commit == run("git", "rev-parse", "HEAD", cwd=repo).strip()
    assert tags["jupyreg.git.branch"] == "main"
    assert tags["jupyreg.git.dirty"] == "false"
    assert tags["jupyreg.git.remote"] == "https://github.com/acme/fraud.git"
    assert tags["jupyreg.notebook.path"].endswith("train.ipynb")
    assert tags["jupyreg.data.0.path"] == "data/train.csv"
    assert tags["jupyreg.data.0.md5"] == dvc_md5 == md5(repo / "data/train.csv")
    assert tags["jupyreg.data.0.dvc"] == "true" and tags["jupyreg.data.0.stale"] == "false"
    assert tags["jupyreg.gpu.count"] == "0"
    assert tags["jupyreg.author"] == "alice"
    assert json.loads(tags["jupyreg.lineage"])["git"]["commit"] == commit
    html = nb.cells[1].outputs[-1]["data"]["text/html"]
    assert f"<b>{NAME}</b> version <b>1</b>" in html and "val.auc" in html
    assert "no NVIDIA GPU" in html  # the hardware warning is shown


def test_dirty_tree_and_stale_data_are_recorded_and_warned(repo, monkeypatch) -> None:
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    nb_path = repo / "train.ipynb"
    nbformat.write(_notebook(uri, f"{NAME} --model clf --metrics metrics"), nb_path)
    commit_all(repo, "notebook")
    (repo / "data" / "train.csv").write_text(_dataset(300))  # changed after `dvc add`
    (repo / "features.py").write_text("SCALE = 2\n")
    run("git", "add", "features.py", cwd=repo)
    nb = _execute(nb_path, monkeypatch)

    tags = _version_tags(uri)
    assert tags["jupyreg.git.dirty"] == "true"
    assert tags["jupyreg.data.0.stale"] == "true"
    assert tags["jupyreg.data.0.md5"] == md5(repo / "data/train.csv")  # the real hash
    assert tags["jupyreg.data.0.recorded_md5"] != tags["jupyreg.data.0.md5"]
    html = nb.cells[1].outputs[-1]["data"]["text/html"]
    assert "dirty" in html and "stale" in html

    client = MlflowClient(uri, uri)
    run_id = client.search_model_versions(f"name = '{NAME}'")[0].run_id
    diff = Path(client.download_artifacts(run_id, "jupyreg/git.diff")).read_text()
    assert "+SCALE = 2" in diff


def test_no_git_and_secrets_never_stored(tmp_path, repo, monkeypatch) -> None:
    plain = tmp_path / "plain"
    (plain / "data").mkdir(parents=True)
    (plain / "data" / "train.csv").write_text(_dataset())
    uri = f"sqlite:///{plain / 'mlflow.db'}"
    nb_path = plain / "train.ipynb"
    nbformat.write(_notebook(uri, f"{NAME} --model clf --data data/train.csv"), nb_path)
    nb = _execute(nb_path, monkeypatch)
    tags = _version_tags(uri)
    assert "jupyreg.git.commit" not in tags
    assert tags["jupyreg.data.0.dvc"] == "false"
    assert tags["jupyreg.data.0.md5"] == md5(plain / "data/train.csv")
    assert "not under DVC" in nb.cells[1].outputs[-1]["data"]["text/html"]

    # the credentialed remote of the other repo, and GITHUB_TOKEN, reach nothing stored
    for root in (plain, repo):
        for path in root.rglob("*"):
            if path.is_file() and {"mlruns", "mlartifacts"} & set(path.parts):
                assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in json.dumps(tags)


def test_a_failing_cell_shows_its_error_and_registers_nothing(repo, monkeypatch) -> None:
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    nb = _notebook(uri, f"{NAME} --model clf")
    nb.cells[1].source = f"%%register {NAME} --model clf\nraise RuntimeError('diverged')"
    nb_path = repo / "train.ipynb"
    nbformat.write(nb, nb_path)
    with pytest.raises(CellExecutionError, match="diverged"):
        _execute(nb_path, monkeypatch)
    assert MlflowClient(uri, uri).search_registered_models() == []
