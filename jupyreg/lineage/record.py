"""The captured lineage; ``jupyreg.tags`` gives its flat, searchable form as MLflow tags."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
        """Flat ``jupyreg.*`` tags plus the whole record (``jupyreg.tags`` names them)."""
        from jupyreg.tags import lineage_tags

        return lineage_tags(self.record)
