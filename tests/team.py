"""Real services for the team-deployment tests: a throwaway PostgreSQL cluster, an
S3-compatible server (moto, over HTTP), and `jupyreg server` replicas."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks._common import credentials as signed_in  # noqa: F401 - shared with tests
from tests.conftest import BIN, SERVER_ENV, free_port, stop_group

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
ADMIN_PASSWORD = "admin-password-1234"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def running(
    command: list[str],
    cwd: Path,
    log: Path,
    ready: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Iterator[subprocess.Popen]:
    """A process (its own session, output in ``log``) once ``ready`` answers; its whole
    group is stopped when the block ends."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_until_up(ready, process, log, timeout)
        yield process
    finally:
        stop_group(process)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")


class Postgres:
    """A PostgreSQL cluster in a temp dir owned by the `postgres` user (initdb refuses
    root), listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        if PG_BIN is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="jupyreg-pg-", dir="/tmp"))
        self.root.chmod(0o755)
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        self._as_postgres(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "log",
            "-w",
            "start",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300",
        )

    def _as_postgres(self, *cmd: object) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, cmd)], check=True, capture_output=True
        )

    def create_database(self, name: str) -> str:
        self._as_postgres(
            PG_BIN / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", name
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


class S3Server:
    """moto's standalone S3-compatible server on 127.0.0.1, with one bucket."""

    def __init__(self, root: Path, bucket: str = "models") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = root / "s3.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **S3_ENV},
            )
        wait_until_up(self.endpoint, self.process, self.log)
        self.bucket = bucket
        self.client().create_bucket(Bucket=bucket)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            **{
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
                "region_name": "us-east-1",
            },
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class TeamServer:
    """One `jupyreg server` replica (basic-auth + lifecycle) on a shared backend. Each worker
    remembers a checked password for a minute (``--auth-cache-seconds``): MLflow's scrypt
    check is ~0.13 s of CPU per request, most of a test's CPU otherwise; no test here
    changes a password (grants are read afresh on each request either way)."""

    def __init__(
        self,
        root: Path,
        backend: str,
        auth_db: str,
        artifacts: str,
        env: dict[str, str],
        workers: int = 2,
        options: Sequence[str] = (),
    ) -> None:
        """``options``: more arguments of ``jupyreg server``."""
        self.root, self.backend, self.auth_db, self.artifacts = root, backend, auth_db, artifacts
        self.env, self.workers, self.options = env, workers, list(options)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log_path = self.root / f"server-{self.port}.log"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "jupyreg"),
                    "server",
                    "--backend-store-uri",
                    self.backend,
                    "--artifacts-destination",
                    self.artifacts,
                    "--auth-database-uri",
                    self.auth_db,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    "--auth-cache-seconds",
                    "60",
                    *self.options,
                ],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    **SERVER_ENV,
                    **self.env,
                    "PATH": f"{BIN}:{os.environ['PATH']}",
                },
                start_new_session=True,  # its uvicorn workers share one process group
            )
        wait_until_up(f"{self.url}/health", self.process, log_path)

    def kill(self) -> None:
        """kill -9 of the server and all its workers, as a crash would."""
        self._signal_group(signal.SIGKILL)

    def stop(self) -> None:
        self._signal_group(signal.SIGTERM)

    def _signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
