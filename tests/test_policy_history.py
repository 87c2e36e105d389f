"""A policy change is a history event of the model: who set which policy, and why; one set
behind jupyreg's back is found by check and recorded as adopted by --repair."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from jupyreg import Registry
from jupyreg.errors import InvalidArgument
from jupyreg.lifecycle import Policy
from jupyreg.tags import policy_value
from tests.conftest import register_versions

NAME = "fraud-detector"


def test_each_change_is_kept_with_author_reason_and_the_policy_it_set(
    alice: Registry, bob: Registry, model
) -> None:
    register_versions(alice, model, NAME, 1)
    bob.set_policy(NAME, approvals={"Production": 2}, reason="two eyes are not enough")
    alice.set_policy(NAME, thresholds=["test.auc >= 0.8"])
    changes = alice.policy_history(NAME)
    assert changes[["author", "reason"]].values.tolist() == [
        ["bob", "two eyes are not enough"],
        ["alice", ""],
    ]
    assert json.loads(changes["policy"].iloc[0])["approvals"] == {"Production": 2}
    last = json.loads(changes["policy"].iloc[1])
    assert last == alice.policy(NAME).to_dict() and last["approvals"] == {"Production": 2}
    assert changes["at"].is_monotonic_increasing
    assert alice.check(NAME).empty


def test_a_policy_written_behind_jupyregs_back_is_found_and_adopted(
    alice: Registry, model, sqlite_uri
) -> None:
    register_versions(alice, model, NAME, 1)
    alice.set_policy(NAME, approvals={"Production": 1}, reason="default")
    lax = Policy.from_mapping({"approvals": {"Production": 0}})
    MlflowClient(sqlite_uri, sqlite_uri).set_registered_model_tag(
        NAME, "jupyreg.policy", policy_value(lax)
    )
    (problem,) = alice.check(NAME)["problem"]
    assert "not set by a recorded change" in problem
    repaired = alice.check(NAME, repair=True)
    assert repaired["repaired"].tolist() == [True]
    adopted = alice.policy_history(NAME).iloc[-1]
    assert adopted["author"] == "alice" and "adopted" in adopted["reason"]
    assert json.loads(adopted["policy"]) == lax.to_dict()
    assert alice.check(NAME).empty


def test_a_policy_object_gets_the_same_checks_as_settings(alice: Registry, model) -> None:
    register_versions(alice, model, NAME, 1)
    with pytest.raises(InvalidArgument, match="approvals"):
        alice.set_policy(NAME, Policy(approvals={"Production": -1}))
    with pytest.raises(InvalidArgument, match="reason"):
        alice.set_policy(NAME, approvals={"Production": 1}, reason="x" * 6000)
    assert alice.policy_history(NAME).empty


def test_the_cli_sets_with_a_reason_and_lists_the_changes(
    alice: Registry, model, sqlite_uri, capsys
) -> None:
    from jupyreg.cli import main

    register_versions(alice, model, NAME, 1)
    args = ["--tracking-uri", sqlite_uri, "--user", "carol", "policy"]
    assert main([*args, "set", NAME, "--approvals", "Production=2", "--reason", "audit"]) == 0
    capsys.readouterr()
    assert main([*args, "history", NAME]) == 0
    out = capsys.readouterr().out
    assert "carol" in out and "audit" in out
