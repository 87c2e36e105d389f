"""A team deployment to attack (tests/test_attacks.py): `jupyreg server` on SQLite or
PostgreSQL, once plain and once under ``--static-prefix /mlflow`` on the same stores, with
users alice (EDIT), bob (MANAGE), eve (READ) and a protected model holding a Production
and a Staging version; raw HTTP attempts and a cheap read-back of the protected state."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.conftest import BIN, SERVER_ENV, free_port, schema_template
from tests.team import ADMIN_PASSWORD, Postgres, signed_in, wait_until_up

PASSWORDS = {
    "admin": ADMIN_PASSWORD,
    "alice": "alice-password-1",
    "bob": "bob-password-12",
    "eve": "eve-password-12",
}
USERS = ("anonymous", "eve", "alice", "bob", "admin")
"""READ (eve), EDIT (alice), MANAGE (bob) on every protected model; admin; no credentials."""
LEVELS = {"alice": "EDIT", "bob": "MANAGE", "eve": "READ"}
STATIC_PREFIX = "/mlflow"
DECOY = "eve-own"
"""A model eve created herself: the object a mismatching query string names."""
RESERVED_ALIASES = ("production", "staging")


class Server:
    """One `jupyreg server` process (under ``--static-prefix`` when it has one)."""

    def __init__(self, root: Path, backend: str, auth_db: str, static_prefix: str = "") -> None:
        self.root, self.backend, self.auth_db = root, backend, auth_db
        self.static_prefix = static_prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.extra: list[str] = []  # more arguments of `jupyreg server`

    def command(self, env: dict[str, str]) -> list[str]:
        common = [
            "--backend-store-uri",
            self.backend,
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        prefix = ["--static-prefix", self.static_prefix] if self.static_prefix else []
        auth = ["--auth-database-uri", self.auth_db, "--auth-cache-seconds", "60"]
        return [str(BIN / "jupyreg"), "server", *common, *auth, *prefix, *self.extra]

    def start(self, env: Mapping[str, str]) -> None:
        self.launch(env)
        self.wait_until_up()

    def launch(self, env: Mapping[str, str]) -> None:
        full_env = {**os.environ, **SERVER_ENV, **env, "PATH": f"{BIN}:{os.environ['PATH']}"}
        command = self.command(full_env)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,
            )

    def wait_until_up(self) -> None:
        assert self.process is not None
        wait_until_up(f"{self.url}{self.static_prefix}/health", self.process, self.log)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever the group left behind
        self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def credentials(user: str) -> contextlib.AbstractContextManager[None]:
    """MLflow's client credentials of ``user`` for the duration of a block."""
    return signed_in(user, PASSWORDS[user])


@dataclass
class Target:
    """A protected model: Production version ``production``, Staging version ``staging``."""

    name: str
    production: int
    staging: int
    run_id: str
    experiment_id: str
    source: str  # the Production version's source (a forged version would reuse it)
    model_files: dict[str, str]  # artifact path (under mlflow-artifacts) -> sha256
    lineage_file: str  # a lineage artifact of the version's run (under mlflow-artifacts)
    event_key: str  # a history event tag on the Production version
    request_key: str  # the approved request's tag on the Production version
    pristine: dict = field(default_factory=dict)

    @property
    def holder(self) -> str:
        """The top folder of the version's files (another experiment's, when nested)."""
        return self.model_file.split("/", 1)[0]

    @property
    def model_file(self) -> str:
        """The Production version's serialised model (what a PUT would replace)."""
        return next(p for p in self.model_files if p.endswith(("model.pkl", "model.skops")))


def _reserved_tag(key: str) -> bool:
    return key.strip().lower().startswith("jupyreg.")


class Deployment:
    """Both servers on one backend, a session per user, the protected target."""

    def __init__(self, kind: str, root: Path, model: Any) -> None:
        self.kind, self.root, self.model = kind, root, model
        self.postgres: Postgres | None = None
        if kind == "sqlite":
            shutil.copyfile(schema_template(), root / "mlflow.db")
            backend = f"sqlite:///{root / 'mlflow.db'}"
            auth_db = f"sqlite:///{root / 'auth.db'}"
        else:
            self.postgres = Postgres()
            backend = self.postgres.create_database("mlflow")
            auth_db = self.postgres.create_database("auth")
        self.env = {
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "shared-by-both-servers",
        }
        self.plain = Server(root, backend, auth_db)
        self.prefixed = Server(root, backend, auth_db, STATIC_PREFIX)
        self.sessions: dict[str, requests.Session] = {}
        for user in USERS:
            session = requests.Session()
            # a fresh connection per request: uvicorn closes idle keep-alive connections
            # after 5 s, and a request sent on one it is closing is reset, not answered
            session.headers["Connection"] = "close"
            if user != "anonymous":
                session.auth = (user, PASSWORDS[user])
            self.sessions[user] = session
        self.generation = 0
        self.target: Target | None = None
        self.setup_seconds = 0.0

    @property
    def url(self) -> str:
        return self.plain.url

    def start(self) -> None:
        """The plain server; the prefixed one starts meanwhile (``wait_for_both``)."""
        self.plain.start(self.env)
        self.prefixed.launch(self.env)

    def wait_for_both(self) -> None:
        self.prefixed.wait_until_up()

    def stop(self) -> None:
        for server in (self.prefixed, self.plain):
            server.stop()
        for session in self.sessions.values():
            session.close()
        if self.postgres is not None:
            self.postgres.stop()

    def base(self, static: bool) -> str:
        return self.prefixed.url + STATIC_PREFIX if static else self.plain.url

    # -- raw HTTP -------------------------------------------------------------------

    def call(
        self, user: str, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> requests.Response:
        """A JSON request (``body``) to the plain server; ``path`` starts with /."""
        if body is not None:
            kwargs.setdefault("json", body)
        return self.sessions[user].request(method, self.url + path, timeout=60, **kwargs)

    def admin_get(self, route: str, **params: Any) -> requests.Response:
        return self.call("admin", "GET", route, params=params)

    # -- setup ---------------------------------------------------------------------

    def add_users(self) -> None:
        for user in ("alice", "bob", "eve"):
            response = self.call(
                "admin",
                "POST",
                "/api/2.0/mlflow/users/create",
                {"username": user, "password": PASSWORDS[user]},
            )
            assert response.status_code == 200, response.text
        response = self.call(
            "eve", "POST", "/api/2.0/mlflow/registered-models/create", {"name": DECOY}
        )
        assert response.status_code == 200, response.text
        # MANAGE on her own model, as MLflow grants a creator by default (issue 14, 1.): a
        # query naming it passes basic-auth's check for any write
        self.grant(DECOY, {"eve": "MANAGE"})

    def grant(self, name: str, levels: Mapping[str, str] = LEVELS) -> None:
        from jupyreg import Registry

        with credentials("admin"):
            registry = Registry(self.url)
            for user, level in levels.items():
                registry.grant(user, name, level)

    def permission(self, user: str, name: str) -> str:
        from mlflow.server.auth.client import AuthServiceClient

        with credentials("admin"):
            found = AuthServiceClient(self.url).get_user_permission(user, "registered_model", name)
        return found.permission

    def registry(self, user: str):  # type: ignore[no-untyped-def]
        """A jupyreg client of the plain server; use inside ``credentials(user)``."""
        from jupyreg import Registry

        return Registry(self.url)

    def seed(self, name: str | None = None, nested: bool = False, **metrics: float) -> Target:
        """A model holding a Production version (requested by admin, approved by bob) and a
        Staging version, with a policy tag; alice EDIT, bob MANAGE, eve READ on it.
        ``nested``: its experiment keeps its files under another experiment's folder
        (``<holder id>/x``), where no fixed position of a path tells whose they are."""
        if name is None:
            self.generation += 1
            name = f"M{self.generation}"
        from jupyreg import Registry

        if nested:
            experiments = "/api/2.0/mlflow/experiments/create"
            holder = self.call("admin", "POST", experiments, {"name": f"{name}-holder"})
            assert holder.status_code == 200, holder.text
            location = f"mlflow-artifacts:/{holder.json()['experiment_id']}/x"
            created = self.call(
                "admin", "POST", experiments, {"name": name, "artifact_location": location}
            )
            assert created.status_code == 200, created.text

        test_metrics = {"test": {"auc": metrics.get("auc", 0.9)}}
        with credentials("admin"):
            admin = Registry(self.url)
            production = admin.register(self.model, name, metrics=test_metrics).version
            self.grant(name)
            admin.set_policy(name, approvals={"Production": 1})
            admin.transition(name, production, "Staging", reason="seed candidate")
            request = admin.request(name, production, "Production", reason="seed ship")
        with credentials("bob"):
            Registry(self.url).approve(request.id, comment="seed approval")
        with credentials("admin"):
            staging = admin.register(self.model, name, metrics=test_metrics).version
            admin.transition(name, staging, "Staging", reason="seed candidate")
        version = self.admin_get(
            "/api/2.0/mlflow/model-versions/get", name=name, version=production
        ).json()["model_version"]
        tags = {t["key"]: t["value"] for t in version.get("tags", [])}
        run = self.admin_get("/api/2.0/mlflow/runs/get", run_id=version["run_id"]).json()
        target = Target(
            name=name,
            production=int(production),
            staging=int(staging),
            run_id=version["run_id"],
            experiment_id=run["run"]["info"]["experiment_id"],
            source=version["source"],
            model_files={p: "" for p in self._model_files(version)},
            lineage_file=self._lineage_file(run["run"]["info"]),
            event_key=min(k for k in tags if k.startswith("jupyreg.event.")),
            request_key=min(k for k in tags if k.startswith("jupyreg.request.")),
        )
        target.pristine = self.state(target)
        return target

    def _model_files(self, version: Mapping[str, Any]) -> list[str]:
        """Artifact paths (relative to the mlflow-artifacts root) of a version's model."""
        location = version.get("storage_location") or version["source"]
        if location.startswith("models:/"):
            model_id = location.split("/", 1)[1].strip("/")
            logged = self.admin_get(f"/api/2.0/mlflow/logged-models/{model_id}").json()
            location = logged["model"]["info"]["artifact_uri"]
        root = location.split("mlflow-artifacts:", 1)[1].lstrip("/")
        listed = self.admin_get("/api/2.0/mlflow-artifacts/artifacts", path=root).json()
        files = [f"{root}/{f['path']}" for f in listed.get("files", []) if not f["is_dir"]]
        assert any(p.endswith("MLmodel") for p in files), (location, files)
        return sorted(p for p in files if p.endswith(("MLmodel", "model.pkl", "model.skops")))

    def _lineage_file(self, run: Mapping[str, Any]) -> str:
        """A lineage artifact jupyreg logged to the run (what ``reproduce`` reads)."""
        listed = self.admin_get(
            "/api/2.0/mlflow/artifacts/list", run_id=run["run_id"], path="jupyreg"
        ).json()
        found = sorted(f["path"] for f in listed.get("files", []) if not f["is_dir"])
        assert found, listed
        root = run["artifact_uri"].split("mlflow-artifacts:", 1)[1].lstrip("/")
        return f"{root}/{found[0]}"

    def protected(self, check: bool = False) -> Target:
        """The protected model; a new one when an attempt broke it (``target`` None) or,
        with ``check``, when it no longer reads back as seeded."""
        if self.target is None or (check and self.state(self.target) != self.target.pristine):
            self.target = self.seed(nested=True)
        return self.target

    # -- read-back -----------------------------------------------------------------

    def state(self, target: Target) -> dict[str, Any]:
        """Everything protected about ``target``, as the admin reads it (4 GETs)."""
        model = self.admin_get("/api/2.0/mlflow/registered-models/get", name=target.name)
        if model.status_code != 200:
            return {"model": f"GET {target.name}: {model.status_code} {model.text[:200]}"}
        registered = model.json()["registered_model"]
        versions = self.admin_get(
            "/api/2.0/mlflow/model-versions/search",
            filter=f"name = '{target.name}'",
            max_results=1000,
        ).json()
        files = {}
        for path in (target.model_file, target.lineage_file):  # what an attack would replace
            response = self.admin_get(f"/api/2.0/mlflow-artifacts/artifacts/{path}")
            files[path] = (
                hashlib.sha256(response.content).hexdigest()
                if response.status_code == 200
                else response.status_code
            )
        return {
            "model": registered["name"],
            "model_tags": sorted(
                (t["key"], t["value"])
                for t in registered.get("tags", [])
                if _reserved_tag(t["key"])
            ),
            "aliases": sorted(
                (a["alias"], a["version"])
                for a in registered.get("aliases", [])
                if a["alias"].strip().lower() in RESERVED_ALIASES
            ),
            "versions": sorted(
                (
                    int(v["version"]),
                    v.get("current_stage"),
                    tuple(
                        sorted(
                            (t["key"], t["value"])
                            for t in v.get("tags", [])
                            if _reserved_tag(t["key"])
                        )
                    ),
                )
                for v in versions.get("model_versions", [])
            ),
            "files": files,
        }


def describe(state_before: Mapping[str, Any], state_after: Mapping[str, Any]) -> str:
    """What changed between two read-backs, briefly."""
    changes = []
    for key in sorted(set(state_before) | set(state_after)):
        before, after = state_before.get(key), state_after.get(key)
        if before == after:
            continue
        if isinstance(before, list) and isinstance(after, list):
            gone = [x for x in before if x not in after]
            new = [x for x in after if x not in before]
            changes.append(f"{key}: -{_short(gone)} +{_short(new)}")
        else:
            changes.append(f"{key}: {_short(before)} -> {_short(after)}")
    return "; ".join(changes)


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def deployment(kind: str, root: Path, model: Any, seed: bool = True) -> Iterator[Deployment]:
    """Both servers, the users, and (``seed``) the protected target, whose seeding the
    prefixed server's start overlaps; without it the prefixed one may still be starting."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.chdir(root)  # registrations capture no lineage of the checkout running the tests
    started = time.monotonic()
    deployed = Deployment(kind, root, model)
    try:
        deployed.start()
        deployed.add_users()
        if seed:
            deployed.target = deployed.seed(nested=True)
            deployed.wait_for_both()
        deployed.setup_seconds = time.monotonic() - started
        yield deployed
    finally:
        deployed.stop()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
