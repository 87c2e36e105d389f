"""What started the code that trains: a notebook, a script, a DVC pipeline stage, or a
command run through ``jupyreg run`` — recorded so that ``reproduce`` can start it again.

A script records its path relative to the repository root and ``sys.argv``; a DVC stage
its address (``dvc repro`` sets ``DVC_STAGE`` for the commands it runs); ``jupyreg run --
COMMAND ...`` passes the command it runs to the runs it starts in ``JUPYREG_ENTRY_ARGV``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENTRY_ARGV_ENV = "JUPYREG_ENTRY_ARGV"
"""The command ``jupyreg run`` started (a JSON list), for the runs that command starts."""
DVC_STAGE_ENV = "DVC_STAGE"
DVC_ROOT_ENV = "DVC_ROOT"

NOTEBOOK, SCRIPT, DVC_STAGE, COMMAND = "notebook", "script", "dvc-stage", "command"
KINDS = (NOTEBOOK, SCRIPT, DVC_STAGE, COMMAND)


@dataclass(frozen=True)
class Entry:
    """The ``entry`` section of the record."""

    kind: str
    path: str | None
    argv: tuple[str, ...]
    cwd: str | None
    stage: str | None = None

    def info(self) -> dict[str, Any]:
        found = {"kind": self.kind, "path": self.path, "argv": list(self.argv), "cwd": self.cwd}
        return found | ({"stage": self.stage} if self.stage else {})


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (its code comes from a notebook)."""
    shell = sys.modules.get("IPython") and _ipython()
    return shell is not None and "ipykernel" in sys.modules and hasattr(shell, "kernel")


def _ipython() -> Any:
    from IPython import get_ipython

    return get_ipython()


def detect_entry(
    root: Path | None,
    cwd: Path,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    notebook_path: str | None = None,
) -> Entry:
    """The entry point of this process: a DVC stage (``dvc repro``) first, then a command of
    ``jupyreg run``, then a notebook (a kernel), else the script ``argv[0]`` names.
    Paths are relative to ``root`` (the repository) where they lie under it."""
    environ = os.environ if environ is None else environ
    argv = tuple(sys.argv if argv is None else argv)
    where = _relative(cwd, root)
    if environ.get(DVC_STAGE_ENV):
        dvc_root = Path(environ.get(DVC_ROOT_ENV) or root or cwd)
        return Entry(
            DVC_STAGE, _relative(dvc_root / "dvc.yaml", root), argv, where, environ[DVC_STAGE_ENV]
        )
    command = _command(environ.get(ENTRY_ARGV_ENV))
    if command:
        return Entry(COMMAND, _script(argv, cwd, root), command, where)
    if notebook_path is not None or in_kernel():
        return Entry(NOTEBOOK, notebook_path, (), where)
    return Entry(SCRIPT, _script(argv, cwd, root), argv, where)


def _command(text: str | None) -> tuple[str, ...]:
    """The JSON list ``jupyreg run`` passed; () when absent or not a list of strings."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return ()
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()


def _script(argv: Sequence[str], cwd: Path, root: Path | None) -> str | None:
    """The file ``argv[0]`` names (a script, or a module run with ``-m``); None for
    ``python -c`` and the interactive interpreter."""
    first = argv[0] if argv else ""
    if not first or first in ("-c", "-") or not os.path.isfile(cwd / first):
        return None
    return _relative(cwd / first, root)


def _relative(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX form) where it lies under it, else absolute."""
    absolute = Path(os.path.abspath(path))
    if root is not None:
        try:
            return absolute.relative_to(os.path.abspath(root)).as_posix() or "."
        except ValueError:
            pass
    return str(absolute)
