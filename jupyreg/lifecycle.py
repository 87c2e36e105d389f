"""The model lifecycle: stages, allowed moves, policy, requests and history events.

This is the one home of the lifecycle rules. It is pure (no MLflow import) so the same
rules run client-side in embedded mode and server-side in the MLflow app plugin.
Entities serialise to and from MLflow model-version tags (DESIGN.md §5).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from jupyreg.errors import InvalidArgument, InvalidTransition, PolicyViolation

NONE, STAGING, PRODUCTION, ARCHIVED = "None", "Staging", "Production", "Archived"
STAGES = (NONE, STAGING, PRODUCTION, ARCHIVED)

ALLOWED_MOVES: dict[str, tuple[str, ...]] = {
    NONE: (STAGING, ARCHIVED),
    STAGING: (PRODUCTION, ARCHIVED),
    PRODUCTION: (STAGING, ARCHIVED),
    ARCHIVED: (STAGING,),
}

STAGE_TAG = "jupyreg.stage"
EVENT_PREFIX = "jupyreg.event."
REQUEST_PREFIX = "jupyreg.request."
POLICY_TAG = "jupyreg.policy"
AUTHOR_TAG = "jupyreg.author"
STAGE_ALIASES = {STAGING: "staging", PRODUCTION: "production"}
"""Aliases that point at the current holder of a stage."""

PENDING, APPROVED, REJECTED, CANCELLED = "pending", "approved", "rejected", "cancelled"
REQUEST_STATUSES = (PENDING, APPROVED, REJECTED, CANCELLED)


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sortable_id(moment: datetime) -> str:
    """An id that sorts by time, then randomly: ``20261126T191500123456Z-a1b2c3d4``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)


def normalize_stage(stage: str) -> str:
    """Canonical stage name for case-insensitive input ('production' -> 'Production')."""
    text = str(stage).strip().lower()
    for canonical in STAGES:
        if canonical.lower() == text:
            return canonical
    raise InvalidTransition(
        f"unknown stage {stage!r}: use one of {', '.join(STAGES)} (case does not matter)"
    )


def require_reason(reason: str | None, action: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidArgument(f"{action} needs a reason: pass reason='why this change'")
    return text


def check_move(name: str, version: int | None, current: str, target: str) -> None:
    """Raise InvalidTransition unless ``current -> target`` is an allowed move."""
    allowed = ALLOWED_MOVES[current]
    label = f"{name} v{version}" if version else f"a new version of {name}"
    if target == current:
        raise InvalidTransition(f"{label} is already in {current}")
    if target not in allowed:
        raise InvalidTransition(
            f"cannot move {label} from {current} to {target}: "
            f"from {current} the allowed moves are to {', '.join(allowed)}"
        )


@dataclass(frozen=True)
class Policy:
    """Per-model promotion rules, stored as the ``jupyreg.policy`` tag."""

    approvals: Mapping[str, int] = field(default_factory=lambda: {PRODUCTION: 1})
    allow_self_approval: bool = False
    exclusive: tuple[str, ...] = (PRODUCTION,)

    def approvals_for(self, stage: str) -> int:
        return int(self.approvals.get(stage, 0))

    def to_json(self) -> str:
        return json.dumps(
            {
                "approvals": dict(self.approvals),
                "allow_self_approval": self.allow_self_approval,
                "exclusive": list(self.exclusive),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> Policy:
        if not text:
            return cls()
        raw = json.loads(text)
        default = cls()
        return cls(
            approvals={normalize_stage(k): int(v) for k, v in raw.get("approvals", {}).items()}
            or dict(default.approvals),
            allow_self_approval=bool(raw.get("allow_self_approval", False)),
            exclusive=tuple(normalize_stage(s) for s in raw.get("exclusive", default.exclusive)),
        )


@dataclass(frozen=True)
class TransitionEvent:
    """One stage change of one version; written once, never rewritten."""

    id: str
    name: str
    version: int
    from_stage: str
    to_stage: str
    author: str
    reason: str
    at: str
    request_id: str | None = None

    @property
    def tag_key(self) -> str:
        return EVENT_PREFIX + self.id

    def tag_value(self) -> str:
        return json.dumps(
            {
                "from": self.from_stage,
                "to": self.to_stage,
                "author": self.author,
                "reason": self.reason,
                "at": self.at,
                "request_id": self.request_id,
            }
        )

    @classmethod
    def from_tag(cls, name: str, version: int, key: str, value: str) -> TransitionEvent:
        raw = json.loads(value)
        return cls(
            id=key[len(EVENT_PREFIX) :],
            name=name,
            version=version,
            from_stage=raw["from"],
            to_stage=raw["to"],
            author=raw["author"],
            reason=raw["reason"],
            at=raw["at"],
            request_id=raw.get("request_id"),
        )

    @classmethod
    def new(
        cls,
        name: str,
        version: int,
        from_stage: str,
        to_stage: str,
        author: str,
        reason: str,
        request_id: str | None = None,
    ) -> TransitionEvent:
        moment = now()
        return cls(
            sortable_id(moment),
            name,
            version,
            from_stage,
            to_stage,
            author,
            reason,
            iso(moment),
            request_id,
        )


@dataclass(frozen=True)
class Approval:
    by: str
    at: str
    comment: str = ""


@dataclass(frozen=True)
class Request:
    """A promotion request, stored as one ``jupyreg.request.<id>`` tag on its version."""

    id: str
    name: str
    version: int
    to_stage: str
    requested_by: str
    reason: str
    created_at: str
    status: str = PENDING
    approvals: tuple[Approval, ...] = ()
    decided_by: str | None = None
    comment: str | None = None
    decided_at: str | None = None

    @property
    def tag_key(self) -> str:
        return REQUEST_PREFIX + self.id

    def tag_value(self) -> str:
        raw = asdict(self)
        del raw["id"], raw["name"], raw["version"]
        raw["to"] = raw.pop("to_stage")
        return json.dumps(raw)

    @classmethod
    def from_tag(cls, name: str, version: int, key: str, value: str) -> Request:
        raw = json.loads(value)
        return cls(
            id=key[len(REQUEST_PREFIX) :],
            name=name,
            version=version,
            to_stage=raw["to"],
            requested_by=raw["requested_by"],
            reason=raw["reason"],
            created_at=raw["created_at"],
            status=raw.get("status", PENDING),
            approvals=tuple(Approval(**a) for a in raw.get("approvals", ())),
            decided_by=raw.get("decided_by"),
            comment=raw.get("comment"),
            decided_at=raw.get("decided_at"),
        )

    @classmethod
    def new(cls, name: str, version: int, to_stage: str, requested_by: str, reason: str) -> Request:
        return cls(
            id=secrets.token_hex(4),
            name=name,
            version=version,
            to_stage=to_stage,
            requested_by=requested_by,
            reason=reason,
            created_at=iso(now()),
        )

    def with_approval(self, approver: str, comment: str, policy: Policy) -> Request:
        """The request after ``approver`` approves it; approved once enough distinct people did."""
        self._check_decidable(approver, policy, "approve")
        if any(a.by == approver for a in self.approvals):
            raise PolicyViolation(
                f"{approver} has already approved request {self.id}; "
                "another reviewer must approve it"
            )
        approvals = (*self.approvals, Approval(approver, iso(now()), comment))
        if len(approvals) < max(1, policy.approvals_for(self.to_stage)):
            return replace(self, approvals=approvals)
        return replace(
            self,
            approvals=approvals,
            status=APPROVED,
            decided_by=approver,
            comment=comment,
            decided_at=iso(now()),
        )

    def rejected(self, reviewer: str, comment: str, policy: Policy) -> Request:
        self._check_decidable(reviewer, policy, "reject")
        return replace(
            self, status=REJECTED, decided_by=reviewer, comment=comment, decided_at=iso(now())
        )

    def cancelled(self, user: str) -> Request:
        self._check_pending()
        if user != self.requested_by:
            raise PolicyViolation(
                f"only the requester ({self.requested_by}) can cancel request {self.id}; "
                "reject it instead"
            )
        return replace(self, status=CANCELLED, decided_by=user, decided_at=iso(now()))

    def _check_pending(self) -> None:
        if self.status != PENDING:
            raise PolicyViolation(
                f"request {self.id} is already {self.status}"
                + (f" by {self.decided_by}" if self.decided_by else "")
                + "; file a new request to try again"
            )

    def _check_decidable(self, reviewer: str, policy: Policy, verb: str) -> None:
        self._check_pending()
        if verb == "approve" and reviewer == self.requested_by and not policy.allow_self_approval:
            raise PolicyViolation(
                f"{reviewer} cannot approve their own request {self.id}: "
                "someone other than the requester must approve it"
            )


@dataclass(frozen=True)
class Move:
    """One version's stage change inside a transition."""

    version: int
    from_stage: str
    to_stage: str
    reason: str


def plan_transition(
    name: str,
    version: int,
    target: str,
    stages: Mapping[int, str],
    policy: Policy,
    reason: str,
) -> list[Move]:
    """The moves that put ``version`` into ``target``: displaced holders first, then it.

    ``stages`` maps every version of the model to its current stage. An exclusive stage
    (Production by default) archives its previous holder, with its own event.
    """
    current = stages[version]
    check_move(name, version, current, target)
    moves = []
    if target in policy.exclusive:
        moves = [
            Move(v, target, ARCHIVED, f"replaced by v{version} in {target}")
            for v, stage in sorted(stages.items())
            if stage == target and v != version
        ]
    return [*moves, Move(version, current, target, reason)]


def apply_moves(stages: Mapping[int, str], moves: Iterable[Move]) -> dict[int, str]:
    after = dict(stages)
    for move in moves:
        after[move.version] = move.to_stage
    return after


def alias_targets(
    stages: Mapping[int, str], aliases: Mapping[str, int], preferred: int | None = None
) -> dict[str, int | None]:
    """Where each stage alias should point: the preferred version if it holds the stage,
    else the alias's current target if it still does, else the newest holder, else nowhere."""
    targets: dict[str, int | None] = {}
    for stage, alias in STAGE_ALIASES.items():
        holders = sorted(v for v, s in stages.items() if s == stage)
        if preferred in holders:
            targets[alias] = preferred
        elif aliases.get(alias) in holders:
            targets[alias] = aliases[alias]
        else:
            targets[alias] = holders[-1] if holders else None
    return targets


def stage_holders_at(events: Iterable[TransitionEvent], stage: str, when: datetime) -> list[int]:
    """Versions that held ``stage`` at ``when``, the most recent entrant first."""
    entered: dict[int, str] = {}
    for event in sorted(events, key=lambda e: e.id):
        if parse_iso(event.at) > when:
            break
        if event.to_stage == stage:
            entered[event.version] = event.id
        else:
            entered.pop(event.version, None)
    return sorted(entered, key=lambda v: entered[v], reverse=True)
