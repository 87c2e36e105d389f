"""Lifecycle steps applied in this process: the rules of ``jupyreg.lifecycle`` on the store,
each step under the registry's lock (a file lock beside SQLite, a PostgreSQL advisory lock).

A step that moves versions is recorded as one intent (the model's ``jupyreg.step`` tag)
before any of its writes, then applied idempotently and marked done. On a SQL registry
(embedded SQLite, a server's database) all of that is one transaction (``Store.batch``):
a crash leaves the step whole or absent. Over a plain MLflow server's REST API the writes
go one by one, and the next step on the model (or ``check --repair``, or a server start)
finishes a step a crash interrupted, forward, before doing anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from jupyreg import lifecycle, tags
from jupyreg.backend.base import Backend, findings
from jupyreg.entities import ModelVersion
from jupyreg.errors import NotFound, PolicyViolation
from jupyreg.lifecycle import Actor, Policy, PolicyChange, Request, Step, TransitionEvent
from jupyreg.queries import Queries
from jupyreg.store import Store, VersionState, version_in


@dataclass(frozen=True)
class ModelState:
    """A model as one step sees it, read under the lock."""

    name: str
    versions: dict[int, VersionState]
    tags: dict[str, str]
    aliases: dict[str, int]

    def stages(self) -> dict[int, str]:
        return {v: s.stage for v, s in self.versions.items()}

    def request_holder(self, request_id: str) -> VersionState:
        """The version carrying request ``request_id`` (requests never move between
        versions; the version may have been deleted since the caller looked it up)."""
        key = tags.request_key(request_id)
        for state in self.versions.values():
            if key in state.tags:
                return state
        raise NotFound(f"no request {request_id!r}: its version of {self.name} was deleted")

    def version(self, number: int) -> VersionState:
        return version_in(self.name, self.versions.values(), number)


Authorise = Callable[[str, int, str, str], None]
"""Called under the model's lock with (name, version, its current stage, the target)
before a move is planned; raises ``PermissionDenied`` to refuse it (a server's roles)."""


class LocalBackend(Backend):
    def __init__(
        self,
        store: Store,
        actor: Actor,
        default_policy: Callable[[], Mapping[str, Any]],
        authorise: Authorise | None = None,
    ) -> None:
        super().__init__(store)
        self.actor = actor
        self.user = actor.name
        self.default_policy = default_policy
        self.authorise = authorise

    def groups_of(self, user: str) -> frozenset[str]:
        """Groups are a team server's: its own registry acts in the caller's (``Actor``);
        an embedded registry has none."""
        return self.actor.groups if user == self.actor.name else frozenset()

    # policy ------------------------------------------------------------------------

    def policy(self, name: str) -> Policy:
        try:
            model_tags = self.store.registered_model(name).tags or {}
        except NotFound:
            model_tags = {}
        return self._policy_of(model_tags)

    def _policy_of(self, model_tags: Mapping[str, str]) -> Policy:
        tagged = tags.policy_from_tag(model_tags.get(tags.POLICY_TAG))
        return tagged or Policy.from_mapping(self.default_policy())

    def set_policy(self, name: str, policy: Policy, reason: str) -> Policy:
        with self.store.lock(name):
            self._current(name)
            change = PolicyChange.new(name, self.user, reason, policy)
            with self.store.batch():
                self.store.set_model_tag(name, *tags.policy_change_tag(change))
                self.store.set_model_tag(name, tags.POLICY_TAG, tags.policy_value(policy))
        return policy

    # steps -------------------------------------------------------------------------

    def transition(self, name: str, version: int, target: str, reason: str) -> ModelVersion:
        def plan(model: ModelState) -> Step:
            self._authorise(name, version, model.version(version).stage, target)
            policy = self._policy_of(model.tags)
            moves = lifecycle.plan_transition(name, version, target, model.stages(), policy, reason)
            self._check_gates(model, version, target, policy)
            lifecycle.check_no_approval_needed(name, version, target, policy)
            policy.check_approver(target, self.actor, f"move v{version} of {name} to {target}")
            return Step.new(name, self.actor, moves, preferred=version)

        self._step(name, plan)
        return Queries(self.store).get(name, version)

    def request(self, name: str, version: int, target: str, reason: str) -> Request:
        with self.store.lock(name):
            model = self._current(name)
            state = model.version(version)
            lifecycle.check_new_request(name, version, state.stage, target, state.requests())
            self._check_gates(model, version, target, self._policy_of(model.tags))
            request = Request.new(name, version, target, self.user, reason)
            self._write_request(request)
        return request

    def decide(self, request_id: str, verb: str, comment: str) -> Request:
        name = self.store.request_model(request_id)
        decided: Request | None = None

        def plan(model: ModelState) -> Step | None:
            nonlocal decided
            holder = model.request_holder(request_id)  # fresh, under the lock
            pending = holder.request(request_id)
            if verb == "approve":
                self._authorise(name, holder.version, holder.stage, pending.to_stage)
            policy = self._policy_of(model.tags)
            decided = lifecycle.decide(pending, verb, self.actor, comment, policy)
            if decided == pending:
                return None  # already settled this way: nothing to write
            if decided.status != lifecycle.APPROVED:
                self._write_request(decided)
                return None
            moves = lifecycle.plan_transition(
                name, holder.version, decided.to_stage, model.stages(), policy, decided.reason
            )
            self._check_gates(model, holder.version, decided.to_stage, policy)
            return Step.new(name, self.actor, moves, preferred=holder.version, request=decided)

        self._step(name, plan)
        assert decided is not None
        return decided

    def _authorise(self, name: str, version: int, current: str, target: str) -> None:
        if self.authorise is not None:
            self.authorise(name, version, current, target)

    def rollback(self, name: str, reason: str) -> ModelVersion:
        restored: list[int] = []

        def plan(model: ModelState) -> Step:
            events = [e for s in model.versions.values() for e in s.events()]
            previous, moves = lifecycle.plan_rollback(name, model.stages(), events, reason)
            restored.append(previous)
            return Step.new(name, self.actor, moves, preferred=previous)

        self._step(name, plan)
        return Queries(self.store).get(name, restored[0])

    def repair(self, name: str | None) -> list[dict[str, Any]]:
        names = [name] if name else [m.name for m in self.store.registered_models()]
        problems: list[dict[str, Any]] = []
        for model_name in names:
            with self.store.lock(model_name):
                self._current(model_name)
                plan = self.reconcile(model_name)
                self._repair(model_name, plan)
            problems.extend(findings(model_name, plan, True))
        return problems

    def keep_reproduction(self, name: str, version: int, record: dict[str, Any]) -> str:
        moment = lifecycle.now()
        stamped = {**record, "author": self.user, "at": lifecycle.iso(moment)}
        self.store.version(name, version)  # NotFound before anything is written
        reproduction_id = lifecycle.sortable_id(moment)
        self.store.set_version_tag(name, version, *tags.reproduction_tag(reproduction_id, stamped))
        return reproduction_id

    def delete_version(self, name: str, version: int) -> None:
        """Delete a None or Archived version, its history kept on the model first (so that
        ``history`` and ``stage_at`` stay right); a Staging or Production version is refused
        (InvalidTransition naming ``reg.transition(..., 'Archived', ...)``). Under the
        model's lock, so that no step moves the version in between."""
        with self.store.lock(name):
            state = self._current(name).version(version)
            lifecycle.check_deletable(name, version, (state.stage, state.legacy_stage))
            self.store.keep_history(name, version)
            self.store.delete_version(name, version)

    def finish(self, name: str | None = None) -> None:
        """Finish every recorded step a crash interrupted (a server does it on start)."""
        for model in [name] if name else [m.name for m in self.store.registered_models()]:
            with self.store.lock(model):
                self._current(model)

    # the step machinery ------------------------------------------------------------

    def _step(self, name: str, plan: Callable[[ModelState], Step | None]) -> None:
        """Under the lock: finish any interrupted step, plan (validating everything), record
        the intent, apply it, mark it done."""
        with self.store.lock(name):
            model = self._current(name)
            step = plan(model)
            if step is None:
                return
            self._record_and_apply(step.on(model.stages()), model)

    def _current(self, name: str) -> ModelState:
        """The model's state, after finishing its last step if a crash interrupted it."""
        model = self._read(name)
        recorded = tags.step_from_tag(name, model.tags.get(tags.STEP_TAG))
        if recorded is not None and not recorded.done:
            with self.store.batch():
                self._apply(recorded, model)
            model = self._read(name)
        return model

    def _read(self, name: str) -> ModelState:
        model = self.store.model(name)
        versions = {state.version: state for state in model.versions}
        return ModelState(name, versions, model.tags, model.aliases)

    def _apply(self, step: Step, model: ModelState) -> None:
        """Write what the step changes and is not written yet: each move's event, stage tag
        and MLflow stage, the request it settles, the stage aliases; then mark it done."""
        name = step.name
        for event in step.events():
            state = model.versions.get(event.version)
            if state is not None and tags.event_key(event) not in state.tags:
                self._write_event(event)
        final = step.final_stages()
        for number, stage in final.items():
            state = model.versions.get(number)
            if state is None:  # deleted since: nothing left to move
                continue
            if state.tags.get(tags.STAGE_TAG) != stage:
                self.store.set_version_tag(name, number, tags.STAGE_TAG, stage)
            if state.legacy_stage != stage:
                self.store.set_legacy_stage(name, number, stage)
        if step.request is not None:
            holder = model.versions.get(step.request.version)
            key, value = tags.request_key(step.request.id), tags.request_value(step.request)
            if holder is not None and holder.tags.get(key) != value:
                self.store.set_version_tag(name, step.request.version, key, value)
        stages = {**model.stages(), **{v: s for v, s in final.items() if v in model.versions}}
        self._point_aliases(model, stages, step.preferred)
        self.store.set_model_tag(name, tags.STEP_TAG, tags.step_value(replace(step, done=True)))

    def _repair(self, name: str, plan: lifecycle.Reconciliation) -> None:
        with self.store.batch():
            self._record_findings(name, plan)
        model = self._read(name)
        if plan.moves:
            step = Step.new(name, self.actor, plan.moves, preferred=plan.keep).on(model.stages())
            self._record_and_apply(step, model)
            model = self._read(name)
        self._point_aliases(model, plan.stages, None)

    def _record_findings(self, name: str, plan: lifecycle.Reconciliation) -> None:
        """What reconciliation adopts or marks: outside moves as events, stage tags and
        MLflow stages brought in line, changed registration records, an unrecorded policy,
        versions deleted while they held a stage."""
        for number, (before, after) in plan.adopted.items():
            self._write_event(lifecycle.adopted_event(name, number, before, after, self.user))
        for number, stage in plan.stage_tags.items():
            self.store.set_version_tag(name, number, tags.STAGE_TAG, stage)
        for number, stage in plan.legacy_stages.items():
            self.store.set_legacy_stage(name, number, stage)
        for number, found in plan.changed_records.items():
            self.store.set_model_tag(name, *tags.tampered_marker(number, found, self.user))
        if plan.unrecorded_policy is not None:
            reason = "adopted by check --repair: the policy was set outside jupyreg"
            change = PolicyChange.new(name, self.user, reason, plan.unrecorded_policy)
            self.store.set_model_tag(name, *tags.policy_change_tag(change))
        for number, stage in plan.lost.items():
            self.store.set_model_tag(
                name, tags.kept_marker_key(number), tags.lost_marker(number, stage)
            )

    def _record_and_apply(self, step: Step, model: ModelState) -> None:
        """Record the step, apply it, mark it done: one transaction on a SQL registry."""
        with self.store.batch():
            self.store.set_model_tag(step.name, tags.STEP_TAG, tags.step_value(step))
            self._apply(step, model)

    def _write_event(self, event: TransitionEvent) -> None:
        self.store.set_version_tag(
            event.name, event.version, tags.event_key(event), tags.event_value(event)
        )

    def _write_request(self, request: Request) -> None:
        self.store.set_version_tag(
            request.name, request.version, tags.request_key(request.id), tags.request_value(request)
        )

    def _point_aliases(
        self, model: ModelState, stages: Mapping[int, str], preferred: int | None
    ) -> None:
        for alias, target in lifecycle.alias_targets(stages, model.aliases, preferred).items():
            if model.aliases.get(alias) != target:
                self.store.point_alias(model.name, alias, target)

    def _frozen(self, model: ModelState) -> ModelState:
        """The model with each version whose lineage is still only its run's (registered by
        plain MLflow, not frozen by a server) frozen now: the gates judge what a version
        keeps, never what a run's tags say at the time of the move."""
        unfrozen = [n for n, state in model.versions.items() if state.lineage_from_run]
        for number in unfrozen:
            self.store.freeze_run_lineage(model.name, number)
        return self._read(model.name) if unfrozen else model

    def _check_gates(self, model: ModelState, number: int, target: str, policy: Policy) -> None:
        """Raise PolicyViolation listing every gate the version fails for ``target``. The
        gates judge what was frozen at registration (lineage tags, the ``jupyreg.metrics``
        record), never the run's metrics, which anyone who may log to the run can change."""
        if not policy.gates(target):
            return
        states = self._frozen(model).versions
        holders = [v for v, s in states.items() if s.stage == lifecycle.PRODUCTION and v != number]
        production = current = None
        if holders:
            production = (holders[0], tags.recorded_metrics(states[holders[0]].tags) or {})
            current = tags.evidence(states[holders[0]].tags)
        evidence = tags.evidence(states[number].tags)
        failures = policy.failing_gates(target, evidence, production, current)
        if tags.changed_record(number, states[number].tags, {}) is not None:
            failures.insert(0, "its registration record was changed after registration")
        if failures:
            raise PolicyViolation(
                f"{model.name} v{number} cannot go to {target}: {len(failures)} gate(s) "
                "failed: " + "; ".join(failures)
            )
