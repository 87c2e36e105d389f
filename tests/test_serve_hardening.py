"""Issue 23 on `jupyreg serve`: bad input is a 4xx with a one-line message, never a 500 (a
body nested too deeply to parse; a signed webhook that is not MLflow's JSON shape), and a
signed webhook delivery counts once: a replay within its freshness window is refused by
every worker. One real `jupyreg serve --workers 2` process on a SQLite registry."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from jupyreg import Registry
from tests.conftest import BIN, free_port, schema_template
from tests.team import running

pytestmark = pytest.mark.e2e  # a real `jupyreg serve` (stage 2 of `make test`)

NAME = "scorer"
SECRET = "hook-secret"
X = np.random.default_rng(5).normal(size=(40, 3))


@contextlib.contextmanager
def serving(root: Path, *, workers: int = 1) -> Iterator[str]:
    """`jupyreg serve NAME --webhook-secret SECRET` on a new SQLite registry in ``root``
    whose v1 is in Production (v2 in None); its URL, until the block ends."""
    shutil.copyfile(schema_template(), root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with contextlib.chdir(root):  # outside any git repository: no diff is captured
        alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
        model = LogisticRegression().fit(X, X[:, 0] > 0)
        for _ in range(2):
            alice.register(model, NAME, input_example=X[:2])
        alice.transition(NAME, 1, "Staging", reason="candidate")
        bob.approve(alice.request(NAME, 1, "Production", reason="first").id)
    port, log = free_port(), root / "serve.log"
    command = [str(BIN / "jupyreg"), "--tracking-uri", uri, "serve", NAME, "--port", str(port)]
    command += ["--workers", str(workers), "--webhook-secret", SECRET, "--poll-interval", "600"]
    url = f"http://127.0.0.1:{port}"
    with running(command, root, log, f"{url}/ping"):
        yield url


def signed(
    body: bytes,
    delivery: str | None = None,
    *,
    jupyreg_id: str | None = None,
    age: int = 0,
    secret: str = SECRET,
) -> dict[str, str]:
    """The headers of a webhook delivery of ``body`` signed as MLflow signs (a new delivery
    id unless one is given), optionally ``age`` seconds old and with a jupyreg delivery id."""
    delivery = delivery or str(uuid.uuid4())
    stamp = str(int(time.time()) - age)
    text = body.decode("utf-8", errors="surrogateescape")
    content = f"{delivery}.{stamp}.{text}".encode(errors="surrogateescape")
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    headers = {
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Delivery-Id": delivery,
        "Content-Type": "application/json",
    }
    if jupyreg_id is not None:
        headers["X-Jupyreg-Delivery-Id"] = jupyreg_id
    return headers


def post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Status and JSON answer (else ``{"text": ...}``) of a POST on a new connection (so
    either worker may take it)."""
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"text": body.decode(errors="replace")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("serve-hardening"), workers=2) as url:
        yield url


PRODUCTION = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "data": {"name": NAME, "alias": "production", "version": "1"},
    }
).encode()
DEEP = [
    b"[" * 50_000,
    b"[" * 5_000 + b"]" * 5_000,
    b'{"inputs":' * 20_000,
    b'{"inputs": ' + b"[" * 3_000 + b"1" + b"]" * 3_000 + b"}",
]


def test_a_body_nested_too_deeply_is_a_400_not_a_500(server: str) -> None:
    """Issue 23: an unauthenticated /invocations with deeply nested JSON answered 500."""
    for body in DEEP:
        status, answer = post(f"{server}/invocations", body, {"Content-Type": "application/json"})
        assert (status, answer["error_code"]) == (400, "BAD_REQUEST"), answer
        assert "nests arrays or objects too deeply" in answer["message"]
        assert "\n" not in answer["message"]
        status, answer = post(f"{server}/webhook", body, signed(body))
        assert status == 400 and "too deeply" in answer["error"], answer
    with urllib.request.urlopen(f"{server}/ping", timeout=10) as response:
        assert response.status == 200


def test_an_integer_of_more_digits_than_python_parses_is_a_400_not_a_500(server: str) -> None:
    """Found by tests/test_fuzz.py: MLflow's scoring catches JSON's decode errors, not the
    ValueError of an integer past Python's 4,300-digit limit."""
    body = b'{"inputs": [[1' + b"0" * 5_000 + b", 2, 3]]}"
    status, answer = post(f"{server}/invocations", body, {"Content-Type": "application/json"})
    assert (status, answer["error_code"]) == (400, "BAD_REQUEST"), answer
    assert answer["message"] == "the request body holds an integer of more than 4300 digits"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[1, 2]", "not an MLflow webhook payload"),
        (b'"text"', "not an MLflow webhook payload"),
        (b'{"entity": "model_version_alias", "action": "created", "data": [1]}', "payload"),
        (
            b'{"entity": "model_version_alias", "action": "created", '
            b'"data": {"alias": "production"}}',
            "with the model's name and version",
        ),
        (
            b'{"entity": "model_version_tag", "action": "set", '
            b'"data": {"key": "jupyreg.stage", "name": "scorer", "version": "x"}}',
            "with the model's name and version",
        ),
        (
            b'{"entity": "model_version_alias", "action": "created", '
            b'"data": {"alias": "production", "name": "scorer", "version": 1e999}}',
            "with the model's name and version",
        ),
        (
            b'{"entity": "model_version_alias", "action": "created", '
            b'"data": {"alias": "production", "name": "scorer", "version": [1]}}',
            "with the model's name and version",
        ),
        (b"{nope", "not JSON"),
        (b'{"entity": "\xff"}', "not JSON"),
    ],
)
def test_a_signed_webhook_of_the_wrong_shape_is_a_400(server: str, body: bytes, why: str) -> None:
    """Issue 23: a validly signed delivery whose body is not MLflow's shape answered 500."""
    status, answer = post(f"{server}/webhook", body, signed(body))
    assert status == 400 and why in answer["error"], answer
    assert "\n" not in answer["error"]


def test_a_replayed_webhook_is_refused_by_every_worker(server: str) -> None:
    """Issue 23: a signed delivery could be replayed within its 300 s window. Its delivery
    id counts once, whichever of the two workers takes the replay; a jupyreg server's
    delivery id (the same on each retry) too; a new delivery is still accepted."""
    first = signed(PRODUCTION, jupyreg_id="jd-1")
    assert post(f"{server}/webhook", PRODUCTION, first) == (200, {"ok": True})
    for _ in range(6):  # new connections: both workers get some
        status, answer = post(f"{server}/webhook", PRODUCTION, first)
        assert status == 400 and "was already received: a replay" in answer["error"], answer
    again = signed(PRODUCTION, jupyreg_id="jd-1")  # a fresh MLflow id, the same jupyreg id
    status, answer = post(f"{server}/webhook", PRODUCTION, again)
    assert status == 400 and "'jd-1' (X-Jupyreg-Delivery-Id)" in answer["error"], answer
    assert post(f"{server}/webhook", PRODUCTION, signed(PRODUCTION)) == (200, {"ok": True})
    status, answer = post(f"{server}/webhook", PRODUCTION, signed(PRODUCTION, age=301))
    assert status == 400 and "refusing a possible replay" in answer["error"]
    status, answer = post(f"{server}/webhook", PRODUCTION, signed(PRODUCTION, secret="wrong"))
    assert status == 400 and "signature mismatch" in answer["error"]


def test_delivery_ids_are_shared_and_forgotten_once_no_replay_could_pass(tmp_path) -> None:
    """What is remembered is bounded: an id is kept for twice the freshness window (the
    longest a delivery carrying it could still pass), then forgotten."""
    from jupyreg.serving.app import Deliveries
    from jupyreg.webhooks import TOLERANCE_SECONDS

    one, other = Deliveries(tmp_path), Deliveries(tmp_path)  # two workers
    headers = signed(PRODUCTION, "d-1")
    assert one.accept(headers, PRODUCTION, SECRET) is not None
    with pytest.raises(Exception, match="already received"):
        other.accept(headers, PRODUCTION, SECRET)
    old = time.time() - 2 * TOLERANCE_SECONDS - 1
    for path in tmp_path.iterdir():
        os.utime(path, (old, old))
    assert other.accept(signed(PRODUCTION, "d-2"), PRODUCTION, SECRET) is not None
    assert len(list(tmp_path.iterdir())) == 1  # d-1 forgotten, d-2 remembered
