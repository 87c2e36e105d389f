"""The lifecycle backend interface: steps, the policy in force, and consistency checks."""

from __future__ import annotations

import abc
from dataclasses import replace
from typing import Any

from jupyreg import tags
from jupyreg.entities import ModelVersion
from jupyreg.lifecycle import (
    NONE,
    Finding,
    Policy,
    Reconciliation,
    Request,
    check_move,
    check_no_approval_needed,
    lost_finding,
    lost_versions,
    reconcile,
)
from jupyreg.store import Store


class Backend(abc.ABC):
    def __init__(self, store: Store) -> None:
        self.store = store

    @abc.abstractmethod
    def policy(self, name: str) -> Policy:
        """The policy in force for ``name`` (also before its first version)."""

    @abc.abstractmethod
    def set_policy(self, name: str, policy: Policy, reason: str) -> Policy:
        """Store ``policy`` on the model, recording the change (author, reason) first."""

    @abc.abstractmethod
    def transition(self, name: str, version: int, target: str, reason: str) -> ModelVersion:
        """Move a version to ``target`` when the policy needs no approval for it."""

    @abc.abstractmethod
    def request(self, name: str, version: int, target: str, reason: str) -> Request: ...

    @abc.abstractmethod
    def decide(self, request_id: str, verb: str, comment: str) -> Request:
        """Approve, reject or cancel a request; an approval that completes it applies it."""

    @abc.abstractmethod
    def rollback(self, name: str, reason: str) -> ModelVersion:
        """Put the previous Production version back; returns it."""

    @abc.abstractmethod
    def keep_reproduction(self, name: str, version: int, record: dict[str, Any]) -> str:
        """Keep a reproduction's outcome on the version, stamped with who kept it and when
        by whoever writes it (a server stamps the authenticated user); returns its id."""

    @abc.abstractmethod
    def groups_of(self, user: str) -> frozenset[str]:
        """The groups ``user`` is in, where the lifecycle is enforced (a policy's
        ``group:NAME`` approvers)."""

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version. Here MLflow's own deletion: a jupyreg server's guard refuses a
        held version and keeps the history first; ``LocalBackend`` does both itself."""
        self.store.delete_version(name, version)

    @abc.abstractmethod
    def finish(self, name: str | None = None) -> None:
        """Finish every recorded step a crash interrupted."""

    @abc.abstractmethod
    def repair(self, name: str | None) -> list[dict[str, Any]]:
        """``check``'s findings, each repaired from the history."""

    def check(self, name: str | None, repair: bool) -> list[dict[str, Any]]:
        """Disagreements between history, stage tags, MLflow's stage and aliases."""
        if repair:
            return self.repair(name)
        names = [name] if name else [m.name for m in self.store.registered_models()]
        return [
            finding for model in names for finding in findings(model, self.reconcile(model), False)
        ]

    def reconcile(self, name: str) -> Reconciliation:
        states = self.store.model_versions(name)
        model = self.store.registered_model(name)
        aliases = {alias: int(v) for alias, v in (model.aliases or {}).items()}
        plan = reconcile((s.facts() for s in states.values()), aliases)
        model_tags = model.tags or {}
        step = tags.step_from_tag(name, model_tags.get(tags.STEP_TAG))
        lost = lost_versions(states, tags.kept_versions(model_tags), step)
        if lost:
            found = tuple(lost_finding(v, stage) for v, stage in lost.items())
            plan = replace(plan, findings=(*plan.findings, *found), lost=lost)
        changed = {
            s.version: seal
            for s in states.values()
            if (seal := tags.changed_record(s.version, s.tags, model_tags)) is not None
        }
        if changed:
            found = tuple(
                Finding(
                    v,
                    f"v{v}'s registration record (author, lineage, metrics) was changed after "
                    "registration, outside jupyreg: the gates refuse it; register it again "
                    "(check --repair records the change)",
                )
                for v in sorted(changed)
            )
            plan = replace(plan, findings=(*plan.findings, *found), changed_records=changed)
        unrecorded = tags.unrecorded_policy(name, model_tags)
        if unrecorded is not None:
            problem = Finding(
                None,
                "the policy in force was not set by a recorded change (written outside "
                "jupyreg, or a change was interrupted): check --repair records it as adopted",
            )
            plan = replace(plan, findings=(*plan.findings, problem), unrecorded_policy=unrecorded)
        if step is None or step.done:
            return plan
        interrupted = Finding(
            step.preferred,
            f"step {step.id} by {step.author} was interrupted: the next lifecycle call or "
            "check --repair finishes it",
        )
        return replace(plan, findings=(interrupted, *plan.findings))

    def check_registration_stage(self, name: str, target: str) -> None:
        """Refuse, before anything is written, a stage a new version cannot enter at once."""
        check_move(name, None, NONE, target)
        check_no_approval_needed(name, None, target, self.policy(name))


def findings(name: str, plan: Reconciliation, repaired: bool) -> list[dict[str, Any]]:
    return [
        {"name": name, "version": f.version, "problem": f.problem, "repaired": repaired}
        for f in plan.findings
    ]
