"""The model lifecycle: stages, allowed moves, policy, requests, history events, and the
planning of every step (transition, decision, rollback, reconciliation).

This is the one home of the lifecycle rules. It is pure (no MLflow import) so the same
rules run client-side in embedded mode and server-side in the MLflow app plugin, and are
tested in milliseconds. ``jupyreg.tags`` stores the entities as MLflow tags.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from jupyreg import schema
from jupyreg.errors import (
    ApprovalRequired,
    InvalidArgument,
    InvalidTransition,
    PolicyViolation,
    ask_for,
    hint,
)

NONE, STAGING, PRODUCTION, ARCHIVED = "None", "Staging", "Production", "Archived"
STAGES = (NONE, STAGING, PRODUCTION, ARCHIVED)

ALLOWED_MOVES: dict[str, tuple[str, ...]] = {
    NONE: (STAGING, ARCHIVED),
    STAGING: (PRODUCTION, ARCHIVED),
    PRODUCTION: (STAGING, ARCHIVED),
    ARCHIVED: (STAGING,),
}

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
    raise InvalidArgument(
        f"unknown stage {stage!r}: use one of {', '.join(STAGES)} (case does not matter)"
    )


MAX_TEXT = 5_000
"""Characters a reason or a comment may have: a step records them in tags whose values
MLflow caps at 100,000 characters, so they are refused before anything is written."""


def require_reason(reason: str | None, action: str) -> str:
    text = check_text(reason, f"the reason of {action}")
    if not text:
        raise InvalidArgument(f"{action} needs a reason", hint=ask_for("reason"), field="reason")
    return text


def check_text(text: str | None, what: str) -> str:
    """``text`` stripped, refused when it is not text or longer than ``MAX_TEXT``."""
    if text is not None and not isinstance(text, str):
        raise InvalidArgument(f"{what} must be text, not {type(text).__name__}")
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidArgument(
            f"{what} has {len(text):,} characters; at most {MAX_TEXT:,} are kept: shorten it"
        )
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
        bound = float(match.group(3))
    except ValueError:
        raise InvalidArgument(f"threshold {text!r}: {match.group(3)!r} is not a number") from None
    if not math.isfinite(bound):
        raise InvalidArgument(f"threshold {text!r}: {match.group(3)!r} is not a finite number")
    return match.group(1).strip(), match.group(2), bound


GROUP_PREFIX = "group:"
"""An approvers entry naming a group (``group:risk``) rather than one user."""


@dataclass(frozen=True)
class Actor:
    """Who takes a step: the user, the groups a team server's admins put them in, and the
    workload attestation (a verified OIDC token's claims) that names them, if any."""

    name: str
    groups: frozenset[str] = frozenset()
    attestation: Mapping[str, str] | None = None

    def is_one_of(self, entries: Iterable[str]) -> bool:
        """Whether an approvers list (user names and ``group:NAME``) includes this actor."""
        return any(
            entry == self.name
            or (entry.startswith(GROUP_PREFIX) and entry[len(GROUP_PREFIX) :] in self.groups)
            for entry in entries
        )


@dataclass(frozen=True)
class PolicyChange:
    """One change of a model's policy: who set which policy, why, when; never rewritten."""

    id: str
    name: str
    author: str
    reason: str
    at: str
    policy: Mapping[str, Any]

    @classmethod
    def new(cls, name: str, author: str, reason: str, policy: Policy) -> PolicyChange:
        moment = now()
        return cls(sortable_id(moment), name, author, reason, iso(moment), policy.to_dict())


@dataclass(frozen=True)
class Policy:
    """Per-model promotion rules, stored as the ``jupyreg.policy`` tag.

    Gates (clean git, dataset hashes, test metrics, thresholds, not worse than the current
    Production, a passing reproduction) apply to moves into ``gated_stages``; they are
    checked when a move is requested and again when it is applied.
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
    require_compatible_schema: bool = False
    require_reproduced: bool = False
    approvers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per stage, who alone may approve, reject or apply a move into it: user names and
    ``group:NAME`` (groups are kept by a team server's admins); a stage not named: anyone
    the server's permissions let."""

    def approvals_for(self, stage: str) -> int:
        return int(self.approvals.get(stage, 0))

    def check_approver(self, stage: str, actor: Actor, action: str) -> None:
        """Refuse ``actor`` ``action`` (e.g. "approve v3's move to Production") when the
        policy names who may decide moves into ``stage`` and ``actor`` is not one of them."""
        allowed = self.approvers.get(stage)
        if allowed and not actor.is_one_of(allowed):
            groups = f" (in {', '.join(sorted(actor.groups))})" if actor.groups else ""
            raise PolicyViolation(
                f"{actor.name}{groups} may not {action}: the policy's {stage} approvers are "
                f"{', '.join(allowed)}"
            )

    def gates(self, target: str) -> bool:
        """Whether any gate applies to a move into ``target``."""
        return target in self.gated_stages and bool(
            self.require_clean_git
            or self.require_data_hashes
            or self.require_test_metrics
            or self.thresholds
            or self.not_worse_than_production
            or self.require_compatible_schema
            or self.require_reproduced
        )

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["approvals"] = dict(self.approvals)
        raw["approvers"] = {stage: list(who) for stage, who in self.approvers.items()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Policy:
        """A policy from JSON or ``[tool.jupyreg.policy]``, in exactly the shape ``to_dict``
        gives; anything else (unknown keys, wrong types, unknown stages, out-of-range
        numbers, over-long text) is refused with InvalidArgument naming the setting."""
        if not isinstance(raw, Mapping):
            raise InvalidArgument(
                f"a policy must be a JSON object (a TOML table) of settings, "
                f"not {type(raw).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(k if isinstance(k, str) and len(k) <= 40 else _short(k) for k in raw)
        unknown = [k for k in unknown if k not in known]
        if unknown:
            raise InvalidArgument(
                f"unknown policy setting(s) {', '.join(unknown)}: use {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "approvals":
                values[key] = _policy_approvals(value)
            elif key == "approvers":
                values[key] = _policy_approvers(value)
            elif key == "exclusive":
                values[key] = _policy_exclusive(value)
            elif key == "gated_stages":
                stages = (_policy_stage(key, s) for s in _policy_list(key, value))
                values[key] = tuple(dict.fromkeys(stages))
            elif key in ("thresholds", "not_worse_than_production"):
                values[key] = tuple(_policy_list(key, value))
            elif not isinstance(value, bool):
                raise InvalidArgument(
                    f"policy setting {key} must be true or false, not {_shown(value)}"
                )
            else:
                values[key] = value
        for threshold in values.get("thresholds", ()):
            parse_threshold(threshold)
        for metric in values.get("not_worse_than_production", ()):
            if not metric.strip():
                raise InvalidArgument(
                    "policy setting not_worse_than_production lists an empty metric name"
                )
        policy = cls(**values)
        size = len(json.dumps(policy.to_dict(), sort_keys=True))
        if size > MAX_POLICY_JSON:
            raise InvalidArgument(
                f"the policy is {size:,} characters as JSON; MLflow keeps at most "
                f"{MAX_POLICY_JSON:,} in a model tag: shorten its thresholds or metric names"
            )
        return policy

    def failing_gates(
        self,
        target: str,
        evidence: Evidence,
        production: tuple[int, Mapping[str, float]] | None,
        production_evidence: Evidence | None = None,
    ) -> list[str]:
        """Every gate a version fails for a move to ``target``, each with the actual values.

        ``production`` is the current Production version's number and recorded metrics
        (None when there is none; empty when it has no record, so nothing to be worse than).
        A version without a metrics record fails every metric gate with one message.
        ``production_evidence``: the current Production's, for the schema gate."""
        if not self.gates(target):
            return []
        failures = []
        if self.require_compatible_schema and production is not None:
            current = production_evidence.input_schema if production_evidence else None
            broken = schema.incompatibility(evidence.input_schema, current, production[0])
            failures.extend([broken] if broken else [])
        metrics = evidence.metrics
        if self.require_clean_git:
            if evidence.git_dirty is None:
                failures.append("clean git: no git state was recorded for this version")
            elif evidence.git_dirty:
                failures.append(
                    "clean git: registered from a dirty working tree (uncommitted changes)"
                )
        if self.require_data_hashes:
            failures.extend(_data_gate_failures(evidence.datasets))
        if self.require_reproduced and evidence.reproduced != "passed":
            failures.append(
                "reproduced: "
                + ("its latest reproduction failed" if evidence.reproduced else "never reproduced")
                + " (run `jupyreg reproduce NAME VERSION` or reg.reproduce(name, version))"
            )
        if not evidence.metrics_recorded:
            judged = self.require_test_metrics or self.thresholds
            if judged or (production is not None and self.not_worse_than_production):
                failures.append(METRICS_NOT_RECORDED)
            return failures
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


MAX_APPROVALS = 100
"""Distinct approvers a policy may require for one stage."""
MAX_POLICY_ITEMS = 100
"""Entries a policy list (thresholds, metrics, stages) may have."""
MAX_POLICY_TEXT = 250
"""Characters of one threshold or metric name in a policy (MLflow's metric key limit)."""
MAX_POLICY_JSON = 100_000
"""Characters of the ``jupyreg.policy`` tag: MLflow's limit for a registered model's tag."""


def _short(value: Any) -> str:
    """``repr(value)`` cut to 40 characters (and no 4,300-digit number is ever printed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number of more than 64 bits"
    text = repr(value)
    return text[:40] + ("..." if len(text) > 40 else "")


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {_short(value)}"


def bounded_text(value: Any, what: str, limit: int, kind: str | None = None) -> str:
    """``value`` if it is text of at most ``limit`` characters with no NUL, else an
    ``InvalidArgument`` naming ``what`` (``kind``: how to call a wrong value's type)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be text, not {kind or _shown(value)}")
    if len(value) > limit:
        raise InvalidArgument(
            f"{what} has {len(value):,} characters; at most {limit:,} are allowed"
        )
    if "\x00" in value:
        raise InvalidArgument(f"{what} contains a NUL character")
    return value


def _policy_list(key: str, value: Any) -> list[str]:
    """A policy list setting: a list of strings (one string stands for a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidArgument(f"policy setting {key} must be a list of text, not {_shown(value)}")
    if len(items) > MAX_POLICY_ITEMS:
        raise InvalidArgument(
            f"policy setting {key} has {len(items):,} entries; at most {MAX_POLICY_ITEMS} are "
            "allowed"
        )
    for item in items:
        bounded_text(item, f"policy setting {key}: an entry", MAX_POLICY_TEXT)
    return list(items)


def _policy_stage(key: str, stage: Any) -> str:
    if not isinstance(stage, str) or len(stage) > MAX_POLICY_TEXT:
        raise InvalidArgument(f"policy setting {key}: {_shown(stage)} is not a stage name")
    try:
        return normalize_stage(stage)
    except InvalidArgument as exc:
        raise InvalidArgument(f"policy setting {key}: {exc}") from None


def _policy_approvals(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            'policy setting approvals must map stages to counts, e.g. {"Production": 1}, '
            f"not {_shown(value)}"
        )
    approvals: dict[str, int] = {}
    for stage, count in value.items():
        canonical = _policy_stage("approvals", stage)
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidArgument(
                f"policy setting approvals: the count for {canonical} must be a whole number, "
                f"not {_shown(count)}"
            )
        if not 0 <= count <= MAX_APPROVALS:
            raise InvalidArgument(
                f"policy setting approvals: the count for {canonical} must be 0 to "
                f"{MAX_APPROVALS}, not {_short(count)}"
            )
        if canonical in approvals:
            raise InvalidArgument(f"policy setting approvals names {canonical} twice")
        approvals[canonical] = count
    return approvals


def _policy_approvers(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            "policy setting approvers must map stages to lists of users and groups, e.g. "
            f'{{"Production": ["group:risk"]}}, not {_shown(value)}'
        )
    approvers: dict[str, tuple[str, ...]] = {}
    for stage, entries in value.items():
        canonical = _policy_stage("approvers", stage)
        if canonical in approvers:
            raise InvalidArgument(f"policy setting approvers names {canonical} twice")
        who = tuple(dict.fromkeys(e.strip() for e in _policy_list("approvers", entries)))
        if not who or any(not e or e == GROUP_PREFIX for e in who):
            raise InvalidArgument(
                f"policy setting approvers: {canonical} needs users or group:NAME entries, "
                "none of them empty"
            )
        approvers[canonical] = who
    return approvers


def _policy_exclusive(value: Any) -> tuple[str, ...]:
    """Stages with one holder at a time: Production always (its alias names one version),
    Staging when the policy says so."""
    stages = tuple(_policy_stage("exclusive", s) for s in _policy_list("exclusive", value))
    wrong = [s for s in stages if s not in (STAGING, PRODUCTION)]
    if wrong:
        raise InvalidArgument(
            f"policy setting exclusive: {wrong[0]} cannot be exclusive; list "
            f"{PRODUCTION} and, if you like, {STAGING}"
        )
    if PRODUCTION not in stages:
        raise InvalidArgument(
            f"policy setting exclusive must list {PRODUCTION}: at most one version is in "
            f"{PRODUCTION} at a time"
        )
    return tuple(dict.fromkeys(stages))


@dataclass(frozen=True)
class Dataset:
    """A dataset as recorded at registration."""

    path: str
    md5: str | None
    stale: bool = False
    recorded_md5: str | None = None


@dataclass(frozen=True)
class Evidence:
    """What the gates judge about a version: its git state, datasets and metrics."""

    git_dirty: bool | None = None
    datasets: tuple[Dataset, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_recorded: bool = True
    """False when the version has no metrics record from its registration."""
    input_schema: str | None = None
    """The input schema recorded at registration (``jupyreg.schema``), else None."""
    reproduced: str | None = None
    """The latest reproduction's outcome (``passed`` / ``failed``), None when never run."""


METRICS_NOT_RECORDED = (
    "metrics: none were recorded when this version was registered (it was created "
    "outside jupyreg, e.g. by a plain MLflow client), and the gates never judge a run's "
    "metrics, which can be logged again later: register the model again with "
    "reg.register(model, NAME, metrics={...}) (or %%register) and promote the new version"
)


def _data_gate_failures(datasets: tuple[Dataset, ...]) -> list[str]:
    if not datasets:
        return ["dataset hashes: no dataset hash recorded for this version"]
    failures = []
    for data in datasets:
        if not data.md5:
            failures.append(f"dataset hashes: {data.path} has no hash (missing at registration)")
        elif data.stale:
            failures.append(
                f"dataset hashes: {data.path} was stale at registration (DVC recorded "
                f"{data.recorded_md5}, workspace had {data.md5}): run `dvc add` / "
                "`dvc commit` and retrain"
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
    repaired_by: str | None = None
    """Who ran the ``check --repair`` that recorded a move made outside jupyreg (whose
    ``author`` is then the outside user, not the repairer); None for every other event."""
    attestation: Mapping[str, str] | None = None
    """The verified workload identity that named ``author`` (issuer, subject, repository,
    workflow, run_url, ref, environment); None when the author signed in as themselves."""

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
        repaired_by: str | None = None,
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
            repaired_by,
        )


@dataclass(frozen=True)
class Approval:
    by: str
    at: str
    comment: str = ""
    attestation: Mapping[str, str] | None = None


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

    def with_approval(self, approver: Actor, comment: str, policy: Policy) -> Request:
        """The request after ``approver`` approves it; approved once enough distinct people did."""
        self._check_decidable(approver, policy, "approve")
        if any(a.by == approver.name for a in self.approvals):
            raise PolicyViolation(
                f"{approver.name} has already approved request {self.id}; "
                "another reviewer must approve it"
            )
        approval = Approval(approver.name, iso(now()), comment, approver.attestation)
        approvals = (*self.approvals, approval)
        if len(approvals) < max(1, policy.approvals_for(self.to_stage)):
            return replace(self, approvals=approvals)
        return replace(
            self,
            approvals=approvals,
            status=APPROVED,
            decided_by=approver.name,
            comment=comment,
            decided_at=iso(now()),
        )

    def rejected(self, reviewer: Actor, comment: str, policy: Policy) -> Request:
        self._check_decidable(reviewer, policy, "reject")
        return replace(
            self, status=REJECTED, decided_by=reviewer.name, comment=comment, decided_at=iso(now())
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

    def _check_decidable(self, reviewer: Actor, policy: Policy, verb: str) -> None:
        self._check_pending()
        policy.check_approver(
            self.to_stage,
            reviewer,
            f"{verb} request {self.id} (v{self.version} to {self.to_stage})",
        )
        if (
            verb == "approve"
            and reviewer.name == self.requested_by
            and not policy.allow_self_approval
        ):
            raise PolicyViolation(
                f"{reviewer.name} cannot approve their own request {self.id}: "
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


# steps -------------------------------------------------------------------------------


def check_no_approval_needed(name: str, version: int | None, target: str, policy: Policy) -> None:
    """Raise ApprovalRequired when moving to ``target`` needs a request and its approval
    (``version`` None: registering straight into ``target``)."""
    needed = policy.approvals_for(target)
    if not needed:
        return
    if version is None:
        raise ApprovalRequired(
            f"registering straight into {target} needs {needed} approval(s)",
            hint="register without a stage, then "
            + hint(
                f"reg.request({name!r}, VERSION, {target!r}, reason=...)",
                *("request", name, "VERSION", target, "--reason", "TEXT"),
            ),
        )
    raise ApprovalRequired(
        f"moving {name} v{version} to {target} needs {needed} approval(s) by someone "
        "other than the requester",
        hint="file "
        + hint(
            f"reg.request({name!r}, {version}, {target!r}, reason=...)",
            *("request", name, str(version), target, "--reason", "TEXT"),
        )
        + " and ask a reviewer to approve",
    )


def check_new_request(
    name: str, version: int, current: str, target: str, existing: Iterable[Request]
) -> None:
    """A request is for an allowed move, and not a second pending one for the same move."""
    check_move(name, version, current, target)
    for request in existing:
        if request.status == PENDING and request.to_stage == target:
            raise PolicyViolation(
                f"request {request.id} for {name} v{version} -> {target} is already "
                f"pending (by {request.requested_by}); approve or reject it first"
            )


DECISIONS = ("approve", "reject", "cancel")


def decide(request: Request, verb: str, user: Actor, comment: str, policy: Policy) -> Request:
    """The request after ``user`` approves, rejects or cancels it. Approving a request that
    is already approved answers it as it is (a retried approval changes nothing)."""
    comment = check_text(comment, "the comment")
    if verb == "approve" and request.status == APPROVED:
        return request
    if verb == "approve":
        return request.with_approval(user, comment, policy)
    if verb == "reject":
        return request.rejected(user, comment, policy)
    if verb == "cancel":
        return request.cancelled(user.name)
    raise InvalidArgument(f"unknown decision {verb!r}: use one of {', '.join(DECISIONS)}")


def permission_for(target: str, current: str = NONE) -> str:
    """The MLflow permission a move from ``current`` into ``target`` needs on a team
    server: moves into or out of Production are MANAGE's, the rest EDIT's."""
    return "MANAGE" if PRODUCTION in (target, current) else "EDIT"


def plan_rollback(
    name: str, stages: Mapping[int, str], events: Iterable[TransitionEvent], reason: str
) -> tuple[int, list[Move]]:
    """The version a rollback restores (the latest earlier Production holder) and the moves:
    the current holders archived, then it back into Production."""
    current = [v for v, s in stages.items() if s == PRODUCTION]
    earlier = [e for e in events if e.to_stage == PRODUCTION and e.version not in current]
    if not earlier:
        raise InvalidTransition(f"{name} has no earlier Production version to roll back to")
    previous = max(earlier, key=lambda e: e.id).version
    moves = [
        *(Move(v, PRODUCTION, ARCHIVED, f"rolled back to v{previous}: {reason}") for v in current),
        Move(previous, stages[previous], PRODUCTION, f"rollback: {reason}"),
    ]
    return previous, moves


@dataclass(frozen=True)
class VersionFacts:
    """What a version's tags and MLflow say about its stage."""

    version: int
    events: tuple[TransitionEvent, ...]
    stage_tag: str | None
    legacy_stage: str


@dataclass(frozen=True)
class Finding:
    version: int | None
    problem: str


@dataclass(frozen=True)
class Reconciliation:
    """What disagrees and the writes that bring everything in line with the history."""

    findings: tuple[Finding, ...]
    adopted: Mapping[int, tuple[str, str]]
    """Stages MLflow's own API set outside jupyreg: (from, to), recorded with an event."""
    stage_tags: Mapping[int, str]
    legacy_stages: Mapping[int, str]
    moves: tuple[Move, ...]
    """Archive all but the latest entrant when several versions hold Production."""
    keep: int | None
    stages: Mapping[int, str]
    """Every version's stage once repaired (where the aliases must point)."""
    lost: Mapping[int, str | None] = field(default_factory=dict)
    """Versions deleted outside jupyreg, their history gone, with their last known stage
    (if the last step knew it); a repair records the loss so it is reported once."""
    changed_records: Mapping[int, str] = field(default_factory=dict)
    """Versions whose registration record changed since, with the record's seal now."""
    unrecorded_policy: Policy | None = None
    """The policy in force that no recorded change set; a repair records it as adopted."""


OUTSIDE_USER = "unknown"
"""Who made a move outside jupyreg: MLflow records no user of a stage change (its
``transition_model_version_stage`` sets only the stage and ``last_updated_timestamp``; a
version's ``user_id`` is never set by MLflow's own stores, and would name its creator)."""


def adopted_reason(from_stage: str, to_stage: str) -> str:
    return (
        f"adopted a move made outside jupyreg (by {OUTSIDE_USER}): "
        f"MLflow's stage {from_stage} -> {to_stage}"
    )


def adopted_event(
    name: str, version: int, from_stage: str, to_stage: str, repairer: str
) -> TransitionEvent:
    """The history event ``check --repair`` records for a stage MLflow's own API set: its
    author is whoever made the move (unknown to MLflow), ``repaired_by`` the repairer."""
    author = f"{OUTSIDE_USER} (outside jupyreg)"
    reason = adopted_reason(from_stage, to_stage)
    return TransitionEvent.new(
        name, version, from_stage, to_stage, author, reason, repaired_by=repairer
    )


def reconcile(facts: Iterable[VersionFacts], aliases: Mapping[str, int]) -> Reconciliation:
    """Compare stage tags, MLflow's stage and aliases with the history (the truth)."""
    findings: list[Finding] = []
    adopted: dict[int, str] = {}
    stage_tags: dict[int, str] = {}
    legacy: dict[int, str] = {}
    truth: dict[int, str] = {}
    latest: dict[int, str] = {}
    for fact in facts:
        number = fact.version
        history = fact.events[-1].to_stage if fact.events else NONE
        tag = fact.stage_tag or NONE
        if fact.events:
            latest[number] = fact.events[-1].id
        if fact.legacy_stage != history and tag == history:
            # only MLflow's stage moved: a plain MLflow client did it; adopt it
            truth[number] = fact.legacy_stage
            findings.append(
                Finding(
                    number,
                    f"MLflow stage says {fact.legacy_stage}, history says {history}: "
                    "changed outside jupyreg"
                    if fact.events
                    else f"in {fact.legacy_stage} without any history event",
                )
            )
            adopted[number] = (history, fact.legacy_stage)
            stage_tags[number] = fact.legacy_stage
            latest[number] = "~"  # the newest entrant, whatever the history says
            continue
        truth[number] = history if fact.events else tag
        if tag != truth[number]:
            findings.append(
                Finding(number, f"stage tag says {fact.stage_tag}, history says {truth[number]}")
            )
            stage_tags[number] = truth[number]
        if fact.legacy_stage != truth[number]:
            findings.append(
                Finding(
                    number,
                    f"MLflow stage says {fact.legacy_stage}, history says {truth[number]}",
                )
            )
            legacy[number] = truth[number]
    moves: list[Move] = []
    keep = None
    production = [v for v, s in truth.items() if s == PRODUCTION]
    if len(production) > 1:
        findings.append(Finding(None, f"{len(production)} versions in Production: {production}"))
        keep = max(production, key=lambda v: latest.get(v, ""))
        moves = [
            Move(v, PRODUCTION, ARCHIVED, f"check --repair: v{keep} is the Production version")
            for v in production
            if v != keep
        ]
        truth = apply_moves(truth, moves)
    for alias, target in alias_targets(truth, aliases).items():
        if aliases.get(alias) != target:
            findings.append(
                Finding(
                    target, f"alias {alias!r} points at {aliases.get(alias)}, should be {target}"
                )
            )
    return Reconciliation(tuple(findings), adopted, stage_tags, legacy, tuple(moves), keep, truth)


def split_references(
    name: str, newest: Iterable[VersionFacts], aliases: Mapping[str, int]
) -> str | None:
    """Whether ``models:/NAME/STAGE`` and ``models:/NAME@alias`` name different versions
    (a stage or an alias changed outside jupyreg): a message naming both references and
    the repair, else None. ``newest``: the newest version in each of MLflow's stages (the
    one ``models:/NAME/STAGE`` loads), ``aliases``: the model's; both are what a model
    listing already reads, so this judges the two references only, leaving the rest of
    the model to ``reconcile``. Production is exclusive: its references must agree.
    Staging's may name two versions that are both in Staging, by MLflow's stage and the
    stage tag alike."""
    known = {fact.version: fact for fact in newest}
    split = []
    for stage in (PRODUCTION, STAGING):
        alias = STAGE_ALIASES[stage]
        by_stage = max((v for v, f in known.items() if f.legacy_stage == stage), default=None)
        by_alias = aliases.get(alias)
        if by_stage == by_alias or _both_held(stage, (by_stage, by_alias), known):
            continue
        split.append(
            f"models:/{name}/{stage} is {_named(by_stage)} but "
            f"models:/{name}@{alias} is {_named(by_alias)}"
        )
    if not split:
        return None
    repair = hint(f"reg.check({name!r}, repair=True)", "check", name, "--repair")
    return f"{name}: {', and '.join(split)} (a stage was changed outside jupyreg); run {repair}"


def _both_held(
    stage: str, versions: tuple[int | None, ...], known: Mapping[int, VersionFacts]
) -> bool:
    """Whether every one of ``versions`` holds the non-exclusive ``stage`` by MLflow's stage
    and the stage tag (a version the read did not see is taken at its alias's word)."""
    if stage == PRODUCTION or None in versions:
        return False
    facts = [known[v] for v in versions if v in known]
    return all(f.legacy_stage == stage and f.stage_tag == stage for f in facts)


def _named(version: int | None) -> str:
    return "no version" if version is None else f"v{version}"


def lost_versions(
    existing: Iterable[int], kept: Iterable[int], step: Step | None
) -> dict[int, str | None]:
    """Versions that existed and are gone without their history kept, each with the stage
    the last step left it in (None if unknown): MLflow numbers versions 1, 2, ... and never
    reuses a number, so every missing number up to the newest known is one, as is a
    Staging/Production holder the last step recorded."""
    present = set(existing) | set(kept)
    held = dict(step.held) if step is not None else {}
    known = [*present, *held, *([step.latest] if step and step.latest else [])]
    return {v: held.get(v) for v in range(1, max(known, default=0) + 1) if v not in present}


def lost_finding(version: int, stage: str | None) -> Finding:
    where = f"was in {stage} at the last lifecycle step and " if stage else ""
    return Finding(
        version,
        f"v{version} {where}was deleted outside jupyreg: its history is lost (history and "
        "stage_at no longer show it); archive, then delete versions with "
        "reg.delete_version, never with a plain MLflow client; check --repair records "
        "the loss",
    )


def check_deletable(name: str, version: int, stages: Iterable[str]) -> None:
    """A version in Staging or Production (by jupyreg's tag or MLflow's stage) is not
    deleted: the lifecycle moves it out first."""
    held = [s for s in dict.fromkeys(stages) if s in (STAGING, PRODUCTION)]
    if held:
        raise InvalidTransition(
            f"{name} v{version} is in {held[0]} and cannot be deleted",
            hint="archive it first with "
            + hint(
                f"reg.transition({name!r}, {version}, 'Archived', reason=...)",
                *("promote", name, str(version), "Archived", "--reason", "TEXT"),
            )
            + ", then delete it",
        )


@dataclass(frozen=True)
class Step:
    """One lifecycle step — every move it causes and the request it settles — recorded as
    one intent before any of it is applied, then applied idempotently; an interrupted step
    is finished forward by whoever sees it next (DESIGN.md §7.6)."""

    id: str
    name: str
    author: str
    at: str
    moves: tuple[Move, ...]
    preferred: int | None = None
    """The version the step is about (the stage aliases prefer it)."""
    request: Request | None = None
    """The request as the step leaves it (approved), written with the moves."""
    done: bool = False
    latest: int | None = None
    """The newest version the model had at this step (MLflow never reuses a number, so
    a missing lower number without kept history was deleted outside jupyreg)."""
    held: Mapping[int, str] = field(default_factory=dict)
    """The Staging and Production holders once the step is applied: ``check`` reports one
    that disappears without its history kept."""
    attestation: Mapping[str, str] | None = None
    """What vouched for ``author`` (``Actor.attestation``): each event of the step keeps it."""

    @classmethod
    def new(
        cls,
        name: str,
        author: Actor,
        moves: Iterable[Move],
        preferred: int | None = None,
        request: Request | None = None,
    ) -> Step:
        """A step by ``author`` (an ``Actor``: its attestation goes with the step)."""
        moment = now()
        return cls(
            sortable_id(moment),
            name,
            author.name,
            iso(moment),
            tuple(moves),
            preferred,
            request,
            attestation=author.attestation,
        )

    def events(self) -> list[TransitionEvent]:
        """One history event per move, with ids fixed by the step (so applying it twice
        writes each event once)."""
        settled = self.request.id if self.request is not None else None
        return [
            TransitionEvent(
                f"{self.id}.{index}",
                self.name,
                move.version,
                move.from_stage,
                move.to_stage,
                self.author,
                move.reason,
                self.at,
                settled if move.version == self.preferred else None,
                attestation=self.attestation,
            )
            for index, move in enumerate(self.moves)
        ]

    def final_stages(self) -> dict[int, str]:
        """Each moved version's stage once the step is applied."""
        return apply_moves({}, self.moves)

    def on(self, stages: Mapping[int, str]) -> Step:
        """The step recording what it leaves the model with (``stages``: every version's
        stage before it): the newest version and the Staging/Production holders."""
        after = apply_moves(stages, self.moves)
        return replace(
            self,
            latest=max(after, default=None),
            held={v: s for v, s in sorted(after.items()) if s in (STAGING, PRODUCTION)},
        )
