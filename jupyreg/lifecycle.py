"""The model lifecycle: stages, allowed moves, policy, requests and history events.

This is the one home of the lifecycle rules. It is pure (no MLflow import) so the same
rules run client-side in embedded mode and server-side in the MLflow app plugin.
Entities serialise to and from MLflow model-version tags (DESIGN.md §5).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

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


_THRESHOLD = re.compile(r"^\s*([A-Za-z0-9_.\-/ ]+?)\s*(>=|<=|>|<|==)\s*([-+0-9.eE]+)\s*$")
_COMPARE = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}
_LOWER_IS_BETTER = ("loss", "error", "rmse", "mae", "mse", "latency")


def lower_is_better(metric: str) -> bool:
    """Metric direction by name: losses, errors and latencies improve downwards."""
    return any(word in metric.lower() for word in _LOWER_IS_BETTER)


def parse_threshold(text: str) -> tuple[str, str, float]:
    match = _THRESHOLD.match(str(text))
    if not match:
        raise InvalidArgument(
            f"threshold {text!r} is not of the form 'METRIC OP NUMBER', e.g. 'test.auc >= 0.85'"
        )
    try:
        return match.group(1).strip(), match.group(2), float(match.group(3))
    except ValueError:
        raise InvalidArgument(f"threshold {text!r}: {match.group(3)!r} is not a number") from None


@dataclass(frozen=True)
class Policy:
    """Per-model promotion rules, stored as the ``jupyreg.policy`` tag.

    Gates (clean git, dataset hashes, test metrics, thresholds, not worse than the current
    Production) apply to moves into ``gated_stages``; they are checked when a move is
    requested and again when it is applied.
    """

    approvals: Mapping[str, int] = field(default_factory=lambda: {PRODUCTION: 1})
    allow_self_approval: bool = False
    exclusive: tuple[str, ...] = (PRODUCTION,)
    gated_stages: tuple[str, ...] = (PRODUCTION,)
    require_clean_git: bool = False
    require_data_hashes: bool = False
    require_test_metrics: bool = False
    thresholds: tuple[str, ...] = ()
    not_worse_than_production: tuple[str, ...] = ()

    def approvals_for(self, stage: str) -> int:
        return int(self.approvals.get(stage, 0))

    def gates(self, target: str) -> bool:
        """Whether any gate applies to a move into ``target``."""
        return target in self.gated_stages and bool(
            self.require_clean_git
            or self.require_data_hashes
            or self.require_test_metrics
            or self.thresholds
            or self.not_worse_than_production
        )

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["approvals"] = dict(self.approvals)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Policy:
        return cls.from_mapping(json.loads(text)) if text else cls()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Policy:
        """A policy from JSON or ``[tool.jupyreg.policy]``; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidArgument(
                f"unknown policy setting(s) {', '.join(unknown)}: use {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = dict(raw)
        if "approvals" in values:
            values["approvals"] = {
                normalize_stage(k): int(v) for k, v in dict(values["approvals"]).items()
            }
        for key in ("exclusive", "gated_stages"):
            if key in values:
                values[key] = tuple(normalize_stage(s) for s in values[key])
        for key in ("thresholds", "not_worse_than_production"):
            if key in values:
                items = values[key]
                values[key] = (items,) if isinstance(items, str) else tuple(map(str, items))
        for key in (
            "allow_self_approval",
            "require_clean_git",
            "require_data_hashes",
            "require_test_metrics",
        ):
            if key in values and not isinstance(values[key], bool):
                raise InvalidArgument(f"policy setting {key} must be true or false")
        policy = cls(**values)
        for threshold in policy.thresholds:
            parse_threshold(threshold)
        return policy

    def failing_gates(
        self,
        target: str,
        tags: Mapping[str, str],
        metrics: Mapping[str, float],
        production: tuple[int, Mapping[str, float]] | None,
    ) -> list[str]:
        """Every gate a version fails for a move to ``target``, each with the actual values.

        ``tags`` are the version's tags, ``metrics`` its run's metrics, ``production`` the
        current Production version's number and metrics (None when there is none)."""
        if not self.gates(target):
            return []
        failures = []
        if self.require_clean_git:
            dirty = tags.get("jupyreg.git.dirty")
            if dirty is None:
                failures.append("clean git: no git state was recorded for this version")
            elif dirty != "false":
                failures.append(
                    f"clean git: registered from a dirty working tree (jupyreg.git.dirty={dirty})"
                )
        if self.require_data_hashes:
            failures.extend(_data_gate_failures(tags))
        if self.require_test_metrics and not any(m.startswith("test.") for m in metrics):
            recorded = ", ".join(sorted(metrics)) or "none"
            failures.append(f"test metrics: no test.* metric recorded (metrics: {recorded})")
        for threshold in self.thresholds:
            metric, op, bound = parse_threshold(threshold)
            if metric not in metrics:
                failures.append(f"threshold {metric} {op} {bound:g}: {metric} not recorded")
            elif not _COMPARE[op](metrics[metric], bound):
                failures.append(
                    f"threshold {metric} {op} {bound:g}: {metric} = {metrics[metric]:g}"
                )
        if production is not None:
            failures.extend(_regressions(self.not_worse_than_production, metrics, *production))
        return failures


def _data_gate_failures(tags: Mapping[str, str]) -> list[str]:
    indices = sorted(
        {
            int(k.split(".")[2])
            for k in tags
            if k.startswith("jupyreg.data.") and k.split(".")[2].isdigit()
        }
    )
    if not indices:
        return ["dataset hashes: no dataset hash recorded for this version"]
    failures = []
    for n in indices:
        path = tags.get(f"jupyreg.data.{n}.path", f"dataset {n}")
        if not tags.get(f"jupyreg.data.{n}.md5"):
            failures.append(f"dataset hashes: {path} has no hash (missing at registration)")
        elif tags.get(f"jupyreg.data.{n}.stale") == "true":
            failures.append(
                f"dataset hashes: {path} was stale at registration (DVC recorded "
                f"{tags.get(f'jupyreg.data.{n}.recorded_md5')}, workspace had "
                f"{tags.get(f'jupyreg.data.{n}.md5')}): run `dvc add` / `dvc commit` and retrain"
            )
    return failures


def _regressions(
    names: tuple[str, ...],
    metrics: Mapping[str, float],
    version: int,
    current: Mapping[str, float],
) -> list[str]:
    failures = []
    for metric in names:
        if metric not in metrics:
            failures.append(f"not worse than Production: {metric} not recorded")
        elif metric in current:
            worse = (
                metrics[metric] > current[metric]
                if lower_is_better(metric)
                else metrics[metric] < current[metric]
            )
            if worse:
                failures.append(
                    f"not worse than Production: {metric} = {metrics[metric]:g} is worse "
                    f"than Production v{version}'s {current[metric]:g}"
                )
    return failures


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
