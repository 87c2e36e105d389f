"""What the Registry hands back to its callers: typed records every front end consumes
(``Request`` and ``TransitionEvent`` live with the lifecycle rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
"""What a user may be granted on a model, as MLflow's basic-auth defines it."""


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model with its latest version and current stage holders."""

    name: str
    latest_version: int | None
    production: int | None
    staging: int | None
    description: str = ""
    updated: datetime | None = None
    split: str | None = None
    """Set when ``models:/NAME/STAGE`` and ``models:/NAME@alias`` name different versions
    (a stage changed outside jupyreg): what differs and how to repair it."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version with its lifecycle stage, metrics and lineage."""

    name: str
    version: int
    stage: str
    run_id: str | None
    aliases: tuple[str, ...] = ()
    created: datetime | None = None
    author: str | None = None
    description: str | None = None
    source: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def lineage_fields(self) -> dict[str, str]:
        """Flat lineage (``git.commit``, ``data.0.md5``, ``gpu.count``, ...)."""
        from jupyreg.tags import lineage_fields

        return lineage_fields(self.tags)

    def fields(self) -> dict[str, Any]:
        """What compare shows: stage, author, created, ``metrics.*``, ``params.*`` and the
        lineage fields; missing values are left out."""
        values: dict[str, Any] = {
            "stage": self.stage,
            "author": self.author,
            "created": self.created,
        }
        values.update({f"metrics.{k}": v for k, v in self.metrics.items()})
        values.update({f"params.{k}": v for k, v in self.params.items()})
        values.update(self.lineage_fields)
        if "schema" in values:  # one row per input: compare shows the schema diff
            from jupyreg.schema import compare_fields

            values.update(compare_fields(values.pop("schema")))
        values["reproduced"] = self.reproduced
        return {k: v for k, v in values.items() if v is not None}

    @property
    def reproduced(self) -> str | None:
        """``passed`` / ``failed``: the latest ``reproduce`` outcome; None when never run."""
        from jupyreg.tags import reproduced

        return reproduced(self.tags)

    @property
    def uri(self) -> str:
        """The URI plain MLflow loads this version with."""
        return f"models:/{self.name}/{self.version}"

    def __repr__(self) -> str:
        return f"<ModelVersion {self.name} v{self.version} stage={self.stage}>"

    def __str__(self) -> str:
        from jupyreg.display import version_text

        return version_text(self)

    def _repr_html_(self) -> str:
        from jupyreg.display import version_html

        return version_html(self)
