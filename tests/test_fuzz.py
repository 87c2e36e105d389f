"""Fuzz: jupyreg's servers answer any body with a 4xx, never a 5xx.

Thousands of bodies (any JSON, objects with the routes' real field names holding wrong-typed
values, raw bytes and non-JSON text under assorted content types, query strings) go to
- a real `jupyreg server`: every jupyreg endpoint and MLflow's registry write routes that
  the guard inspects, as the admin and as an EDIT user;
- a real `jupyreg serve`: ``/invocations`` and ``/webhook`` (unsigned, and signed with its
  secret so that bodies get past the signature);
- a real Jupyter server with the lab extension: every ``/jupyreg/api`` route, with query
  strings and ``X-JupyReg-Registry-URI`` headers.
Every answer of 500 or more is collected and reported at once, with the route and the body.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import string
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
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyreg.server.actions import ACTIONS
from tests.conftest import BIN, SERVER_ENV, free_port, schema_template
from tests.team import ADMIN_PASSWORD, running, wait_until_up
from tests.test_serve_hardening import DEEP, serving, signed
from tests.test_serve_hardening import NAME as SERVED

pytestmark = pytest.mark.server

MODEL = "fuzzed"
PASSWORDS = {"admin": ADMIN_PASSWORD, "alice": "alice-password-1"}
LAB_TOKEN = "fuzz-token"
EXAMPLES_PER_ROUTE = 35  # x 22 routes: 770 bodies, after about 560 explicit ones
SERVE_EXAMPLES = 80  # x 3 (invocations; webhook unsigned, signed), after 30 explicit
LAB_EXAMPLES = 25  # x 9 routes, after 36 explicit
MINIMUM_BODIES = 1_500

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
    user: str  # team: admin or alice; serve: anyone; lab: the token's user
    query: dict[str, str] | None
    data: bytes
    content_type: str | None
    target: str = "team"  # or "serve" or "lab"
    headers: dict[str, str] | None = None
    group: str | None = None
    """The route, as answers are counted by (serve and lab: with placeholders)."""

    @property
    def route(self) -> str:
        return self.group or f"{self.method} {self.path.split('2.0/', 1)[-1]}"

    def __str__(self) -> str:
        shown = self.data[:300].decode(errors="backslashreplace")
        more = f"... ({len(self.data):,} bytes)" if len(self.data) > 300 else ""
        return (
            f"{self.target}: {self.method} {self.path} as {self.user}, query {self.query}, "
            f"headers {self.headers}, Content-Type {self.content_type}: {shown}{more}"
        )


def _fields(
    fields: tuple[str, ...], formed: dict[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    formed = formed or WELL_FORMED
    return st.fixed_dictionaries({}, optional={f: formed[f] | formed[f] | JSON for f in fields})


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


SERVE_CONTENT_TYPES = [
    "application/json",
    "application/json",
    "text/csv",
    "application/vnd.apache.parquet",
    "application/json; charset=utf-8",
    "application/json; format=pandas-split",
    "text/plain",
    None,
]
ROW = st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3) | st.lists(
    st.floats() | st.integers() | st.none() | st.text(max_size=3), max_size=4
)  # the model's 3 features, or anything
SCORING: dict[str, st.SearchStrategy[Any]] = {
    "inputs": st.lists(ROW, max_size=3) | st.sampled_from([[[0.1, 0.2, 0.3]], {"a": [1]}]),
    "instances": st.lists(ROW, max_size=3) | st.just([{"a": 1}]),
    "dataframe_split": st.fixed_dictionaries(
        {}, optional={"columns": st.lists(st.integers(0, 3), max_size=4), "data": st.lists(ROW)}
    ),
    "dataframe_records": st.lists(st.dictionaries(st.sampled_from("0123"), JSON), max_size=3),
    "params": st.dictionaries(st.text(max_size=4), JSON, max_size=2),
}
EVENT: dict[str, st.SearchStrategy[Any]] = {
    "entity": st.sampled_from(["model_version_alias", "model_version_tag", "registered_model"]),
    "action": st.sampled_from(["created", "set", "deleted"]),
    "data": st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from([SERVED, "other"]) | JSON,
            "alias": st.sampled_from(["production", "staging", "champion"]) | JSON,
            "version": st.sampled_from(["1", "2", 1, "x", 1e999, -1]) | JSON,
            "key": st.sampled_from(["jupyreg.stage", "team"]) | JSON,
            "value": st.sampled_from(["Production", "Staging", "bogus"]) | JSON,
        },
    ),
}
TOKEN_TEXT = st.text(string.ascii_letters + string.digits + ",.-_=+/", max_size=24)
HOOK_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-MLflow-Signature": st.sampled_from(["v1,", "v2,abc", "v1,AAAA"]) | TOKEN_TEXT,
        "X-MLflow-Timestamp": st.sampled_from(["0", "-1", "1e9", "9" * 30]) | TOKEN_TEXT,
        "X-MLflow-Delivery-Id": TOKEN_TEXT,
    },
)


@st.composite
def serve_cases(draw: st.DrawFn, route: str) -> Case:
    """A request to `jupyreg serve`: scoring bodies, or webhook deliveries (unsigned ones
    with assorted headers, or bodies signed with its secret)."""
    kind = draw(st.sampled_from(["fields"] * 4 + ["json", "raw"]))
    content_type = "application/json"
    if kind == "fields" and route == "invocations":  # one input field (MLflow wants one)
        key = draw(st.sampled_from([k for k in SCORING if k != "params"]))
        data = _dumps({key: draw(SCORING[key] | JSON), **draw(_fields(("params",), SCORING))})
    elif kind == "fields":
        data = _dumps(draw(_fields(tuple(EVENT), EVENT)))
    elif kind == "json":
        data = _dumps(draw(JSON))
    else:
        data = draw(RAW)
        content_type = draw(st.sampled_from(SERVE_CONTENT_TYPES))
    if route == "invocations":
        return Case("POST", "/invocations", "anyone", None, data, content_type, "serve",
                    group="serve POST /invocations")  # fmt: skip
    if route == "webhook-signed":
        return Case("POST", "/webhook", "anyone", None, data, None, "serve", signed(data),
                    group="serve POST /webhook (signed)")  # fmt: skip
    return Case("POST", "/webhook", "anyone", None, data, content_type, "serve",
                draw(HOOK_HEADERS), group="serve POST /webhook (unsigned)")  # fmt: skip


LAB_NAMES = st.sampled_from([SERVED, SERVED, "no-such-model", "a'b", " ", "%", "..", "x" * 300])
LAB_IDS = st.sampled_from(["00000000", "0000000g", "abc", "../identity", ""]) | TOKEN_TEXT
LAB_URIS = st.sampled_from(
    [
        "databricks",
        "databricks-uc",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///nowhere/mlflow.db",
        "sqlite:///.",
        "file:///etc/passwd",
        "mysql://u:p@127.0.0.1/db",
        "https://",
        "mlflow.db",
    ]
) | TOKEN_TEXT.filter(lambda text: ":" not in text)
LAB_QUERY: dict[str, st.SearchStrategy[str]] = {
    "version": st.sampled_from(["1", "2", "0", "-1", "x", "1e999", ""]),
    "status": st.sampled_from(["pending", "all", "approved", "bogus", ""]),
    "name": LAB_NAMES,
    "review": st.sampled_from(["0", "1", "x"]),
}
LAB_FORMED: dict[str, st.SearchStrategy[Any]] = {
    "name": LAB_NAMES,
    "version": st.sampled_from([1, 2, "1", "x", None, 1e999]),
    "stage": st.sampled_from(["Staging", "Production", "archived", "bogus", ""]),
    "reason": st.sampled_from(["fuzz", "", " ", "x" * 5_000]),
    "comment": st.sampled_from(["fuzz", "", None]),
}
LAB_ROUTES: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", "identity", ()),
    ("GET", "models", ()),
    ("GET", "models/{name}/versions", ()),
    ("GET", "models/{name}/history", ("version",)),
    ("GET", "models/{name}/card", ("version",)),
    ("GET", "requests", ("name", "status", "review")),
    ("POST", "requests", ("name", "version", "stage", "reason")),
    ("POST", "requests/{id}/approve", ("comment",)),
    ("POST", "requests/{id}/reject", ("comment",)),
]


@st.composite
def lab_cases(draw: st.DrawFn, method: str, route: str, fields: tuple[str, ...]) -> Case:
    """A request to the lab API, as the token's user: a model name or request id in the
    path, a query string, maybe a registry URI header, and for a POST a body."""
    path = "/jupyreg/api/" + route.format(
        name=quote(draw(LAB_NAMES), safe=""), id=quote(draw(LAB_IDS), safe="")
    )
    headers = None
    if draw(st.integers(0, 3)) == 0:
        headers = {"X-JupyReg-Registry-URI": draw(LAB_URIS)}
    query, data, content_type = None, b"", None
    if method == "GET":
        keys = st.sampled_from(fields or tuple(LAB_QUERY))
        query = draw(st.dictionaries(keys, st.one_of(*LAB_QUERY.values()), max_size=3)) or None
    else:
        kind = draw(st.sampled_from(["fields"] * 4 + ["json", "raw"]))
        content_type = "application/json"
        if kind == "fields":
            data = _dumps(draw(_fields(fields, LAB_FORMED)))
        elif kind == "json":
            data = _dumps(draw(JSON))
        else:
            data, content_type = draw(RAW), draw(st.sampled_from(CONTENT_TYPES))
    return Case(method, path, LAB_TOKEN, query, data, content_type, "lab", headers,
                group=f"lab {method} {route}")  # fmt: skip


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


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One `jupyreg serve` (one worker, with a webhook secret) on a SQLite registry whose
    SERVED v1 is in Production; its URL and the registry's folder."""
    root = tmp_path_factory.mktemp("fuzz-serve")
    with serving(root) as url:
        yield url, root


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, serve: tuple[str, Path]) -> Iterator[str]:
    """A real Jupyter server with only the jupyreg extension, acting as bob on the registry
    `jupyreg serve` follows; its URL (the token is LAB_TOKEN)."""
    root = tmp_path_factory.mktemp("fuzz-lab")
    port = free_port()
    config = root / "jupyter_server_config.py"
    extensions = {"jupyreg": True} | dict.fromkeys(
        ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim"), False
    )
    settings = {
        "ServerApp": {"jpserver_extensions": extensions, "ip": "127.0.0.1", "port": port,
                      "open_browser": False, "allow_root": True, "root_dir": str(root)},
        "IdentityProvider": {"token": LAB_TOKEN},
        "JupyRegServer": {"tracking_uri": f"sqlite:///{serve[1] / 'mlflow.db'}", "user": "bob"},
    }  # fmt: skip
    config.write_text(
        "".join(
            f"c.{section}.{key} = {value!r}\n"
            for section, values in settings.items()
            for key, value in values.items()
        )
    )
    jupyter_dirs = {
        f"JUPYTER_{kind}_DIR": str(root / kind.lower()) for kind in ("CONFIG", "DATA", "RUNTIME")
    }
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "jupyter"), "server", f"--config={config}"]
    ready = f"{url}/jupyreg/api/identity"
    with running(command, root, root / "jupyter.log", ready, {**os.environ, **jupyter_dirs}):
        yield url


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


def explicit_serve_and_lab_cases() -> Iterator[Case]:
    """Always sent: bodies nested too deeply and JSON that is not an object, to scoring and
    to the webhook (unsigned and signed); the lab's POST routes with those and with each
    field of a well-formed body given a wrong type."""
    for data in [*DEEP, *NOT_OBJECTS]:
        yield Case("POST", "/invocations", "anyone", None, data, "application/json", "serve",
                   group="serve POST /invocations")  # fmt: skip
        yield Case("POST", "/webhook", "anyone", None, data, "application/json", "serve",
                   group="serve POST /webhook (unsigned)")  # fmt: skip
        yield Case("POST", "/webhook", "anyone", None, data, None, "serve", signed(data),
                   group="serve POST /webhook (signed)")  # fmt: skip
    good = {"name": SERVED, "version": 2, "stage": "Staging", "reason": "fuzz", "comment": "x"}
    for method, route, fields in LAB_ROUTES:
        if method != "POST":
            continue
        path = "/jupyreg/api/" + route.format(id="00000000")
        bodies = [*NOT_OBJECTS]
        bodies += [
            _dumps({**{f: good[f] for f in fields}, f: v}) for f in fields for v in WRONG_TYPES
        ]
        for data in bodies:
            yield Case(method, path, LAB_TOKEN, None, data, "application/json", "lab",
                       group=f"lab {method} {route}")  # fmt: skip


def test_no_body_makes_the_server_answer_5xx(
    server: str, serve: tuple[str, Path], lab: str
) -> None:
    """The explicit cases, then hypothesis's, drawn while one thread sends them, one at a
    time, in order; every answer of 500 or more (or none) is reported at the end."""
    sent: list[Case] = []
    failures: list[tuple[Case, str]] = []
    answers: dict[str, Counter[int]] = defaultdict(Counter)
    queue: Queue[Case | None] = Queue(maxsize=256)
    bases = {"team": server, "serve": serve[0], "lab": lab}

    def sender() -> None:
        sessions = {user: requests.Session() for user in [*PASSWORDS, "anyone", LAB_TOKEN]}
        for user, session in sessions.items():
            if user in PASSWORDS:
                session.auth = (user, PASSWORDS[user])
            session.headers["Connection"] = "close"  # never a keep-alive uvicorn closes
        sessions[LAB_TOKEN].headers["Authorization"] = f"token {LAB_TOKEN}"
        while (case := queue.get()) is not None:
            sent.append(case)
            status, problem = _send(sessions[case.user], bases[case.target], case)
            answers[case.route][status] += 1
            if problem is not None:
                failures.append((case, problem))

    def enqueue(case: Case) -> None:
        queue.put(case)

    def drawn(strategy: st.SearchStrategy[Case], examples: int) -> None:
        settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=strategy)(enqueue))()

    started = time.monotonic()
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        for case in [*explicit_cases(), *explicit_serve_and_lab_cases()]:
            queue.put(case)
        for method, route, fields in ROUTES:
            drawn(cases(method, route, fields), EXAMPLES_PER_ROUTE)
        for route in ("invocations", "webhook-unsigned", "webhook-signed"):
            drawn(serve_cases(route), SERVE_EXAMPLES)
        for method, route, fields in LAB_ROUTES:
            drawn(lab_cases(method, route, fields), LAB_EXAMPLES)
    finally:
        queue.put(None)
        thread.join()
    elapsed = time.monotonic() - started

    print(f"{len(sent):,} bodies in {elapsed:.1f} s; {len(failures)} answered 5xx or not at all")
    for target in bases:
        print(f"  {target}: {sum(case.target == target for case in sent):,} bodies")
    for route, statuses in sorted(answers.items()):
        print(f"  {route}: " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())))
    assert requests.get(server + "/health", timeout=10).status_code == 200
    assert requests.get(serve[0] + "/ping", timeout=10).status_code == 200
    assert not failures, _report(failures, len(sent))
    assert len(sent) >= MINIMUM_BODIES


def _send(session: requests.Session, base: str, case: Case) -> tuple[int, str | None]:
    """The answer's status (0: none) and what went wrong (None when it was below 500)."""
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    try:
        response = session.request(
            case.method,
            base + case.path,
            params=case.query,
            data=case.data,
            headers={**headers, **(case.headers or {})},
            timeout=60,
        )
    except requests.RequestException as exc:
        return 0, f"no answer: {type(exc).__name__}: {exc}"
    if response.status_code < 500:
        return response.status_code, None
    try:
        message = str(response.json().get("message"))
    except (ValueError, AttributeError):
        message = response.text
    return response.status_code, f"{response.status_code} {' '.join(message.split())[:120]}"


def _report(failures: list[tuple[Case, str]], sent: int) -> str:
    """The failures grouped by route, user and answer, each group with its first body."""
    groups: dict[tuple[str, str, str], list[Case]] = {}
    for case, problem in failures:
        groups.setdefault((case.route, case.user, problem), []).append(case)
    lines = [f"{len(failures)} of {sent:,} requests were answered 5xx (or not at all):"]
    for (route, user, problem), group in sorted(groups.items()):
        lines.append(f"  {len(group)} x {route} as {user}: {problem}\n      e.g. {group[0]}")
    return "\n".join(lines)
