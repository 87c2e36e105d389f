"""CI/CD on stage changes: signed MLflow webhooks and `jupyreg watch`, against real
`mlflow server` processes and real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyreg import Registry
from jupyreg.errors import InvalidSignature
from jupyreg.webhooks import StageEntry, stage_entry, verify
from tests.conftest import MlflowServer, register_versions

NAME = "fraud-detector"
SECRET = "webhook-secret"
JUPYREG = Path(sys.executable).parent / "jupyreg"


@pytest.fixture
def server(tmp_path: Path):
    server = MlflowServer(tmp_path)
    server.start()
    yield server
    server.stop()


def promote(requester: Registry, approver: Registry, version: int) -> None:
    requester.transition(NAME, version, "Staging", reason="candidate")
    approver.approve(requester.request(NAME, version, "Production", reason="ship").id)


def test_promotion_sends_signed_webhooks_that_verify(server, receiver, model, workdir) -> None:
    alice, bob = Registry(server.url, user="alice"), Registry(server.url, user="bob")
    register_versions(alice, model, NAME, 1)
    code = subprocess.run(
        [
            str(JUPYREG),
            "--tracking-uri",
            server.url,
            "webhooks",
            "add",
            receiver.url,
            "--secret",
            SECRET,
        ],
        capture_output=True,
        text=True,
    )
    assert code.returncode == 0, code.stderr
    assert alice.webhooks()["url"].tolist() == [receiver.url]
    promote(alice, bob, 1)

    def entered_production(item) -> bool:
        entry = stage_entry(json.loads(item[1]))
        return entry is not None and entry.stage == "Production" and "alias" in item[1].decode()

    ((headers, body),) = receiver.wait_for(entered_production)
    payload = verify(headers, body, SECRET)
    assert payload["data"]["alias"] == "production"
    assert stage_entry(payload) == StageEntry(NAME, 1, "Production")

    tampered = body.replace(b'"1"', b'"2"')
    with pytest.raises(InvalidSignature, match="signature mismatch"):
        verify(headers, tampered, SECRET)
    with pytest.raises(InvalidSignature, match="signature mismatch"):
        verify(headers, body, "wrong-secret")
    with pytest.raises(InvalidSignature, match="refusing a possible replay"):
        verify(headers, body, SECRET, now=time.time() + 3600)
    seen: set[str] = set()
    verify(headers, body, SECRET, seen=seen)
    with pytest.raises(InvalidSignature, match="already received"):
        verify(headers, body, SECRET, seen=seen)
    tag_events = receiver.wait_for(
        lambda item: (
            (stage_entry(json.loads(item[1])) or None) is not None
            and json.loads(item[1])["entity"] == "model_version_tag"
        )
    )
    assert {stage_entry(json.loads(b)).stage for _, b in tag_events} >= {"Staging", "Production"}


def _start_watch(server_url: str, tmp_path: Path, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            str(JUPYREG),
            "--tracking-uri",
            server_url,
            "watch",
            NAME,
            "--stage",
            "production",
            "--interval",
            "0.3",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    line = process.stderr.readline()
    assert "watching fraud-detector Production" in line, line + process.stderr.read()
    return process


def test_watch_runs_the_command_once_per_change_across_a_server_restart(
    server, model, workdir, tmp_path
) -> None:
    alice, bob = Registry(server.url, user="alice"), Registry(server.url, user="bob")
    register_versions(alice, model, NAME, 2)
    log = tmp_path / "deploys.jsonl"
    script = (
        "import json, os; open(os.environ['LOG'], 'a').write(json.dumps({k: os.environ[k] "
        "for k in ('JUPYREG_MODEL', 'JUPYREG_VERSION', 'JUPYREG_STAGE', "
        "'JUPYREG_PREVIOUS_VERSION')}) + '\\n')"
    )
    os.environ["LOG"] = str(log)
    try:
        watcher = _start_watch(
            server.url, tmp_path, "--exec", f'{sys.executable} -c "{script}"', "--count", "2"
        )
        promote(alice, bob, 1)
        deadline = time.monotonic() + 30
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        server.stop()
        time.sleep(1.5)  # the watcher polls a dead server meanwhile
        server.start()
        promote(alice, bob, 2)
        _, err = watcher.communicate(timeout=60)
    finally:
        os.environ.pop("LOG")
    assert watcher.returncode == 0, err
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert runs == [
        {
            "JUPYREG_MODEL": NAME,
            "JUPYREG_VERSION": "1",
            "JUPYREG_STAGE": "Production",
            "JUPYREG_PREVIOUS_VERSION": "",
        },
        {
            "JUPYREG_MODEL": NAME,
            "JUPYREG_VERSION": "2",
            "JUPYREG_STAGE": "Production",
            "JUPYREG_PREVIOUS_VERSION": "1",
        },
    ]
    assert "cannot be reached" in err and "the registry is back" in err


def test_watch_posts_a_slack_message_and_remembers_its_state(
    sqlite_uri, alice, bob, model, receiver, tmp_path
) -> None:
    register_versions(alice, model, NAME, 2)
    state = tmp_path / "watch-state.json"
    watcher = _start_watch(
        sqlite_uri, tmp_path, "--post", receiver.url, "--count", "1", "--state-file", str(state)
    )
    promote(alice, bob, 1)
    watcher.communicate(timeout=60)
    ((headers, body),) = receiver.received
    text = json.loads(body)["text"]
    assert text.splitlines()[0] == f"{NAME} v1 entered Production"
    assert "approved by bob (requested by alice): ship" in text
    assert json.loads(state.read_text()) == {"version": 1}
    # a change while no watcher runs is caught by the next one, through the state file
    promote(alice, bob, 2)
    watcher = _start_watch(
        sqlite_uri, tmp_path, "--post", receiver.url, "--count", "1", "--state-file", str(state)
    )
    watcher.communicate(timeout=60)
    text = json.loads(receiver.received[1][1])["text"]
    assert text.splitlines()[0] == f"{NAME} v2 entered Production (was v1)"
    assert "metrics vs v1: test.auc 0.79 (+0), val.auc 0.81 (+0.01)" in text
