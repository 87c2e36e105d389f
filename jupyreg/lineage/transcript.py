"""The kernel's transcript: every input it executed so far, in execution order.

A notebook's file is not always known (nbclient, papermill, VS Code) and may change after
a model is registered, but the kernel remembers what it ran: IPython's history
(``input_hist_raw``, the cells as typed, magics included). ``jupyreg reproduce`` re-runs
it in a fresh kernel started in the same directory (relative to the git root).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FORMAT = 1


def capture_transcript(
    user_ns: Mapping[str, Any] | None, cwd: Path, root: Path | None
) -> bytes | None:
    """The transcript as JSON (``inputs``, ``cwd`` relative to ``root``), or None outside
    an IPython kernel."""
    inputs = _inputs(user_ns)
    if inputs is None:
        return None
    where = None
    if root is not None:
        try:
            where = Path(os.path.relpath(cwd, root)).as_posix()
        except ValueError:  # another drive
            where = None
        if where is not None and where.startswith(".."):
            where = None
    record = {"format": FORMAT, "cwd": where, "inputs": inputs}
    return (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode()


def read_transcript(content: bytes) -> tuple[list[str], str | None]:
    """The inputs and the directory (relative to the git root) of a stored transcript."""
    record = json.loads(content)
    inputs = [str(cell) for cell in record.get("inputs") or []]
    return inputs, record.get("cwd")


def _inputs(user_ns: Mapping[str, Any] | None) -> list[str] | None:
    shell = _shell(user_ns)
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if history is None:
        parsed = (user_ns or {}).get("In")
        history = parsed if isinstance(parsed, list) else None
    if history is None:
        return None
    return [str(cell) for cell in history if str(cell).strip()]


def _shell(user_ns: Mapping[str, Any] | None) -> Any:
    """The IPython shell of ``user_ns`` where one is given, else the one that runs this code,
    if any (never importing IPython)."""
    if user_ns is not None:
        getter = user_ns.get("get_ipython")
        return getter() if callable(getter) else None
    if "IPython" in sys.modules:
        return sys.modules["IPython"].get_ipython()
    return None
