"""Reads: typed records built from the store in a constant number of MLflow round trips."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jupyreg import lifecycle, tags
from jupyreg.entities import ModelVersion, RegisteredModel
from jupyreg.errors import InvalidArgument, NotFound
from jupyreg.lifecycle import PolicyChange, Request, TransitionEvent
from jupyreg.store import ModelRead, Store, VersionState, no_such_version


class Queries:
    def __init__(self, store: Store) -> None:
        self.store = store

    def models(self) -> list[RegisteredModel]:
        return [model_record(model) for model in self.store.registered_models()]

    def model(self, name: str) -> RegisteredModel:
        """One registered model, as ``models`` lists it; NotFound for an unknown name."""
        return model_record(self.store.registered_model(name))

    def versions(self, name: str, wanted: Iterable[int | str] | None = None) -> list[ModelVersion]:
        """Versions of a model (all, or those ``wanted``), oldest first."""
        states = self.store.model_versions(name)
        if wanted is not None:
            numbers = {version_number(v) for v in wanted}
            missing = numbers - set(states)
            if missing:
                self.store.version(name, min(missing))  # raises NotFound with the list
            states = {v: s for v, s in states.items() if v in numbers}
        runs = self.store.runs([s.run_id for s in states.values() if s.run_id])
        aliases = self.store.aliases(name)
        return [
            model_version(s, runs.get(s.run_id or ""), aliases) for _, s in sorted(states.items())
        ]

    def get(self, name: str, version: int | str) -> ModelVersion:
        model = self.store.model(name, version_number(version))
        state = model.versions[0]
        return model_version(state, self._run_of(state), model.aliases)

    def version_record(self, name: str, version: int | str) -> VersionRecord:
        """A version with its history, its requests and its flavor, from one read of its
        model and one of its run."""
        number = version_number(version)
        model = self.store.model(name, number)
        state = model.versions[0]
        run, logged = self.store.run_with_models(state.run_id) if state.run_id else (None, [])
        if state.model_id:  # the version's own logged model
            own = [m for m in logged if m.model_id == state.model_id]
            logged = own or [m for m in [self.store.logged_model(state.model_id)] if m]
        return VersionRecord(
            version=model_version(state, run, model.aliases),
            events=_history(name, model, number),
            requests=[r for r in _requests(name, model) if r.version == number],
            flavor=_flavor(state.source, logged),
        )

    def _run_of(self, state: VersionState) -> Any:
        return self.store.runs([state.run_id] if state.run_id else []).get(state.run_id or "")

    def history(self, name: str, version: int | str | None = None) -> list[TransitionEvent]:
        """Every stage change of the model (or one version), oldest first."""
        number = None if version is None else version_number(version)
        return _history(name, self.store.model(name), number)

    def requests(self, name: str | None = None, status: str | None = "pending") -> list[Request]:
        """Promotion requests, oldest first (pending by default; ``status=None`` for all)."""
        if status is not None and status not in lifecycle.REQUEST_STATUSES:
            raise InvalidArgument(
                f"unknown request status {status!r}: use one of "
                f"{', '.join(lifecycle.REQUEST_STATUSES)} or None for all"
            )
        if name:
            found = _requests(name, self.store.model(name))
        else:
            found = [r for s in self.store.versions() for r in s.requests()]
            if status != lifecycle.PENDING:  # kept requests of deleted versions are all settled
                found += self._kept_requests()
        return sorted(
            (r for r in found if status is None or r.status == status),
            key=lambda r: r.created_at,
        )

    def request(self, request_id: str) -> Request:
        """A request by id, also one kept from a deleted version."""
        try:
            return self.store.request_holder(request_id).request(request_id)
        except NotFound:
            kept = [r for r in self._kept_requests() if r.id == request_id]
            if not kept:
                raise
            return kept[0]

    def _kept_requests(self) -> list[Request]:
        models = self.store.registered_models()
        return [r for m in models for r in tags.kept_requests(m.name, m.tags or {})]

    def holder(self, name: str, stage: str = lifecycle.PRODUCTION) -> int | None:
        """The version now in ``stage``, else None. Staging and Production are read from
        their alias, which moves in one step from the old holder to the new one (the stage
        tags change one version at a time); other stages give their newest holder."""
        target = lifecycle.normalize_stage(stage)
        alias = lifecycle.STAGE_ALIASES.get(target)
        if alias is not None and (version := self.store.aliases(name).get(alias)) is not None:
            return version
        holders = [v for v, s in self.store.model_versions(name).items() if s.stage == target]
        return max(holders, default=None)

    def policy_changes(self, name: str) -> list[PolicyChange]:
        """The model's policy changes, oldest first."""
        return tags.policy_changes(name, self.store.registered_model(name).tags or {})

    def stage_at(self, name: str, stage: str, when: datetime | str) -> int | None:
        """The version that held ``stage`` at ``when`` (newest entrant if several)."""
        target = lifecycle.normalize_stage(stage)
        moment = _moment(when)
        if moment.tzinfo is None:
            moment = moment.astimezone()
        holders = lifecycle.stage_holders_at(self.history(name), target, moment)
        return holders[0] if holders else None

    def alias_target(self, name: str, alias: str) -> int:
        aliases = self.store.aliases(name)
        if alias not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise NotFound(f"{name} has no alias {alias!r} (aliases: {known})")
        return aliases[alias]


@dataclass(frozen=True)
class VersionRecord:
    """A version with what a model card shows of it besides: its history, its requests
    (all statuses) and the MLflow flavor it was logged with."""

    version: ModelVersion
    events: list[TransitionEvent]
    requests: list[Request]
    flavor: str | None


def _flavor(source: str | None, logged: list[Any]) -> str | None:
    """The MLflow flavor a version's model was logged with: the type of its logged model
    (its only one, else the one logged at the version's source)."""
    for model in logged:
        if len(logged) == 1 or source in (model.artifact_location, model.model_uri):
            return model.model_type
    return None


def _history(name: str, model: ModelRead, version: int | None) -> list[TransitionEvent]:
    """The model's (or one version's) stage changes, oldest first: the versions' own events
    merged with those kept on the model from deleted versions (by event id: a version whose
    history was kept but whose deletion failed counts once)."""
    states = {s.version: s for s in model.versions}
    kept = tags.kept_events(name, model.tags)
    if version is not None:
        kept = [e for e in kept if e.version == version]
        if version in states:
            states = {version: states[version]}
        elif kept or version in tags.kept_versions(model.tags):
            states = {}
        else:
            raise no_such_version(name, version, states)
    merged = {e.id: e for e in kept}
    merged.update((e.id, e) for s in states.values() for e in s.events())
    return sorted(merged.values(), key=lambda e: e.id)


def _requests(name: str, model: ModelRead) -> list[Request]:
    """The model's requests, those kept from deleted versions included, unsorted."""
    found = [r for s in model.versions for r in s.requests()]
    return found + tags.kept_requests(name, model.tags)


def version_number(version: int | str) -> int:
    try:
        number = int(str(version).strip().lstrip("vV"))
    except ValueError:
        raise InvalidArgument(f"version must be a number such as 3, not {version!r}") from None
    if number < 1:
        raise InvalidArgument(f"version must be 1 or more, not {version!r}")
    return number


def _moment(when: datetime | str) -> datetime:
    if isinstance(when, datetime):
        return when
    try:
        return lifecycle.parse_iso(str(when).strip())
    except ValueError:
        raise InvalidArgument(
            f"cannot read the time {when!r}: use a datetime or an ISO 8601 text such as "
            "'2026-11-20', '2026-11-20T12:00:00' (local time) or '2026-11-20T12:00:00Z'"
        ) from None


def timestamp(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def model_record(model: Any) -> RegisteredModel:
    """An MLflow registered model as callers see it. Its newest version in each MLflow
    stage (which MLflow reads with it) tells whether its stage references are split."""
    aliases = {a: int(v) for a, v in (model.aliases or {}).items()}
    newest = [VersionState.of(mv) for mv in model.latest_versions or ()]
    return RegisteredModel(
        name=model.name,
        latest_version=max((s.version for s in newest), default=None),
        production=aliases.get(lifecycle.STAGE_ALIASES[lifecycle.PRODUCTION]),
        staging=aliases.get(lifecycle.STAGE_ALIASES[lifecycle.STAGING]),
        description=model.description or "",
        updated=timestamp(model.last_updated_timestamp),
        split=lifecycle.split_references(model.name, [s.facts() for s in newest], aliases),
    )


def model_version(state: VersionState, run: Any, aliases: Mapping[str, int]) -> ModelVersion:
    """The version as callers see it. ``metrics`` are what the gates judge: the record made
    at registration (``jupyreg.metrics``) where the version has one, else (a version made
    by a plain MLflow client) its run's current metrics; a run metric logged or changed
    after registration is named in ``warnings``, not shown as the version's."""
    record = tags.lineage_record(state.tags)
    author = state.tags.get(tags.AUTHOR_TAG) or state.user_id
    if not author and run is not None:
        author = run.data.tags.get("mlflow.user")
    run_metrics = dict(run.data.metrics) if run is not None else {}
    registered = tags.recorded_metrics(state.tags)
    warnings = tuple(record.get("warnings", ()))
    if registered is not None:
        warnings += tuple(_changed_since_registration(registered, run_metrics))
    return ModelVersion(
        name=state.name,
        version=state.version,
        stage=state.stage,
        run_id=state.run_id,
        aliases=tuple(sorted(a for a, v in aliases.items() if v == state.version)),
        created=timestamp(state.created_ms),
        author=author,
        description=state.description,
        source=state.source,
        metrics=run_metrics if registered is None else registered,
        params=dict(run.data.params) if run is not None else {},
        lineage=record,
        tags=state.tags,
        warnings=warnings,
    )


def _changed_since_registration(
    registered: Mapping[str, float], run_metrics: Mapping[str, float]
) -> list[str]:
    changed = [
        f"{k} = {v:g} on the run, {registered[k]:g} registered"
        if k in registered
        else f"{k} = {v:g} logged to the run after registration"
        for k, v in sorted(run_metrics.items())
        if registered.get(k) != v
    ]
    if not changed:
        return []
    return [
        "run metrics changed since registration (the gates judge the registered values): "
        + "; ".join(changed)
    ]


class TypedReads:
    """``Registry``'s typed reads: the records every front end consumes."""

    _queries: Queries

    def model_records(self) -> list[RegisteredModel]:
        return self._queries.models()

    def version_records(
        self, name: str, versions: Iterable[int | str] | None = None
    ) -> list[ModelVersion]:
        """Versions of ``name`` (all, or those listed), oldest first."""
        return self._queries.versions(name, versions)

    def history_records(self, name: str, version: int | str | None = None) -> list[TransitionEvent]:
        return self._queries.history(name, version)

    def request_records(
        self, name: str | None = None, status: str | None = "pending"
    ) -> list[Request]:
        return self._queries.requests(name, status)

    def get(self, name: str, version: int | str) -> ModelVersion:
        return self._queries.get(name, version)

    def version_record(self, name: str, version: int | str) -> VersionRecord:
        """A version with its history, requests and flavor, from one read."""
        return self._queries.version_record(name, version)

    def get_request(self, request_id: str) -> Request:
        """A request by id, whatever its status."""
        return self._queries.request(request_id)

    def holder(self, name: str, stage: str = "Production") -> int | None:
        """The version now in ``stage``, else None."""
        return self._queries.holder(name, stage)

    def alias_target(self, name: str, alias: str) -> int:
        """The version ``alias`` points at; NotFound when the model has no such alias."""
        return self._queries.alias_target(name, alias)

    def stage_at(self, name: str, stage: str, when: datetime | str) -> int | None:
        """The version that held ``stage`` at ``when`` (newest entrant if several), from history."""
        return self._queries.stage_at(name, stage, when)
