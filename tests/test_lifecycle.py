"""The lifecycle rules on their own (no MLflow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jupyreg import lifecycle
from jupyreg.errors import InvalidArgument, InvalidTransition, PolicyViolation
from jupyreg.lifecycle import Policy, Request, TransitionEvent


@pytest.mark.parametrize("text", ["production", "PRODUCTION", " Production ", "pRoDuCtIoN"])
def test_stage_names_are_case_insensitive(text: str) -> None:
    assert lifecycle.normalize_stage(text) == "Production"


def test_unknown_stage_names_the_stages() -> None:
    with pytest.raises(InvalidTransition, match="unknown stage 'Prod'.*Staging, Production"):
        lifecycle.normalize_stage("Prod")


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("None", "Staging", True),
        ("None", "Production", False),
        ("None", "Archived", True),
        ("Staging", "Production", True),
        ("Production", "Staging", True),
        ("Production", "Archived", True),
        ("Archived", "Staging", True),
        ("Archived", "Production", False),
        ("Staging", "None", False),
    ],
)
def test_allowed_moves_follow_the_design(current: str, target: str, allowed: bool) -> None:
    if allowed:
        lifecycle.check_move("m", 1, current, target)
    else:
        with pytest.raises(InvalidTransition, match=f"from {current} the allowed moves are"):
            lifecycle.check_move("m", 1, current, target)


def test_production_is_exclusive_and_archives_the_previous_holder() -> None:
    moves = lifecycle.plan_transition(
        "m", 3, "Production", {1: "Archived", 2: "Production", 3: "Staging"}, Policy(), "better"
    )
    assert [(m.version, m.from_stage, m.to_stage) for m in moves] == [
        (2, "Production", "Archived"),
        (3, "Staging", "Production"),
    ]


def test_empty_reason_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="needs a reason"):
        lifecycle.require_reason("  ", "a stage change")


def test_self_approval_is_refused_by_default_and_allowed_by_policy() -> None:
    request = Request.new("m", 1, "Production", "alice", "why")
    with pytest.raises(PolicyViolation, match="own request"):
        request.with_approval("alice", "", Policy())
    assert request.with_approval("alice", "", Policy(allow_self_approval=True)).status == "approved"


def test_approvals_count_distinct_approvers() -> None:
    policy = Policy(approvals={"Production": 2})
    request = Request.new("m", 1, "Production", "alice", "why").with_approval("bob", "", policy)
    assert request.status == "pending"
    with pytest.raises(PolicyViolation, match="already approved"):
        request.with_approval("bob", "", policy)
    assert request.with_approval("carol", "", policy).status == "approved"


def test_decided_request_cannot_be_decided_again() -> None:
    rejected = Request.new("m", 1, "Production", "alice", "why").rejected("bob", "no", Policy())
    with pytest.raises(PolicyViolation, match="already rejected by bob"):
        rejected.with_approval("carol", "", Policy())


def test_only_the_requester_cancels() -> None:
    request = Request.new("m", 1, "Production", "alice", "why")
    with pytest.raises(PolicyViolation, match="only the requester"):
        request.cancelled("bob")
    assert request.cancelled("alice").status == "cancelled"


def test_entities_round_trip_through_tags() -> None:
    event = TransitionEvent.new("m", 2, "Staging", "Production", "bob", "ok", "abcd1234")
    assert TransitionEvent.from_tag("m", 2, event.tag_key, event.tag_value()) == event
    request = Request.new("m", 2, "Production", "alice", "why").with_approval("bob", "ok", Policy())
    assert Request.from_tag("m", 2, request.tag_key, request.tag_value()) == request
    policy = Policy(approvals={"Production": 2, "Staging": 1}, allow_self_approval=True)
    assert Policy.from_json(policy.to_json()) == policy


def test_stage_holders_at_replays_history() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def event(minute: int, version: int, src: str, dst: str) -> TransitionEvent:
        at = start + timedelta(minutes=minute)
        return TransitionEvent(
            lifecycle.sortable_id(at), "m", version, src, dst, "a", "r", lifecycle.iso(at)
        )

    events = [
        event(1, 1, "Staging", "Production"),
        event(5, 1, "Production", "Archived"),
        event(5, 2, "Staging", "Production"),
    ]
    assert lifecycle.stage_holders_at(events, "Production", start) == []
    assert lifecycle.stage_holders_at(events, "Production", start + timedelta(minutes=3)) == [1]
    assert lifecycle.stage_holders_at(events, "Production", start + timedelta(minutes=9)) == [2]
