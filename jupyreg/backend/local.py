"""Lifecycle steps applied in this process: the rules of ``jupyreg.lifecycle`` on the store,
each step under the registry's lock (a file lock beside SQLite, a PostgreSQL advisory lock)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jupyreg import lifecycle, tags
from jupyreg.backend.base import Backend, findings
from jupyreg.errors import NotFound, PolicyViolation
from jupyreg.lifecycle import Move, Policy, Request, TransitionEvent
from jupyreg.store import Store, VersionState


class LocalBackend(Backend):
    def __init__(self, store: Store, user: str, default_policy: Mapping[str, Any]) -> None:
        super().__init__(store)
        self.user = user
        self.default_policy = default_policy

    # policy ------------------------------------------------------------------------

    def policy(self, name: str) -> Policy:
        try:
            model = self.store.registered_model(name)
        except NotFound:
            tagged = None
        else:
            tagged = tags.policy_from_tag((model.tags or {}).get(tags.POLICY_TAG))
        return tagged or Policy.from_mapping(self.default_policy)

    def set_policy(self, name: str, policy: Policy) -> Policy:
        with self.store.lock(name), self.store.translated(f"setting the policy of {name}"):
            self.store.registered_model(name)
            self.store.client.set_registered_model_tag(
                name, tags.POLICY_TAG, tags.policy_value(policy)
            )
        return policy

    # steps -------------------------------------------------------------------------

    def transition(self, name: str, version: int, target: str, reason: str) -> None:
        with self.store.lock(name):
            states = self.store.model_versions(name)
            if version not in states:
                self.store.version(name, version)  # NotFound naming the versions
            policy = self.policy(name)
            moves = lifecycle.plan_transition(
                name, version, target, _stages(states), policy, reason
            )
            self._check_gates(name, version, target, states, policy)
            lifecycle.check_no_approval_needed(name, version, target, policy)
            self._apply(name, states, moves, preferred=version)

    def request(self, name: str, version: int, target: str, reason: str) -> Request:
        with self.store.lock(name):
            states = self.store.model_versions(name)
            state = states.get(version) or self.store.version(name, version)
            lifecycle.check_new_request(name, version, state.stage, target, state.requests())
            self._check_gates(name, version, target, states, self.policy(name))
            request = Request.new(name, version, target, self.user, reason)
            self._write_request(request)
        return request

    def decide(self, request_id: str, verb: str, comment: str) -> Request:
        name = self.store.request_holder(request_id).name
        with self.store.lock(name):
            holder = self.store.request_holder(request_id)  # fresh, under the lock
            policy = self.policy(name)
            decided = lifecycle.decide(holder.request(request_id), verb, self.user, comment, policy)
            if decided.status == lifecycle.APPROVED:
                states = self.store.model_versions(name)
                moves = lifecycle.plan_transition(
                    name, holder.version, decided.to_stage, _stages(states), policy, decided.reason
                )
                self._check_gates(name, holder.version, decided.to_stage, states, policy)
                self._apply(name, states, moves, preferred=holder.version, request_id=request_id)
            self._write_request(decided)
        return decided

    def rollback(self, name: str, reason: str) -> int:
        with self.store.lock(name):
            states = self.store.model_versions(name)
            events = [e for s in states.values() for e in s.events()]
            previous, moves = lifecycle.plan_rollback(name, _stages(states), events, reason)
            self._apply(name, states, moves, preferred=previous)
        return previous

    def repair(self, name: str | None) -> list[dict[str, Any]]:
        names = [name] if name else [m.name for m in self.store.registered_models()]
        problems: list[dict[str, Any]] = []
        for model in names:
            with self.store.lock(model):
                plan = self.reconcile(model)
                self._repair(model, plan)
            problems.extend(findings(model, plan, True))
        return problems

    # writes ------------------------------------------------------------------------

    def _repair(self, name: str, plan: lifecycle.Reconciliation) -> None:
        for number, stage in plan.adopted.items():
            event = TransitionEvent.new(
                name, number, lifecycle.NONE, stage, self.user, lifecycle.ADOPTED_REASON
            )
            self._write_event(event)
        for number, stage in plan.stage_tags.items():
            self.store.set_version_tag(name, number, tags.STAGE_TAG, stage)
        for number, stage in plan.legacy_stages.items():
            self.store.set_legacy_stage(name, number, stage)
        if plan.moves:
            self._apply(name, self.store.model_versions(name), plan.moves, preferred=plan.keep)
        self._point_aliases(name, plan.stages, None)

    def _apply(
        self,
        name: str,
        states: Mapping[int, VersionState],
        moves: Sequence[Move],
        preferred: int | None,
        request_id: str | None = None,
    ) -> None:
        """Write each move: its history event first (the intent ``check`` repairs from),
        then the stage tag and MLflow's legacy stage; then point the stage aliases."""
        for move in moves:
            self._write_event(
                TransitionEvent.new(
                    name,
                    move.version,
                    move.from_stage,
                    move.to_stage,
                    self.user,
                    move.reason,
                    request_id if move.version == preferred else None,
                )
            )
            self.store.set_version_tag(name, move.version, tags.STAGE_TAG, move.to_stage)
            self.store.set_legacy_stage(name, move.version, move.to_stage)
        self._point_aliases(name, lifecycle.apply_moves(_stages(states), moves), preferred)

    def _write_event(self, event: TransitionEvent) -> None:
        self.store.set_version_tag(
            event.name, event.version, tags.event_key(event), tags.event_value(event)
        )

    def _write_request(self, request: Request) -> None:
        self.store.set_version_tag(
            request.name, request.version, tags.request_key(request.id), tags.request_value(request)
        )

    def _point_aliases(self, name: str, stages: Mapping[int, str], preferred: int | None) -> None:
        current = self.store.aliases(name)
        for alias, target in lifecycle.alias_targets(stages, current, preferred).items():
            if current.get(alias) != target:
                self.store.point_alias(name, alias, target)

    def _check_gates(
        self,
        name: str,
        number: int,
        target: str,
        states: Mapping[int, VersionState],
        policy: Policy,
    ) -> None:
        """Raise PolicyViolation listing every gate the version fails for ``target``."""
        if not policy.gates(target):
            return
        holders = [v for v, s in states.items() if s.stage == lifecycle.PRODUCTION and v != number]
        runs = self.store.runs([states[v].run_id or "" for v in (number, *holders)])

        def metrics(version: int) -> dict[str, float]:
            run = runs.get(states[version].run_id or "")
            return dict(run.data.metrics) if run is not None else {}

        production = (holders[0], metrics(holders[0])) if holders else None
        evidence = tags.evidence(states[number].tags, metrics(number))
        failures = policy.failing_gates(target, evidence, production)
        if failures:
            raise PolicyViolation(
                f"{name} v{number} cannot go to {target}: {len(failures)} gate(s) failed: "
                + "; ".join(failures)
            )


def _stages(states: Mapping[int, VersionState]) -> dict[int, str]:
    return {v: s.stage for v, s in states.items()}
