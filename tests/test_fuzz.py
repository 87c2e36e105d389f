"""Fuzz: a real `jupyreg server` answers any body on its write routes with a 4xx, never a 5xx.

Thousands of bodies (any JSON, objects with the routes' real field names holding wrong-typed
values, raw bytes and non-JSON text under assorted content types, query strings) go to every
jupyreg endpoint and to MLflow's registry write routes that the guard inspects, as the admin
and as an EDIT user. Every answer of 500 or more is collected and reported at once, with
the route and the body.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyreg.server.actions import ACTIONS
from tests.conftest import BIN, SERVER_ENV, free_port, schema_template
from tests.team import ADMIN_PASSWORD, wait_until_up

pytestmark = pytest.mark.server

MODEL = "fuzzed"
PASSWORDS = {"admin": ADMIN_PASSWORD, "alice": "alice-password-1"}
EXAMPLES_PER_ROUTE = 70  # x 22 routes: 1,540 bodies, after about 560 explicit ones
MINIMUM_BODIES = 2_000

JUPYREG_FIELDS = ("name", "version", "stage", "reason", "comment", "request_id", "policy")
ROUTES: list[tuple[str, str, tuple[str, ...]]] = [
    *(("POST", f"jupyreg/{action}", JUPYREG_FIELDS) for action in ACTIONS),
    (
        "POST",
        "mlflow/model-versions/create",
        ("name", "source", "run_id", "tags", "run_link", "description", "model_id"),
    ),
    ("POST", "mlflow/model-versions/set-tag", ("name", "version", "key", "value")),
    ("DELETE", "mlflow/model-versions/delete-tag", ("name", "version", "key")),
    ("DELETE", "mlflow/model-versions/delete", ("name", "version")),
    (
        "POST",
        "mlflow/model-versions/transition-stage",
        ("name", "version", "stage", "archive_existing_versions"),
    ),
    ("PATCH", "mlflow/model-versions/update", ("name", "version", "description")),
    ("POST", "mlflow/registered-models/create", ("name", "tags", "description")),
    ("POST", "mlflow/registered-models/set-tag", ("name", "key", "value")),
    ("DELETE", "mlflow/registered-models/delete-tag", ("name", "key")),
    ("POST", "mlflow/registered-models/alias", ("name", "alias", "version")),
    ("DELETE", "mlflow/registered-models/alias", ("name", "alias")),
    ("DELETE", "mlflow/registered-models/delete", ("name",)),
    ("POST", "mlflow/registered-models/rename", ("name", "new_name")),
    ("PATCH", "mlflow/registered-models/update", ("name", "description")),
]

# any JSON value: huge integers, floats MLflow's JSON parser reads as inf/nan, text
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**31 - 2, max_value=2**80)
    | st.floats()
    | st.text(max_size=16)
    | st.sampled_from([MODEL, "Production", "jupyreg.stage", "1", "", " ", "\x00", "'", "%"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
# values each field accepts, so that bodies get past the first check and into the handlers
WELL_FORMED: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from([MODEL, MODEL, "fz-new", "FUZZED", "no-such-model"]),
    "new_name": st.sampled_from(["fz-renamed", MODEL, "fz-new"]),
    "version": st.sampled_from([1, 2, "1", "2", 3, "v2"]),
    "stage": st.sampled_from(["Staging", "Production", "archived", "None"]),
    "reason": st.sampled_from(["fuzz", ""]),
    "comment": st.sampled_from(["fuzz", ""]),
    "description": st.sampled_from(["fuzz", ""]),
    "request_id": st.sampled_from(["00000000", "0000000g"]),
    "policy": st.sampled_from([{}, {"approvals": {"Production": 1}}, {"exclusive": []}]),
    "key": st.sampled_from(["team", "jupyreg.stage", " JUPYREG.Event.x", "jupyreg.policy", ""]),
    "value": st.sampled_from(["x", "", "Production"]),
    "alias": st.sampled_from(["champion", "production", "Staging", ""]),
    "archive_existing_versions": st.booleans(),
    "tags": st.sampled_from(
        [
            [],
            [{"key": "team", "value": "x"}],
            [{"key": "jupyreg.stage", "value": "Production"}],
            [{"key": "team"}],
        ]
    ),
    "source": st.sampled_from(["/tmp/fuzz-model", "mlflow-artifacts:/fuzz", f"models:/{MODEL}/1"]),
    "run_id": st.sampled_from(["0" * 32, "x'y", "%"]),
    "run_link": st.just("http://example.com"),
    "model_id": st.sampled_from(["m-0", "m-'"]),
}
GOOD: dict[str, Any] = {
    "name": MODEL,
    "new_name": "fz-renamed",
    "version": 2,
    "stage": "Archived",
    "reason": "fuzz",
    "comment": "fuzz",
    "description": "fuzz",
    "request_id": "00000000",
    "policy": {},
    "key": "team",
    "value": "x",
    "alias": "champion",
    "archive_existing_versions": False,
    "tags": [],
    "source": "/tmp/fuzz-model",
    "run_id": "0" * 32,
    "run_link": "http://example.com",
    "model_id": "m-0",
}
CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    None,
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "application/octet-stream",
]
RAW = st.binary(max_size=48) | st.sampled_from(
    [
        b"",
        b"{",
        b"[" * 50_000,
        b'{"name":' * 20_000,
        b'{"name": "' + MODEL.encode() + b'", "version": 1' + b"0" * 5_000 + b"}",
        b'{"name": "\xff\xfe"}',
        b"\xff\xfe{\x00}",
        b'{"name": "a"}{"name": "b"}',
        b"NaN",
        b"[1, 2]",
        b'"{\\"name\\": \\"fuzzed\\"}"',
        b'{"name": "fuzzed", "name": ["fuzzed"]}',
        b"name=fuzzed&version=1&key=jupyreg.stage",
        b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nfuzzed\r\n--x--\r\n',
    ]
)


@dataclass
class Case:
    method: str
    path: str
    user: str
    query: dict[str, str] | None
    data: bytes
    content_type: str | None

    def __str__(self) -> str:
        shown = self.data[:300].decode(errors="backslashreplace")
        more = f"... ({len(self.data):,} bytes)" if len(self.data) > 300 else ""
        return (
            f"{self.method} {self.path} as {self.user}, query {self.query}, "
            f"Content-Type {self.content_type}: {shown}{more}"
        )


def _fields(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {}, optional={f: WELL_FORMED[f] | WELL_FORMED[f] | JSON for f in fields}
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def cases(draw: st.DrawFn, method: str, route: str, fields: tuple[str, ...]) -> Case:
    prefix = "/api/2.0/"
    if route.startswith("mlflow/"):
        prefix = draw(st.sampled_from(["/api/2.0/", "/api/2.0/", "/ajax-api/2.0/"]))
    user = draw(st.sampled_from(["admin", "admin", "admin", "alice"]))
    query = None
    if draw(st.integers(0, 4)) == 0:
        values = st.one_of(*(WELL_FORMED[f] for f in fields)).map(str) | st.text(max_size=8)
        query = draw(st.dictionaries(st.sampled_from(fields), values, min_size=1, max_size=2))
    kind = draw(st.sampled_from(["fields"] * 5 + ["json"] * 2 + ["raw", "raw", "form"]))
    content_type: str | None = "application/json"
    if kind == "fields":
        data = _dumps(draw(_fields(fields)))
    elif kind == "json":
        data = _dumps(draw(JSON))
    elif kind == "raw":
        data, content_type = draw(RAW), draw(st.sampled_from(CONTENT_TYPES))
    else:
        body = draw(_fields(fields))
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        data = urlencode(form).encode()
        content_type = draw(st.sampled_from(CONTENT_TYPES[1:4]))
    return Case(method, prefix + route, user, query, data, content_type)


@contextlib.contextmanager
def _as_admin() -> Iterator[None]:
    with mock.patch.dict(
        os.environ,
        {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD},
    ):
        yield


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model) -> Iterator[str]:
    """One `jupyreg server` on SQLite (one worker), with alice (EDIT) and ``MODEL``: v1 in
    Staging, v2 in None."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(schema_template(), root / "mlflow.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(BIN / "jupyreg"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--auth-database-uri",
                f"sqlite:///{root / 'auth.db'}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--auth-cache-seconds",
                "60",
            ],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                **SERVER_ENV,
                "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "MLFLOW_FLASK_SERVER_SECRET_KEY": "fuzz",
                "PATH": f"{BIN}:{os.environ['PATH']}",
            },
            start_new_session=True,
        )
    try:
        wait_until_up(f"{url}/health", process, log)
        _seed(url, root, model)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _seed(url: str, root: Path, model: Any) -> None:
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient

    from jupyreg import Registry

    cwd = Path.cwd()
    os.chdir(root)  # outside any git repository: registration captures no diff
    try:
        with _as_admin():
            auth = AuthServiceClient(url)
            auth.create_user("alice", PASSWORDS["alice"])
            admin = Registry(url)
            admin.register(model, MODEL, metrics={"test": {"auc": 0.9}})
            admin.register(model, MODEL, metrics={"test": {"auc": 0.8}})
            admin.transition(MODEL, 1, "Staging", reason="fuzz target")
            experiment = MlflowClient(url).get_experiment_by_name(MODEL).experiment_id
            auth.grant_user_permission("alice", "registered_model", MODEL, "EDIT")
            auth.grant_user_permission("alice", "experiment", experiment, "EDIT")
    finally:
        os.chdir(cwd)


NOT_OBJECTS = [b"[1, 2]", b'"text"', b"3", b"null", b"[" * 50_000, b'{"name":' * 20_000]
WRONG_TYPES = [5, [None], {}]
POLICIES = [
    {"Production": "abc"},
    {"exclusive": 5},
    {"approvals": {"Production": -1}},
    {"gated_stages": [None]},
    {"thresholds": ["test.auc >= 1e999999"]},
]


def explicit_cases() -> Iterator[Case]:
    """Always sent, before the fuzz: each route with a body that is JSON but not an object
    (deep nesting included), and with each field of a well-formed body given a wrong type."""
    for method, route, fields in ROUTES:
        path = "/api/2.0/" + route
        for user in ("admin", "alice"):
            for data in NOT_OBJECTS:
                yield Case(method, path, user, None, data, "application/json")
        for i, (field, value) in enumerate((f, v) for f in fields for v in WRONG_TYPES):
            body = {**{f: GOOD[f] for f in fields}, field: value}
            yield Case(
                method, path, ("admin", "alice")[i % 2], None, _dumps(body), "application/json"
            )
    for policy in POLICIES:
        body = {"name": MODEL, "policy": policy}
        yield Case(
            "POST", "/api/2.0/jupyreg/policy", "admin", None, _dumps(body), "application/json"
        )


def test_no_body_makes_the_server_answer_5xx(server: str) -> None:
    """The explicit cases, then hypothesis's, drawn while one thread sends them, one at a
    time, in order; every answer of 500 or more (or none) is reported at the end."""
    sent: list[Case] = []
    failures: list[tuple[Case, str]] = []
    answers: dict[str, Counter[int]] = defaultdict(Counter)
    queue: Queue[Case | None] = Queue(maxsize=256)

    def sender() -> None:
        sessions = {user: requests.Session() for user in PASSWORDS}
        for user, session in sessions.items():
            session.auth = (user, PASSWORDS[user])
            session.headers["Connection"] = "close"  # never a keep-alive uvicorn closes
        while (case := queue.get()) is not None:
            sent.append(case)
            status, problem = _send(sessions[case.user], server, case)
            answers[f"{case.method} {case.path.split('2.0/', 1)[-1]}"][status] += 1
            if problem is not None:
                failures.append((case, problem))

    def enqueue(case: Case) -> None:
        queue.put(case)

    started = time.monotonic()
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        for case in explicit_cases():
            enqueue(case)
        for method, route, fields in ROUTES:
            settings(
                max_examples=EXAMPLES_PER_ROUTE,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )(given(case=cases(method, route, fields))(enqueue))()
    finally:
        queue.put(None)
        thread.join()
    elapsed = time.monotonic() - started

    print(f"{len(sent):,} bodies in {elapsed:.1f} s; {len(failures)} answered 5xx or not at all")
    for route, statuses in sorted(answers.items()):
        print(f"  {route}: " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())))
    assert requests.get(server + "/health", timeout=10).status_code == 200
    assert not failures, _report(failures, len(sent))
    assert len(sent) >= MINIMUM_BODIES


def _send(session: requests.Session, server: str, case: Case) -> tuple[int, str | None]:
    """The answer's status (0: none) and what went wrong (None when it was below 500)."""
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    try:
        response = session.request(
            case.method,
            server + case.path,
            params=case.query,
            data=case.data,
            headers=headers,
            timeout=60,
        )
    except requests.RequestException as exc:
        return 0, f"no answer: {type(exc).__name__}: {exc}"
    if response.status_code < 500:
        return response.status_code, None
    try:
        message = str(response.json().get("message"))
    except ValueError:
        message = response.text
    return response.status_code, f"{response.status_code} {' '.join(message.split())[:120]}"


def _report(failures: list[tuple[Case, str]], sent: int) -> str:
    """The failures grouped by route, user and answer, each group with its first body."""
    groups: dict[tuple[str, str, str], list[Case]] = {}
    for case, problem in failures:
        route = case.method + " " + case.path.split("2.0/", 1)[-1]
        groups.setdefault((route, case.user, problem), []).append(case)
    lines = [f"{len(failures)} of {sent:,} requests were answered 5xx (or not at all):"]
    for (route, user, problem), group in sorted(groups.items()):
        lines.append(f"  {len(group)} x {route} as {user}: {problem}\n      e.g. {group[0]}")
    return "\n".join(lines)
