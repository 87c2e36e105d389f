"""Project settings from ``[tool.jupyreg]`` in the nearest pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from jupyreg.errors import InvalidArgument


def project_settings(start: str | Path | None = None) -> dict[str, Any]:
    """The ``[tool.jupyreg]`` table of the project's pyproject.toml: the nearest one at or
    above ``start`` (the current directory by default), as packaging tools find it."""
    here = Path(start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
                raise InvalidArgument(f"cannot read {candidate}: {exc}") from None
            return dict(data.get("tool", {}).get("jupyreg", {}))
    return {}
