"""Stage changes reach CI/CD exactly as they happened (issue 27): a jupyreg server writes
each step's webhook deliveries in the step's transaction and its deliverer sends them,
signed as MLflow signs webhooks, with a delivery id that stays the same across retries, in
step order per model, retrying while the receiver is down, and surviving kill -9."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from jupyreg import Registry, webhooks
from tests.conftest import BIN, WEBHOOK_ENV
from tests.team import ADMIN_PASSWORD, TeamServer, signed_in

NAME = "fraud-detector"
SECRET = "outbox-secret"
EVENTS = ["model_version_tag.set", "model_version_alias.created", "model_version_alias.deleted"]


class Receiver:
    """A CI/CD endpoint on loopback: answers 503 while ``down``, else keeps each delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.down = False
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.down:
                    self.send_response(503)
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stage_tags(self) -> list[tuple[str, str, str]]:
        """(version, stage, delivery id) of each stage-tag delivery, in arrival order."""
        found = []
        for headers, body in self.received:
            data = json.loads(body)["data"]
            if data.get("key") == "jupyreg.stage":
                found.append((data["version"], data["value"], headers["X-Jupyreg-Delivery-Id"]))
        return found


def wait_for(check, timeout: float = 120.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {check.__doc__ or check}")


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, model) -> Iterator[tuple[TeamServer, Receiver]]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("outbox")
    env = {
        **WEBHOOK_ENV,
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "JUPYREG_WEBHOOK_BACKOFF_MAX_SECONDS": "1",  # retries every ~1 s while a receiver is down
        # the same key across restarts: the webhook's secret stays readable
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"o" * 32).decode(),
    }
    server = TeamServer(
        root, f"sqlite:///{root}/mlflow.db", f"sqlite:///{root}/auth.db", str(root / "art"), env
    )
    server.start()
    receiver = Receiver()
    try:
        with signed_in("admin", ADMIN_PASSWORD):
            admin = Registry(server.url)
            for _ in range(3):
                admin.register(model, NAME, metrics={"test": {"auc": 0.9}})
            admin.set_policy(NAME, allow_self_approval=True, reason="one admin in this test")
            admin.add_webhook(receiver.url, secret=SECRET, events=EVENTS, name="cd")
            admin.add_user("eve", "eve-password-12")
        yield server, receiver
    finally:
        server.stop()
        receiver.server.shutdown()


@pytest.fixture
def admin(team, monkeypatch) -> Registry:  # noqa: ANN001
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    return Registry(team[0].url)


def _promote(admin: Registry, version: int) -> None:
    admin.transition(NAME, version, "Staging", reason="candidate")
    admin.approve(admin.request(NAME, version, "Production", reason="better").id)


def test_a_promotions_deliveries_arrive_signed_once_each_in_step_order(team, admin) -> None:  # noqa: ANN001
    server, receiver = team
    receiver.received.clear()
    _promote(admin, 1)
    arrived = wait_for(lambda: receiver.stage_tags() if len(receiver.stage_tags()) >= 2 else None)
    assert [(v, s) for v, s, _ in arrived] == [("1", "Staging"), ("1", "Production")]
    for headers, body in receiver.received:  # an MLflow webhook receiver verifies them as is
        assert webhooks.verify(headers, body, SECRET)["data"]["name"] == NAME
        assert headers["X-Jupyreg-Delivery-Id"] == headers["X-MLflow-Delivery-Id"]
    wait_for(lambda: admin.webhook_deliveries(status="pending").empty)  # recorded once sent
    delivered = admin.webhook_deliveries(status="delivered")
    ids = {h["X-Jupyreg-Delivery-Id"] for h, _ in receiver.received}
    assert ids <= set(delivered["id"]) and (delivered["attempts"] == 1).all()
    assert len(ids) == len(receiver.received)  # each sent once
    assert set(delivered["event"]) <= set(EVENTS)


def test_a_receiver_down_gets_everything_in_order_once_it_is_back(team, admin) -> None:  # noqa: ANN001
    server, receiver = team
    receiver.received.clear()
    receiver.down = True
    _promote(admin, 2)  # v2 into Production, v1 archived: one step's moves
    admin.transition(NAME, 3, "Staging", reason="next candidate")
    pending = wait_for(
        lambda: (p := admin.webhook_deliveries(status="pending"))[p["attempts"] >= 2].shape[0]
    )
    assert pending
    failed_once = admin.webhook_deliveries(status="pending")
    assert failed_once["last_status_code"].dropna().eq(503).all()
    receiver.down = False
    wait_for(lambda: admin.webhook_deliveries(status="pending").empty)
    stages = [(v, s) for v, s, _ in receiver.stage_tags()]
    assert stages.index(("2", "Staging")) < stages.index(("2", "Production"))
    assert stages.index(("2", "Production")) < stages.index(("3", "Staging"))
    ids = [i for _, _, i in receiver.stage_tags()]
    assert len(ids) == len(set(ids))


def test_deliveries_redeliver_and_test_from_the_cli(team, admin, monkeypatch) -> None:  # noqa: ANN001
    server, receiver = team
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD,
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "jupyreg"), *args], capture_output=True, text=True, env=env, timeout=120
        )

    listed = cli("webhooks", "deliveries", "--status", "delivered", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    record = json.loads(listed.stdout)[0]
    assert set(record) >= {"id", "hook", "event", "status", "attempts", "last_status_code"}
    receiver.received.clear()
    again = cli("webhooks", "redeliver", record["id"])
    assert again.returncode == 0 and "pending again" in again.stdout
    wait_for(lambda: receiver.received)
    headers, body = receiver.received[0]
    assert headers["X-Jupyreg-Delivery-Id"] == record["id"]  # the same delivery, signed afresh
    webhooks.verify(headers, body, SECRET)
    hook = record["hook"]
    ping = cli("webhooks", "test", hook)
    assert ping.returncode == 0 and "delivered (HTTP 200)" in ping.stdout
    receiver.down = True
    try:
        refused = cli("webhooks", "test", hook)
    finally:
        receiver.down = False
    assert refused.returncode == 3 and "HTTP 503" in refused.stderr
    missing = cli("webhooks", "redeliver", "no-such-delivery")
    assert missing.returncode == 2 and "no webhook delivery" in missing.stderr


def test_the_server_exports_the_outbox_as_prometheus_metrics(team, admin) -> None:  # noqa: ANN001
    server, _ = team
    url = f"{server.url}/api/2.0/jupyreg/metrics"
    scraped = requests.get(url, auth=("admin", ADMIN_PASSWORD), timeout=30)
    assert scraped.status_code == 200 and scraped.headers["Content-Type"].startswith("text/plain")
    figures = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in scraped.text.splitlines()
        if line and not line.startswith("#")
    }
    delivered = admin.webhook_deliveries(status="delivered").shape[0]
    assert figures['jupyreg_webhook_deliveries{status="delivered"}'] == delivered
    attempts = sum(
        figures[f'jupyreg_webhook_attempts_recent{{outcome="{o}"}}'] for o in ("ok", "error")
    )
    assert attempts >= delivered  # each delivered one was attempted at least once
    assert figures["jupyreg_webhook_attempt_latency_seconds_count"] >= delivered
    refused = requests.get(url, auth=("eve", "eve-password-12"), timeout=30)
    assert refused.status_code == 403 and "admins" in refused.json()["message"]


KILLS = 5


def test_kill_9_between_the_commit_and_the_delivery_loses_nothing(team, admin) -> None:  # noqa: ANN001
    """The receiver is down, so each step's deliveries are committed and not yet sent when
    the server is killed; after a restart every one of them arrives, under its one id."""
    server, receiver = team
    with signed_in("admin", ADMIN_PASSWORD):
        committed = {row for row in Registry(server.url).webhook_deliveries()["id"]}
    receiver.down = True
    for kill in range(KILLS):
        stage = "Archived" if kill % 2 == 0 else "Staging"
        admin.transition(NAME, 3, stage, reason=f"kill {kill}")
        server.kill()
        server.start()
    receiver.received.clear()
    receiver.down = False
    new = set(admin.webhook_deliveries()["id"]) - committed
    assert len(new) >= KILLS  # each step's stage tag at least
    wait_for(lambda: admin.webhook_deliveries(status="pending").empty)
    arrived = {h["X-Jupyreg-Delivery-Id"] for h, _ in receiver.received}
    assert new <= arrived
