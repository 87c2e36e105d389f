"""``Registry``: the facade every front end (magics, CLI, widgets, REST) calls.

It resolves the settings once, then delegates: registering to ``jupyreg.registration``,
reads to ``jupyreg.queries`` (typed records; DataFrames in ``jupyreg.frames``), lifecycle
steps to the backend chosen for this registry (``jupyreg.backend``), team-server admin to
``jupyreg.admin`` and webhooks to ``jupyreg.webhooks``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle, registration, reproduce, settings
from jupyreg.admin import TeamAdmin
from jupyreg.backend import Authorise, Backend, LocalBackend, open_backend
from jupyreg.entities import ModelVersion
from jupyreg.errors import InvalidArgument, NotFound, PolicyViolation, RegistryError, warn_split
from jupyreg.frames import DataFrameViews
from jupyreg.identity import resolve_user
from jupyreg.lifecycle import Policy, Request
from jupyreg.queries import Queries, TypedReads, version_number
from jupyreg.store import Store

if TYPE_CHECKING:
    import pandas as pd

    from jupyreg.lineage import Lineage
    from jupyreg.reproduce import Progress, Reproduction
    from jupyreg.staleness import Staleness


class Registry(TypedReads, DataFrameViews, TeamAdmin):
    """A model registry with a Staging → Production → Archived lifecycle, over MLflow.

    Settings: the arguments, else ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` /
    ``JUPYREG_USER``, else ``[tool.jupyreg]`` of the project's pyproject.toml, else MLflow's
    default (``sqlite:///mlflow.db`` in the current directory).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        *,
        user: str | None = None,
        store_class: type[Store] = Store,
        authorise: Authorise | None = None,
        publish_cards: bool = True,
        groups: Iterable[str] = (),
        attestation: Mapping[str, str] | None = None,
    ) -> None:
        """``groups`` and ``attestation``: a team server's, for the user it acts for (the
        groups its admins keep, the verified OIDC claims that named the user)."""
        resolved = settings.resolve(tracking_uri, registry_uri, user)
        self.tracking_uri = resolved.tracking_uri
        self.registry_uri = resolved.registry_uri
        self.user = resolve_user(resolved.user, self.registry_uri)
        self._actor = lifecycle.Actor(self.user, frozenset(groups), attestation)
        self._claimed = user or os.environ.get("JUPYREG_USER")
        self._default_policy = resolved.default_policy
        self._store = store_class(
            self.tracking_uri, self.registry_uri, artifact_location=resolved.artifact_location
        )
        self._authorise = authorise
        self._publish_cards = publish_cards
        self._queries = Queries(self._store)

    def __repr__(self) -> str:
        return f"Registry({self.registry_uri!r}, user={self.user!r})"

    @functools.cached_property
    def _backend(self) -> Backend:
        """Chosen on first use, once; a failure to choose is raised, not remembered."""
        reproduce.refuse_lifecycle()
        return open_backend(
            self._store, self._actor, self._default_policy, self._authorise, self._claimed
        )

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
        input_example: Any = None,
        force: bool = True,
    ) -> ModelVersion:
        """Log ``model`` to MLflow, register it as a new version of ``name`` with its lineage
        (and, from ``input_example`` or the model's own feature names, its signature).

        Everything is validated before anything is written. If writing fails, the raised
        error carries ``.lineage`` so ``register(..., lineage=err.lineage)`` can retry.
        ``force=False`` refuses (DuplicateVersion) a version identical to one of ``name``'s:
        same model bytes, metrics, params and lineage (``%%register`` does, unless --force).
        """
        prepared = registration.prepare(
            model, name, metrics, params, tags, description, input_example
        )
        if reproduce.reproducing():  # re-run by `jupyreg reproduce`: record, register nothing
            return reproduce.record_instead(prepared)
        target = lifecycle.normalize_stage(stage) if stage else None
        if target:
            self._backend.check_registration_stage(prepared.name, target)
        if lineage is None:
            from jupyreg.lineage import capture

            lineage = capture(data=data, notebook=notebook, user_ns=user_ns, model=model)
        try:  # the duplicate check reads the registry too: a retry keeps the lineage
            prepared = registration.fingerprinted(self._store, model, prepared, lineage, force)
            state = registration.log_and_register(self._store, model, prepared, lineage, self.user)
        except RegistryError as exc:
            exc.lineage = lineage  # type: ignore[attr-defined]
            raise
        if target:
            why = reason or f"registered into {target}"
            return self._backend.transition(prepared.name, state.version, target, why)
        return self.get(prepared.name, state.version)

    def load(
        self,
        name: str,
        stage: str | None = "Production",
        *,
        version: int | str | None = None,
        alias: str | None = None,
    ) -> Any:
        """The MLflow pyfunc model of a version chosen by version, alias or stage; a
        ``SplitReferences`` warning when the model's stage references disagree (a stage
        changed outside jupyreg: ``models:/NAME/Production`` may load another version)."""
        warn_split(self._queries.model(name).split)
        if version is not None:
            number = self._store.version(name, version_number(version)).version
        elif alias is not None:
            number = self._queries.alias_target(name, alias)
        else:
            target = lifecycle.normalize_stage(stage or lifecycle.PRODUCTION)
            number = self.holder(name, target)
            if number is None:
                raise NotFound(f"{name} has no version in {target}")
        return self._store.load_model(name, number)

    def model_dir(self, name: str, version: int | str, into: str | None = None) -> str:
        """The local directory holding a version's model files (``mlflow.pyfunc.load_model``
        loads it): the artifact store's own where it is local, else a download into
        ``into`` (a new temp directory when None)."""
        number = self._store.version(name, version_number(version)).version
        return self._store.model_dir(name, number, into)

    # the lifecycle -----------------------------------------------------------------

    def transition(
        self, name: str, version: int | str, stage: str, reason: str | None = None
    ) -> ModelVersion:
        """Move a version to ``stage`` when policy lets it go without approval."""
        number = version_number(version)
        target = lifecycle.normalize_stage(stage)
        why = lifecycle.require_reason(reason, "a stage change")
        moved = self._backend.transition(name, number, target, why)
        self._publish_card(name, moved.version, moved.stage)
        return moved

    def request(
        self, name: str, version: int | str, stage: str, reason: str | None = None
    ) -> Request:
        """File a promotion request; a reviewer approves or rejects it."""
        number = version_number(version)
        target = lifecycle.normalize_stage(stage)
        why = lifecycle.require_reason(reason, "a promotion request")
        return self._backend.request(name, number, target, why)

    def approve(self, request_id: str, comment: str | None = None) -> Request:
        """Approve a pending request; enough approvals apply its transition at once."""
        decided = self._backend.decide(request_id, "approve", comment or "")
        if decided.status == lifecycle.APPROVED:
            self._publish_card(decided.name, decided.version, decided.to_stage)
        return decided

    def reject(self, request_id: str, comment: str | None = None) -> Request:
        return self._backend.decide(request_id, "reject", comment or "")

    def cancel(self, request_id: str) -> Request:
        """Withdraw one's own pending request."""
        return self._backend.decide(request_id, "cancel", "")

    def model_card(self, name: str, version: int | str | None = None) -> str:
        """The version's model card (Hugging Face Hub Markdown); Production by default."""
        from jupyreg.card import model_card

        return model_card(self, name, version)

    def staleness(self, name: str, repo_path: str | os.PathLike[str] = ".") -> Staleness:
        """How far Production is behind the repository at ``repo_path``: code, data, age."""
        from jupyreg.staleness import staleness

        return staleness(self, name, repo_path)

    def reproduce(
        self,
        name: str,
        version: int | str,
        tolerance: float = 1e-6,
        *,
        confirm: bool = True,
        env: Mapping[str, str] | None = None,
        network: bool = True,
        progress: Progress | None = None,
        repo_path: str | os.PathLike[str] = ".",
    ) -> Reproduction:
        """Re-run the version's code (commit, diff, DVC data, transcript) in a sandboxed kernel
        after saying what runs and asking (``confirm``); compare its metrics, keep the outcome."""
        return reproduce.reproduce(
            self, self._store, name, version, tolerance, progress, repo_path, confirm, env, network
        )

    def keep_reproduction(self, name: str, version: int, record: dict[str, Any]) -> str:
        """Keep a reproduction's outcome on the version (``reproduce`` does); its id."""
        return self._backend.keep_reproduction(name, version, record)

    def delete_version(self, name: str, version: int | str) -> None:
        """Delete a None or Archived version; its history is kept on the model first."""
        self._backend.delete_version(name, version_number(version))

    def rollback(self, name: str, reason: str | None = None) -> ModelVersion:
        """Put the previous Production version back (it was approved before), archiving
        the current one; both moves get their own history event."""
        why = lifecycle.require_reason(reason, "a rollback")
        restored = self._backend.rollback(name, why)
        self._publish_card(name, restored.version, restored.stage)
        return restored

    def _publish_card(self, name: str, version: int, stage: str) -> None:
        """A version entering Production gets its model card (``model_card.md``) among its
        run's artifacts, written where the lifecycle is applied: here, or by the jupyreg
        server this registry is a client of. A card that cannot be written never fails the
        step that already happened (``jupyreg card`` prints it)."""
        local = isinstance(self._backend, LocalBackend)
        if stage != lifecycle.PRODUCTION or not self._publish_cards or not local:
            return
        from jupyreg.card import publish_card

        with contextlib.suppress(RegistryError):
            publish_card(self, name, version, store=self._store)

    def policy(self, name: str) -> Policy:
        """The policy in force: the model's ``jupyreg.policy`` tag, else the default of the
        place that enforces it (``[tool.jupyreg.policy]`` of this project, or of a jupyreg
        server's), else one approval by someone else for Production."""
        return self._backend.policy(name)

    def approval_blocker(self, request: Request, policy: Policy | None = None) -> str | None:
        """Why this registry's user may not approve ``request``, in the lifecycle's words
        (the stage's approvers, the two-person rule, a decided request); None when they
        may. A front end shows the inbox from it; permissions are judged when one acts."""
        actor = lifecycle.Actor(self.user, self._backend.groups_of(self.user))
        try:
            request.with_approval(actor, "", policy or self.policy(request.name))
        except PolicyViolation as exc:
            return str(exc)
        return None

    def set_policy(
        self,
        name: str,
        policy: Policy | None = None,
        *,
        reason: str | None = None,
        **changes: Any,
    ) -> Policy:
        """Store a policy on the model: ``policy`` as given, or the current one with
        ``changes`` (e.g. ``thresholds=["test.auc >= 0.85"]``). The change is kept with its
        author and ``reason`` (``policy_history``)."""
        if policy is None:
            self._store.registered_model(name)  # NotFound before anything else
            policy = Policy.from_mapping({**self.policy(name).to_dict(), **changes})
        elif changes:
            raise InvalidArgument("pass either a Policy or settings, not both")
        else:
            policy = Policy.from_mapping(policy.to_dict())  # the same checks as any other
        why = lifecycle.check_text(reason or "", "the reason of a policy change")
        return self._backend.set_policy(name, policy, why)

    def check(
        self, name: str | None = None, repair: bool = False, repo_path: str | None = "."
    ) -> pd.DataFrame:
        """Disagreements between stage tags, history, aliases and MLflow's legacy stage
        (``kind`` "disagreement"), and Production versions gone stale against the
        repository at ``repo_path`` (``kind`` "stale": a warning, nothing to repair; None:
        not looked at, as on a server, whose directory is not the users' repository).

        The history events are the truth; ``repair=True`` brings the rest in line with
        them (a stage set by plain MLflow without any event is adopted with a new event).
        """
        import pandas as pd

        from jupyreg.staleness import stale_findings

        problems = [{**p, "kind": "disagreement"} for p in self._backend.check(name, repair)]
        if repo_path is not None:
            names = [name] if name else [model.name for model in self.model_records()]
            problems += stale_findings(self, names, repo_path)
        return pd.DataFrame(problems, columns=["name", "version", "problem", "repaired", "kind"])

    def finish_steps(self, name: str | None = None) -> None:
        """Finish, forward, every lifecycle step a crash interrupted (a server does it as
        it starts; any later step of the model would do it too)."""
        self._backend.finish(name)
