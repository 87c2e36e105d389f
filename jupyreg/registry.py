"""``jupyreg.Registry``: the facade every front end (magics, CLI, widgets, REST) calls.

It composes the lifecycle rules (``jupyreg.lifecycle``) with MLflow storage
(``jupyreg.store``) and lineage capture (``jupyreg.lineage``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle
from jupyreg.config import project_settings
from jupyreg.entities import PERMISSIONS, ModelVersion
from jupyreg.errors import (
    ApprovalRequired,
    InvalidArgument,
    InvalidTransition,
    NotFound,
    PolicyViolation,
    RegistryError,
)
from jupyreg.flavors import choose_flavor
from jupyreg.identity import resolve_user
from jupyreg.lifecycle import Move, Policy, Request, TransitionEvent
from jupyreg.metrics import flatten_metrics, model_params
from jupyreg.remote import LifecycleServer, discover
from jupyreg.store import (
    Store,
    VersionState,
    absolute_sqlite,
    default_tracking_uri,
    experiment_id,
)

if TYPE_CHECKING:
    import pandas as pd

    from jupyreg.lineage import Lineage

LINEAGE_TAG = "jupyreg.lineage"
VERSION_FIELDS = (
    "version",
    "stage",
    "aliases",
    "created",
    "author",
    "run_id",
    "git_commit",
    "git_dirty",
    "data",
    "gpu",
)
"""Columns of ``Registry.versions`` besides the metrics, which sit between the two groups."""
HISTORY_COLUMNS = ["at", "version", "from_stage", "to_stage", "author", "reason", "request_id"]
REQUEST_COLUMNS = [
    "id",
    "name",
    "version",
    "to_stage",
    "status",
    "requested_by",
    "reason",
    "created_at",
    "approved_by",
    "decided_by",
    "comment",
    "decided_at",
]


class Registry:
    """A model registry with a Staging → Production → Archived lifecycle, over MLflow.

    ``Registry()`` uses ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``, else MLflow's
    default (``sqlite:///mlflow.db`` in the current directory).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        *,
        user: str | None = None,
    ) -> None:
        tracking = absolute_sqlite(tracking_uri) if tracking_uri else default_tracking_uri()
        registry = registry_uri or (
            os.environ.get("MLFLOW_REGISTRY_URI") if not tracking_uri else None
        )
        self.tracking_uri = tracking
        self.registry_uri = absolute_sqlite(registry) if registry else tracking
        self.user = resolve_user(user, authenticated=_authenticated_user(self.registry_uri))
        self._store = Store(self.tracking_uri, self.registry_uri)

    def __repr__(self) -> str:
        return f"Registry({self.registry_uri!r}, user={self.user!r})"

    # registering -------------------------------------------------------------------

    def register(
        self,
        model: Any,
        name: str,
        *,
        metrics: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        data: Sequence[str | os.PathLike[str]] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        stage: str | None = None,
        reason: str | None = None,
        notebook: str | os.PathLike[str] | None = None,
        lineage: Lineage | None = None,
        user_ns: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Log ``model`` to MLflow, register it as a new version of ``name`` with its lineage.

        Everything is validated before anything is written. If writing fails, the raised
        error carries ``.lineage`` so ``register(..., lineage=err.lineage)`` can retry.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument("a registered model needs a non-empty name")
        name = name.strip()
        flat_metrics = flatten_metrics(metrics)
        run_params = model_params(model, params)
        flavor = choose_flavor(model)
        user_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if any(k.startswith("jupyreg.") for k in user_tags):
            raise InvalidArgument("tags starting with 'jupyreg.' are reserved for jupyreg")
        target = lifecycle.normalize_stage(stage) if stage else None
        if target:
            lifecycle.check_move(name, None, lifecycle.NONE, target)
            needed = self._policy(name, missing_ok=True).approvals_for(target)
            if needed:
                raise ApprovalRequired(
                    f"registering straight into {target} needs {needed} approval(s): register "
                    f"without a stage, then reg.request({name!r}, VERSION, {target!r}, reason=...)"
                )
        if lineage is None:
            from jupyreg.lineage import capture

            lineage = capture(data=data, notebook=notebook, user_ns=user_ns, model=model)
        try:
            state = self._log_and_register(
                model, name, flavor, flat_metrics, run_params, lineage, description, user_tags
            )
        except RegistryError as exc:
            exc.lineage = lineage  # type: ignore[attr-defined]
            raise
        if target:
            self.transition(
                name, state.version, target, reason=reason or f"registered into {target}"
            )
        return self.get(name, state.version)

    def _log_and_register(
        self,
        model: Any,
        name: str,
        flavor: Any,
        metrics: dict[str, float],
        params: dict[str, str],
        lineage: Lineage,
        description: str | None,
        tags: dict[str, str],
    ) -> VersionState:
        import mlflow
        from mlflow.entities import Metric, Param, RunStatus
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        client = self._store.client
        git = lineage.record.get("git") or {}
        notebook = (lineage.record.get("notebook") or {}).get("path")
        run_tags = {
            "mlflow.user": self.user,
            "mlflow.runName": f"register {name}",
            "jupyreg.registered_model": name,
            **({"mlflow.source.git.commit": git["commit"]} if git.get("commit") else {}),
            **({"mlflow.source.name": notebook} if notebook else {}),
        }
        with self._store.translated(f"registering {name}"):
            experiment_id = self._experiment_for(name)
            run = client.create_run(experiment_id, tags=run_tags)
            run_id = run.info.run_id
            try:
                now_ms = int(datetime.now(UTC).timestamp() * 1000)
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, now_ms, 0) for k, v in metrics.items()],
                    params=[Param(k, v) for k, v in params.items()],
                )
                self._log_artifacts(run_id, lineage.artifacts)
                requirements = list(lineage.requirements)
                with _use_tracking_uri(self.tracking_uri), mlflow.start_run(run_id=run_id):
                    info = flavor.log_model(model, requirements)
                self._ensure_registered_model(name)
                version_tags = {
                    **lineage.to_tags(),
                    **tags,
                    lifecycle.STAGE_TAG: lifecycle.NONE,
                    lifecycle.AUTHOR_TAG: self.user,
                }
                with _use_tracking_uri(self.tracking_uri):  # it resolves the logged model
                    mv = client.create_model_version(
                        name,
                        info.model_uri,
                        run_id=run_id,
                        tags=version_tags,
                        description=description,
                        model_id=info.model_id,
                    )
            except BaseException:
                self._end_run(run_id, RunStatus.to_string(RunStatus.FAILED))
                raise
            return VersionState.of(mv)  # the run was finished when log_model's block closed

    def _end_run(self, run_id: str, status: str) -> None:
        with suppress(Exception):  # the store may be the very thing that failed
            self._store.client.set_terminated(run_id, status)

    def _experiment_for(self, name: str) -> str:
        """MLFLOW_EXPERIMENT_ID / _NAME when set, else an experiment named after the model."""
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        return experiment_id(self._store.client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or name)

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._store.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _log_artifacts(self, run_id: str, artifacts: Mapping[str, bytes]) -> None:
        if not artifacts:
            return
        with tempfile.TemporaryDirectory(prefix="jupyreg-") as tmp:
            for relative, content in artifacts.items():
                path = Path(tmp, relative)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            self._store.client.log_artifacts(run_id, tmp)

    # reading -----------------------------------------------------------------------

    def models(self) -> pd.DataFrame:
        """One row per registered model: latest version and current stage holders."""
        import pandas as pd

        rows = []
        for model in self._store.registered_models():
            aliases = {a: int(v) for a, v in (model.aliases or {}).items()}
            latest = max((int(v.version) for v in model.latest_versions or ()), default=None)
            rows.append(
                {
                    "name": model.name,
                    "latest_version": latest,
                    "production": aliases.get("production"),
                    "staging": aliases.get("staging"),
                    "description": model.description or "",
                    "updated": _timestamp(model.last_updated_timestamp),
                }
            )
        columns = ["name", "latest_version", "production", "staging", "description", "updated"]
        return pd.DataFrame(rows, columns=columns)

    def get(self, name: str, version: int | str) -> ModelVersion:
        state = self._store.version(name, _version_number(version))
        run = self._store.runs([state.run_id] if state.run_id else []).get(state.run_id or "")
        aliases = self._store.aliases(name)
        return _model_version(state, run, aliases)

    def versions(self, name: str) -> pd.DataFrame:
        """One row per version: stage, aliases, created, author, metrics and lineage summary."""
        import pandas as pd

        records = self._version_records(name)
        rows = []
        metric_names = sorted({m for mv in records for m in mv.metrics})
        for mv in records:
            row = {
                "version": mv.version,
                "stage": mv.stage,
                "aliases": ",".join(mv.aliases),
                "created": mv.created,
                "author": mv.author,
                "run_id": mv.run_id,
            }
            row.update({m: mv.metrics.get(m) for m in metric_names})
            row.update(_lineage_summary(mv.tags))
            rows.append(row)
        head, lineage = VERSION_FIELDS[:6], VERSION_FIELDS[6:]
        columns = [*head, *metric_names, *lineage]
        return pd.DataFrame(rows, columns=columns)

    def compare(self, name: str, versions: Iterable[int | str] | None = None) -> pd.DataFrame:
        """Rows are fields (stage, metrics.*, params.*, lineage tags), columns are versions;
        the boolean ``differs`` column marks the fields whose values are not all equal."""
        import pandas as pd

        wanted = {_version_number(v) for v in versions} if versions is not None else None
        records = self._version_records(name, wanted)
        fields: dict[str, dict[int, Any]] = {}
        for mv in records:
            values = {"stage": mv.stage, "author": mv.author, "created": mv.created}
            values.update({f"metrics.{k}": v for k, v in mv.metrics.items()})
            values.update({f"params.{k}": v for k, v in mv.params.items()})
            values.update(
                {
                    k[len("jupyreg.") :]: v
                    for k, v in mv.tags.items()
                    if k.startswith("jupyreg.")
                    and k != LINEAGE_TAG
                    and not k.startswith((lifecycle.EVENT_PREFIX, lifecycle.REQUEST_PREFIX))
                    and k not in (lifecycle.STAGE_TAG, lifecycle.AUTHOR_TAG)
                }
            )
            for key, value in values.items():
                fields.setdefault(key, {})[mv.version] = value
        frame = pd.DataFrame.from_dict(
            fields, orient="index", columns=[mv.version for mv in records]
        )
        frame.index.name = "field"
        frame["differs"] = [
            len({repr(v) for v in row}) > 1 for row in frame.itertuples(index=False)
        ]
        return frame

    def history(self, name: str, version: int | str | None = None) -> pd.DataFrame:
        """Every stage change of the model (or one version), oldest first."""
        import pandas as pd

        states = self._store.model_versions(name)
        if version is not None:
            states = {v: s for v, s in states.items() if v == _version_number(version)}
            if not states:
                self._store.version(name, _version_number(version))  # NotFound message
        events = sorted((e for s in states.values() for e in s.events()), key=lambda e: e.id)
        rows = [
            {
                "at": lifecycle.parse_iso(e.at),
                "version": e.version,
                "from_stage": e.from_stage,
                "to_stage": e.to_stage,
                "author": e.author,
                "reason": e.reason,
                "request_id": e.request_id,
            }
            for e in events
        ]
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)

    def requests(self, name: str | None = None, status: str | None = "pending") -> pd.DataFrame:
        """Promotion requests (pending by default; ``status=None`` for all)."""
        import pandas as pd

        if status is not None and status not in lifecycle.REQUEST_STATUSES:
            raise InvalidArgument(
                f"unknown request status {status!r}: use one of "
                f"{', '.join(lifecycle.REQUEST_STATUSES)} or None for all"
            )
        states = self._store.model_versions(name).values() if name else self._store.versions()
        found = sorted(
            (r for s in states for r in s.requests() if status is None or r.status == status),
            key=lambda r: r.created_at,
        )
        rows = [
            {
                "id": r.id,
                "name": r.name,
                "version": r.version,
                "to_stage": r.to_stage,
                "status": r.status,
                "requested_by": r.requested_by,
                "reason": r.reason,
                "created_at": lifecycle.parse_iso(r.created_at),
                "approved_by": ",".join(a.by for a in r.approvals),
                "decided_by": r.decided_by,
                "comment": r.comment,
                "decided_at": lifecycle.parse_iso(r.decided_at) if r.decided_at else None,
            }
            for r in found
        ]
        return pd.DataFrame(rows, columns=REQUEST_COLUMNS)

    def stage_at(self, name: str, stage: str, when: datetime | str) -> int | None:
        """The version that held ``stage`` at ``when`` (newest entrant if several), from history."""
        target = lifecycle.normalize_stage(stage)
        moment = lifecycle.parse_iso(when) if isinstance(when, str) else when
        if moment.tzinfo is None:
            moment = moment.astimezone()
        events = [e for s in self._store.model_versions(name).values() for e in s.events()]
        holders = lifecycle.stage_holders_at(events, target, moment)
        return holders[0] if holders else None

    def load(
        self,
        name: str,
        stage: str | None = "Production",
        *,
        version: int | str | None = None,
        alias: str | None = None,
    ) -> Any:
        """The MLflow pyfunc model of a version chosen by version, alias or stage."""
        import mlflow.pyfunc
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        if version is not None:
            number = self._store.version(name, _version_number(version)).version
        elif alias is not None:
            aliases = self._store.aliases(name)
            if alias not in aliases:
                known = ", ".join(sorted(aliases)) or "none"
                raise NotFound(f"{name} has no alias {alias!r} (aliases: {known})")
            number = aliases[alias]
        else:
            target = lifecycle.normalize_stage(stage or lifecycle.PRODUCTION)
            holder = self.holder(name, target)
            if holder is None:
                raise NotFound(f"{name} has no version in {target}")
            number = holder
        with self._store.translated(f"loading {name} v{number}"):
            location = self._store.client.get_model_version_download_uri(name, str(number))
            with _use_tracking_uri(self.tracking_uri):
                return mlflow.pyfunc.load_model(location)

    def holder(self, name: str, stage: str = "Production") -> int | None:
        """The version now in ``stage``, else None. Staging and Production are read from
        their alias, which moves in one step from the old holder to the new one (the stage
        tags change one version at a time); other stages give their newest holder."""
        target = lifecycle.normalize_stage(stage)
        alias = lifecycle.STAGE_ALIASES.get(target)
        if alias is not None and (version := self._store.aliases(name).get(alias)) is not None:
            return version
        holders = [v for v, s in self._store.model_versions(name).items() if s.stage == target]
        return max(holders, default=None)

    # users of a team server --------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Create a user on the tracking server (needs an admin's credentials)."""
        with self._user_admin("adding a user") as users:
            users.create_user(username, password)

    def grant(self, username: str, name: str, permission: str) -> None:
        """Give ``username`` ``permission`` (READ, EDIT, MANAGE or NO_PERMISSIONS) on the
        registered model ``name`` and on the experiment named after it, where registering
        logs its runs (created if missing). Granting again changes the permission."""
        level = permission.strip().upper()
        if level not in PERMISSIONS:
            raise InvalidArgument(
                f"unknown permission {permission!r}: choose one of {', '.join(PERMISSIONS)}"
            )
        from mlflow.exceptions import MlflowException

        with self._user_admin(f"granting {level} on {name}") as users:
            experiment = experiment_id(self._store.client, name)
            for kind, resource in (("registered_model", name), ("experiment", experiment)):
                try:
                    users.grant_user_permission(username, kind, resource, level)
                except MlflowException as exc:  # MLflow has no update: replace the grant
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    users.revoke_user_permission(username, kind, resource)
                    users.grant_user_permission(username, kind, resource, level)

    @contextmanager
    def _user_admin(self, what: str) -> Iterator[Any]:
        """MLflow's basic-auth client of this registry's server, its errors translated."""
        if not self.registry_uri.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"users live on a tracking server, not {self.registry_uri}: "
                "pass --tracking-uri http://..."
            )
        from mlflow.server.auth.client import AuthServiceClient

        with self._store.translated(what):
            yield AuthServiceClient(self.registry_uri)

    # CI/CD -------------------------------------------------------------------------

    def add_webhook(
        self,
        url: str,
        *,
        secret: str | None = None,
        events: Sequence[str] | None = None,
        name: str | None = None,
    ) -> Any:
        """Register an MLflow webhook (signed with ``secret``) for stage-change events;
        ``jupyreg.webhooks`` says which event means what and verifies deliveries."""
        from jupyreg.webhooks import DEFAULT_EVENTS

        chosen = list(events or DEFAULT_EVENTS)
        with self._store.translated(f"creating a webhook for {url}"):
            return self._store.client.create_webhook(
                name=name or f"jupyreg-{len(self._store.client.list_webhooks()) + 1}",
                url=url,
                events=chosen,
                secret=secret,
                description="jupyreg stage changes",
            )

    def webhooks(self) -> pd.DataFrame:
        import pandas as pd

        with self._store.translated("listing webhooks"):
            hooks = list(self._store.client.list_webhooks())
        rows = [
            {
                "id": h.webhook_id,
                "name": h.name,
                "url": h.url,
                "status": str(h.status),
                "events": ",".join(str(e) for e in h.events),
            }
            for h in hooks
        ]
        return pd.DataFrame(rows, columns=["id", "name", "url", "status", "events"])

    # panels ------------------------------------------------------------------------

    def compare_panel(self, name: str, versions: Iterable[int | str] | None = None) -> Any:
        """An ipywidgets panel comparing versions side by side (see ``jupyreg.widgets``)."""
        from jupyreg.widgets import compare_panel

        return compare_panel(self, name, versions)

    def promotion_panel(self, name: str) -> Any:
        """An ipywidgets panel to request, approve and reject promotions of ``name``."""
        from jupyreg.widgets import promotion_panel

        return promotion_panel(self, name)

    # the lifecycle -----------------------------------------------------------------

    def transition(
        self, name: str, version: int | str, stage: str, reason: str | None = None
    ) -> ModelVersion:
        """Move a version to ``stage`` when policy lets it go without approval."""
        number = _version_number(version)
        target = lifecycle.normalize_stage(stage)
        why = lifecycle.require_reason(reason, "a stage change")
        if server := self._server():
            done = server.call("transition", name=name, version=number, stage=target, reason=why)
            return self.get(done["name"], done["version"])
        with self._store.lock(name):
            states = self._store.model_versions(name)
            if number not in states:
                self._store.version(name, number)
            policy = self._policy(name)
            moves = lifecycle.plan_transition(name, number, target, _stages(states), policy, why)
            self._check_gates(name, number, target, states, policy)
            needed = policy.approvals_for(target)
            if needed:
                raise ApprovalRequired(
                    f"moving {name} v{number} to {target} needs {needed} approval(s) by someone "
                    f"other than the requester: file reg.request({name!r}, {number}, "
                    f"{target!r}, reason=...) (CLI: jupyreg request) and ask a reviewer to approve"
                )
            self._apply(name, states, moves, preferred=number)
        return self.get(name, number)

    def request(
        self, name: str, version: int | str, stage: str, reason: str | None = None
    ) -> Request:
        """File a promotion request; a reviewer approves or rejects it."""
        number = _version_number(version)
        target = lifecycle.normalize_stage(stage)
        why = lifecycle.require_reason(reason, "a promotion request")
        if server := self._server():
            return _request_from(
                server.call("request", name=name, version=number, stage=target, reason=why)
            )
        with self._store.lock(name):
            states = self._store.model_versions(name)
            state = states.get(number) or self._store.version(name, number)
            lifecycle.check_move(name, number, state.stage, target)
            self._check_gates(name, number, target, states, self._policy(name))
            for existing in state.requests():
                if existing.status == lifecycle.PENDING and existing.to_stage == target:
                    raise PolicyViolation(
                        f"request {existing.id} for {name} v{number} -> {target} is already "
                        f"pending (by {existing.requested_by}); approve or reject it first"
                    )
            request = Request.new(name, number, target, self.user, why)
            self._store.set_version_tag(name, number, request.tag_key, request.tag_value())
        return request

    def approve(self, request_id: str, comment: str | None = None) -> Request:
        """Approve a pending request; enough approvals apply its transition at once."""
        return self._decide(request_id, "approve", comment or "")

    def reject(self, request_id: str, comment: str | None = None) -> Request:
        return self._decide(request_id, "reject", comment or "")

    def cancel(self, request_id: str) -> Request:
        """Withdraw one's own pending request."""
        return self._decide(request_id, "cancel", "")

    def get_request(self, request_id: str) -> Request:
        """A request by id, whatever its status."""
        holder = self._store.request_holder(request_id)
        key = lifecycle.REQUEST_PREFIX + request_id
        return Request.from_tag(holder.name, holder.version, key, holder.tags[key])

    def _decide(self, request_id: str, verb: str, comment: str) -> Request:
        if server := self._server():
            return _request_from(server.call(verb, request_id=request_id, comment=comment))
        name = self._store.request_holder(request_id).name
        with self._store.lock(name):
            holder = self._store.request_holder(request_id)  # fresh, under the lock
            key = lifecycle.REQUEST_PREFIX + request_id
            request = Request.from_tag(holder.name, holder.version, key, holder.tags[key])
            policy = self._policy(holder.name)
            if verb == "approve":
                decided = request.with_approval(self.user, comment, policy)
            elif verb == "reject":
                decided = request.rejected(self.user, comment, policy)
            else:
                decided = request.cancelled(self.user)
            if decided.status == lifecycle.APPROVED:
                states = self._store.model_versions(holder.name)
                moves = lifecycle.plan_transition(
                    holder.name,
                    holder.version,
                    request.to_stage,
                    _stages(states),
                    policy,
                    request.reason,
                )
                self._check_gates(holder.name, holder.version, request.to_stage, states, policy)
                self._apply(
                    holder.name, states, moves, preferred=holder.version, request_id=request.id
                )
            self._store.set_version_tag(holder.name, holder.version, key, decided.tag_value())
        return decided

    def rollback(self, name: str, reason: str | None = None) -> ModelVersion:
        """Put the previous Production version back (it was approved before), archiving
        the current one; both moves get their own history event."""
        why = lifecycle.require_reason(reason, "a rollback")
        if server := self._server():
            done = server.call("rollback", name=name, reason=why)
            return self.get(done["name"], done["version"])
        with self._store.lock(name):
            states = self._store.model_versions(name)
            stages = _stages(states)
            current = [v for v, s in stages.items() if s == lifecycle.PRODUCTION]
            earlier = [
                e
                for s in states.values()
                for e in s.events()
                if e.to_stage == lifecycle.PRODUCTION and e.version not in current
            ]
            if not earlier:
                raise InvalidTransition(f"{name} has no earlier Production version to roll back to")
            previous = max(earlier, key=lambda e: e.id).version
            moves = [
                *(
                    Move(
                        v,
                        lifecycle.PRODUCTION,
                        lifecycle.ARCHIVED,
                        f"rolled back to v{previous}: {why}",
                    )
                    for v in current
                ),
                Move(previous, stages[previous], lifecycle.PRODUCTION, f"rollback: {why}"),
            ]
            self._apply(name, states, moves, preferred=previous)
        return self.get(name, previous)

    def _apply(
        self,
        name: str,
        states: Mapping[int, VersionState],
        moves: Sequence[Move],
        preferred: int,
        request_id: str | None = None,
    ) -> None:
        """Write each move: its history event first (the intent ``check`` repairs from),
        then the stage tag and MLflow's legacy stage; then point the stage aliases."""
        for move in moves:
            event = TransitionEvent.new(
                name,
                move.version,
                move.from_stage,
                move.to_stage,
                self.user,
                move.reason,
                request_id if move.version == preferred else None,
            )
            self._store.set_version_tag(name, move.version, event.tag_key, event.tag_value())
            self._store.set_version_tag(name, move.version, lifecycle.STAGE_TAG, move.to_stage)
            self._store.set_legacy_stage(name, move.version, move.to_stage)
        self._point_aliases(name, lifecycle.apply_moves(_stages(states), moves), preferred)

    def _point_aliases(
        self, name: str, stages: Mapping[int, str], preferred: int | None
    ) -> list[str]:
        current = self._store.aliases(name)
        changed = []
        for alias, target in lifecycle.alias_targets(stages, current, preferred).items():
            if current.get(alias) != target:
                self._store.point_alias(name, alias, target)
                changed.append(alias)
        return changed

    def policy(self, name: str) -> Policy:
        """The model's promotion policy: its ``jupyreg.policy`` tag, else
        ``[tool.jupyreg.policy]`` of the project's pyproject.toml, else the default (also
        before the model's first version exists)."""
        return self._policy(name, missing_ok=True)

    def set_policy(self, name: str, policy: Policy | None = None, **settings: Any) -> Policy:
        """Store a policy on the model: ``policy`` as given, or the current one with
        ``settings`` changed (e.g. ``thresholds=["test.auc >= 0.85"]``)."""
        if policy is None:
            policy = Policy.from_mapping({**self._policy(name).to_dict(), **settings})
        elif settings:
            raise InvalidArgument("pass either a Policy or settings, not both")
        if server := self._server():
            return Policy.from_mapping(
                server.call("policy", name=name, policy=policy.to_dict())["policy"]
            )
        with self._store.lock(name), self._store.translated(f"setting the policy of {name}"):
            self._store.registered_model(name)
            self._store.client.set_registered_model_tag(
                name, lifecycle.POLICY_TAG, policy.to_json()
            )
        return policy

    def _server(self) -> LifecycleServer | None:
        """The jupyreg endpoints when the registry is a ``--app-name jupyreg`` server."""
        with self._store.translated(f"contacting {self.registry_uri}"):
            return discover(self.registry_uri)

    def _policy(self, name: str, missing_ok: bool = False) -> Policy:
        try:
            model = self._store.registered_model(name)
        except NotFound:
            if not missing_ok:
                raise
            tagged = None
        else:
            tagged = (model.tags or {}).get(lifecycle.POLICY_TAG)
        if tagged:
            return Policy.from_json(tagged)
        return Policy.from_mapping(project_settings().get("policy", {}))

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
        runs = self._store.runs([states[v].run_id or "" for v in (number, *holders)])

        def metrics(version: int) -> dict[str, float]:
            run = runs.get(states[version].run_id or "")
            return dict(run.data.metrics) if run is not None else {}

        production = (holders[0], metrics(holders[0])) if holders else None
        failures = policy.failing_gates(target, states[number].tags, metrics(number), production)
        if failures:
            raise PolicyViolation(
                f"{name} v{number} cannot go to {target}: {len(failures)} gate(s) failed: "
                + "; ".join(failures)
            )

    # consistency -------------------------------------------------------------------

    def check(self, name: str | None = None, repair: bool = False) -> pd.DataFrame:
        """Disagreements between stage tags, history, aliases and MLflow's legacy stage.

        The history events are the truth; ``repair=True`` brings the rest in line with
        them (a stage set by plain MLflow without any event is adopted with a new event).
        """
        import pandas as pd

        if repair and (server := self._server()):
            problems = server.call("repair", name=name)["problems"]
            return pd.DataFrame(problems, columns=["name", "version", "problem", "repaired"])
        names = [name] if name else [m.name for m in self._store.registered_models()]
        problems: list[dict[str, Any]] = []
        for model in names:
            with self._store.lock(model) if repair else nullcontext():
                problems.extend(self._check_model(model, repair))
        return pd.DataFrame(problems, columns=["name", "version", "problem", "repaired"])

    def _check_model(self, name: str, repair: bool) -> list[dict[str, Any]]:
        states = self._store.model_versions(name)
        problems: list[dict[str, Any]] = []

        def found(version: int | None, problem: str) -> None:
            problems.append(
                {"name": name, "version": version, "problem": problem, "repaired": repair}
            )

        truth: dict[int, str] = {}
        for number, state in states.items():
            events = state.events()
            tag = state.tags.get(lifecycle.STAGE_TAG)
            if events:
                truth[number] = events[-1].to_stage
            else:  # a stage set by plain MLflow is newer than our registration-time tag
                legacy = state.legacy_stage
                truth[number] = legacy if legacy != lifecycle.NONE else tag or lifecycle.NONE
                if truth[number] != lifecycle.NONE:
                    found(number, f"in {truth[number]} without any history event")
                    if repair:
                        self._adopt(name, state, truth[number])
                    continue
            if tag != truth[number]:
                found(number, f"stage tag says {tag}, history says {truth[number]}")
                if repair:
                    self._store.set_version_tag(name, number, lifecycle.STAGE_TAG, truth[number])
            if state.legacy_stage != truth[number]:
                found(
                    number, f"MLflow stage says {state.legacy_stage}, history says {truth[number]}"
                )
                if repair:
                    self._store.set_legacy_stage(name, number, truth[number])
        production = [v for v, s in truth.items() if s == lifecycle.PRODUCTION]
        if len(production) > 1:
            found(None, f"{len(production)} versions in Production: {production}")
            if repair:
                keep = max(
                    production,
                    key=lambda v: states[v].events()[-1].id if states[v].events() else "",
                )
                moves = [
                    Move(
                        v,
                        lifecycle.PRODUCTION,
                        lifecycle.ARCHIVED,
                        f"check --repair: v{keep} is the Production version",
                    )
                    for v in production
                    if v != keep
                ]
                self._apply(name, states, moves, preferred=keep)
                truth = lifecycle.apply_moves(truth, moves)
        aliases = self._store.aliases(name)
        for alias, target in lifecycle.alias_targets(truth, aliases).items():
            if aliases.get(alias) != target:
                found(target, f"alias {alias!r} points at {aliases.get(alias)}, should be {target}")
        if repair:
            self._point_aliases(name, truth, None)
        return problems

    def _adopt(self, name: str, state: VersionState, stage: str) -> None:
        event = TransitionEvent.new(
            name,
            state.version,
            lifecycle.NONE,
            stage,
            self.user,
            "adopted by check --repair: stage was set outside jupyreg",
        )
        self._store.set_version_tag(name, state.version, event.tag_key, event.tag_value())
        self._store.set_version_tag(name, state.version, lifecycle.STAGE_TAG, stage)

    # batched reads -------------------------------------------------------------------

    def _version_records(self, name: str, wanted: set[int] | None = None) -> list[ModelVersion]:
        """ModelVersions of a model with runs and aliases in a constant number of calls."""
        states = self._store.model_versions(name)
        if wanted is not None:
            missing = wanted - set(states)
            if missing:
                self._store.version(name, min(missing))  # raises NotFound with the list
            states = {v: s for v, s in states.items() if v in wanted}
        runs = self._store.runs([s.run_id for s in states.values() if s.run_id])
        aliases = self._store.aliases(name)
        return [
            _model_version(s, runs.get(s.run_id or ""), aliases) for _, s in sorted(states.items())
        ]


def _authenticated_user(uri: str) -> str | None:
    """The user a tracking server will authenticate (MLflow's basic-auth credentials)."""
    if uri.startswith(("http://", "https://")):
        return os.environ.get("MLFLOW_TRACKING_USERNAME") or None
    return None


def _request_from(body: Mapping[str, Any]) -> Request:
    key = lifecycle.REQUEST_PREFIX + body["id"]
    return Request.from_tag(body["name"], int(body["version"]), key, body["tag"])


def _version_number(version: int | str) -> int:
    try:
        number = int(str(version).strip().lstrip("vV"))
    except ValueError:
        raise InvalidArgument(f"version must be a number such as 3, not {version!r}") from None
    if number < 1:
        raise InvalidArgument(f"version must be 1 or more, not {version!r}")
    return number


def _stages(states: Mapping[int, VersionState]) -> dict[int, str]:
    return {v: s.stage for v, s in states.items()}


def _timestamp(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _model_version(state: VersionState, run: Any, aliases: Mapping[str, int]) -> ModelVersion:
    lineage = state.tags.get(LINEAGE_TAG)
    record = json.loads(lineage) if lineage else {}
    author = state.tags.get(lifecycle.AUTHOR_TAG) or state.user_id
    if not author and run is not None:
        author = run.data.tags.get("mlflow.user")
    return ModelVersion(
        name=state.name,
        version=state.version,
        stage=state.stage,
        run_id=state.run_id,
        aliases=tuple(sorted(a for a, v in aliases.items() if v == state.version)),
        created=_timestamp(state.created_ms),
        author=author,
        description=state.description,
        source=state.source,
        metrics=dict(run.data.metrics) if run is not None else {},
        params=dict(run.data.params) if run is not None else {},
        lineage=record,
        tags=state.tags,
        warnings=tuple(record.get("warnings", ())),
    )


def _lineage_summary(tags: Mapping[str, str]) -> dict[str, Any]:
    dirty = tags.get("jupyreg.git.dirty")
    indices = sorted(
        int(key.split(".")[2])
        for key in tags
        if key.startswith("jupyreg.data.") and key.endswith(".md5") and key.count(".") == 3
    )
    data = [
        f"{tags.get(f'jupyreg.data.{n}.path', '?')}:{tags[f'jupyreg.data.{n}.md5'][:8]}"
        for n in indices
    ]
    gpus = tags.get("jupyreg.gpu.count")
    gpu = f"{gpus}x {tags.get('jupyreg.gpu.name', '')}".strip() if gpus and gpus != "0" else ""
    return {
        "git_commit": (tags.get("jupyreg.git.commit") or "")[:10] or None,
        "git_dirty": None if dirty is None else dirty == "true",
        "data": "; ".join(data) or None,
        "gpu": gpu or None,
    }
