"""The lifecycle backend interface: steps, the policy in force, and consistency checks."""

from __future__ import annotations

import abc
from typing import Any

from jupyreg.lifecycle import (
    Policy,
    Reconciliation,
    Request,
    check_move,
    check_no_approval_needed,
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
    def set_policy(self, name: str, policy: Policy) -> Policy: ...

    @abc.abstractmethod
    def transition(self, name: str, version: int, target: str, reason: str) -> None:
        """Move a version to ``target`` when the policy needs no approval for it."""

    @abc.abstractmethod
    def request(self, name: str, version: int, target: str, reason: str) -> Request: ...

    @abc.abstractmethod
    def decide(self, request_id: str, verb: str, comment: str) -> Request:
        """Approve, reject or cancel a request; an approval that completes it applies it."""

    @abc.abstractmethod
    def rollback(self, name: str, reason: str) -> int:
        """Put the previous Production version back; returns its number."""

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
        return reconcile((s.facts() for s in states.values()), self.store.aliases(name))

    def check_registration_stage(self, name: str, target: str) -> None:
        """Refuse, before anything is written, a stage a new version cannot enter at once."""
        from jupyreg.lifecycle import NONE

        check_move(name, None, NONE, target)
        check_no_approval_needed(name, None, target, self.policy(name))


def findings(name: str, plan: Reconciliation, repaired: bool) -> list[dict[str, Any]]:
    return [
        {"name": name, "version": f.version, "problem": f.problem, "repaired": repaired}
        for f in plan.findings
    ]
