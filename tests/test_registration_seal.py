"""A version's registration record (author, lineage, metrics) is sealed when it is created:
in an embedded registry, where plain MLflow clients may write any tag, check finds a record
changed since, --repair records it once, and the gates refuse the version."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from jupyreg import Registry
from jupyreg.errors import PolicyViolation
from tests.conftest import register_versions

NAME = "fraud-detector"


def test_a_record_changed_behind_jupyregs_back_is_found_recorded_and_refused(
    alice: Registry, bob: Registry, model, sqlite_uri
) -> None:
    register_versions(alice, model, NAME, 2)
    alice.set_policy(NAME, require_test_metrics=True, reason="gates on")
    client = MlflowClient(sqlite_uri, sqlite_uri)
    assert "jupyreg.seal" in client.get_model_version(NAME, "1").tags
    assert alice.check(NAME).empty
    client.set_model_version_tag(NAME, "1", "team", "risk")  # not part of the record
    assert alice.check(NAME).empty
    client.set_model_version_tag(NAME, "1", "jupyreg.author", "bob")
    (problem,) = alice.check(NAME)["problem"]
    assert "v1's registration record" in problem
    for version in (1, 2):
        alice.transition(NAME, version, "Staging", reason="candidate")
    request = alice.request(NAME, 2, "Production", reason="the intact one")
    bob.approve(request.id)  # an intact version still goes through
    with pytest.raises(PolicyViolation, match="registration record was changed"):
        alice.request(NAME, 1, "Production", reason="ship the forged one")
    assert alice.check(NAME, repair=True)["repaired"].tolist() == [True]
    assert alice.check(NAME).empty  # recorded once
    client.set_model_version_tag(NAME, "1", "jupyreg.git.dirty", "false")
    assert len(alice.check(NAME)) == 1  # a further change is a new finding


def test_versions_made_without_jupyreg_have_no_seal_to_break(
    alice: Registry, model, sqlite_uri
) -> None:
    register_versions(alice, model, NAME, 1)
    client = MlflowClient(sqlite_uri, sqlite_uri)
    source = client.get_model_version(NAME, "1").source
    client.create_model_version(NAME, source, tags={"jupyreg.author": "someone"})
    assert alice.check(NAME).empty
