"""The scoring app in process (FastAPI's TestClient, no server): a signed MLflow webhook
makes the follower look at once; an unsigned one is refused; `jupyreg.follow` is lazy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import subprocess
import sys
import time

import numpy as np
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from jupyreg.serving.app import create_app
from jupyreg.serving.follower import Follower

NAME = "scorer"
SECRET = "webhook-secret"


def _signed(payload: dict) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload)
    delivery, stamp = "d-1", str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"{delivery}.{stamp}.{body}".encode(), hashlib.sha256)
    headers = {
        "X-MLflow-Signature": "v1," + base64.b64encode(digest.digest()).decode(),
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Delivery-Id": delivery,
        "Content-Type": "application/json",
    }
    return headers, body.encode()


def test_a_signed_webhook_makes_the_follower_look_at_once(alice, bob) -> None:
    x = np.random.default_rng(3).normal(size=(40, 2))
    version = alice.register(LogisticRegression().fit(x, x[:, 0] > 0), NAME).version
    alice.transition(NAME, version, "Staging", reason="candidate")
    bob.approve(alice.request(NAME, version, "Production", reason="ship").id)
    follower = Follower(alice, NAME, log=io.StringIO(), start=False)
    client = TestClient(create_app(follower, webhook_secret=SECRET))
    event = {
        "entity": "model_version_alias",
        "action": "created",
        "data": {"name": NAME, "alias": "production", "version": "1"},
    }
    headers, body = _signed(event)
    assert (
        client.post("/webhook", content=body.replace(b"1", b"2"), headers=headers).status_code
        == 400
    )
    assert not follower._wake.is_set()
    answer = client.post("/webhook", content=body, headers=headers)
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
    assert follower._wake.is_set()
    assert client.get("/nowhere").headers["X-Model-Version"] == "1"


def test_follow_is_exported_without_importing_mlflow() -> None:
    code = "import sys, jupyreg; jupyreg.follow; print('mlflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
