"""The promotion panel against a real SQLite registry: buttons clicked, registry checked."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from jupyreg.lifecycle import Policy
from jupyreg.tags import policy_value
from jupyreg.widgets import promotion_panel
from tests.widgets.panel_helpers import NAME, register


@pytest.fixture
def staged(alice, model):
    """v1 in Staging, v2 just registered."""
    register(alice, model, {"val.auc": 0.8})
    register(alice, model, {"val.auc": 0.9})
    alice.transition(NAME, 1, "Staging", reason="candidate")
    return alice


def file_request(panel, version: int, stage: str, reason: str) -> None:
    panel.version.value = version
    panel.stage.value = stage
    panel.reason.value = reason
    panel.request_button.click()


def stage_of(reg, version: int) -> str:
    return reg.get(NAME, version).stage


def test_panel_shows_stage_holders_and_allowed_targets(staged):
    panel = staged.promotion_panel(NAME)
    assert panel.controller.holders()["Staging"] == [1]
    assert "Staging" in panel.holders.value and "v1" in panel.holders.value
    panel.version.value = 2
    assert panel.stage.options == ("Staging", "Archived")
    panel.version.value = 1
    assert panel.stage.options == ("Production", "Archived")


def test_request_button_files_a_request(staged):
    panel = promotion_panel(staged, NAME)
    file_request(panel, 1, "Production", "auc up 2 points")
    (row,) = staged.requests(NAME).to_dict("records")
    assert (row["version"], row["to_stage"], row["requested_by"]) == (1, "Production", "alice")
    assert row["id"] in panel.status.value
    assert [r.request_id for r in panel.pending_rows] == [row["id"]]
    assert panel.reason.value == ""


def test_own_request_cannot_be_approved_and_says_why(staged):
    panel = promotion_panel(staged, NAME)
    file_request(panel, 1, "Production", "auc up")
    (row,) = panel.pending_rows
    assert row.approve_button.disabled
    assert "own request" in row.note.value
    assert not row.reject_button.disabled


def test_reviewer_approves_and_the_timeline_gains_the_event(staged, bob):
    staged.request(NAME, 1, "Production", reason="auc up")
    panel = promotion_panel(bob, NAME)
    before = len(panel.controller.timeline)
    (row,) = panel.pending_rows
    assert not row.approve_button.disabled
    row.comment.value = "looks good"
    row.approve_button.click()
    assert stage_of(bob, 1) == "Staging"  # a move into Production is confirmed first
    assert row.confirm_box.layout.display == "flex"
    row.confirm_button.click()
    assert stage_of(bob, 1) == "Production"
    assert panel.pending_rows == []
    assert row.approve_button.comm is None  # the old row was closed, not leaked
    assert len(panel.controller.timeline) == before + 1
    latest = panel.controller.timeline[0]
    assert (latest.version, latest.to_stage, latest.author) == (1, "Production", "bob")
    assert "Staging → Production" in panel.timeline.value
    assert "now in Production" in panel.status.value


def test_reviewer_rejects_with_a_comment(staged, bob):
    request = staged.request(NAME, 1, "Production", reason="auc up")
    panel = promotion_panel(bob, NAME)
    (row,) = panel.pending_rows
    row.comment.value = "test auc too low"
    row.reject_button.click()
    (decided,) = bob.requests(NAME, status="rejected").to_dict("records")
    assert (decided["id"], decided["comment"]) == (request.id, "test auc too low")
    assert stage_of(bob, 1) == "Staging"
    assert "rejected" in panel.status.value


def test_second_approval_by_the_same_reviewer_is_blocked(staged, bob):
    client = MlflowClient(tracking_uri=bob.tracking_uri, registry_uri=bob.registry_uri)
    policy = Policy(approvals={"Production": 2})
    client.set_registered_model_tag(NAME, "jupyreg.policy", policy_value(policy))
    staged.request(NAME, 1, "Production", reason="auc up")
    panel = promotion_panel(bob, NAME)
    panel.pending_rows[0].approve_button.click()
    panel.pending_rows[0].confirm_button.click()
    assert "needs more approvals" in panel.status.value
    (row,) = panel.pending_rows
    assert row.approve_button.disabled
    assert "already approved" in row.note.value
    assert "1/2 approvals: bob" in row.children[0].value
    assert stage_of(bob, 1) == "Staging"


def test_request_without_reason_is_refused_inline(staged):
    panel = promotion_panel(staged, NAME)
    panel.reason.value = "  "
    assert panel.request_button.disabled and panel.move_button.disabled
    file_request(panel, 1, "Production", "  ")  # click() runs the handler even so
    assert "needs a reason" in panel.status.value
    assert "Traceback" not in panel.status.value
    assert staged.requests(NAME).empty


def test_move_needing_approval_is_refused_inline(staged):
    panel = promotion_panel(staged, NAME)
    panel.version.value = 1
    panel.stage.value = "Production"
    panel.reason.value = "ship it"
    panel.move_button.click()
    assert "ApprovalRequired" in panel.status.value
    assert stage_of(staged, 1) == "Staging"
    assert panel.reason.value == "ship it"  # kept, to file as a request instead


def test_move_allowed_without_approval_applies(staged):
    panel = promotion_panel(staged, NAME)
    panel.version.value = 2
    panel.stage.value = "Staging"
    panel.reason.value = "second candidate"
    panel.move_button.click()
    assert stage_of(staged, 2) == "Staging"
    assert panel.controller.holders()["Staging"] == [1, 2]


def test_approving_a_request_decided_elsewhere_is_refused_inline(staged, bob, sqlite_uri):
    from jupyreg import Registry

    request = staged.request(NAME, 1, "Production", reason="auc up")
    panel = promotion_panel(bob, NAME)
    Registry(sqlite_uri, user="carol").reject(request.id, comment="no")
    panel.pending_rows[0].approve_button.click()
    panel.pending_rows[0].confirm_button.click()
    assert "already rejected by carol" in panel.status.value
    assert stage_of(bob, 1) == "Staging"
    assert panel.pending_rows == []  # the panel refreshed on refusal


def test_refresh_shows_changes_made_elsewhere(staged, bob):
    panel = promotion_panel(bob, NAME)
    assert panel.pending_rows == []
    staged.request(NAME, 1, "Production", reason="auc up")
    panel.refresh_button.click()
    assert len(panel.pending_rows) == 1


def test_refresh_failure_is_shown_inline(staged, bob):
    panel = promotion_panel(bob, NAME)
    client = MlflowClient(tracking_uri=bob.tracking_uri, registry_uri=bob.registry_uri)
    client.delete_registered_model(NAME)
    panel.refresh_button.click()
    assert "NotFound" in panel.status.value
