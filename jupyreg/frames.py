"""The notebook's view of the records: pandas DataFrames (imported lazily).

Metric columns are namespaced (``metrics.val.auc``) so that no metric name can shadow a
field, and version columns stay integers (nullable ``Int64`` where a model has no holder).
They show each version's metrics as registered, what the policy gates judge (the run's
current metrics only for a version made outside jupyreg; see ``queries.model_version``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle, tags
from jupyreg.entities import ModelVersion, RegisteredModel
from jupyreg.errors import warn_split
from jupyreg.lifecycle import PolicyChange, Request, TransitionEvent

if TYPE_CHECKING:
    import pandas as pd

METRIC_PREFIX = "metrics."
MODEL_COLUMNS = ["name", "latest_version", "production", "staging", "description", "updated"]
VERSION_COLUMNS = ["version", "stage", "aliases", "created", "author", "run_id"]
LINEAGE_COLUMNS = ["git_commit", "git_dirty", "data", "gpu", "reproduced"]
HISTORY_COLUMNS = [
    "at",
    "version",
    "from_stage",
    "to_stage",
    "author",
    "reason",
    "request_id",
    "repaired_by",
    "attestation",
]
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


def _frame(rows: list[dict[str, Any]], columns: list[str], integers: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    for column in integers:
        frame[column] = frame[column].astype("Int64")
    return frame


def models_frame(models: Sequence[RegisteredModel]) -> pd.DataFrame:
    rows = [{c: getattr(m, c) for c in MODEL_COLUMNS} for m in models]
    return _frame(rows, MODEL_COLUMNS, ["latest_version", "production", "staging"])


def versions_frame(versions: Sequence[ModelVersion]) -> pd.DataFrame:
    metric_names = sorted({m for mv in versions for m in mv.metrics})
    rows = []
    for mv in versions:
        row: dict[str, Any] = {
            "version": mv.version,
            "stage": mv.stage,
            "aliases": ",".join(mv.aliases),
            "created": mv.created,
            "author": mv.author,
            "run_id": mv.run_id,
        }
        row.update({METRIC_PREFIX + m: mv.metrics.get(m) for m in metric_names})
        row.update(lineage_summary(mv.lineage_fields))
        row["reproduced"] = mv.reproduced
        rows.append(row)
    columns = [*VERSION_COLUMNS, *(METRIC_PREFIX + m for m in metric_names), *LINEAGE_COLUMNS]
    return _frame(rows, columns, ["version"])


def lineage_summary(fields: dict[str, str]) -> dict[str, Any]:
    """Commit, dirty flag, datasets and GPU of a version in one short value each."""
    data = [f"{path}:{(md5 or '?')[:8]}" for path, md5 in tags.datasets(fields).items()]
    gpu = tags.gpu_summary(fields)
    return {
        "git_commit": (fields.get("git.commit") or "")[:10] or None,
        "git_dirty": tags.git_dirty(fields),
        "data": "; ".join(data) or None,
        "gpu": None if gpu in (None, "none") else gpu,
    }


def compare_frame(versions: Sequence[ModelVersion]) -> pd.DataFrame:
    """Rows are fields (stage, metrics.*, params.*, lineage), columns are versions; the
    boolean ``differs`` column marks the fields whose values are not all equal."""
    import pandas as pd

    fields: dict[str, dict[int, Any]] = {}
    for mv in versions:
        for key, value in mv.fields().items():
            fields.setdefault(key, {})[mv.version] = value
    frame = pd.DataFrame.from_dict(fields, orient="index", columns=[mv.version for mv in versions])
    frame.index.name = "field"
    frame["differs"] = [len({repr(v) for v in row}) > 1 for row in frame.itertuples(index=False)]
    return frame


def policy_changes_frame(changes: Sequence[PolicyChange]) -> pd.DataFrame:
    rows = [
        {
            "at": lifecycle.parse_iso(c.at),
            "author": c.author,
            "reason": c.reason,
            "policy": json.dumps(c.policy, sort_keys=True),
        }
        for c in changes
    ]
    return _frame(rows, ["at", "author", "reason", "policy"], [])


def history_frame(events: Sequence[TransitionEvent]) -> pd.DataFrame:
    rows = [
        {
            "at": lifecycle.parse_iso(e.at),
            "version": e.version,
            "from_stage": e.from_stage,
            "to_stage": e.to_stage,
            "author": e.author,
            "reason": e.reason,
            "request_id": e.request_id,
            "repaired_by": e.repaired_by,
            "attestation": dict(e.attestation) if e.attestation else None,
        }
        for e in events
    ]
    return _frame(rows, HISTORY_COLUMNS, ["version"])


def requests_frame(requests: Sequence[Request]) -> pd.DataFrame:
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
        for r in requests
    ]
    return _frame(rows, REQUEST_COLUMNS, ["version"])


def search_frame(versions: Sequence[ModelVersion]) -> pd.DataFrame:
    """``versions_frame`` of versions of several models, with their ``name`` first."""
    frame = versions_frame(versions)
    frame.insert(0, "name", [mv.name for mv in versions])
    return frame


class DataFrameViews:
    """``Registry``'s notebook views: DataFrames built from its typed reads."""

    _queries: Any
    _store: Any

    def search(self, expr: str) -> pd.DataFrame:
        """Versions of every model matching an MLflow-style filter, e.g. ``"test.auc > 0.9
        and stage = 'Production'"`` (``jupyreg.search``); one row each, ``name`` first."""
        from jupyreg.search import search_records

        return search_frame(search_records(self._store, expr))

    def models(self) -> pd.DataFrame:
        """One row per registered model: latest version and current stage holders; a
        ``SplitReferences`` warning for each whose stage references disagree."""
        records = self.model_records()
        for record in records:
            warn_split(record.split)
        return models_frame(records)

    def versions(self, name: str) -> pd.DataFrame:
        """One row per version: stage, aliases, created, author, ``metrics.*``, lineage."""
        return versions_frame(self.version_records(name))

    def compare(self, name: str, versions: Iterable[int | str] | None = None) -> pd.DataFrame:
        """Rows are fields (stage, metrics.*, params.*, lineage), columns are versions; the
        boolean ``differs`` column marks the fields whose values are not all equal."""
        return compare_frame(self.version_records(name, versions))

    def history(self, name: str, version: int | str | None = None) -> pd.DataFrame:
        """Every stage change of the model (or one version), oldest first."""
        return history_frame(self.history_records(name, version))

    def requests(self, name: str | None = None, status: str | None = "pending") -> pd.DataFrame:
        """Promotion requests (pending by default; ``status=None`` for all)."""
        return requests_frame(self.request_records(name, status))

    def policy_history(self, name: str) -> pd.DataFrame:
        """Every change of the model's policy, oldest first: at, author, reason, policy."""
        return policy_changes_frame(self._queries.policy_changes(name))
