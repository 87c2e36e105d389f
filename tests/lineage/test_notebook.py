"""Finding the notebook, hashing it and snapshotting it without outputs."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jupyreg.lineage import capture


def test_explicit_notebook_hash_and_stripped_snapshot(git_repo: Path) -> None:
    notebook = git_repo / "train.ipynb"
    lineage = capture(cwd=git_repo, notebook="train.ipynb", data=[])
    info = lineage.record["notebook"]
    assert info == {
        "path": "train.ipynb",
        "sha256": hashlib.sha256(notebook.read_bytes()).hexdigest(),
        "source": "option",
    }
    snapshot = json.loads(lineage.artifacts["jupyreg/notebook.ipynb"])
    code, markdown = snapshot["cells"]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["source"] == ["model = train()\n"]
    assert markdown == json.loads(notebook.read_text())["cells"][1]
    tags = lineage.to_tags()
    assert tags["jupyreg.notebook.path"] == "train.ipynb"
    assert tags["jupyreg.notebook.sha256"] == info["sha256"]


def test_vscode_notebook_variable(git_repo: Path) -> None:
    user_ns = {"__vsc_ipynb_file__": str(git_repo / "train.ipynb")}
    info = capture(cwd=git_repo, user_ns=user_ns, data=[]).record["notebook"]
    assert (info["path"], info["source"]) == ("train.ipynb", "vscode")


@pytest.mark.parametrize("absolute", [True, False])
def test_jpy_session_name(git_repo: Path, monkeypatch: pytest.MonkeyPatch, absolute: bool) -> None:
    name = str(git_repo / "train.ipynb") if absolute else "train.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", name)
    info = capture(cwd=git_repo, data=[]).record["notebook"]
    assert (info["path"], info["source"]) == ("train.ipynb", "JPY_SESSION_NAME")


def test_unknown_notebook_is_a_warning_in_a_kernel_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = capture(cwd=tmp_path, data=[])  # pytest: a script, which has no notebook
    assert script.record["entry"]["kind"] == "script"
    assert not any(w.startswith("notebook:") for w in script.warnings)
    monkeypatch.setattr("jupyreg.lineage.entry.in_kernel", lambda: True)
    lineage = capture(cwd=tmp_path, data=[])
    assert lineage.record["entry"]["kind"] == "notebook"
    assert lineage.record["notebook"] == {"path": None, "sha256": None, "source": None}
    assert "notebook: path unknown; pass --notebook (or notebook=...) to record it" in (
        lineage.warnings
    )
    assert "jupyreg/notebook.ipynb" not in lineage.artifacts
    assert not any(key.startswith("jupyreg.notebook.") for key in lineage.to_tags())


def test_missing_or_invalid_notebook(tmp_path: Path) -> None:
    lineage = capture(cwd=tmp_path, notebook="gone.ipynb", data=[])
    assert lineage.record["notebook"]["sha256"] is None
    assert any(w.startswith("notebook: cannot read") for w in lineage.warnings)

    (tmp_path / "broken.ipynb").write_text("{not json")
    lineage = capture(cwd=tmp_path, notebook="broken.ipynb", data=[])
    assert lineage.record["notebook"]["sha256"] is not None
    assert "jupyreg/notebook.ipynb" not in lineage.artifacts
    assert any("not valid notebook JSON" in w for w in lineage.warnings)


class _Sessions(BaseHTTPRequestHandler):
    """A stand-in Jupyter server answering GET /api/sessions."""

    sessions: list[dict] = []
    token = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        ok = self.path == f"/api/sessions?token={self.token}"
        body = json.dumps(self.sessions if ok else {"message": "Forbidden"}).encode()
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sessions_server(tmp_path: Path) -> Iterator[tuple[Path, type[_Sessions]]]:
    """A runtime dir with a ``jpserver-*.json`` pointing to a live sessions endpoint."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sessions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    _Sessions.token = "tok123"
    info = {
        "url": f"http://127.0.0.1:{server.server_address[1]}/",
        "token": _Sessions.token,
        "root_dir": str(tmp_path),
        "pid": os.getpid(),
    }
    (runtime / f"jpserver-{os.getpid()}.json").write_text(json.dumps(info))
    yield runtime, _Sessions
    server.shutdown()
    server.server_close()


def test_sessions_api_from_a_real_kernel(
    git_repo: Path, sessions_server: tuple[Path, type[_Sessions]], tmp_path: Path
) -> None:
    """A real ipykernel, started the way Jupyter Server starts one (connection file
    ``kernel-<id>.json``), finds its notebook through the sessions API by its kernel id."""
    pytest.importorskip("ipykernel")
    manager = pytest.importorskip("jupyter_client.manager")
    runtime, handler = sessions_server
    kernel_id = str(uuid.uuid4())
    handler.sessions = [
        {"path": "elsewhere.ipynb", "kernel": {"id": "another-kernel"}},
        {
            "path": (git_repo.relative_to(tmp_path) / "train.ipynb").as_posix(),
            "kernel": {"id": kernel_id},
        },
    ]
    km = manager.KernelManager(
        kernel_name="python3", connection_file=str(runtime / f"kernel-{kernel_id}.json")
    )
    km.start_kernel(
        cwd=str(git_repo),
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "PYTHONPATH": _repo_root()},
    )
    kc = km.client()
    out: list[str] = []
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(
            "import json\nfrom jupyreg.lineage import capture\n"
            "print(json.dumps(capture(data=[]).record['notebook']))",
            timeout=60,
            output_hook=lambda msg: out.append(msg["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok", out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    info = json.loads("".join(out))
    assert (info["path"], info["source"]) == ("train.ipynb", "jupyter_server")


def _repo_root() -> str:
    return str(Path(__file__).resolve().parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", "")


def test_no_kernel_means_no_sessions_lookup(
    git_repo: Path, sessions_server: tuple[Path, type[_Sessions]], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, _ = sessions_server
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    assert capture(cwd=git_repo, data=[]).record["notebook"]["path"] is None


def test_jpy_session_name_relative_to_the_server_root(
    git_repo: Path,
    sessions_server: tuple[Path, type[_Sessions]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jupyter Server may give the notebook's path relative to its root directory."""
    runtime, _ = sessions_server
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JPY_SESSION_NAME", f"{git_repo.name}/train.ipynb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    info = capture(cwd=elsewhere, data=[]).record["notebook"]
    assert (info["path"], info["source"]) == (str(git_repo / "train.ipynb"), "JPY_SESSION_NAME")
