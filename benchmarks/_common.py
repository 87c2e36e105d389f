"""Shared helpers of the benchmark scripts: timing and stats, the result table and ratio
lines, a temp working directory with a SQLite registry, a small scikit-learn model, a
throwaway PostgreSQL cluster (and more databases on it), a local ``mlflow server``, a
local ``jupyreg server`` with credentials to act as its users, and a count of the HTTP
requests this process sends.

Every script prints, per measure, the jupyreg figure, the anchor measured in the same run,
and one line ``RATIO <measure>: <ratio> (target ...)`` (or ``RATIO <measure>: skipped: why``)
that ``run_all.py`` collects into its summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "JUPYREG_USER",
)


# timing and stats -------------------------------------------------------------------


@dataclass
class Stats:
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    def cell(self) -> str:
        if not self.times:
            return "-"
        return f"{_ms(self.median)} ({_ms(self.min)}-{_ms(self.max)})"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def alternate(
    sides: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1, self_timed: bool = False
) -> dict[str, Stats]:
    """Time each side ``repeat`` times, alternating sides on each round, after ``warmup``
    untimed call(s) of each side. ``self_timed``: each call returns its own time (seconds),
    e.g. measured inside a fresh interpreter, and that is the figure."""
    for _ in range(warmup):
        for action in sides.values():
            action()
    results = {label: Stats() for label in sides}
    for _ in range(repeat):
        for label, action in sides.items():
            results[label].times.append(action() if self_timed else timed(action))
    return results


def fresh_python(code: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Run ``code`` in a fresh interpreter; it prints one float (seconds) as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**clean_env(), "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fresh interpreter failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in MLFLOW_ENV}


# reporting --------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    ours: Stats | None
    anchor: Stats | None
    target: float | None = None  # ratio ours/anchor must be <= target; None: report only
    note: str = ""  # "skipped: why" / "not available yet: why" when there is no figure

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.anchor or not self.ours.times or not self.anchor.times:
            return None
        return self.ours.median / self.anchor.median

    def verdict(self) -> str:
        if self.ratio is None:
            return self.note or "-"
        if self.target is None:
            return ""
        return "met" if self.ratio <= self.target else "MISSED"


def print_table(title: str, rows: Sequence[Row], how: str, anchor_label: str) -> None:
    """The table of one script, then one ``RATIO`` line per row."""
    print(f"\n== {title}")
    print(how)
    print(f"times in ms: median (min-max); anchor = {anchor_label}")
    header = f"{'measure':<56} {'jupyreg':>24} {'anchor':>24} {'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row.ratio:.3f}" if row.ratio is not None else "-"
        target = f"<= {row.target}" if row.target is not None else "report"
        ours = row.ours.cell() if row.ours else row.note or "-"
        anchor = row.anchor.cell() if row.anchor else "-"
        verdict = row.verdict() if row.ratio is not None else ""
        print(f"{row.measure:<56} {ours:>24} {anchor:>24} {ratio:>7}  {target} {verdict}")
    for row in rows:
        print(ratio_line(row))
    sys.stdout.flush()


def ratio_line(row: Row) -> str:
    if row.ratio is None:
        return f"RATIO {row.measure}: {row.note or 'no figure'}"
    target = f"target <= {row.target}: {row.verdict()}" if row.target is not None else "report"
    return (
        f"RATIO {row.measure}: {row.ratio:.3f} ({target}; jupyreg {_ms(row.ours.median)} ms,"
        f" anchor {_ms(row.anchor.median)} ms)"
    )


def parser(doc: str | None, default_repeat: int) -> argparse.ArgumentParser:
    """A script's arguments. Making it also sets the script's process up: the anchors are
    plain MLflow as MLflow ships it, so jupyreg's run-context provider (which every
    ``mlflow.start_run`` here would call) is off."""
    os.environ.setdefault("JUPYREG_CAPTURE", "0")
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    p.add_argument(
        "--repeat", type=int, default=0, help=f"repetitions (default {default_repeat}; smoke 1)"
    )
    return p


def repeats(args: argparse.Namespace, default: int) -> int:
    return args.repeat or (1 if args.smoke else default)


# a temp registry and a model ----------------------------------------------------------


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """chdir into a fresh temp dir (MLflow's default SQLite lands there), without the
    caller's MLflow settings; restores both and removes the dir at the end."""
    old_cwd, saved = os.getcwd(), {k: os.environ.pop(k) for k in MLFLOW_ENV if k in os.environ}
    tmp = Path(tempfile.mkdtemp(prefix=f"jupyreg-bench-{prefix}-"))
    os.chdir(tmp)
    try:
        yield tmp
    finally:
        os.chdir(old_cwd)
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)


def sqlite_uri(root: Path, name: str = "mlflow.db") -> str:
    """A migrated SQLite registry under ``root`` (MLflow creates the schema on first use)."""
    uri = f"sqlite:///{root / name}"
    from mlflow import MlflowClient

    MlflowClient(uri, uri).search_experiments()
    return uri


def small_model() -> Any:
    """A tiny fitted LogisticRegression, the model of the "small scikit-learn model" rows."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    return LogisticRegression(C=0.5).fit(x, y)


def quiet_mlflow() -> None:
    """Silence MLflow's deprecation and progress chatter so the tables stay readable."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401 - it configures its loggers on import; quieten them after

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)


def log_one_model(uri: str, experiment: str = "bench-source") -> tuple[str, str, str]:
    """One logged sklearn model (requirements given, so no inference); returns
    (model_uri ``models:/m-...``, model_id, run_id)."""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            small_model(), name="model", pip_requirements=["scikit-learn"]
        )
    return info.model_uri, info.model_id, run.info.run_id


def create_versions(uri: str, name: str, count: int, source: tuple[str, str, str]) -> None:
    """``count`` plain-MLflow versions of ``name``, all pointing at one logged model."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri, uri)
    with suppress(MlflowException):
        client.create_registered_model(name)
    model_uri, model_id, run_id = source
    for _ in range(count):
        client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id)


# PostgreSQL and mlflow server -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_unavailable() -> str | None:
    """Why a PostgreSQL row cannot run here, or None."""
    if PG_BIN is None:
        return "PostgreSQL binaries not found under /usr/lib/postgresql"
    if shutil.which("runuser") is None or os.geteuid() != 0:
        return "initdb needs root to run it as the postgres user (runuser)"
    if pg_scheme() is None:
        return "no PostgreSQL driver: pip install psycopg2-binary"
    return None


def pg_scheme() -> str | None:
    """SQLAlchemy's scheme for the installed driver, named explicitly (SQLAlchemy 2.1 maps a
    bare ``postgresql://`` to psycopg 3). psycopg2 first: with psycopg 3's server-side
    parameters, MLflow 3.17's ``transition_model_version_stage(...,
    archive_existing_versions=True)`` fails on PostgreSQL (``integer <> character varying``)."""
    import importlib.util

    if importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2"
    if importlib.util.find_spec("psycopg"):
        return "postgresql+psycopg"
    return None


@contextmanager
def postgres(fast_seed: bool = False) -> Iterator[str]:
    """A PostgreSQL cluster in a temp dir owned by ``postgres``, on 127.0.0.1 and a free
    port; yields the SQLAlchemy URI of a fresh database, stops and removes it after."""
    root = Path(tempfile.mkdtemp(prefix="jupyreg-bench-pg-", dir="/tmp"))
    root.chmod(0o755)
    shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def as_postgres(*cmd: object) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, cmd)], check=True, capture_output=True
        )

    as_postgres(PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    if fast_seed:  # durability is not what is measured; seeding 10,000 versions is faster
        options += " -c fsync=off -c synchronous_commit=off"
    as_postgres(PG_BIN / "pg_ctl", "-D", data, "-l", root / "log", "-w", "start", "-o", options)
    try:
        as_postgres(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "bench")
        yield f"{pg_scheme()}://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(data)]
            + ["-m", "fast", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def mlflow_server(backend: str, root: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A plain ``mlflow server`` (one worker) on 127.0.0.1 over ``backend``; yields its URL.
    ``env``: extra environment of the server (e.g. ``SERVER_ENV``, as a jupyreg server has)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
            + ["--backend-store-uri", backend, "--artifacts-destination", str(root / "artifacts")]
            + ["--workers", "1"],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**clean_env(), **(env or {}), "PATH": f"{BIN}:{os.environ['PATH']}"},
            start_new_session=True,
        )
    with serving(process, url, log_path, "mlflow server"):
        yield url


def create_database(uri: str, name: str) -> str:
    """A new database ``name`` on the cluster of ``uri`` (a URI ``postgres()`` yielded);
    returns its URI (same scheme, host and port)."""
    parts = urllib.parse.urlsplit(uri)
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(PG_BIN / "createdb")]
        + ["-h", str(parts.hostname), "-p", str(parts.port), "-U", "postgres", name],
        check=True,
        capture_output=True,
    )
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""What the jupyreg-server rows give both servers: no background job runner (MLflow starts
one by default; the team tests run without it too)."""
JUPYREG_ADMIN = ("admin", "bench-admin-password-1234")
"""The admin of ``jupyreg_server()`` (created on its first start)."""


@contextmanager
def jupyreg_server(
    backend: str, auth_database: str, root: Path, workers: int = 1, auth_cache_seconds: int = 0
) -> Iterator[str]:
    """``jupyreg server`` (MLflow's basic-auth app plus jupyreg's lifecycle endpoints and
    guard), started with the installed CLI on 127.0.0.1 over ``backend``, users and
    permissions in ``auth_database``, admin ``JUPYREG_ADMIN``; yields its URL. Clients
    authenticate with ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``
    (``credentials()``).

    ``auth_cache_seconds`` > 0: MLflow's basic-auth caches a checked password that long
    (``auth_cache_ttl_seconds``; MLflow's default 0 hashes the password at every check).
    ``jupyreg server`` has no option for it, so the server then gets its own
    ``basic_auth.ini`` (``MLFLOW_AUTH_CONFIG_PATH``) instead of ``--auth-database-uri``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / f"jupyreg-server-{port}.log"
    env = _auth_server_env()
    auth = ["--auth-database-uri", auth_database]
    if auth_cache_seconds > 0:
        env["MLFLOW_AUTH_CONFIG_PATH"] = _auth_config(root, port, auth_database, auth_cache_seconds)
        auth = []
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "jupyreg"), "server", "--backend-store-uri", backend]
            + ["--artifacts-destination", str(root / f"artifacts-{port}")]
            + [*auth, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # the CLI and its uvicorn worker(s): one process group
        )
    with serving(process, url, log_path, "jupyreg server"):
        yield url


def _auth_server_env() -> dict[str, str]:
    """The environment of a basic-auth server: admin ``JUPYREG_ADMIN``, no job runner."""
    return {
        **clean_env(),
        **SERVER_ENV,
        "MLFLOW_AUTH_ADMIN_PASSWORD": JUPYREG_ADMIN[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "bench-secret-key",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }


def _auth_config(root: Path, port: int, auth_database: str, cache_seconds: int) -> str:
    """A ``basic_auth.ini`` as MLflow's basic-auth reads it (configparser, ``%`` escaped):
    users in ``auth_database``, admin ``JUPYREG_ADMIN[0]``, READ by default, a checked
    password remembered ``cache_seconds`` (0: hashed at every check, MLflow's default)."""
    import configparser

    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": "READ",
        "database_uri": auth_database.replace("%", "%%"),
        "admin_username": JUPYREG_ADMIN[0],
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "auth_cache_ttl_seconds": str(cache_seconds),
    }
    path = root / f"basic_auth-{port}.ini"
    with open(path, "w") as file:
        config.write(file)
    return str(path)


@contextmanager
def mlflow_auth_server(
    backend: str, auth_database: str, root: Path, auth_cache_seconds: int = 0
) -> Iterator[str]:
    """A plain ``mlflow server --app-name basic-auth`` (one worker) on 127.0.0.1: MLflow's
    own authenticated server, configured as ``jupyreg_server`` configures its basic-auth
    (users in ``auth_database``, admin ``JUPYREG_ADMIN``, the same password cache), so the
    two pay the same per-request authentication; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / f"mlflow-auth-server-{port}.log"
    env = _auth_server_env()
    env["MLFLOW_AUTH_CONFIG_PATH"] = _auth_config(root, port, auth_database, auth_cache_seconds)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--app-name", "basic-auth", "--host", "127.0.0.1"]
            + ["--port", str(port), "--backend-store-uri", backend]
            + ["--artifacts-destination", str(root / f"artifacts-{port}"), "--workers", "1"],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    with serving(process, url, log_path, "mlflow server --app-name basic-auth"):
        yield url


@contextmanager
def team_on_sqlite(root: Path) -> Iterator[tuple[str, str]]:
    """A jupyreg server and MLflow's basic-auth server, each on its own SQLite files."""
    with (
        jupyreg_server(
            f"sqlite:///{root / 'team.db'}", f"sqlite:///{root / 'auth.db'}", root
        ) as team,
        mlflow_auth_server(
            f"sqlite:///{root / 'anchor.db'}", f"sqlite:///{root / 'anchor-auth.db'}", root
        ) as anchor,
    ):
        yield team, anchor


@contextmanager
def credentials(username: str | None, password: str | None = None) -> Iterator[None]:
    """Act as ``username`` towards a basic-auth server (MLflow's client reads
    ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` at each request); None: no credentials.
    The previous values are restored after."""
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    saved = {k: os.environ.get(k) for k in keys}
    for key, value in zip(keys, (username, password), strict=True):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class HttpLog:
    """The HTTP requests this process sent while ``count_http()`` was on: one
    ``(method, path)`` per request on the wire (each retry its own)."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.sent)

    def since(self, mark: int) -> list[tuple[str, str]]:
        return self.sent[mark:]


@contextmanager
def count_http() -> Iterator[HttpLog]:
    """Record every HTTP request sent from this process (urllib3's one place where a
    request goes on the wire, below requests' and MLflow's retries) until the end."""
    from urllib3.connectionpool import HTTPConnectionPool

    original = HTTPConnectionPool._make_request
    log = HttpLog()

    def recording(self: Any, conn: Any, method: str, url: str, *args: Any, **kw: Any) -> Any:
        log.sent.append((method, url.split("?", 1)[0]))
        return original(self, conn, method, url, *args, **kw)

    HTTPConnectionPool._make_request = recording  # type: ignore[method-assign]
    try:
        yield log
    finally:
        HTTPConnectionPool._make_request = original  # type: ignore[method-assign]


def profile(action: Callable[[], Any], lines: int = 30) -> None:
    """Print the cProfile of one call of ``action``, by cumulative time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(action)
    print(f"\n-- cProfile of one call, top {lines} by cumulative time")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(lines)


@contextmanager
def serving(
    process: subprocess.Popen, url: str, log_path: Path, what: str, probe: str = "/health"
) -> Iterator[None]:
    """Wait until the server process answers ``probe`` with 200, then stop its process
    group."""
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}{probe}", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
