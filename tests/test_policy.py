"""Promotion policy: pyproject defaults, gates checked at request and at apply time."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from jupyreg import Registry, tags
from jupyreg.cli import main
from jupyreg.errors import InvalidArgument, PolicyViolation
from jupyreg.lifecycle import Policy
from tests.lineage.lineage_helpers import commit_all, init_git

NAME = "fraud-detector"
PYPROJECT = """\
[tool.jupyreg.policy]
approvals = { Production = 1 }
require_clean_git = true
thresholds = ["test.auc >= 0.85"]
"""


@pytest.fixture
def project(workdir, monkeypatch):
    """A git repo with the policy in pyproject.toml; the registry lives outside git."""
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(workdir / ".cache"))
    (workdir / "pyproject.toml").write_text(PYPROJECT)
    (workdir / ".gitignore").write_text("mlflow.db*\nmlruns/\nmlartifacts/\n.cache/\n")
    (workdir / "features.py").write_text("SCALE = 1\n")
    init_git(workdir)
    commit_all(workdir, "project")
    return workdir


def register(reg: Registry, model, test_auc: float, stage: str | None = "Staging") -> int:
    mv = reg.register(model, NAME, metrics={"test": {"auc": test_auc}}, data=[])
    if stage:
        reg.transition(NAME, mv.version, stage, reason="candidate")
    return mv.version


def test_dirty_underperforming_version_is_refused_with_every_reason(
    project, alice, model, sqlite_uri, capsys
):
    (project / "features.py").write_text("SCALE = 2\n")  # an uncommitted change
    version = register(alice, model, 0.80)
    with pytest.raises(PolicyViolation) as refused:
        alice.request(NAME, version, "Production", reason="ship")
    message = str(refused.value)
    assert "2 gate(s) failed" in message
    assert "clean git: registered from a dirty working tree (uncommitted changes)" in message
    assert "threshold test.auc >= 0.85: test.auc = 0.8" in message
    assert alice.requests(NAME).empty  # nothing was filed
    code = main(
        [
            "--tracking-uri",
            sqlite_uri,
            "--user",
            "alice",
            "request",
            NAME,
            str(version),
            "Production",
            "--reason",
            "ship",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "clean git" in err and "test.auc = 0.8" in err


def test_clean_good_version_is_approved_by_a_reviewer(project, alice, bob, model) -> None:
    version = register(alice, model, 0.91)
    request = alice.request(NAME, version, "Production", reason="clean and good")
    assert bob.approve(request.id).status == "approved"
    assert alice.get(NAME, version).stage == "Production"


def test_not_worse_than_production(project, alice, bob, model) -> None:
    first = register(alice, model, 0.95)
    bob.approve(alice.request(NAME, first, "Production", reason="first").id)
    alice.set_policy(NAME, not_worse_than_production=["test.auc"])
    second = register(alice, model, 0.90)
    with pytest.raises(
        PolicyViolation,
        match=rf"test.auc = 0.9 is worse than Production "
        rf"v{first}'s 0.95",
    ):
        alice.request(NAME, second, "Production", reason="newer")


def test_gates_are_checked_again_when_applied(project, alice, bob, model, sqlite_uri) -> None:
    version = register(alice, model, 0.88)
    request = alice.request(NAME, version, "Production", reason="ok so far")
    alice.set_policy(NAME, thresholds=["test.auc >= 0.9"])
    with pytest.raises(PolicyViolation, match="test.auc >= 0.9: test.auc = 0.88"):
        bob.approve(request.id)
    assert alice.get(NAME, version).stage == "Staging"
    assert alice.requests(NAME)["id"].tolist() == [request.id]  # still pending, no approval
    assert alice.requests(NAME)["approved_by"].tolist() == [""]


def test_data_and_test_metric_gates(workdir, alice, model, sqlite_uri) -> None:
    alice.register(model, NAME, data=[])
    alice.set_policy(NAME, require_data_hashes=True, require_test_metrics=True, approvals={})
    alice.transition(NAME, 1, "Staging", reason="candidate")
    with pytest.raises(PolicyViolation) as refused:
        alice.transition(NAME, 1, "Production", reason="ship")
    assert "no dataset hash recorded" in str(refused.value)
    assert "no test.* metric recorded" in str(refused.value)
    client = MlflowClient(sqlite_uri, sqlite_uri)
    for key, value in {
        "path": "data/train.csv",
        "md5": "b" * 32,
        "recorded_md5": "a" * 32,
        "stale": "true",
    }.items():
        client.set_model_version_tag(NAME, "1", f"jupyreg.data.0.{key}", value)
    with pytest.raises(
        PolicyViolation,
        match=f"data/train.csv was stale at registration \\(DVC recorded {'a' * 32}, workspace had",
    ):
        alice.transition(NAME, 1, "Production", reason="ship")


def test_policy_is_stored_on_the_model_and_validated(workdir, alice, model, sqlite_uri) -> None:
    alice.register(model, NAME)
    assert alice.policy(NAME) == Policy()
    stored = alice.set_policy(NAME, thresholds=["val.auc > 0.7"], approvals={"production": 2})
    assert alice.policy(NAME) == stored and stored.approvals_for("Production") == 2
    tag = MlflowClient(sqlite_uri, sqlite_uri).get_registered_model(NAME).tags["jupyreg.policy"]
    assert tags.policy_from_tag(tag) == stored
    with pytest.raises(InvalidArgument, match="not of the form 'METRIC OP NUMBER'"):
        alice.set_policy(NAME, thresholds=["auc is high"])
    with pytest.raises(InvalidArgument, match="unknown policy setting.*colour"):
        alice.set_policy(NAME, colour="red")
    assert alice.policy(NAME) == stored


def test_policy_cli(workdir, alice, model, sqlite_uri, capsys) -> None:
    alice.register(model, NAME)
    base = ["--tracking-uri", sqlite_uri, "policy"]
    assert (
        main(
            [
                *base,
                "set",
                NAME,
                "--require-clean-git",
                "true",
                "--threshold",
                "test.auc >= 0.85",
                "--approvals",
                "Production=2",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main([*base, "show", NAME]) == 0
    shown = capsys.readouterr().out
    assert '"require_clean_git": true' in shown and '"test.auc >= 0.85"' in shown
    assert main([*base, "set", NAME, "--approvals", "Production=two"]) == 2
    assert main([*base, "set", NAME, "--threshold", "nonsense"]) == 2


def test_two_approvals_count_distinct_reviewers(workdir, alice, bob, model, sqlite_uri) -> None:
    carol = Registry(sqlite_uri, user="carol")
    alice.register(model, NAME)
    alice.set_policy(NAME, approvals={"Production": 2})
    alice.transition(NAME, 1, "Staging", reason="candidate")
    request = alice.request(NAME, 1, "Production", reason="ship")
    assert bob.approve(request.id).status == "pending"
    with pytest.raises(PolicyViolation, match="bob has already approved"):
        bob.approve(request.id)
    assert alice.get(NAME, 1).stage == "Staging"
    assert carol.approve(request.id).status == "approved"
    assert alice.get(NAME, 1).stage == "Production"
    assert alice.requests(NAME, status="approved")["approved_by"].tolist() == ["bob,carol"]


def test_project_policy_applies_before_the_first_version(project, alice) -> None:
    policy = alice.policy("not-registered-yet")
    assert policy.require_clean_git and policy.thresholds == ("test.auc >= 0.85",)
