"""The captured lineage, and its flat, searchable form as MLflow model-version tags."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "jupyreg."
LINEAGE_TAG = "jupyreg.lineage"
MAX_TAG_LENGTH = 100_000  # MLflow's limit for a model-version tag value


@dataclass(frozen=True)
class Lineage:
    """Everything captured about where a model came from.

    ``record`` is the full JSON-serialisable record; ``artifacts`` are files to log with
    the run (relative path -> bytes); ``requirements`` are the model's pinned requirements.
    """

    record: dict[str, Any]
    warnings: tuple[str, ...] = ()
    artifacts: Mapping[str, bytes] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Lineage:
        """Rebuild a lineage from its record (e.g. parsed from ``jupyreg.lineage``) to retry
        a registration with it; artifacts are not part of the record."""
        record = copy.deepcopy(dict(record))
        environment = record.get("environment") or {}
        return cls(
            record=record,
            warnings=tuple(record.get("warnings") or ()),
            requirements=tuple(environment.get("requirements") or ()),
        )

    def to_tags(self) -> dict[str, str]:
        """Flat ``jupyreg.*`` tags; keys whose value is unknown are left out."""
        record = self.record
        git = record.get("git") or {}
        notebook = record.get("notebook") or {}
        hardware = record.get("hardware") or {}
        environment = record.get("environment") or {}
        names = sorted({gpu.get("name") for gpu in hardware.get("gpus") or [] if gpu.get("name")})
        tags: dict[str, Any] = {
            "git.commit": git.get("commit"),
            "git.branch": git.get("branch"),
            "git.dirty": git.get("dirty"),
            "git.diff_sha256": git.get("diff_sha256"),
            "git.remote": git.get("remote"),
            "git.notebook_committed": git.get("notebook_committed"),
            "notebook.path": notebook.get("path"),
            "notebook.sha256": notebook.get("sha256"),
            "gpu.count": hardware.get("gpu_count"),
            "gpu.name": ", ".join(names) or None,
            "python": environment.get("python"),
        }
        for n, entry in enumerate(record.get("data") or []):
            for key in ("path", "md5", "recorded_md5", "stale", "dvc"):
                tags[f"data.{n}.{key}"] = entry.get(key)
        flat = {PREFIX + key: _tag_value(value) for key, value in tags.items() if value is not None}
        flat[LINEAGE_TAG] = compact_json(record)
        return flat


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


def _tag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:MAX_TAG_LENGTH]
