"""The lifecycle rules on their own (no MLflow)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from jupyreg import lifecycle, serialize, tags
from jupyreg.errors import ApprovalRequired, InvalidArgument, InvalidTransition, PolicyViolation
from jupyreg.lifecycle import Actor, Policy, Request, TransitionEvent


@pytest.mark.parametrize("text", ["production", "PRODUCTION", " Production ", "pRoDuCtIoN"])
def test_stage_names_are_case_insensitive(text: str) -> None:
    assert lifecycle.normalize_stage(text) == "Production"


def test_unknown_stage_names_the_stages() -> None:
    with pytest.raises(InvalidArgument, match="unknown stage 'Prod'.*Staging, Production"):
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
        request.with_approval(Actor("alice"), "", Policy())
    assert (
        request.with_approval(Actor("alice"), "", Policy(allow_self_approval=True)).status
        == "approved"
    )


def test_approvals_count_distinct_approvers() -> None:
    policy = Policy(approvals={"Production": 2})
    request = Request.new("m", 1, "Production", "alice", "why").with_approval(
        Actor("bob"), "", policy
    )
    assert request.status == "pending"
    with pytest.raises(PolicyViolation, match="already approved"):
        request.with_approval(Actor("bob"), "", policy)
    assert request.with_approval(Actor("carol"), "", policy).status == "approved"


def test_decided_request_cannot_be_decided_again() -> None:
    rejected = Request.new("m", 1, "Production", "alice", "why").rejected(
        Actor("bob"), "no", Policy()
    )
    with pytest.raises(PolicyViolation, match="already rejected by bob"):
        rejected.with_approval(Actor("carol"), "", Policy())


def test_only_the_requester_cancels() -> None:
    request = Request.new("m", 1, "Production", "alice", "why")
    with pytest.raises(PolicyViolation, match="only the requester"):
        request.cancelled("bob")
    assert request.cancelled("alice").status == "cancelled"


def test_entities_round_trip_through_tags() -> None:
    event = TransitionEvent.new("m", 2, "Staging", "Production", "bob", "ok", "abcd1234")
    assert tags.event_from_tag("m", 2, tags.event_key(event), tags.event_value(event)) == event
    assert "repaired_by" not in json.loads(tags.event_value(event))  # only on adopted moves
    request = Request.new("m", 2, "Production", "alice", "why").with_approval(
        Actor("bob"), "ok", Policy()
    )
    key = tags.request_key(request.id)
    assert tags.request_from_tag("m", 2, key, tags.request_value(request)) == request
    assert serialize.request_from_json(serialize.request_json(request)) == request
    policy = Policy(approvals={"Production": 2, "Staging": 1}, allow_self_approval=True)
    assert tags.policy_from_tag(tags.policy_value(policy)) == policy


@pytest.mark.parametrize("key", ["jupyreg.stage", "JUPYREG.STAGE", " Jupyreg.Event.x", "jupyreg.x"])
def test_every_spelling_of_a_jupyreg_tag_is_reserved(key: str) -> None:
    assert tags.is_reserved(key)
    assert not tags.is_reserved("team")


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


def _event(version: int, src: str, dst: str, minute: int = 0) -> TransitionEvent:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
    return TransitionEvent(
        lifecycle.sortable_id(at), "m", version, src, dst, "a", "r", lifecycle.iso(at)
    )


def test_a_production_move_without_approval_is_refused_with_the_request_to_file() -> None:
    with pytest.raises(ApprovalRequired, match=r"reg.request\('m', 3, 'Production'"):
        lifecycle.check_no_approval_needed("m", 3, "Production", Policy())
    with pytest.raises(ApprovalRequired, match="registering straight into Production"):
        lifecycle.check_no_approval_needed("m", None, "Production", Policy())
    lifecycle.check_no_approval_needed("m", 3, "Staging", Policy())


def test_a_second_pending_request_for_the_same_move_is_refused() -> None:
    pending = Request.new("m", 2, "Production", "alice", "why")
    with pytest.raises(PolicyViolation, match=f"request {pending.id} .* already pending"):
        lifecycle.check_new_request("m", 2, "Staging", "Production", [pending])
    rejected = pending.rejected(Actor("bob"), "no", Policy())
    lifecycle.check_new_request("m", 2, "Staging", "Production", [rejected])


def test_decide_dispatches_and_refuses_unknown_verbs() -> None:
    request = Request.new("m", 2, "Production", "alice", "why")
    assert lifecycle.decide(request, "approve", Actor("bob"), "ok", Policy()).status == "approved"
    assert lifecycle.decide(request, "reject", Actor("bob"), "no", Policy()).status == "rejected"
    assert lifecycle.decide(request, "cancel", Actor("alice"), "", Policy()).status == "cancelled"
    with pytest.raises(InvalidArgument, match="unknown decision"):
        lifecycle.decide(request, "bless", Actor("bob"), "", Policy())


def test_production_changes_need_manage_and_the_rest_edit() -> None:
    assert lifecycle.permission_for("Production") == "MANAGE"
    assert lifecycle.permission_for("Staging") == "EDIT"
    assert lifecycle.permission_for("Archived") == "EDIT"


def test_rollback_restores_the_latest_earlier_production_version() -> None:
    events = [
        _event(1, "Staging", "Production", 1),
        _event(1, "Production", "Archived", 2),
        _event(2, "Staging", "Production", 2),
    ]
    previous, moves = lifecycle.plan_rollback(
        "m", {1: "Archived", 2: "Production"}, events, "drift"
    )
    assert previous == 1
    assert [(m.version, m.from_stage, m.to_stage) for m in moves] == [
        (2, "Production", "Archived"),
        (1, "Archived", "Production"),
    ]
    with pytest.raises(InvalidTransition, match="no earlier Production version"):
        lifecycle.plan_rollback("m", {1: "Production"}, events[:1], "drift")


def _facts(version, events, tag, legacy):
    return lifecycle.VersionFacts(version, tuple(events), tag, legacy)


def test_reconcile_trusts_history_and_keeps_the_latest_production_entrant() -> None:
    plan = lifecycle.reconcile(
        [
            _facts(1, [_event(1, "Staging", "Production", 1)], "Production", "Production"),
            _facts(2, [_event(2, "Staging", "Production", 2)], "Staging", "Staging"),
            _facts(3, [], None, "None"),
        ],
        {"production": 1},
    )
    assert plan.stage_tags == {2: "Production"}
    assert plan.legacy_stages == {2: "Production"}
    assert plan.keep == 2
    assert [(m.version, m.to_stage) for m in plan.moves] == [(1, "Archived")]
    assert plan.stages == {1: "Archived", 2: "Production", 3: "None"}
    problems = [f.problem for f in plan.findings]
    assert "2 versions in Production: [1, 2]" in problems
    assert "alias 'production' points at 1, should be 2" in problems
    assert not any(f.version == 3 for f in plan.findings)  # never had a stage: not a problem


def test_reconcile_adopts_a_stage_set_by_plain_mlflow() -> None:
    plan = lifecycle.reconcile([_facts(1, [], "None", "Staging")], {})
    assert plan.adopted == {1: ("None", "Staging")}
    assert plan.stages == {1: "Staging"}
    assert [f.problem for f in plan.findings] == [
        "in Staging without any history event",
        "alias 'staging' points at None, should be 1",
    ]


def test_reconcile_adopts_mlflows_stage_changed_after_jupyreg_moved_it() -> None:
    plan = lifecycle.reconcile(
        [
            _facts(1, [_event(1, "Staging", "Production", 1)], "Production", "Archived"),
            _facts(2, [_event(2, "None", "Staging", 2)], "Staging", "Production"),
        ],
        {"production": 1, "staging": 2},
    )
    assert plan.adopted == {1: ("Production", "Archived"), 2: ("Staging", "Production")}
    assert plan.stages == {1: "Archived", 2: "Production"} and not plan.moves
    adopted = lifecycle.adopted_event("m", 2, "Staging", "Production", "carol")
    assert (adopted.author, adopted.repaired_by) == ("unknown (outside jupyreg)", "carol")
    assert adopted.reason == (
        "adopted a move made outside jupyreg (by unknown): MLflow's stage Staging -> Production"
    )
    value = tags.event_value(adopted)
    assert tags.event_from_tag("m", 2, tags.event_key(adopted), value) == adopted


def test_a_step_fixes_its_event_ids_so_applying_twice_writes_each_once() -> None:
    request = Request.new("m", 2, "Production", "alice", "why").with_approval(
        Actor("bob"), "", Policy()
    )
    moves = lifecycle.plan_transition(
        "m", 2, "Production", {1: "Production", 2: "Staging"}, Policy(), "why"
    )
    step = lifecycle.Step.new("m", Actor("bob"), moves, preferred=2, request=request)
    first, second = step.events()
    assert first.id < second.id and step.events() == [first, second]
    assert (first.version, first.to_stage, first.request_id) == (1, "Archived", None)
    assert (second.version, second.to_stage, second.request_id) == (2, "Production", request.id)
    assert step.final_stages() == {1: "Archived", 2: "Production"}
    again = tags.step_from_tag("m", tags.step_value(step))
    assert again == step and again.events() == step.events()


def test_a_step_too_large_for_a_tag_is_refused_before_anything_is_written() -> None:
    moves = [lifecycle.Move(v, "None", "Staging", "x" * 5_000) for v in range(1, 25)]
    with pytest.raises(InvalidArgument, match="more than the 100,000 MLflow keeps"):
        tags.step_value(lifecycle.Step.new("m", Actor("bob"), moves))


def test_long_comments_and_reasons_are_refused_with_their_length() -> None:
    request = Request.new("m", 2, "Production", "alice", "why")
    with pytest.raises(InvalidArgument, match="the comment has 60,000 characters"):
        lifecycle.decide(request, "approve", Actor("bob"), "x" * 60_000, Policy())
    with pytest.raises(InvalidArgument, match="must be text, not int"):
        lifecycle.require_reason(5, "a stage change")  # type: ignore[arg-type]


def test_reapproving_an_approved_request_answers_it_unchanged() -> None:
    approved = Request.new("m", 2, "Production", "alice", "why").with_approval(
        Actor("bob"), "", Policy()
    )
    assert lifecycle.decide(approved, "approve", Actor("carol"), "late", Policy()) is approved
    with pytest.raises(PolicyViolation, match="already approved"):
        lifecycle.decide(approved, "reject", Actor("carol"), "", Policy())


def test_approvers_per_stage_decide_who_may_approve_reject_or_apply() -> None:
    policy = Policy.from_mapping({"approvers": {"production": ["group:risk", "dana"]}})
    assert policy.to_dict()["approvers"] == {"Production": ["group:risk", "dana"]}
    assert Policy.from_mapping(policy.to_dict()) == policy
    request = Request.new("m", 2, "Production", "alice", "why")
    risk_lead = Actor("bob", frozenset({"risk"}))
    assert request.with_approval(risk_lead, "", policy).decided_by == "bob"
    assert request.with_approval(Actor("dana"), "", policy).status == "approved"
    with pytest.raises(
        PolicyViolation, match=r"carol \(in ml\) may not approve .*group:risk, dana"
    ):
        request.with_approval(Actor("carol", frozenset({"ml"})), "", policy)
    with pytest.raises(PolicyViolation, match="may not reject"):
        request.rejected(Actor("carol"), "no", policy)
    staging = Request.new("m", 2, "Staging", "alice", "why")  # a stage not named: anyone
    assert staging.with_approval(Actor("carol"), "", policy).status == "approved"


@pytest.mark.parametrize(
    "approvers",
    [["group:risk"], {"Production": []}, {"Production": ["group:"]}, {"Nowhere": ["bob"]}],
)
def test_malformed_approvers_are_refused_naming_the_setting(approvers: object) -> None:
    with pytest.raises(InvalidArgument, match="policy setting approvers"):
        Policy.from_mapping({"approvers": approvers})


def test_an_attested_approval_keeps_its_attestation_through_tags() -> None:
    attestation = {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r"}
    request = Request.new("m", 2, "Production", "alice", "why")
    approved = request.with_approval(Actor("bob", attestation=attestation), "ok", Policy())
    key = tags.request_key(approved.id)
    assert tags.request_from_tag("m", 2, key, tags.request_value(approved)) == approved
    moves = lifecycle.plan_transition("m", 2, "Production", {2: "Staging"}, Policy(), "why")
    step = lifecycle.Step.new("m", Actor("bob", attestation=attestation), moves, request=approved)
    assert tags.step_from_tag("m", tags.step_value(step)) == step
    (event,) = step.events()
    assert event.attestation == attestation
    assert tags.event_from_tag("m", 2, tags.event_key(event), tags.event_value(event)) == event
