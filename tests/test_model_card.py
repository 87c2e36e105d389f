"""Model cards: Hugging Face Hub format, every captured field shown, no secret, published."""

from __future__ import annotations

import dataclasses
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from mlflow import MlflowClient

from jupyreg import Registry
from jupyreg.card import CARD_ARTIFACT, NOT_REPRODUCED, model_card, publish_card
from jupyreg.errors import NotFound
from jupyreg.lineage import Lineage, capture
from tests.conftest import schema_template
from tests.lineage.lineage_helpers import dvc_outs, run
from tests.registered_project import (
    NAME,
    REMOTE,
    REMOTE_TOKEN,
    REMOTE_USER,
    build_project,
    copy_project,
    promote,
    register,
)

GPU = {
    "gpu_count": 2,
    "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559}] * 2,
    "driver_version": "550.54.15",
    "cuda_driver_version": "12.4",
    "cpu_model": "AMD EPYC 9454",
    "cpu_count": 16,
    "ram_total_mib": 131072,
}


@dataclass(frozen=True)
class Published:
    root: Path
    uri: str
    version: int

    def registry(self, user: str = "carol") -> Registry:
        return Registry(self.uri, user=user)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "project"
    root.mkdir()
    return build_project(root)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, template: Path, model) -> Published:
    """Shared by the tests that only read: a version registered from a copy of the project
    with a captured lineage whose hardware part is what NVML reports on a two-H100 machine
    (this one has no GPU), promoted to Production by alice's request and bob's approval."""
    root = tmp_path_factory.mktemp("card") / "project"
    with pytest.MonkeyPatch.context() as patch:
        copy_project(template, root, patch)
        shutil.copyfile(schema_template(), root / "mlflow.db")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
        captured = capture(data=["data/train.csv"], notebook="train.ipynb", model=model)
        lineage = dataclasses.replace(captured, record={**captured.record, "hardware": GPU})
        version = register(alice, model, lineage=lineage)
        promote(alice, bob, version)
    return Published(root, uri, version)


@pytest.fixture
def project(workdir: Path, template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the project, as the working directory (alice's registry is in it)."""
    return copy_project(template, workdir, monkeypatch)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network (the Hub) fails the test."""

    def refuse(self, address, *args, **kwargs):
        raise AssertionError(f"network call to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_card_parses_as_a_hub_model_card_with_valid_metadata(
    production: Published, offline: None
) -> None:
    reg = production.registry()
    mv = reg.get(NAME, production.version)
    text = model_card(reg, NAME)

    card = ModelCard(text)  # strict: a malformed model-index raises here
    data = card.data
    assert text.startswith("---\n")
    assert str(card) == text  # written as the Hub's ModelCard writes it
    assert data.library_name == "sklearn"
    assert data.datasets == ["data/train.csv"]
    assert {"jupyreg", "mlflow", "team:risk"} <= set(data.tags)
    # the metadata survives the Hub's own round trip: dict -> ModelCardData -> dict
    again = ModelCardData(**data.to_dict()).to_dict()
    assert again == data.to_dict()
    results = {(r.dataset_split, r.metric_type): r for r in data.eval_results}
    assert set(results) == {("val", "auc"), ("test", "auc")}
    for key, value in mv.metrics.items():
        split, metric = key.split(".")
        assert results[(split, metric)].metric_value == value
        assert results[(split, metric)].dataset_revision == mv.lineage["data"][0]["md5"]
    assert all(isinstance(r, EvalResult) for r in data.eval_results)
    assert data.to_dict()["model-index"][0]["name"] == NAME


def test_every_captured_field_appears_in_the_card(production: Published, offline: None) -> None:
    reg, project = production.registry(), production.root
    mv = reg.get(NAME, production.version)
    text = model_card(reg, NAME)
    front = ModelCard(text).data.to_dict()["jupyreg"]

    commit = mv.lineage["git"]["commit"]
    assert commit == run("git", "rev-parse", "HEAD", cwd=project).strip()
    assert commit in text and front["git"]["commit"] == commit
    md5 = mv.lineage["data"][0]["md5"]
    assert md5 == dvc_outs(project / "data" / "train.csv.dvc")["md5"]
    assert md5 in text and front["datasets"] == [
        {"path": "data/train.csv", "md5": md5, "dvc": True}
    ]
    for key, value in mv.metrics.items():
        assert f"| {key.split('.')[0]} | auc | {value!r} |" in text
    assert "| C | 0.5 |" in text
    assert "2 × NVIDIA H100 80GB HBM3 (81559 MiB)" in text
    assert front["hardware"] == {"gpu_count": 2, "gpus": ["NVIDIA H100 80GB HBM3"] * 2}
    assert "550.54.15" in text and "CUDA 12.4" in text
    assert mv.lineage["environment"]["python"] in text
    assert mv.lineage["notebook"]["path"] in text and mv.lineage["notebook"]["sha256"] in text
    assert mv.description in text
    assert "https://git.example.com/org/fraud.git" in text


def test_the_card_shows_the_promotion_history_with_its_approvals(
    production: Published, offline: None
) -> None:
    reg = production.registry()
    text = model_card(reg, NAME, production.version)
    events = reg.history_records(NAME, production.version)
    assert [e.to_stage for e in events] == ["Staging", "Production"]
    for event in events:
        assert f"{event.from_stage} → {event.to_stage} | {event.author} | {event.reason}" in text
    (request,) = reg.request_records(NAME, status=None)
    assert request.status == "approved" and request.requested_by == "alice"
    (approval,) = request.approvals
    assert approval.by == "bob"
    assert f"| {request.id} | Production | alice |" in text
    assert request.reason in text
    assert f"bob at {approval.at[:10]}" in text and approval.comment in text
    production = next(e for e in events if e.to_stage == "Production")
    assert production.request_id == request.id
    assert f"| {request.id} | bob |" in text  # the history row names its approver


def test_reproduction_status_and_capture_warnings_are_shown(
    production: Published, offline: None
) -> None:
    reg = production.registry()
    mv = reg.get(NAME, production.version)
    text = model_card(reg, NAME)
    assert ModelCard(text).data.to_dict()["jupyreg"]["reproduction"] == {"status": NOT_REPRODUCED}
    assert "Status: **not reproduced**" in text
    assert mv.warnings, "the capture here warns at least about the missing GPU library"
    for warning in mv.warnings:
        assert warning.replace("|", "\\|").split("<")[0][:60] in text

    reg.keep_reproduction(NAME, mv.version, {"ok": False, "deltas": {"test.auc": -0.02},
                                             "tolerance": 1e-06})  # fmt: skip
    text = model_card(reg, NAME)
    status = ModelCard(text).data.to_dict()["jupyreg"]["reproduction"]
    assert (status["status"], status["by"], status["largest_delta"]) == ("failed", reg.user, 0.02)
    assert f"Status: **failed** (latest of 1: by {reg.user} at " in text


def test_no_credentials_reach_the_card(
    project: Path, alice: Registry, model, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    secret = "sk-live-0123456789abcdef"
    # a version written by a plain client: a remote with its credentials, a secret value
    forged = capture(data=["data/train.csv"], notebook="train.ipynb", model=model)
    record = {**forged.record, "git": {**forged.record["git"], "remote": REMOTE}}
    version = register(alice, model, lineage=Lineage.from_record(record))
    assert alice.get(NAME, version).lineage["git"]["remote"] == REMOTE  # stored as given
    monkeypatch.setenv("PAYMENTS_API_KEY", secret)
    alice.transition(NAME, version, "Staging", reason=f"key {secret} rotated")

    text = model_card(alice, NAME, version)
    assert REMOTE_TOKEN not in text and REMOTE_USER not in text and secret not in text
    assert "https://git.example.com/org/fraud.git" in text


def test_captured_remote_is_shown_without_its_credentials(
    project: Path, alice: Registry, model, offline: None
) -> None:
    version = register(alice, model)
    text = model_card(alice, NAME, version)
    assert alice.get(NAME, version).lineage["git"]["remote"] in text
    assert REMOTE_TOKEN not in text and REMOTE_USER not in text


def test_without_production_a_version_must_be_named(project: Path, alice: Registry, model) -> None:
    version = register(alice, model)
    with pytest.raises(NotFound, match="no version in Production"):
        model_card(alice, NAME)
    assert f"# {NAME} v{version}" in model_card(alice, NAME, version)
    with pytest.raises(NotFound):
        model_card(alice, "no-such-model", 1)


def test_publish_writes_the_card_as_the_runs_artifact(
    production: Published, tmp_path: Path
) -> None:
    reg = production.registry()
    uri = publish_card(reg, NAME)
    mv = reg.get(NAME, production.version)
    assert uri == f"runs:/{mv.run_id}/{CARD_ARTIFACT}"
    path = mlflow.artifacts.download_artifacts(
        run_id=mv.run_id,
        artifact_path=CARD_ARTIFACT,
        tracking_uri=production.uri,
        dst_path=tmp_path,
    )
    assert Path(path).read_text() == model_card(reg, NAME, production.version)


def test_a_version_made_by_plain_mlflow_has_a_card_but_no_run_to_publish_to(
    alice: Registry, sqlite_uri: str, offline: None
) -> None:
    client = MlflowClient(sqlite_uri)
    client.create_registered_model("plain")
    client.create_model_version("plain", "s3://bucket/models/plain", run_id=None)

    text = model_card(alice, "plain", 1)
    ModelCard(text)
    assert "Commit: not recorded" in text and "No dataset was recorded." in text
    with pytest.raises(NotFound, match="no MLflow run"):
        publish_card(alice, "plain", 1)


def test_the_cli_prints_the_card_and_productions_staleness(
    production: Published, offline: None, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """`jupyreg card NAME` and `jupyreg status NAME`, as a terminal or CI uses them."""
    import json

    from jupyreg.cli import main

    monkeypatch.chdir(production.root)
    args = ["--tracking-uri", production.uri, "--user", "carol"]
    assert main([*args, "card", NAME]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == production.registry().model_card(NAME).strip()
    assert main([*args, "status", NAME]) == 0
    assert f"Production v{production.version}" in capsys.readouterr().out
    assert main([*args, "status", NAME, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["version"] == production.version and status["commits_behind"] == 0


def test_entering_production_writes_the_card_by_itself(production: Published, tmp_path) -> None:
    """bob's approval put the version in Production: its card is already among its run's
    artifacts, nobody having asked for it."""
    reg = production.registry()
    mv = reg.get(NAME, production.version)
    path = mlflow.artifacts.download_artifacts(
        run_id=mv.run_id,
        artifact_path=CARD_ARTIFACT,
        tracking_uri=production.uri,
        dst_path=tmp_path,
    )
    text = Path(path).read_text()
    assert ModelCard(text).data.to_dict()["model-index"][0]["name"] == NAME
    assert "bob" in text and mv.lineage["git"]["commit"] in text
