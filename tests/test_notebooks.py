"""The example notebooks in notebooks/ run top to bottom in a real kernel (nbclient), each
from a copy in a temp dir, and leave nothing behind outside their demo directory."""

from __future__ import annotations

import re
import shutil
import urllib.request
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
NAME = "fraud-detector"


def execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run notebooks/NAME from a copy in tmp_path (the kernel's cwd), with the demo
    directory and the temp dir inside tmp_path; fails on the first cell error."""
    demo, scratch = tmp_path / "demo", tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    copy = tmp_path / name
    shutil.copy(NOTEBOOKS / name, copy)
    monkeypatch.setenv("JUPYREG_DEMO_DIR", str(demo))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setenv("JPY_SESSION_NAME", str(copy))  # as JupyterLab tells the kernel
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    nb = nbformat.read(copy, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


def assert_left_nothing_behind(tmp_path: Path, *names: str) -> None:
    """Only the notebook copies and the demo dir; the kernel's temp dir is empty again."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*names, "demo", "tmp"})
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == []


def assert_stopped(nb: nbformat.NotebookNode) -> None:
    """The server the notebook started (its URL is printed) no longer answers."""
    (url,) = re.findall(r"server up at (http://127\.0\.0\.1:\d+)", text_of(nb))
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/health", timeout=2)


def test_notebooks_are_committed_without_outputs() -> None:
    assert ALL == [
        "01-register.ipynb",
        "02-compare-and-promote.ipynb",
        "03-cicd-and-alerts.ipynb",
        "04-team-server.ipynb",
        "05-trust.ipynb",
        "06-serve.ipynb",
    ]
    for name in ALL:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown", name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name


def test_register_then_compare_and_promote_share_a_demo_dir(tmp_path, monkeypatch) -> None:
    first = execute("01-register.ipynb", tmp_path, monkeypatch)
    html = text_of(first)
    assert "<b>fraud-detector</b> version <b>1</b>" in html and "val.auc" in html

    uri = f"sqlite:///{tmp_path / 'demo' / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    versions = sorted(client.search_model_versions(f"name = '{NAME}'"), key=lambda m: m.version)
    assert [int(mv.version) for mv in versions] == [1, 2]
    dvc_md5 = (tmp_path / "demo" / "data" / "train.csv.dvc").read_text().split("md5: ")[1][:32]
    for mv in versions:
        assert mv.tags["jupyreg.git.dirty"] == "false"
        assert mv.tags["jupyreg.data.0.md5"] == dvc_md5
        assert mv.tags["jupyreg.author"] == "alice"

    second = execute("02-compare-and-promote.ipynb", tmp_path, monkeypatch)
    assert "registered two quick versions" not in text_of(second)  # it used notebook 1's
    from jupyreg import Registry

    reg = Registry(uri)
    history = reg.history(NAME)
    assert list(history.to_stage) == [
        "Staging", "Production", "Staging", "Archived", "Production", "Archived", "Production"
    ]  # fmt: skip
    assert set(history[history.to_stage == "Production"].author) == {"bob"}
    assert reg.holder(NAME) == 1  # rolled back
    assert_left_nothing_behind(tmp_path, "01-register.ipynb", "02-compare-and-promote.ipynb")


def test_compare_and_promote_runs_on_its_own(tmp_path, monkeypatch) -> None:
    nb = execute("02-compare-and-promote.ipynb", tmp_path, monkeypatch)
    out = text_of(nb)
    assert "registered two quick versions" in out
    assert "PolicyViolation: alice cannot approve their own request" in out
    assert "is approved (by bob)" in out
    assert_left_nothing_behind(tmp_path, "02-compare-and-promote.ipynb")


@pytest.mark.server
def test_cicd_and_alerts(tmp_path, monkeypatch) -> None:
    nb = execute("03-cicd-and-alerts.ipynb", tmp_path, monkeypatch)
    out = text_of(nb)
    assert "1 gate(s) failed: clean git" in out and "threshold test.auc >= 0.85" in out
    assert "exit code: 1" in out
    assert "verified: fraud-detector v1 entered Production" in out
    assert "receiver answered 401 - signature mismatch" in out
    (deploy_log,) = (tmp_path / "demo").glob("jupyreg-cicd-*/deploy.log")
    assert deploy_log.read_text() == "deploying fraud-detector v4 (replacing v1)\n"
    assert_stopped(nb)
    assert_left_nothing_behind(tmp_path, "03-cicd-and-alerts.ipynb")


@pytest.mark.server
def test_team_server(tmp_path, monkeypatch) -> None:
    nb = execute("04-team-server.ipynb", tmp_path, monkeypatch)
    out = text_of(nb)
    assert "refused: you claim to be mallory but the server authenticates alice" in out
    assert "requested_by: alice" in out  # not the claimed "mallory"
    assert "PermissionDenied: carol has READ" in out
    assert "PermissionDenied: alice has EDIT" in out
    assert out.count("refused: PERMISSION_DENIED: jupyreg:") == 2
    assert "is approved (by bob)" in out
    assert_stopped(nb)
    assert_left_nothing_behind(tmp_path, "04-team-server.ipynb")


def test_trust(tmp_path, monkeypatch) -> None:
    nb = execute("05-trust.ipynb", tmp_path, monkeypatch)
    out = text_of(nb)
    assert "PolicyViolation: fraud-detector v1 cannot go to Production" in out
    assert "reproduced: never reproduced" in out
    assert "fraud-detector v1 reproduced (tolerance 1e-06)" in out
    assert "model-index:" in out  # the card's YAML front matter
    assert "1 commit touching code since training" in out
    assert "data changed: data/train.csv" in out
    # issue 25: a plain-MLflow script's version carries the same lineage
    assert "entry.kind  script" in out and "entry.path  train_script.py" in out
    assert 'entry.argv  ["train_script.py","--note","nightly"]' in out
    assert "git.dirty   false" in out
    assert_left_nothing_behind(tmp_path, "05-trust.ipynb")


def test_serve_follows_production(tmp_path, monkeypatch) -> None:
    out = text_of(execute("06-serve.ipynb", tmp_path, monkeypatch))
    assert "now serving v2 (was v1, loaded in" in out
    assert_left_nothing_behind(tmp_path, "06-serve.ipynb")
