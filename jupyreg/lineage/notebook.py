"""Which notebook a model came from, its hash, and a snapshot without outputs.

A kernel does not know its notebook's path, so we ask, in order: the caller, VS Code
(``__vsc_ipynb_file__``), Jupyter Server's ``JPY_SESSION_NAME``, the sessions API of the
running Jupyter servers matched on this kernel's id, then the notebooks of the current
directory for the one holding the running cell (nbconvert, nbclient, papermill).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_API_TIMEOUT_S = 0.5
UNKNOWN_NOTEBOOK = "notebook: path unknown; pass --notebook (or notebook=...) to record it"


@dataclass
class NotebookCapture:
    """The ``notebook`` section of the record, its warnings, and the stripped snapshot."""

    path: Path | None
    info: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    snapshot: bytes | None = None


def capture_notebook(
    explicit: str | os.PathLike[str] | None, cwd: Path, user_ns: Mapping[str, Any] | None
) -> NotebookCapture:
    """Locate the notebook, hash its bytes and strip its outputs for the artifact."""
    warnings: list[str] = []
    located = _locate(explicit, cwd, user_ns, warnings)
    if located is None:
        info = {"path": None, "sha256": None, "source": None}
        return NotebookCapture(None, info, [*warnings, UNKNOWN_NOTEBOOK])
    path, source = located
    info: dict[str, Any] = {"path": str(path), "sha256": None, "source": source}
    try:
        content = path.read_bytes()
    except OSError as exc:
        warnings.append(f"notebook: cannot read {path} ({exc.strerror or exc})")
        return NotebookCapture(path, info, warnings)
    info["sha256"] = hashlib.sha256(content).hexdigest()
    snapshot = strip_outputs(content)
    if snapshot is None:
        warnings.append(f"notebook: {path} is not valid notebook JSON; no snapshot saved")
    return NotebookCapture(path, info, warnings, snapshot)


def strip_outputs(content: bytes) -> bytes | None:
    """The notebook with code-cell outputs and execution counts removed (None if not JSON)."""
    try:
        notebook = json.loads(content)
        cells = notebook["cells"]
    except (ValueError, KeyError, TypeError):
        return None
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return (json.dumps(notebook, indent=1, ensure_ascii=False) + "\n").encode()


def _locate(
    explicit: str | os.PathLike[str] | None,
    cwd: Path,
    user_ns: Mapping[str, Any] | None,
    warnings: list[str],
) -> tuple[Path, str] | None:
    if explicit is not None:
        return _absolute(Path(explicit), cwd), "option"
    vscode = (user_ns or {}).get("__vsc_ipynb_file__")
    if isinstance(vscode, str) and Path(vscode).is_file():
        return Path(vscode), "vscode"
    session_name = os.environ.get("JPY_SESSION_NAME")
    if session_name:
        path = _resolve_session_path(session_name, cwd)
        if path is not None:
            return path, "JPY_SESSION_NAME"
    path = _from_sessions_api(warnings)
    if path is not None:
        return path, "jupyter_server"
    path = _from_running_cell(cwd, user_ns, warnings)
    return (path, "cell") if path is not None else None


def _from_running_cell(
    cwd: Path, user_ns: Mapping[str, Any] | None, warnings: list[str]
) -> Path | None:
    """The one notebook in ``cwd`` holding the running cell: where no server can be asked
    (``jupyter nbconvert --execute``, nbclient, papermill) the kernel starts in the
    notebook's folder, and IPython keeps the cell's code in ``In`` (as Python: magics
    transformed, so each notebook cell is transformed the same way to compare)."""
    history = (user_ns or {}).get("In")
    cell = history[-1] if isinstance(history, list) and history else None
    if not isinstance(cell, str) or not cell.strip():
        return None
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    found = [
        path
        for path in sorted(cwd.glob("*.ipynb"))
        if any(transform(source).strip() == cell.strip() for source in _code_cells(path))
    ]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        warnings.append(f"notebook: the running cell is in several notebooks ({names})")
    return found[0] if len(found) == 1 else None


def _code_cells(path: Path) -> list[str]:
    try:
        cells = json.loads(path.read_bytes())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        "".join(c["source"]) if isinstance(c.get("source"), list) else str(c.get("source", ""))
        for c in cells
        if isinstance(c, dict) and c.get("cell_type") == "code"
    ]


def _resolve_session_path(name: str, cwd: Path) -> Path | None:
    """``JPY_SESSION_NAME`` is absolute, or relative to a server's root directory."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    server_roots = (root for server in _running_servers() if (root := _root_dir(server)))
    for path in (root / candidate for root in itertools.chain([cwd], server_roots)):
        if path.is_file():
            return path
    nearby = cwd / candidate.name  # a kernel starts in its notebook's directory
    return nearby if nearby.is_file() else None


def _from_sessions_api(warnings: list[str]) -> Path | None:
    kernel_id = _kernel_id()
    if kernel_id is None:
        return None
    for server in _running_servers():
        try:
            sessions = _get_sessions(server)
        except (OSError, ValueError, KeyError) as exc:
            warnings.append(f"notebook: Jupyter server {server.get('url')} did not answer ({exc})")
            continue
        for session in sessions:
            if (session.get("kernel") or {}).get("id") == kernel_id and session.get("path"):
                root = _root_dir(server)
                path = root / session["path"] if root else Path(session["path"])
                if path.is_file():
                    return path
    return None


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file name ``kernel-<id>.json``."""
    if "ipykernel" not in sys.modules:
        return None  # not running in a Jupyter kernel
    try:
        from ipykernel import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:  # not a connected kernel (e.g. plain IPython): no id to match
        return None
    match = re.fullmatch(r"kernel-(.+)\.json", name)
    return match.group(1) if match else None


def _running_servers() -> Iterator[dict[str, Any]]:
    """The ``jpserver-*.json`` files of live servers, read as ``list_running_servers`` does
    but without importing ``jupyter_server.serverapp`` (~1 s) and without deleting files."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = Path(jupyter_runtime_dir())
        files = sorted(runtime_dir.glob("jpserver-*.json"))
    except (ImportError, OSError):
        return
    for file in files:
        try:
            info = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and _alive(info.get("pid")):
            yield info


def _root_dir(server: Mapping[str, Any]) -> Path | None:
    """The directory a server's paths are relative to (``notebook_dir`` in Notebook < 7)."""
    root = server.get("root_dir") or server.get("notebook_dir")
    return Path(root) if root else None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _get_sessions(server: Mapping[str, Any]) -> list[dict[str, Any]]:
    import urllib.parse
    import urllib.request

    url = str(server["url"]).rstrip("/") + "/api/sessions"
    if server.get("token"):
        url += "?" + urllib.parse.urlencode({"token": server["token"]})
    with urllib.request.urlopen(url, timeout=_API_TIMEOUT_S) as response:
        sessions = json.load(response)
    return sessions if isinstance(sessions, list) else []


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path
