"""State and actions of the promotion panel, without widgets: stage holders, pending
requests with whether the current user may decide them, the history timeline.

Every action goes through the ``Registry``; a refusal (any ``RegistryError``) becomes a
one-line ``message`` and leaves the state as the registry has it. Whether a user may
approve is asked of the lifecycle rules themselves (a dry run of ``Request.with_approval``),
so the panel never disagrees with the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle
from jupyreg.errors import PolicyViolation, RegistryError
from jupyreg.widgets.markup import one_line

if TYPE_CHECKING:
    from jupyreg.registry import Registry


@dataclass(frozen=True)
class PendingRequest:
    """A pending request; ``approve_blocked`` says why the current user may not approve it."""

    request: lifecycle.Request
    approvals_needed: int
    approve_blocked: str | None

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


@dataclass(frozen=True)
class Outcome:
    """The last action's result as one line; ``ok`` False for a refusal."""

    ok: bool
    text: str


class PromotionController:
    """The promotion panel's state for one model, seen as ``registry.user``."""

    def __init__(self, registry: Registry, name: str) -> None:
        self.registry = registry
        self.name = name
        self.stages: dict[int, str] = {}
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
        policy = self.registry.policy(self.name)
        requests = self.registry.request_records(self.name, status=lifecycle.PENDING)
        self.pending = [self._pending(request, policy) for request in requests]
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
            )
            for event in reversed(history)
        ]

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
        try:
            request.with_approval(self.user, "", policy)
        except PolicyViolation as exc:
            blocked: str | None = str(exc)
        else:
            blocked = None
        return PendingRequest(request, max(1, policy.approvals_for(request.to_stage)), blocked)

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
