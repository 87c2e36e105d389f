"""The tag schema: the one place that names jupyreg's MLflow tags and (de)serialises them.

Model-version tags carry the stage, the author, the lineage (flat ``jupyreg.git.commit``,
``jupyreg.data.<n>.md5``, ... plus the whole record as JSON), the metrics as registered, one
tag per history event and one per request; the registered model carries the policy, the
last lifecycle step and the history kept from deleted versions (DESIGN.md §5). Pure: no
MLflow.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from jupyreg.errors import InvalidArgument
from jupyreg.lifecycle import (
    CANCELLED,
    PENDING,
    STAGE_ALIASES,
    Approval,
    Dataset,
    Evidence,
    Move,
    Policy,
    PolicyChange,
    Request,
    Step,
    TransitionEvent,
    iso,
    now,
)

PREFIX = "jupyreg."
STAGE_TAG = "jupyreg.stage"
AUTHOR_TAG = "jupyreg.author"
LINEAGE_TAG = "jupyreg.lineage"
POLICY_TAG = "jupyreg.policy"
POLICY_CHANGE_PREFIX = "jupyreg.policy-change."
"""Registered-model tags, one per policy change (JSON: author, reason, at, policy)."""
EVENT_PREFIX = "jupyreg.event."
REQUEST_PREFIX = "jupyreg.request."
STEP_TAG = "jupyreg.step"
"""Registered-model tag: the model's last lifecycle step, recorded before it is applied."""
METRICS_TAG = "jupyreg.metrics"
"""Model-version tag written at creation: the metrics registered with the version, as JSON.
The gates judge this record, never the run's metrics (anyone who may log to the run could
change those after registration); like every ``jupyreg.*`` tag it is not changed later."""
KEPT_PREFIX = "jupyreg.kept."
"""Registered-model tags holding what a deleted version's tags recorded (``keep_history``)."""
SEAL_TAG = "jupyreg.seal"
"""Model-version tag written at creation: the sha256 of its registration record (author,
lineage, metrics); ``check`` finds a record changed since, behind jupyreg's back."""
SCHEMA_TAG = "jupyreg.schema"
"""Model-version tag written at creation: the input schema of the logged model's signature
(``jupyreg.schema``), judged by the ``require_compatible_schema`` gate; sealed as lineage."""
TAMPERED_PREFIX = "jupyreg.tampered."
"""Registered-model tags, one per version whose changed record check --repair recorded."""
REPRODUCTION_PREFIX = "jupyreg.reproduction."
"""Model-version tags, one per reproduction (``jupyreg reproduce``; JSON: author, at,
outcome, tolerance, metrics, deltas, environment differences, executed notebook)."""
FINGERPRINT_TAG = "jupyreg.fingerprint"
"""Model-version tag written at creation: the sha256 of the model's bytes, metrics, params
and lineage, to tell a re-registration of the same thing (``registration.fingerprinted``)."""
REGISTERED_MODEL_RUN_TAG = "jupyreg.registered_model"
"""Run tag naming the registered model a run was logged for."""
MAX_TAG_LENGTH = 100_000
"""MLflow's limit for a model-version tag value."""
RUN_TAG_LENGTH = 8_000
"""MLflow's limit for a run tag value."""
CAPTURE_WARNING_TAG = "jupyreg.capture.warning"
"""Run tag: why the run-context provider recorded no lineage (the run itself went on)."""
DIFF_PREFIX = "jupyreg.git.diff."
"""Run tags ``jupyreg.git.diff.<n>``: the uncommitted diff in pieces, for a run started by
plain MLflow (the run-context provider runs before the run exists: no artifact yet)."""
DIFF_PIECES = 32
"""At most this many pieces (256 kB): a longer diff is recorded by its sha256 only."""

LIFECYCLE_TAGS = (STAGE_TAG, AUTHOR_TAG, LINEAGE_TAG, STEP_TAG)
_DATA_FIELD = re.compile(r"^data\.(\d+)\.(path|md5|recorded_md5|stale|dvc)$")
_REQUEST_ID = re.compile(r"^[0-9a-f]{8}$")


def is_reserved(key: str) -> bool:
    """Whether a tag key is jupyreg's: it reads as ``jupyreg.`` followed by anything, in
    any case, with surrounding whitespace or with look-alike characters (``ｊupyreg.``,
    ``jupyrеg.`` with a Cyrillic е)."""
    return _reads_as(key, PREFIX, whole=False)


def is_reserved_alias(alias: str) -> bool:
    """Whether an alias reads as a stage alias (``production``, ``staging``): the same
    word in any case, with surrounding whitespace or with look-alike characters
    (``ｐroduction``, ``Stagıng``). Other words are not reserved, even containing one
    (``production-candidate``, ``prod``)."""
    return any(_reads_as(alias, reserved, whole=True) for reserved in STAGE_ALIASES.values())


def written_by_lifecycle_only(key: str) -> bool:
    """Whether a tag key may only come from a lifecycle step, even on a new version: the
    policy, steps, history events, requests, kept history, and any other spelling of a
    jupyreg key (registration writes the lineage keys, ``jupyreg.metrics``,
    ``jupyreg.stage`` and ``jupyreg.author`` as is: lower-case ASCII)."""
    canonical = str(key).strip().lower()
    return is_reserved(key) and (
        key != canonical
        or not key.isascii()
        or not key.startswith(PREFIX)
        or canonical in (POLICY_TAG, STEP_TAG)
        or canonical.startswith(
            (
                EVENT_PREFIX,
                REQUEST_PREFIX,
                KEPT_PREFIX,
                POLICY_CHANGE_PREFIX,
                TAMPERED_PREFIX,
                REPRODUCTION_PREFIX,
            )
        )
    )


_INVISIBLE = ("Cf", "Mn")
"""Format characters (zero-width space and joiners, direction marks) and the combining
marks NFKC leaves on their own: a name reads the same with or without them."""


def _reads_as(text: str, reserved: str, whole: bool) -> bool:
    """Whether ``text`` (all of it when ``whole``, else its start) can be read as
    ``reserved``, lower-case ASCII: character by character, after NFKC normalisation
    (fullwidth and mathematical letters, ligatures), without invisible characters and
    surrounding whitespace."""
    normal = unicodedata.normalize("NFKC", str(text))
    visible = "".join(c for c in normal if unicodedata.category(c) not in _INVISIBLE).strip()
    if len(visible) < len(reserved) or (whole and len(visible) != len(reserved)):
        return False
    return all(char in _readings(seen) for char, seen in zip(reserved, visible, strict=False))


ASCII_LOOKALIKES = {
    "0": "o",
    "1": "l",
    "f": "s",
    "l": "1i|",
    "I": "l",
    "O": "0",
    "'": "`",
    "`": "'",
    "|": "l",
}
"""The single ASCII characters Unicode's confusables list has an ASCII character look like,
besides itself case-folded: keys are checked on every lifecycle step, almost always in
plain ASCII, and the library's lookup costs milliseconds per character (pinned to it by
tests/test_reserved_names.py)."""


def _readings(char: str) -> frozenset[str]:
    """What one character can be read as: itself case-folded, and the characters Unicode's
    confusables (UTS #39) list as looking like it, case-folded (``ı``: ``i``, Cyrillic
    ``р``: ``p``, ``1``: ``l``)."""
    if char.isascii():
        return frozenset({char.casefold(), *ASCII_LOOKALIKES.get(char, "")})
    return unicode_readings(char)


@functools.cache
def unicode_readings(char: str) -> frozenset[str]:
    """``_readings`` as Unicode's confusables list answers it, for any character."""
    from confusable_homoglyphs import confusables  # lazily: a 1 MB table

    found = confusables.is_confusable(char, greedy=True) or []
    looks = {glyph["c"] for entry in found for glyph in entry["homoglyphs"]}
    return frozenset(glyph.casefold() for glyph in {char, *looks})


# lineage ---------------------------------------------------------------------------


def lineage_tags(record: Mapping[str, Any], limit: int = MAX_TAG_LENGTH) -> dict[str, str]:
    """Flat ``jupyreg.*`` tags of a lineage record (unknown values left out), plus the
    whole record as compact JSON under ``jupyreg.lineage``; no value longer than ``limit``."""
    git = record.get("git") or {}
    notebook = record.get("notebook") or {}
    hardware = record.get("hardware") or {}
    environment = record.get("environment") or {}
    entry = record.get("entry") or {}
    names = sorted({gpu.get("name") for gpu in hardware.get("gpus") or [] if gpu.get("name")})
    fields: dict[str, Any] = {
        "git.commit": git.get("commit"),
        "git.branch": git.get("branch"),
        "git.dirty": git.get("dirty"),
        "git.diff_sha256": git.get("diff_sha256"),
        "git.remote": git.get("remote"),
        "git.notebook_committed": git.get("notebook_committed"),
        "notebook.path": notebook.get("path"),
        "notebook.sha256": notebook.get("sha256"),
        "gpu.count": hardware.get("gpu_count"),
        "gpu.machine_count": hardware.get("machine_gpu_count"),
        "gpu.name": ", ".join(names) or None,
        "python": environment.get("python"),
        "entry.kind": entry.get("kind"),
        "entry.path": entry.get("path"),
        "entry.argv": _dumps(entry["argv"]) if entry.get("argv") else None,
        "entry.stage": entry.get("stage"),
    }
    for n, dataset in enumerate(record.get("data") or []):
        for key in ("path", "md5", "recorded_md5", "stale", "dvc"):
            fields[f"data.{n}.{key}"] = dataset.get(key)
    flat = {
        PREFIX + key: _tag_text(value)[:limit] for key, value in fields.items() if value is not None
    }
    flat[LINEAGE_TAG] = compact_json(record, limit)
    return flat


def with_requirements(record_json: str, requirements: Sequence[str]) -> str:
    """A ``jupyreg.lineage`` record with the model's pinned requirements in its environment
    (kept as they are where the record already names some, or none are given)."""
    record = json.loads(record_json)
    environment = record.setdefault("environment", {})
    if requirements and not environment.get("requirements"):
        environment["requirements"] = list(requirements)
    return compact_json(record, MAX_TAG_LENGTH)


def is_lineage_tag(key: str) -> bool:
    """Whether ``key`` is one of the lineage tags a run-context provider writes on runs."""
    field = key[len(PREFIX) :] if key.startswith(PREFIX) else None
    return field is not None and (
        key in (LINEAGE_TAG, CAPTURE_WARNING_TAG)
        or field in LINEAGE_FIELDS
        or bool(_DATA_FIELD.match(field))
    )


def run_lineage(run_tags: Mapping[str, str]) -> dict[str, str]:
    """The lineage tags among a run's tags (what the run-context provider wrote), as a
    version carries them; empty when the run has no lineage record."""
    if LINEAGE_TAG not in run_tags:
        return {}
    return {key: value for key, value in run_tags.items() if is_lineage_tag(key)}


def diff_tags(diff: bytes | None) -> dict[str, str]:
    """The uncommitted diff as run tags of ``RUN_TAG_LENGTH`` characters at most; none for
    no diff, or one too long (its sha256 stays in ``jupyreg.git.diff_sha256``)."""
    if not diff:
        return {}
    text = diff.decode("utf-8", errors="replace")
    pieces = [text[i : i + RUN_TAG_LENGTH] for i in range(0, len(text), RUN_TAG_LENGTH)]
    if len(pieces) > DIFF_PIECES:
        return {}
    return {f"{DIFF_PREFIX}{n}": piece for n, piece in enumerate(pieces)}


def diff_from_tags(run_tags: Mapping[str, str]) -> bytes | None:
    """The diff ``diff_tags`` kept in a run's tags; None where there is none."""
    pieces = []
    while (piece := run_tags.get(f"{DIFF_PREFIX}{len(pieces)}")) is not None:
        pieces.append(piece)
    return "".join(pieces).encode() if pieces else None


LINEAGE_FIELDS = (
    "git.commit",
    "git.branch",
    "git.dirty",
    "git.diff_sha256",
    "git.remote",
    "git.notebook_committed",
    "notebook.path",
    "notebook.sha256",
    "gpu.count",
    "gpu.machine_count",
    "gpu.name",
    "python",
    "entry.kind",
    "entry.path",
    "entry.argv",
    "entry.stage",
)
"""The flat lineage fields ``lineage_tags`` writes besides ``data.<n>.*``."""
_SEARCH_TAGS = {"stage": STAGE_TAG, "author": AUTHOR_TAG}


def search_tag_key(field: str) -> str | None:
    """The version tag a search field names (``stage``, ``author``, ``git.dirty``,
    ``data.0.md5``, ...), None when it names no jupyreg tag. A field in a lineage
    namespace that is not one of them is an InvalidArgument listing the known ones."""
    if field in _SEARCH_TAGS:
        return _SEARCH_TAGS[field]
    if field in LINEAGE_FIELDS or _DATA_FIELD.match(field):
        return PREFIX + field
    if field.split(".", 1)[0] in {f.split(".", 1)[0] for f in LINEAGE_FIELDS} | {"data"}:
        raise InvalidArgument(
            f"unknown lineage field {field!r}: use one of {', '.join(LINEAGE_FIELDS)}, "
            "data.<n>.path, data.<n>.md5, data.<n>.stale"
        )
    return None


def lineage_record(tags: Mapping[str, str]) -> dict[str, Any]:
    """The full lineage record of a version (empty when it has none)."""
    text = tags.get(LINEAGE_TAG)
    return json.loads(text) if text else {}


def lineage_fields(tags: Mapping[str, str]) -> dict[str, str]:
    """The flat lineage tags without their ``jupyreg.`` prefix (``git.commit``, ...)."""
    return {
        key[len(PREFIX) :]: value
        for key, value in tags.items()
        if key.startswith(PREFIX)
        and key not in LIFECYCLE_TAGS
        and key not in (POLICY_TAG, METRICS_TAG, SEAL_TAG, FINGERPRINT_TAG)
        and not key.startswith((EVENT_PREFIX, REQUEST_PREFIX, KEPT_PREFIX, REPRODUCTION_PREFIX))
    }


def seal(version_tags: Mapping[str, str]) -> str:
    """The sha256 of a version's registration record: every lineage tag, the author, the
    full lineage JSON and the metrics record (not its stage, history or requests)."""
    record = {PREFIX + k: v for k, v in lineage_fields(version_tags).items()}
    record |= {
        k: version_tags[k] for k in (AUTHOR_TAG, LINEAGE_TAG, METRICS_TAG) if k in version_tags
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def changed_record(
    version: int, version_tags: Mapping[str, str], model_tags: Mapping[str, str]
) -> str | None:
    """The record's seal now, when the version's record changed after registration and no
    repair recorded that change yet (None: intact, unsealed, or already recorded)."""
    recorded = version_tags.get(SEAL_TAG)
    if recorded is None:
        return None
    now = seal(version_tags)
    if now == recorded:
        return None
    marker = model_tags.get(f"{TAMPERED_PREFIX}{version}")
    return None if marker and json.loads(marker).get("seal") == now else now


def tampered_marker(version: int, found: str, by: str) -> tuple[str, str]:
    """The model tag check --repair writes for a version whose record changed."""
    value = {"version": version, "seal": found, "recorded_by": by, "at": iso(now())}
    return f"{TAMPERED_PREFIX}{version}", json.dumps(value, sort_keys=True)


def datasets(fields: Mapping[str, Any]) -> dict[str, str | None]:
    """Dataset path -> md5 (None when the hash is missing) from ``data.<n>.*`` fields."""
    entries = dataset_entries(fields)
    return {e.get("path", f"dataset {n}"): e.get("md5") for n, e in sorted(entries.items())}


def dataset_entries(fields: Mapping[str, Any]) -> dict[int, dict[str, str]]:
    """``data.<n>.<key>`` fields grouped by dataset index."""
    found: dict[int, dict[str, str]] = {}
    for key, value in fields.items():
        match = _DATA_FIELD.match(key)
        if match and value is not None:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = str(value)
    return found


def gpu_summary(fields: Mapping[str, Any]) -> str | None:
    """ "none", "2x A100", or None when the GPU was not recorded."""
    count = fields.get("gpu.count")
    if count is None:
        return None
    if str(count) == "0":
        return "none"
    return f"{count}x {fields.get('gpu.name') or 'GPU'}"


def git_dirty(fields: Mapping[str, Any]) -> bool | None:
    dirty = fields.get("git.dirty")
    return None if dirty is None else str(dirty) == "true"


def compact_json(record: Mapping[str, Any], limit: int = MAX_TAG_LENGTH) -> str:
    """The record as compact JSON of at most ``limit`` characters: the longest lists are
    halved (their full length noted under ``truncated``) until it fits."""
    record = copy.deepcopy(dict(record))
    text = _dumps(record)
    while len(text) > limit:
        lists = [(h, k, p) for h, k, p in _lists(record) if p.split(".")[0] != "truncated"]
        if not lists:
            return _dumps({"truncated": {"record": len(text)}})
        holder, key, path = max(lists, key=lambda found: len(_dumps(found[0][found[1]])))
        record.setdefault("truncated", {}).setdefault(path, len(holder[key]))
        holder[key] = holder[key][: len(holder[key]) // 2]
        text = _dumps(record)
    return text


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _lists(value: Any, path: str = "") -> Iterator[tuple[Any, Any, str]]:
    """Every non-empty list inside a JSON-like value: ``(container, key, dotted path)``."""
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        child_path = f"{path}.{key}" if path else str(key)
        if isinstance(child, list) and child:
            yield value, key, child_path
        if isinstance(child, dict | list):
            yield from _lists(child, child_path)


def _tag_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:MAX_TAG_LENGTH]


# history events and requests -------------------------------------------------------


def event_key(event: TransitionEvent) -> str:
    return EVENT_PREFIX + event.id


def event_value(event: TransitionEvent) -> str:
    """The event's JSON; ``repaired_by`` only on a move adopted by check --repair,
    ``attestation`` only on a move by an attested workload identity."""
    repaired = {"repaired_by": event.repaired_by} if event.repaired_by is not None else {}
    if event.attestation is not None:
        repaired["attestation"] = dict(event.attestation)
    return json.dumps(
        {
            "from": event.from_stage,
            "to": event.to_stage,
            "author": event.author,
            "reason": event.reason,
            "at": event.at,
            "request_id": event.request_id,
            **repaired,
        }
    )


def event_from_tag(name: str, version: int, key: str, value: str) -> TransitionEvent:
    raw = json.loads(value)
    return TransitionEvent(
        id=key[len(EVENT_PREFIX) :],
        name=name,
        version=version,
        from_stage=raw["from"],
        to_stage=raw["to"],
        author=raw["author"],
        reason=raw["reason"],
        at=raw["at"],
        request_id=raw.get("request_id"),
        repaired_by=raw.get("repaired_by"),
        attestation=raw.get("attestation"),
    )


def events(name: str, version: int, tags: Mapping[str, str]) -> list[TransitionEvent]:
    """The version's history events, oldest first."""
    found = (
        event_from_tag(name, version, k, v) for k, v in tags.items() if k.startswith(EVENT_PREFIX)
    )
    return sorted(found, key=lambda e: e.id)


def request_key(request_id: str) -> str:
    return REQUEST_PREFIX + request_id


def valid_request_id(request_id: str) -> bool:
    return bool(_REQUEST_ID.match(request_id or ""))


def request_value(request: Request) -> str:
    raw = asdict(request)
    del raw["id"], raw["name"], raw["version"]
    raw["to"] = raw.pop("to_stage")
    for approval in raw["approvals"]:  # an attestation only where one vouched
        if approval["attestation"] is None:
            del approval["attestation"]
    return json.dumps(raw)


def request_from_tag(name: str, version: int, key: str, value: str) -> Request:
    raw = json.loads(value)
    return Request(
        id=key[len(REQUEST_PREFIX) :],
        name=name,
        version=version,
        to_stage=raw["to"],
        requested_by=raw["requested_by"],
        reason=raw["reason"],
        created_at=raw["created_at"],
        status=raw.get("status", "pending"),
        approvals=tuple(Approval(**a) for a in raw.get("approvals", ())),
        decided_by=raw.get("decided_by"),
        comment=raw.get("comment"),
        decided_at=raw.get("decided_at"),
    )


def requests(name: str, version: int, tags: Mapping[str, str]) -> list[Request]:
    return [
        request_from_tag(name, version, k, v)
        for k, v in tags.items()
        if k.startswith(REQUEST_PREFIX)
    ]


# history kept from deleted versions --------------------------------------------------
#
# Deleting a version deletes its tags, so before a version is deleted its event and request
# tags are copied onto the registered model, the version's number in the key (values are
# the version tags' own, so they fit wherever those did):
#   jupyreg.kept.<N>.event.<event id>    jupyreg.kept.<N>.request.<request id>
# and last a marker ``jupyreg.kept.<N>`` (JSON: version, stage, events, requests; ``lost``
# when check --repair records a version deleted outside jupyreg, its history gone).

_KEPT = re.compile(r"^jupyreg\.kept\.(\d+)\.(event|request)\.(.+)$")
_KEPT_MARKER = re.compile(r"^jupyreg\.kept\.(\d+)$")


def kept_marker_key(version: int) -> str:
    return f"{KEPT_PREFIX}{version}"


def kept_tags(version: int, stage: str, version_tags: Mapping[str, str]) -> dict[str, str]:
    """The model tags that keep a version's history: each event and request tag under its
    kept key, then the marker (written last: its presence means the copy is complete)."""
    kept: dict[str, str] = {}
    counts = {"event": 0, "request": 0}
    for key, value in sorted(version_tags.items()):
        for prefix, kind in ((EVENT_PREFIX, "event"), (REQUEST_PREFIX, "request")):
            if key.startswith(prefix):
                kept[f"{KEPT_PREFIX}{version}.{kind}.{key[len(prefix) :]}"] = value
                counts[kind] += 1
    kept[kept_marker_key(version)] = json.dumps(
        {
            "version": version,
            "stage": stage,
            "events": counts["event"],
            "requests": counts["request"],
        },
        sort_keys=True,
    )
    return kept


def lost_marker(version: int, stage: str | None) -> str:
    """The marker check --repair writes for a version deleted outside jupyreg."""
    return json.dumps({"version": version, "stage": stage, "lost": True}, sort_keys=True)


def kept_versions(model_tags: Mapping[str, str]) -> set[int]:
    """Versions deleted with their history kept (or their loss recorded by a repair)."""
    return {int(m.group(1)) for k in model_tags if (m := _KEPT_MARKER.match(k))}


def _kept(model_tags: Mapping[str, str], kind: str) -> Iterator[tuple[int, str, str]]:
    for key, value in model_tags.items():
        match = _KEPT.match(key)
        if match and match.group(2) == kind:
            yield int(match.group(1)), match.group(3), value


def kept_events(name: str, model_tags: Mapping[str, str]) -> list[TransitionEvent]:
    """The history events kept from deleted versions, oldest first."""
    found = (
        event_from_tag(name, version, EVENT_PREFIX + event_id, value)
        for version, event_id, value in _kept(model_tags, "event")
    )
    return sorted(found, key=lambda e: e.id)


def kept_requests(name: str, model_tags: Mapping[str, str]) -> list[Request]:
    """The requests kept from deleted versions; one still pending when its version was
    deleted can no longer be decided, so it reads as cancelled (its record is unchanged)."""
    found = []
    for version, request_id, value in _kept(model_tags, "request"):
        request = request_from_tag(name, version, REQUEST_PREFIX + request_id, value)
        if request.status == PENDING:
            request = replace(
                request,
                status=CANCELLED,
                comment=f"v{version} was deleted while this request was pending",
            )
        found.append(request)
    return found


# policy ------------------------------------------------------------------------------


def policy_value(policy: Policy) -> str:
    return json.dumps(policy.to_dict(), sort_keys=True)


def policy_change_tag(change: PolicyChange) -> tuple[str, str]:
    record = {"author": change.author, "reason": change.reason, "at": change.at}
    return POLICY_CHANGE_PREFIX + change.id, json.dumps({**record, "policy": change.policy})


def policy_changes(name: str, model_tags: Mapping[str, str]) -> list[PolicyChange]:
    """The model's policy changes, oldest first."""
    changes = []
    for key, value in model_tags.items():
        if key.startswith(POLICY_CHANGE_PREFIX):
            raw = json.loads(value)
            changes.append(
                PolicyChange(
                    key[len(POLICY_CHANGE_PREFIX) :],
                    name,
                    raw["author"],
                    raw["reason"],
                    raw["at"],
                    raw["policy"],
                )
            )
    return sorted(changes, key=lambda c: c.id)


def unrecorded_policy(name: str, model_tags: Mapping[str, str]) -> Policy | None:
    """The policy in force when no recorded change set it (written behind jupyreg's back,
    or a change interrupted between its record and the policy), else None."""
    try:
        current = policy_from_tag(model_tags.get(POLICY_TAG))
        if current is None:
            return None
        changes = policy_changes(name, model_tags)
        last = Policy.from_mapping(changes[-1].policy) if changes else None
    except (InvalidArgument, ValueError, KeyError):
        return None  # an unreadable policy is refused where it is read
    return None if last is not None and policy_value(last) == policy_value(current) else current


def policy_from_tag(value: str | None) -> Policy | None:
    return Policy.from_mapping(json.loads(value)) if value else None


# metrics as registered ---------------------------------------------------------------


def metrics_value(metrics: Mapping[str, float]) -> str:
    """The ``jupyreg.metrics`` record of a new version; refused (InvalidArgument, before
    anything is written) when it does not fit MLflow's tag limit: the gates would judge a
    partial record otherwise, so nothing is cut."""
    value = json.dumps(dict(metrics), sort_keys=True, separators=(",", ":"))
    if len(value) > MAX_TAG_LENGTH:
        raise InvalidArgument(
            f"{len(metrics):,} metrics take {len(value):,} characters as the version's "
            f"metrics record, more than the {MAX_TAG_LENGTH:,} MLflow keeps in a tag: register "
            "the metrics the policy judges and a summary, and log the rest to an MLflow run"
        )
    return value


def recorded_metrics(version_tags: Mapping[str, str]) -> dict[str, float] | None:
    """The metrics recorded when the version was registered; None when it has no readable
    record (created by a plain MLflow client, or by a jupyreg before the record existed)."""
    text = version_tags.get(METRICS_TAG)
    if not text:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()
    ):
        return None
    return {str(k): float(v) for k, v in raw.items()}


def evidence(version_tags: Mapping[str, str]) -> Evidence:
    """What the policy gates judge, read only from what was frozen when the version was
    created: its lineage tags and its ``jupyreg.metrics`` record (never the run's metrics,
    which can be logged again after registration)."""
    fields = lineage_fields(version_tags)
    entries = dataset_entries(fields)
    metrics = recorded_metrics(version_tags)
    return Evidence(
        git_dirty=git_dirty(fields),
        datasets=tuple(
            Dataset(
                path=e.get("path", f"dataset {n}"),
                md5=e.get("md5"),
                stale=e.get("stale") == "true",
                recorded_md5=e.get("recorded_md5"),
            )
            for n, e in sorted(entries.items())
        ),
        metrics=metrics or {},
        metrics_recorded=metrics is not None,
        input_schema=version_tags.get(SCHEMA_TAG),
        reproduced=reproduced(version_tags),
    )


# reproductions -----------------------------------------------------------------------


def reproduction_tag(reproduction_id: str, record: Mapping[str, Any]) -> tuple[str, str]:
    """The version tag of one reproduction (lists halved to fit MLflow's limit)."""
    return REPRODUCTION_PREFIX + reproduction_id, compact_json(record)


def reproductions(version_tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """The version's reproductions, oldest first, each with its ``id``; unreadable ones
    are left out."""
    found = []
    for key, value in sorted(version_tags.items()):
        if key.startswith(REPRODUCTION_PREFIX):
            try:
                record = json.loads(value)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append({**record, "id": key[len(REPRODUCTION_PREFIX) :]})
    return found


def reproduced(version_tags: Mapping[str, str]) -> str | None:
    """``passed`` or ``failed``: the latest reproduction's outcome; None when never run."""
    found = reproductions(version_tags)
    if not found:
        return None
    return "passed" if found[-1].get("ok") is True else "failed"


# lifecycle steps -------------------------------------------------------------------


def step_value(step: Step) -> str:
    """The step as its intent tag; refused (before anything is written) when it, or a tag it
    will write, does not fit MLflow's limit."""
    request = step.request
    value = json.dumps(
        {
            "id": step.id,
            "author": step.author,
            "at": step.at,
            "preferred": step.preferred,
            "done": step.done,
            "moves": [[m.version, m.from_stage, m.to_stage, m.reason] for m in step.moves],
            "latest": step.latest,
            "held": {str(v): stage for v, stage in sorted(step.held.items())},
            **({"attestation": dict(step.attestation)} if step.attestation else {}),
            "request": None
            if request is None
            else {"id": request.id, "version": request.version, "value": request_value(request)},
        }
    )
    if len(value) > MAX_TAG_LENGTH:
        raise InvalidArgument(
            f"this step of {step.name} records {len(value):,} characters, more than the "
            f"{MAX_TAG_LENGTH:,} MLflow keeps in a tag: shorten its reason or comment"
        )
    return value


def step_from_tag(name: str, value: str | None) -> Step | None:
    if not value:
        return None
    raw = json.loads(value)
    request = raw.get("request")
    return Step(
        id=raw["id"],
        name=name,
        author=raw["author"],
        at=raw["at"],
        moves=tuple(Move(int(v), f, t, r) for v, f, t, r in raw["moves"]),
        preferred=raw.get("preferred"),
        done=bool(raw.get("done")),
        latest=raw.get("latest"),
        held={int(v): stage for v, stage in (raw.get("held") or {}).items()},
        attestation=raw.get("attestation"),
        request=None
        if request is None
        else request_from_tag(
            name, int(request["version"]), request_key(request["id"]), request["value"]
        ),
    )
