"""State and actions of the promotion panel, without widgets: stage holders, pending
requests with whether the current user may decide them, the history timeline.

Every action goes through the ``Registry``; a refusal (any ``RegistryError``) becomes a
one-line ``message`` and leaves the state as the registry has it. Whether a user may
approve is asked of the lifecycle rules themselves (a dry run of ``Request.with_approval``),
so the panel never disagrees with the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle
from jupyreg.errors import RegistryError
from jupyreg.widgets.markup import one_line
from jupyreg.widgets.numbers import Delta, metric_deltas

if TYPE_CHECKING:
    from jupyreg.registry import Registry
    from jupyreg.staleness import Staleness


@dataclass(frozen=True)
class PendingRequest:
    """A pending request; ``approve_blocked`` says why the current user may not approve it."""

    request: lifecycle.Request
    approvals_needed: int
    approve_blocked: str | None
    metrics: dict[str, float] = field(default_factory=dict)  # the candidate's
    production: int | None = None  # the version in Production now
    deltas: dict[str, Delta] = field(default_factory=dict)  # candidate - Production

    @property
    def id(self) -> str:
        return self.request.id


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime | None
    version: int
    from_stage: str
    to_stage: str
    author: str
    reason: str
    request_id: str | None
    comments: tuple[tuple[str, str], ...] = ()  # (reviewer, comment) of its request


@dataclass(frozen=True)
class Outcome:
    """The last action's result as one line; ``ok`` False for a refusal."""

    ok: bool
    text: str


class PromotionController:
    """The promotion panel's state for one model, seen as ``registry.user``. Production's
    staleness is measured against the repository at ``repo_path`` (the kernel's working
    directory by default)."""

    def __init__(self, registry: Registry, name: str, repo_path: str = ".") -> None:
        self.registry = registry
        self.name = name
        self.repo_path = repo_path
        self.stages: dict[int, str] = {}
        self.metrics: dict[int, dict[str, float]] = {}
        self.reproduced: dict[int, str | None] = {}  # "passed" / "failed" / None
        self.staleness: Staleness | None = None  # None: no Production, or not measured
        self.staleness_error: str | None = None  # why it could not be measured
        self.pending: list[PendingRequest] = []
        self.timeline: list[TimelineEntry] = []
        self.outcome: Outcome | None = None
        self.refresh()

    @property
    def user(self) -> str:
        return self.registry.user

    # reading ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read stages, pending requests, history and policy (a constant number of
        batched registry calls). Raises the registry's error, e.g. ``NotFound``."""
        versions = self.registry.version_records(self.name)
        self.stages = {mv.version: mv.stage for mv in versions}
        self.metrics = {mv.version: dict(mv.metrics) for mv in versions}
        self.reproduced = {mv.version: mv.reproduced for mv in versions}
        self._measure_staleness()
        policy = self.registry.policy(self.name)
        requests = self.registry.request_records(self.name, status=None)
        pending = [r for r in requests if r.status == lifecycle.PENDING]
        self.pending = [self._pending(request, policy) for request in pending]
        by_id = {r.id: r for r in requests}
        history = self.registry.history_records(self.name)
        self.timeline = [
            TimelineEntry(
                at=lifecycle.parse_iso(event.at),
                version=event.version,
                from_stage=event.from_stage,
                to_stage=event.to_stage,
                author=event.author,
                reason=event.reason,
                request_id=event.request_id,
                comments=_comments(by_id.get(event.request_id or "")),
            )
            for event in reversed(history)
        ]

    def _measure_staleness(self) -> None:
        """Production against the repository; a failure to measure is shown, never raised
        (no git repository only leaves ``commits_behind`` unknown, with a warning)."""
        from jupyreg.staleness import staleness

        self.staleness, self.staleness_error = None, None
        if self.production is None:
            return
        try:
            self.staleness = staleness(self.registry, self.name, self.repo_path)
        except Exception as exc:  # the panel must open whatever the repository's state
            self.staleness_error = one_line(exc)

    def card(self, version: int | None = None) -> str:
        """The model card (Markdown with YAML front matter) of ``version``, else of
        Production. Raises the registry's error (``NotFound``)."""
        return self.registry.model_card(self.name, version)

    def reload(self) -> bool:
        """Refresh for the Refresh button: a failure becomes the outcome, not an exception."""
        try:
            self.refresh()
        except RegistryError as exc:
            self.outcome = Outcome(False, one_line(exc))
            return False
        self.outcome = None
        return True

    def _pending(self, request: lifecycle.Request, policy: lifecycle.Policy) -> PendingRequest:
        blocked = self.registry.approval_blocker(request, policy)
        production = self.production
        metrics = self.metrics.get(request.version, {})
        baseline = self.metrics.get(production, {}) if production is not None else {}
        return PendingRequest(
            request,
            max(1, policy.approvals_for(request.to_stage)),
            blocked,
            metrics=metrics,
            production=production,
            deltas=metric_deltas(metrics, baseline) if production != request.version else {},
        )

    @property
    def production(self) -> int | None:
        holders = [v for v, stage in self.stages.items() if stage == lifecycle.PRODUCTION]
        return max(holders) if holders else None

    def default_version(self) -> int | None:
        """The version a promotion most likely concerns: the newest in Staging without a
        pending request (on its way to Production), else the newest not yet staged."""
        asked = {p.request.version for p in self.pending}
        for stage in (lifecycle.STAGING, lifecycle.NONE):
            for version in self.versions:
                if self.stages[version] == stage and version not in asked:
                    return version
        return self.versions[0] if self.versions else None

    def default_target(self, version: int | None) -> str | None:
        """The next stage up from where ``version`` is (never Archived by default)."""
        targets = self.targets(version) if version is not None else ()
        forward = [t for t in targets if t != lifecycle.ARCHIVED]
        return (forward or list(targets) or [None])[0]

    @property
    def versions(self) -> list[int]:
        """Newest first, the order a version picker shows them."""
        return sorted(self.stages, reverse=True)

    def holders(self) -> dict[str, list[int]]:
        """Stage -> versions in it, for every stage (None and Archived included)."""
        found: dict[str, list[int]] = {stage: [] for stage in lifecycle.STAGES}
        for version in sorted(self.stages):
            found.setdefault(self.stages[version], []).append(version)
        return found

    def targets(self, version: int) -> tuple[str, ...]:
        """The stages ``version`` may move to from its current stage."""
        return lifecycle.ALLOWED_MOVES.get(self.stages.get(version, lifecycle.NONE), ())

    # actions ---------------------------------------------------------------------------

    def request(self, version: int, stage: str, reason: str) -> bool:
        """File a promotion request for someone else to approve."""
        return self._act(
            lambda: self.registry.request(self.name, version, stage, reason=reason),
            lambda r: (
                f"requested v{version} → {r.to_stage} (request {r.id}); "
                "a reviewer approves it here or with `jupyreg approve`"
            ),
        )

    def transition(self, version: int, stage: str, reason: str) -> bool:
        """Move now, where the policy needs no approval (else ApprovalRequired, inline)."""
        return self._act(
            lambda: self.registry.transition(self.name, version, stage, reason=reason),
            lambda mv: f"moved v{mv.version} to {mv.stage}",
        )

    def approve(self, request_id: str, comment: str = "") -> bool:
        return self._act(
            lambda: self.registry.approve(request_id, comment=comment),
            lambda r: (
                f"approved request {r.id}: v{r.version} is now in {r.to_stage}"
                if r.status == lifecycle.APPROVED
                else f"approved request {r.id}; it needs more approvals"
            ),
        )

    def reject(self, request_id: str, comment: str = "") -> bool:
        return self._act(
            lambda: self.registry.reject(request_id, comment=comment),
            lambda r: f"rejected request {r.id} (v{r.version} → {r.to_stage})",
        )

    def _act(self, action: Callable[[], Any], describe: Callable[[Any], str]) -> bool:
        """Run ``action``; refresh either way (a refusal often means the panel was stale)."""
        try:
            self.outcome = Outcome(True, describe(action()))
        except RegistryError as exc:
            self.outcome = Outcome(False, one_line(exc))
        done = self.outcome.ok
        try:
            self.refresh()
        except RegistryError as exc:
            self.outcome = Outcome(False, f"{self.outcome.text}; refresh failed: {one_line(exc)}")
        return done


def _comments(request: lifecycle.Request | None) -> tuple[tuple[str, str], ...]:
    """The reviewers' comments on ``request``: each approval's, and a rejection's."""
    if request is None:
        return ()
    found = [(a.by, a.comment) for a in request.approvals if a.comment]
    if request.status == lifecycle.REJECTED and request.comment and request.decided_by:
        found.append((request.decided_by, request.comment))
    return tuple(found)
