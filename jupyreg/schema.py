"""A version's input schema as recorded at registration (``jupyreg.schema``), and what a
change of it does to the callers of the version it replaces. Pure: no MLflow.

The record is ``{"inputs": [{"name": ..., "type": ..., "required": ...}, ...]}``: one entry
per column of an MLflow column-based signature; a tensor input is one entry named None whose
type carries dtype and shape (``tensor float64 (-1, 4)``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

WIDENINGS = {("integer", "long"), ("integer", "double"), ("long", "double"), ("float", "double")}
"""Type changes that old callers' values survive (MLflow converts them losslessly)."""


@dataclass(frozen=True)
class Input:
    name: str | None
    type: str
    required: bool = True

    @property
    def label(self) -> str:
        return self.name if self.name is not None else "(tensor)"


def record(inputs: Iterable[Input]) -> str:
    """The ``jupyreg.schema`` tag value of a list of inputs."""
    return json.dumps(
        {"inputs": [{"name": i.name, "type": i.type, "required": i.required} for i in inputs]},
        sort_keys=True,
        separators=(",", ":"),
    )


def parse(text: str | None) -> list[Input] | None:
    """The inputs of a ``jupyreg.schema`` value; None when there is none or it is unreadable."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        return [
            Input(e["name"], str(e["type"]), bool(e.get("required", True))) for e in raw["inputs"]
        ]
    except (ValueError, KeyError, TypeError):
        return None


def from_signature_inputs(inputs: Any) -> list[Input]:
    """Inputs from an MLflow ``Schema`` (duck-typed: ``ColSpec`` / ``TensorSpec`` entries)."""
    found = []
    for spec in inputs.inputs:
        if hasattr(spec, "shape"):  # a TensorSpec
            found.append(Input(spec.name, f"tensor {spec.type} {tuple(spec.shape)}"))
        else:
            kind = getattr(spec.type, "name", None) or str(spec.type)
            found.append(Input(spec.name, str(kind), bool(getattr(spec, "required", True))))
    return found


def breaking_changes(current: list[Input], candidate: list[Input]) -> list[str]:
    """What would break callers of ``current`` if ``candidate`` replaced it: a required input
    removed or retyped (other than a lossless widening), or a new input they do not send
    that the candidate requires."""
    old = {i.name: i for i in current}
    new = {i.name: i for i in candidate}
    problems = []
    for name, was in old.items():
        if name not in new:
            if was.required:
                problems.append(f"input {was.label} ({was.type}) was removed")
            continue
        now = new[name]
        if now.type != was.type and (was.type, now.type) not in WIDENINGS:
            problems.append(f"input {was.label} changed type {was.type} -> {now.type}")
    for name, now in new.items():
        if now.required and (name not in old or not old[name].required):
            problems.append(f"input {now.label} ({now.type}) is now required")
    return problems


def compare_fields(text: str) -> dict[str, str]:
    """One compare row per input (``schema.<name>`` = type, ``(optional)`` marked), so that
    compare's ``differs`` column shows the schema diff between versions."""
    inputs = parse(text)
    if inputs is None:
        return {"schema": text}
    return {f"schema.{i.label}": i.type + ("" if i.required else " (optional)") for i in inputs}


def incompatibility(
    candidate: str | None, current: str | None, current_version: int | None
) -> str | None:
    """The ``require_compatible_schema`` gate's failure, if any: ``candidate`` and ``current``
    are the ``jupyreg.schema`` records of the version and of the Production it would replace."""
    if current_version is None:
        return None
    mine, theirs = parse(candidate), parse(current)
    if theirs is None:
        return None  # nothing recorded about what Production's callers send
    if mine is None:
        return (
            "compatible schema: no input schema was recorded for this version: register it "
            "with an input example (%%register ... --input-example VAR, or input_example=...)"
        )
    broken = breaking_changes(theirs, mine)
    if not broken:
        return None
    return f"compatible schema: would break callers of Production v{current_version}: " + ", ".join(
        broken
    )


def summary(text: str | None) -> str | None:
    """``name:type, ...`` of a ``jupyreg.schema`` record (``?``: optional); None without one."""
    inputs = parse(text)
    if inputs is None:
        return None
    return ", ".join(f"{i.label}:{i.type}" + ("" if i.required else "?") for i in inputs)
