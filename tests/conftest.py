"""Fixtures that start real things: SQLite registries in temp dirs, an `mlflow server`.

Also the shape of `make test` (see the Makefile): modules that run things end to end are
marked here, by path, so that stage 1 (`-m "not slow and not server and not e2e"`) stays
fast and stage 2 (`-m "slow or server or e2e"`) runs the rest.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TESTS = Path(__file__).resolve().parent

# Every `mlflow server` with a SQL backend (ours, `jupyreg server`, those the notebooks and
# benchmarks start) otherwise also starts MLflow's job runner: 8 more Python processes that
# import MLflow (seconds of CPU each on 2 cores), and that a SIGTERM leaves running as
# orphans. jupyreg uses no MLflow jobs (GenAI judges, trace rollups), so tests run without.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
os.environ.update({k: v for k, v in SERVER_ENV.items() if k not in os.environ})

# Stage 2 of `make test`: marks by module path, relative to tests/.
STAGE2_MARKS: dict[str, tuple[str, ...]] = {
    "test_attacks.py": ("e2e",),  # the guard attacked on jupyreg servers, SQLite and PostgreSQL
    "test_binder.py": ("e2e",),  # its slow tests build a virtualenv from binder/
    "test_benchmarks_smoke.py": ("e2e",),  # benchmark scripts, some with mlflow servers
    "test_cicd.py": ("server", "e2e"),  # mlflow servers, restarts, watchers
    "test_concurrency.py": ("e2e",),  # 8 spawned processes racing on one registry
    "test_demo.py": ("e2e",),  # `jupyreg demo` in a fresh process
    "test_faults.py": ("e2e",),  # kill -9 mid-step, embedded and of servers on PostgreSQL
    "test_fuzz.py": ("server", "e2e"),  # thousands of bodies against a jupyreg server
    "test_github_actions.py": ("e2e",),  # actionlint, workflow steps as subprocesses
    "test_notebook_register.py": ("e2e",),  # notebooks run in kernels
    "test_notebooks.py": ("e2e",),  # notebooks/ run in kernels, some start servers
    "test_notebook_polish.py": ("e2e",),  # %%register cells in one kernel (nbclient)
    "test_reproduce.py": ("e2e",),  # kernels register versions, then re-run them
    "test_reproduce_sandbox.py": ("e2e",),  # the same, with the re-run's environment probed
    "test_reproduce_scripts.py": ("e2e",),  # scripts, `jupyreg run`, dvc repro: re-run
    "test_serve.py": ("e2e",),  # a `jupyreg serve` process under load, uvicorn, alerts
    "test_serve_hardening.py": ("e2e",),  # a `jupyreg serve` with two workers, replays
    "test_server.py": ("server", "e2e"),
    "test_team_server.py": ("server", "e2e"),  # PostgreSQL, moto S3, jupyreg server
    "test_team_everyday.py": ("server", "e2e"),  # jupyreg servers, Chromium on MLflow's UI
    "test_oidc.py": ("server", "e2e"),  # a jupyreg server trusting a loopback OIDC issuer
    "test_outbox.py": ("server", "e2e"),  # a jupyreg server's webhook outbox, kill -9
}


# Both stages run on pytest-xdist workers (`make test`, `--dist loadgroup`). The unit a
# worker takes is a test, or, where tests share a module-scoped fixture (a server, a
# cluster), the module (one unit per value of a parametrised module fixture, e.g. attacks
# on SQLite and on PostgreSQL), so that the fixture is made once. Units start longest first
# so that the short ones fill in beside them: rough seconds (half of what `--durations`
# gave for stage 2 on 4 workers, 2026-11-28), by test node id or by module path, relative
# to tests/.
LONGEST_FIRST: dict[str, int] = {
    "test_binder.py::test_a_fresh_environment_from_binder_spec_runs_post_build_and_the_notebooks": 350,  # noqa: E501
    "test_faults.py::test_kill_9_at_random_points_of_lifecycle_steps_embedded": 150,
    "test_attacks.py": 140,  # each backend's unit
    "test_faults.py::test_kill_9_of_a_jupyreg_server_on_postgresql_mid_step": 135,
    "test_team_server.py": 130,
    "test_team_everyday.py": 80,
    "test_benchmarks_smoke.py::test_benchmark_script_runs_and_prints_its_ratios": 45,
    "test_github_actions.py::test_promote_then_deploy_workflows_run_against_a_registry": 70,
    "test_fuzz.py": 100,
    "test_reproduce.py": 50,
    "test_reproduce_sandbox.py": 40,
    "test_notebooks.py::test_team_server": 50,
    "test_notebooks.py::test_cicd_and_alerts": 40,
    "test_serve.py": 20,
    "test_serve_hardening.py": 45,
    "test_concurrency.py": 20,
}


def _worker_unit(item: pytest.Item, module: str) -> str:
    shared = [
        name
        for name, defs in item._fixtureinfo.name2fixturedefs.items()
        if defs and defs[-1].scope == "module"
    ]
    if not shared:
        return item.nodeid
    params = getattr(item, "callspec", None)
    values = [str(params.params[name]) for name in shared if params and name in params.params]
    return module + "".join(f"[{value}]" for value in values)


def _seconds(item: pytest.Item) -> int:
    test = item.nodeid.split("tests/", 1)[-1].split("[", 1)[0]
    return LONGEST_FIRST.get(test, LONGEST_FIRST.get(test.split("::", 1)[0], 0))


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups given here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            module = Path(item.path).resolve().relative_to(TESTS).as_posix()
        except ValueError:  # a test outside tests/ (e.g. given on the command line)
            continue
        for mark in STAGE2_MARKS.get(module, ()):
            item.add_marker(mark)
        # xdist reads a group's name after the node id's last "]": none may hold one
        unit = _worker_unit(item, module).replace("[", "(").replace("]", ")")
        item.add_marker(pytest.mark.xdist_group(unit))
    items.sort(key=lambda item: -_seconds(item))  # stable: a module's order is kept


def model_state(uri: str, name: str) -> dict:
    """Everything the lifecycle could have touched on one model: its aliases and tags, each
    version's MLflow stage and tags (to prove a refusal changed nothing)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri, uri)
    model = client.get_registered_model(name)
    versions = client.search_model_versions(f"name = '{name}'")
    return {
        "aliases": dict(model.aliases),
        "tags": dict(model.tags),
        "versions": sorted(
            (mv.version, mv.current_stage, tuple(sorted(mv.tags.items()))) for mv in versions
        ),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's MLflow settings or identity."""
    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "JUPYREG_USER",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@functools.cache
def schema_template() -> Path:
    """An empty MLflow SQLite database with its schema. Creating one runs MLflow's
    migrations (seconds), copying it takes milliseconds; so it is made once per installed
    MLflow version and virtualenv and kept in the virtualenv, for every pytest run (each
    stage of `make test`) and every `mlflow server` the tests start. Tests only copy it."""
    import mlflow
    from mlflow import MlflowClient

    name = f"mlflow-{mlflow.__version__}-schema.db"
    cache = Path(sys.prefix) / ".jupyreg-test-cache"
    try:
        cache.mkdir(exist_ok=True)
    except OSError:  # a read-only virtualenv: one per process, in a temp dir
        cache = Path(tempfile.mkdtemp(prefix="jupyreg-schema-"))
    path = cache / name
    if not path.exists():
        scratch = Path(tempfile.mkdtemp(prefix="jupyreg-schema-", dir=cache))
        MlflowClient(f"sqlite:///{scratch / name}").search_experiments()
        os.replace(scratch / name, path)  # atomic: parallel runs never see half a file
        shutil.rmtree(scratch, ignore_errors=True)
    return path


@pytest.fixture(scope="session")
def empty_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The schema template (see `schema_template`), copied once into this session."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    shutil.copyfile(schema_template(), path)
    return path


@pytest.fixture
def sqlite_uri(workdir: Path, empty_registry_db: Path) -> str:
    shutil.copyfile(empty_registry_db, workdir / "mlflow.db")
    return f"sqlite:///{workdir / 'mlflow.db'}"


@pytest.fixture(scope="module")
def git_dvc_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project (``tests/registered_project.py``), built once per module."""
    from tests.registered_project import build_project

    root = tmp_path_factory.mktemp("template") / "project"
    root.mkdir()
    return build_project(root)


@pytest.fixture
def git_dvc_project(workdir: Path, git_dvc_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of that project as the working directory (a registry's mlflow.db in it)."""
    from tests.registered_project import copy_project

    return copy_project(git_dvc_template, workdir, monkeypatch)


@pytest.fixture
def cli(sqlite_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``cli("list", user="bob")`` runs the jupyreg CLI on ``sqlite_uri``: (exit, out, err)."""
    from jupyreg.cli import main

    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")

    def run(*argv: str, user: str = "alice") -> tuple[int, str, str]:
        code = main(["--tracking-uri", sqlite_uri, "--user", user, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def alice(sqlite_uri: str):
    from jupyreg import Registry

    return Registry(sqlite_uri, user="alice")


@pytest.fixture
def bob(sqlite_uri: str):
    from jupyreg import Registry

    return Registry(sqlite_uri, user="bob")


@pytest.fixture(scope="session")
def model():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    fitted = LogisticRegression(C=0.5).fit(x, y)
    fitted.sample_input = x[:3]  # handy for predictions in tests
    return fitted


def register_versions(reg, model, name: str, count: int) -> list[int]:
    return [
        reg.register(
            model, name, metrics={"val": {"auc": 0.8 + i / 100}, "test": {"auc": 0.79}}
        ).version
        for i in range(count)
    ]


WORKER_PRELOAD = (
    "jupyreg.registry",
    "jupyreg.backend.local",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
)


def worker_processes(module: str) -> multiprocessing.context.BaseContext:
    """Processes forked from one server that imported ``module`` and what opening an
    embedded registry imports: a spawned worker imports them itself, 1.5-5 s of CPU each.
    (One server per test process: the first caller's preload is the one that holds.)"""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([module, *WORKER_PRELOAD])
    return context


WEBHOOK_ENV = {
    # deliver MLflow webhooks to receivers on 127.0.0.1, without the 60 s webhook cache
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "0",
}


class MlflowServer:
    """A real `mlflow server` process on 127.0.0.1 with a SQLite backend; restartable on
    the same port and database."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        database = self.root / "mlflow.db"
        if not database.exists():  # a restart keeps its database; a first start skips migrations
            shutil.copyfile(schema_template(), database)
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--workers",
                "1",
            ],
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **SERVER_ENV, **WEBHOOK_ENV, "PATH": f"{BIN}:{os.environ['PATH']}"},
            start_new_session=True,  # stop() signals the CLI and its uvicorn worker together
        )
        log.close()
        deadline = time.monotonic() + 240  # a loaded machine (parallel test workers)
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._signal(signal.SIGKILL)
                self.process.wait()
                raise RuntimeError((self.root / "server.log").read_text()[-3000:])
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._signal(signal.SIGKILL)  # whatever the CLI left behind in its group
        self.process = None

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real `mlflow server` shared by a test module."""
    server = MlflowServer(tmp_path_factory.mktemp("server"))
    server.start()
    yield server.url
    server.stop()


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to a process started with ``start_new_session=True`` and its children, then
    SIGKILL to whatever of the group is left after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def signed_webhook(payload: dict, secret: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of an MLflow webhook delivery of ``payload``, signed as MLflow signs."""
    body = json.dumps(payload)
    delivery, stamp = "d-1", str(int(time.time()))
    digest = hmac.new(secret.encode(), f"{delivery}.{stamp}.{body}".encode(), hashlib.sha256)
    headers = {
        "X-MLflow-Signature": "v1," + base64.b64encode(digest.digest()).decode(),
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Delivery-Id": delivery,
        "Content-Type": "application/json",
    }
    return headers, body.encode()


class Receiver:
    """A real HTTP server collecting (headers, body) of every POST."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [item for item in list(self.received) if predicate(item)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"nothing matching arrived; got {len(self.received)} deliveries")


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
