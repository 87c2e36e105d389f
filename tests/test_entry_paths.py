"""Every entry path carries lineage (issue 25): an unmodified training script that uses only
MLflow, run in a real git + DVC repository, gives a version whose lineage equals ground
truth, through jupyreg's MLflow run-context provider (entry point
``mlflow.run_context_provider``)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyreg import Registry, tags

BIN = Path(sys.executable).parent
NAME = "fraud-detector-v2"
DATA = "x0,x1,label\n" + "".join(f"{i % 7},{i % 3},{int(i % 7 > 3)}\n" for i in range(60))
# the seed's snippet (day 3), as an existing training script has it
SEED_SCRIPT = """\
import sys

import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

C = float(sys.argv[sys.argv.index("--C") + 1]) if "--C" in sys.argv else 1.0
frame = pd.read_csv("data/train.csv")
model = LogisticRegression(C=C).fit(frame[["x0", "x1"]], frame["label"])
with mlflow.start_run():
    mlflow.log_param("C", C)
    mlflow.log_metric("val_auc", model.score(frame[["x0", "x1"]], frame["label"]))
    mlflow.sklearn.log_model(model, artifact_path="model", registered_model_name="{name}")
"""
AUTOLOG_SCRIPT = """\
import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression

mlflow.sklearn.autolog()
frame = pd.read_csv("data/train.csv")
with mlflow.start_run() as run:
    LogisticRegression().fit(frame[["x0", "x1"]], frame["label"])
mlflow.register_model(f"runs:/{run.info.run_id}/model", "{name}")
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git + DVC repository: data/train.csv added with `dvc add`, the scripts."""
    root = tmp_path_factory.mktemp("template") / "project"
    (root / "data").mkdir(parents=True)
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "alice@example.com")
    _git(root, "config", "user.name", "alice")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([BIN / "dvc", "init", "-q"], cwd=root, check=True, env=env)
    (root / "data" / "train.csv").write_text(DATA)
    subprocess.run([BIN / "dvc", "add", "-q", "data/train.csv"], cwd=root, check=True, env=env)
    (root / "train.py").write_text(SEED_SCRIPT.replace("{name}", NAME))
    (root / "autolog.py").write_text(AUTOLOG_SCRIPT.replace("{name}", NAME))
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "train")
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A copy of the template repository of its own."""
    return Path(shutil.copytree(template, tmp_path / "project", symlinks=True))


def _run(repo: Path, uri: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "JUPYREG_", "CUDA_", "NVIDIA_"))
    }
    environ |= {"MLFLOW_TRACKING_URI": uri, "DVC_NO_ANALYTICS": "1", **env}
    done = subprocess.run(
        [sys.executable, *argv], cwd=repo, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _run_tags(uri: str) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], max_results=5
    )
    return run.data.tags


def test_the_seeds_script_gives_a_version_with_its_whole_lineage(repo: Path, sqlite_uri) -> None:
    with (repo / "train.py").open("a") as script:
        script.write("# tuned by hand, not committed yet\n")
    _run(repo, sqlite_uri, "train.py", "--C", "0.5")

    version = Registry(sqlite_uri).get(NAME, 1)
    fields = version.lineage_fields
    assert fields["git.commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert fields["git.dirty"] == "true"
    assert fields["entry.kind"] == "script"
    assert fields["entry.path"] == "train.py"
    assert json.loads(fields["entry.argv"]) == ["train.py", "--C", "0.5"]
    dvc_md5 = (repo / "data" / "train.csv.dvc").read_text().split("md5: ")[1][:32]
    assert (fields["data.0.path"], fields["data.0.md5"]) == ("data/train.csv", dvc_md5)
    assert fields["gpu.count"] == fields["gpu.machine_count"] == _machine_gpus()
    # the pinned requirements MLflow logged with the model (the run began before it)
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in version.lineage["environment"]["requirements"]
    assert fields["python"] == platform.python_version()
    assert version.lineage["entry"]["cwd"] == "."
    assert version.metrics["val_auc"] > 0.5 and version.params["C"] == "0.5"
    # the diff MLflow itself never records: equal to git's, byte for byte
    run_tags = _run_tags(sqlite_uri)
    assert tags.diff_from_tags(run_tags) == _git(repo, "diff", "HEAD").encode()
    assert fields["git.diff_sha256"] == run_tags["jupyreg.git.diff_sha256"]


def _machine_gpus() -> str:
    """Ground truth: what nvidia-smi lists (every GPU is visible: _run drops CUDA_*)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "0"
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True).stdout
    return str(sum(line.startswith("GPU ") for line in listed.splitlines()))


def test_gates_judge_the_lineage_frozen_at_the_first_move_not_the_runs_later_tags(
    repo: Path, sqlite_uri
) -> None:
    """A plain-MLflow version's lineage is its run's until a gated move freezes it onto
    the version; a later change of the run's tags changes nothing the gates judge."""
    from mlflow import MlflowClient

    _run(repo, sqlite_uri, "train.py")
    reg = Registry(sqlite_uri, user="alice")
    reg.set_policy(NAME, require_clean_git=True, reason="clean code only")
    reg.transition(NAME, 1, "Staging", reason="candidate")
    reg.request(NAME, 1, "Production", reason="clean tree")  # gates judged: frozen now
    client = MlflowClient(sqlite_uri)
    frozen = client.get_model_version(NAME, "1").tags
    assert frozen["jupyreg.git.dirty"] == "false" and "jupyreg.lineage" in frozen
    run_id = reg.get(NAME, 1).run_id
    client.set_tag(run_id, "jupyreg.git.dirty", "true")  # anyone who may log to the run
    assert reg.get(NAME, 1).lineage_fields["git.dirty"] == "false"


def test_autolog_and_register_model_give_the_same_lineage(repo: Path, sqlite_uri) -> None:
    _run(repo, sqlite_uri, "autolog.py")
    fields = Registry(sqlite_uri).get(NAME, 1).lineage_fields
    assert fields["git.commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert fields["git.dirty"] == "false"
    assert json.loads(fields["entry.argv"]) == ["autolog.py"]
    assert fields["data.0.path"] == "data/train.csv"
    # search finds it by its lineage before anything froze it onto the version
    found = Registry(sqlite_uri).search("git.dirty = 'false' and entry.kind = 'script'")
    assert found[["name", "version"]].values.tolist() == [[NAME, 1]]


@pytest.fixture
def in_repo(repo: Path, sqlite_uri, monkeypatch: pytest.MonkeyPatch):
    """``mlflow.start_run`` in this process, in ``repo``: MLflow loaded jupyreg's provider
    from its entry point when it was imported (as it does in any process)."""
    import mlflow

    monkeypatch.chdir(repo)
    for var in ("JUPYREG_DATA", "JUPYREG_CAPTURE"):
        monkeypatch.delenv(var, raising=False)
    mlflow.set_tracking_uri(sqlite_uri)
    yield mlflow
    mlflow.set_tracking_uri(None)


def _started_run_tags(mlflow) -> dict[str, str]:
    with mlflow.start_run() as run:
        pass
    return mlflow.MlflowClient().get_run(run.info.run_id).data.tags


def test_a_failing_capture_never_fails_the_run(in_repo) -> None:
    Path("pyproject.toml").write_text('[tool.jupyreg]\ndata = "not a list"\n')
    run_tags = _started_run_tags(in_repo)
    assert "[tool.jupyreg] data must be a list" in run_tags[tags.CAPTURE_WARNING_TAG]
    assert tags.LINEAGE_TAG not in run_tags


def test_a_corrupt_dvc_repository_is_a_warning(in_repo, repo: Path) -> None:
    (repo / "data" / "train.csv.dvc").write_text("outs: [this is: not: yaml\n")
    record = json.loads(_started_run_tags(in_repo)[tags.LINEAGE_TAG])
    assert record["git"]["commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert any(w.startswith("data:") for w in record["warnings"]), record["warnings"]


def test_capture_is_off_with_jupyreg_capture_0(in_repo, monkeypatch) -> None:
    monkeypatch.setenv("JUPYREG_CAPTURE", "0")
    assert not [key for key in _started_run_tags(in_repo) if key.startswith("jupyreg.")]


def test_data_named_in_the_project_or_the_environment(in_repo, monkeypatch) -> None:
    Path("plain.csv").write_text("a,b\n1,2\n")
    Path("pyproject.toml").write_text('[tool.jupyreg]\ndata = ["plain.csv"]\n')
    assert _started_run_tags(in_repo)["jupyreg.data.0.path"] == "plain.csv"
    monkeypatch.setenv("JUPYREG_DATA", "data/train.csv")
    run_tags = _started_run_tags(in_repo)
    assert run_tags["jupyreg.data.0.path"] == "data/train.csv"
    assert "jupyreg.data.1.path" not in run_tags
