"""The Python environment a model was trained in: interpreter, platform, packages.

The installed-package list is read from the ``*.dist-info`` directory names on
``sys.path`` (``name-version.dist-info``, the layout importlib.metadata reads), which
takes a millisecond where parsing every METADATA file takes ~0.1 s.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyreg.lineage.requirements import pinned_requirements


@dataclass
class EnvironmentCapture:
    """The ``environment`` section of the record and the full package list (an artifact)."""

    info: dict[str, Any]
    requirements: list[str]
    installed: list[str]


def capture_environment(model: Any = None) -> EnvironmentCapture:
    """Interpreter and platform, the model's pinned requirements and every installed package."""
    requirements = pinned_requirements(model)
    installed = installed_packages()
    info = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "requirements": requirements,
        "installed_packages": len(installed),
    }
    return EnvironmentCapture(info, requirements, installed)


def installed_packages() -> list[str]:
    """``name==version`` of every distribution importable from ``sys.path``, sorted; the
    first one on the path wins, as for imports."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            parsed = _name_and_version(Path(entry or ".", name))
            if parsed and _normalise(parsed[0]) not in found:
                found[_normalise(parsed[0])] = parsed[1]
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def _name_and_version(path: Path) -> tuple[str, str] | None:
    if path.suffix == ".dist-info":
        name, _, version = path.stem.partition("-")
        if version:
            return name, version
    if path.suffix not in (".dist-info", ".egg-info"):
        return None
    import importlib.metadata as metadata  # lazily: it costs ~15 ms to import

    meta = metadata.PathDistribution(path).metadata  # an egg-info names no version
    if meta is None or not meta["Name"] or not meta["Version"]:
        return None
    return meta["Name"], meta["Version"]


def _normalise(name: str) -> str:
    """PEP 503 name, as pip shows it."""
    return re.sub(r"[-_.]+", "-", name).lower()
