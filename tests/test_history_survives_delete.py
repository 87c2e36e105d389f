"""History survives deleting a version (DESIGN.md §7.7, issue 14 repro 6): a version's
events and requests are kept on the registered model before the version is deleted, so
``history`` and ``stage_at`` stay right; a deletion behind jupyreg's back is reported by
``check``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mlflow import MlflowClient

from jupyreg import tags
from jupyreg.errors import InvalidTransition, NotFound
from jupyreg.store import Store
from tests.conftest import register_versions

NAME = "scorer"


@pytest.fixture
def promoted(workdir, alice, bob, model):
    """v1 through Staging, Production (approved by bob) and Archived (replaced by v2, now
    in Production)."""
    register_versions(alice, model, NAME, 2)
    alice.transition(NAME, 1, "Staging", reason="candidate")
    request = alice.request(NAME, 1, "Production", reason="ship v1")
    bob.approve(request.id, comment="looks good")
    in_production = datetime.now(UTC)
    alice.transition(NAME, 2, "Staging", reason="candidate")
    bob.approve(alice.request(NAME, 2, "Production", reason="ship v2").id)
    assert alice.get(NAME, 1).stage == "Archived"
    return request, in_production


def test_a_kept_version_keeps_its_history_after_deletion(promoted, alice, sqlite_uri) -> None:
    request, in_production = promoted
    before = alice.history_records(NAME)
    v1_events = [e for e in before if e.version == 1]
    assert [e.to_stage for e in v1_events] == ["Staging", "Production", "Archived"]
    store = Store(sqlite_uri, sqlite_uri)
    store.keep_history(NAME, 1)
    client = MlflowClient(sqlite_uri, sqlite_uri)
    client.delete_model_version(NAME, "1")

    assert alice.history_records(NAME) == before  # same events, same order
    assert alice.history_records(NAME, 1) == v1_events
    assert alice.history(NAME)["version"].tolist().count(1) == 3
    assert alice.stage_at(NAME, "Production", in_production) == 1
    assert alice.stage_at(NAME, "Production", datetime.now(UTC)) == 2
    kept = alice.get_request(request.id)  # the approval record survives too
    assert kept.status == "approved" and kept.approvals[0].by == "bob" and kept.version == 1
    assert request.id in alice.requests(NAME, status=None)["id"].tolist()
    assert alice.check(NAME).empty  # kept history is not a problem
    with pytest.raises(NotFound, match="no version 1"):
        alice.get(NAME, 1)


def test_keeping_history_is_idempotent(promoted, sqlite_uri) -> None:
    store = Store(sqlite_uri, sqlite_uri)
    store.keep_history(NAME, 1)
    once = dict(store.registered_model(NAME).tags)
    store.keep_history(NAME, 1)
    assert dict(store.registered_model(NAME).tags) == once
    kept = {k for k in once if k.startswith(tags.KEPT_PREFIX)}
    assert len(kept) == 3 + 1 + 1  # three events, one request, the marker
    # the version still exists: its events and the kept copies count once
    assert len(Store(sqlite_uri, sqlite_uri).version(NAME, 1).events()) == 3
    with pytest.raises(NotFound):
        store.keep_history(NAME, 9)


def test_deleting_through_jupyreg_keeps_history_and_refuses_held_stages(
    promoted, alice, sqlite_uri
) -> None:
    with pytest.raises(InvalidTransition) as refused:
        alice._backend.delete_version(NAME, 2)
    assert f"reg.transition({NAME!r}, 2, 'Archived', reason=...)" in str(refused.value)
    assert alice.get(NAME, 2).stage == "Production"
    before = alice.history_records(NAME)
    alice._backend.delete_version(NAME, 1)
    assert [mv.version for mv in alice.version_records(NAME)] == [2]
    assert alice.history_records(NAME) == before
    assert alice.check(NAME).empty


def test_a_pending_request_of_a_deleted_version_reads_as_cancelled(
    workdir, alice, model, sqlite_uri
) -> None:
    register_versions(alice, model, NAME, 1)
    pending = alice.request(NAME, 1, "Staging", reason="try it")
    alice._backend.delete_version(NAME, 1)
    assert alice.requests(NAME).empty
    kept = alice.get_request(pending.id)
    assert kept.status == "cancelled" and "v1 was deleted" in (kept.comment or "")
    assert alice.requests(NAME, status=None)["status"].tolist() == ["cancelled"]


def test_check_reports_a_production_version_deleted_behind_its_back(
    workdir, alice, bob, model, sqlite_uri
) -> None:
    register_versions(alice, model, NAME, 2)
    alice.transition(NAME, 1, "Staging", reason="candidate")
    bob.approve(alice.request(NAME, 1, "Production", reason="ship").id)
    MlflowClient(sqlite_uri, sqlite_uri).delete_model_version(NAME, "1")  # alias goes too

    problems = alice.check(NAME)
    assert problems["version"].tolist() == [1]
    problem = problems["problem"].iloc[0]
    assert "v1 was in Production at the last lifecycle step" in problem
    assert "deleted outside jupyreg" in problem and "history is lost" in problem

    repaired = alice.check(NAME, repair=True)
    assert repaired["repaired"].tolist() == [True]
    assert alice.check(NAME).empty  # the loss is recorded once, not reported forever


def test_check_reports_an_archived_version_deleted_behind_its_back(
    workdir, alice, model, sqlite_uri
) -> None:
    register_versions(alice, model, NAME, 3)
    alice.transition(NAME, 2, "Staging", reason="candidate")
    alice.transition(NAME, 2, "Archived", reason="not good")
    client = MlflowClient(sqlite_uri, sqlite_uri)
    client.delete_model_version(NAME, "2")  # a gap below the newest version
    client.delete_model_version(NAME, "3")  # the newest, known from the last step
    problems = alice.check(NAME)
    assert sorted(problems["version"].tolist()) == [2, 3]
    assert all("deleted outside jupyreg" in p for p in problems["problem"])
