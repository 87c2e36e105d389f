"""Team deployment: two `jupyreg server` replicas on one PostgreSQL and one S3-compatible
store, with authentication and the lifecycle enforced on the server."""

from __future__ import annotations

import base64
import contextlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from mlflow import MlflowClient

from jupyreg import Registry
from jupyreg.backend.local import LocalBackend
from jupyreg.backend.remote import RemoteBackend
from jupyreg.errors import (
    ApprovalRequired,
    InvalidArgument,
    InvalidTransition,
    PermissionDenied,
    PolicyViolation,
    RegistryBusy,
    RegistryUnavailable,
)
from jupyreg.webhooks import verify
from tests.conftest import WEBHOOK_ENV, model_state
from tests.team import ADMIN_PASSWORD, S3_ENV, Postgres, S3Server, TeamServer, signed_in

pytestmark = pytest.mark.server
NAME = "fraud-detector"
PASSWORDS = {
    "admin": ADMIN_PASSWORD,
    "alice": "alice-password-1",
    "bob": "bob-password-12",
    "eve": "eve-password-12",
}
PROMOTERS, PROCESSES, VERSIONS = 30, 3, 20


class Team:
    def __init__(self, replicas: list[TeamServer], s3: S3Server) -> None:
        self.replicas, self.s3 = replicas, s3
        self.url = replicas[0].url

    def login(self, monkeypatch: pytest.MonkeyPatch, user: str, replica: int = 0) -> Registry:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS[user])
        return Registry(self.replicas[replica].url)

    def logs(self) -> dict[Path, int]:
        """Each replica's log file and its size so far."""
        paths = [r.root / f"server-{r.port}.log" for r in self.replicas]
        return {path: path.stat().st_size for path in paths}

    def logged_since(self, sizes: dict[Path, int]) -> list[str]:
        """The log lines every replica wrote since ``logs()`` gave ``sizes``."""
        lines = []
        for path, size in sizes.items():
            with open(path, "rb") as log:
                log.seek(size)
                lines += log.read().decode(errors="replace").splitlines()
        return lines

    def post(self, user: str, path: str, body: dict, method: str = "POST") -> requests.Response:
        return requests.request(
            method, self.url + path, json=body, timeout=30, auth=(user, PASSWORDS[user])
        )

    def state(self) -> dict:
        """Everything the lifecycle could have touched, read as the admin."""
        with _credentials("admin"):
            return model_state(self.url, NAME)


def _credentials(user: str) -> contextlib.AbstractContextManager[None]:
    return signed_in(user, PASSWORDS[user])


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, model) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("team")
    postgres = Postgres()
    s3 = S3Server(root)
    env = {
        **S3_ENV,
        **WEBHOOK_ENV,
        "MLFLOW_S3_ENDPOINT_URL": s3.endpoint,
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "shared-by-both-replicas",
        # one webhook key for all replicas: else a webhook's secret, encrypted by the replica
        # that created it, cannot be read by the others and MLflow stops delivering it
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    backend, auth_db = postgres.create_database("mlflow"), postgres.create_database("auth")
    replicas = [
        TeamServer(root, backend, auth_db, f"s3://{s3.bucket}/artifacts", env) for _ in range(3)
    ]
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k != "MLFLOW_AUTH_ADMIN_PASSWORD"})
    try:
        for replica in replicas:
            replica.start()
        team = Team(replicas, s3)
        _seed(team, model)
        yield team
    finally:
        for replica in replicas:
            replica.stop()
        s3.stop()
        postgres.stop()
        os.environ.clear()
        os.environ.update(saved)


def _seed(team: Team, model) -> None:  # type: ignore[no-untyped-def]
    """alice (EDIT), bob (MANAGE), eve (READ) on a model the admin registered."""
    from mlflow.server.auth.client import AuthServiceClient

    with _credentials("admin"):
        auth = AuthServiceClient(team.url)
        for user in ("alice", "bob", "eve"):
            auth.create_user(user, PASSWORDS[user])
        Registry(team.url).register(model, NAME, metrics={"test": {"auc": 0.9}})
        experiment = MlflowClient(team.url).get_experiment_by_name(NAME).experiment_id
        for user, level in (("alice", "EDIT"), ("bob", "MANAGE"), ("eve", "READ")):
            auth.grant_user_permission(user, "registered_model", NAME, level)
            auth.grant_user_permission(user, "experiment", experiment, level)


def test_artifacts_round_trip_through_s3(team: Team, model, monkeypatch, workdir) -> None:
    alice = team.login(monkeypatch, "alice", replica=1)
    mv = alice.register(model, NAME, metrics={"test": {"auc": 0.91}})
    assert mv.author == "alice"
    bob = team.login(monkeypatch, "bob")
    loaded = bob.load(NAME, version=mv.version)
    assert list(loaded.predict(model.sample_input)) == list(model.predict(model.sample_input))
    keys = [o["Key"] for o in team.s3.client().list_objects_v2(Bucket="models")["Contents"]]
    assert any(k.startswith("artifacts/") and k.endswith("/MLmodel") for k in keys), keys


def test_a_client_shows_and_obeys_the_servers_policy_not_its_projects(
    team: Team, model, monkeypatch, workdir
) -> None:
    (workdir / "pyproject.toml").write_text(
        "[tool.jupyreg.policy]\napprovals = { Production = 0 }\n"
    )
    name = "policed"
    admin = team.login(monkeypatch, "admin")
    mv = admin.register(model, name, stage="Staging", reason="candidate")
    assert admin.policy(name).approvals_for("Production") == 1  # the server's default
    with pytest.raises(ApprovalRequired, match="needs 1 approval"):
        admin.transition(name, mv.version, "Production", reason="no reviewer")
    assert admin.get(name, mv.version).stage == "Staging"


def test_permissions_and_authorship_are_enforced_by_the_server(team: Team, model, monkeypatch):
    alice = team.login(monkeypatch, "alice")
    version = alice.register(model, NAME).version
    alice.transition(NAME, version, "Staging", reason="candidate")
    before = team.state()

    eve = team.login(monkeypatch, "eve")
    with pytest.raises(PermissionDenied, match="eve has READ on fraud-detector; requesting"):
        eve.request(NAME, version, "Production", reason="sneaky")
    response = team.post(
        "eve",
        "/api/2.0/jupyreg/request",
        {"name": NAME, "version": version, "stage": "Production", "reason": "x"},
    )
    assert response.status_code == 403 and response.json()["jupyreg_error"] == "PermissionDenied"
    alice = team.login(monkeypatch, "alice")
    with pytest.raises(PermissionDenied, match="needs MANAGE"):
        alice.rollback(NAME, reason="x")
    assert team.state() == before

    # a forged author is ignored: the authenticated user is the requester
    response = team.post(
        "alice",
        "/api/2.0/jupyreg/request",
        {
            "name": NAME,
            "version": version,
            "stage": "Production",
            "reason": "ship",
            "author": "bob",
            "requested_by": "bob",
        },
    )
    assert response.status_code == 200, response.text
    request_id = response.json()["request"]["id"]
    assert response.json()["request"]["requested_by"] == "alice"
    after_request = team.state()
    response = team.post("alice", "/api/2.0/jupyreg/approve", {"request_id": request_id})
    assert response.status_code == 403 and "needs MANAGE" in response.json()["message"]
    bob = team.login(monkeypatch, "bob")
    own = bob.request(NAME, version, "Archived", reason="bob's own")
    with pytest.raises(PolicyViolation, match="bob cannot approve their own request"):
        bob.approve(own.id)
    bob.cancel(own.id)
    assert team.state()["versions"] != after_request["versions"]  # the cancelled request
    decided = bob.approve(request_id, comment="ok")
    assert decided.status == "approved" and decided.decided_by == "bob"
    assert bob.history(NAME, version)["author"].tolist() == ["alice", "bob"]


BYPASSES = [
    (
        "POST",
        "/api/2.0/mlflow/model-versions/set-tag",
        {"name": NAME, "version": "1", "key": "jupyreg.stage", "value": "Production"},
    ),
    (
        "POST",
        "/api/2.0/mlflow/model-versions/set-tag",
        {
            "name": NAME,
            "version": "1",
            "key": "jupyreg.event.20990101T000000000000Z-x",
            "value": "{}",
        },
    ),
    (
        "POST",
        "/api/2.0/mlflow/model-versions/set-tag",
        {"name": NAME, "version": "1", "key": "jupyreg.request.deadbeef", "value": "{}"},
    ),
    (
        "DELETE",
        "/api/2.0/mlflow/model-versions/delete-tag",
        {"name": NAME, "version": "1", "key": "jupyreg.stage"},
    ),
    (
        "POST",
        "/api/2.0/mlflow/registered-models/set-tag",
        {"name": NAME, "key": "jupyreg.policy", "value": "{}"},
    ),
    (
        "DELETE",
        "/api/2.0/mlflow/registered-models/delete-tag",
        {"name": NAME, "key": "jupyreg.policy"},
    ),
    (
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        {"name": NAME, "alias": "production", "version": "1"},
    ),
    ("DELETE", "/api/2.0/mlflow/registered-models/alias", {"name": NAME, "alias": "staging"}),
    (
        "POST",
        "/api/2.0/mlflow/model-versions/transition-stage",
        {"name": NAME, "version": "1", "stage": "Production", "archive_existing_versions": True},
    ),
    (
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        {
            "name": NAME,
            "source": "models:/x",
            "tags": [{"key": "jupyreg.stage", "value": "Production"}],
        },
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), BYPASSES)
def test_direct_writes_that_bypass_the_lifecycle_are_refused(team: Team, method, path, body):
    before = team.state()
    for user in ("bob", "admin"):  # MANAGE on the model; admin skips basic-auth's checks
        response = team.post(user, path, body, method=method)
        assert response.status_code == 403, response.text
    message = response.json()["message"]  # the admin's refusal is jupyreg's
    assert message.startswith("jupyreg: ")
    assert "reg." in message or "stage None" in message
    assert team.state() == before


def _promoter(urls: list[str], jobs: list[tuple[int, int]], results) -> None:  # noqa: ANN001
    """One process: a thread per (replica, version) promoting as bob."""
    os.environ.update(MLFLOW_TRACKING_USERNAME="bob", MLFLOW_TRACKING_PASSWORD=PASSWORDS["bob"])
    outcomes: list[str] = []

    def promote(replica: int, version: int) -> None:
        try:
            Registry(urls[replica]).transition(
                NAME, version, "Production", reason=f"race v{version}"
            )
            outcomes.append("applied")
        except InvalidTransition:
            outcomes.append("refused")
        except RegistryBusy:  # the designed 503: its Retry-After honoured for 15 s, then raised
            outcomes.append("busy")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=promote, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(outcomes)


@pytest.mark.serial  # its queue bound is judged against steps' speed: not beside other load
def test_concurrent_promotions_over_three_replicas(team: Team, model, monkeypatch, capsys):
    """3 replicas x 30 concurrent promoters each: no 500, one Production, an event per
    applied move. A promoter may hear "busy" (503 + Retry-After, retried by the client for a
    bounded time): 90 steps on one model queue behind one lock, and nothing was written."""
    admin = team.login(monkeypatch, "admin")
    admin.set_policy(NAME, approvals={})  # promotion without approval, to race on apply
    first = max(admin.versions(NAME)["version"]) + 1
    for _ in range(VERSIONS):
        mv = admin.register(model, NAME)
        admin.transition(NAME, mv.version, "Staging", reason="candidate")
    versions = list(range(first, first + VERSIONS))
    logged_before = team.logs()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(
            target=_promoter,
            args=(
                [r.url for r in team.replicas],
                [(i % len(team.replicas), versions[(p + i) % VERSIONS]) for i in range(PROMOTERS)],
                results,
            ),
        )
        for p in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [o for _ in processes for o in results.get(timeout=600)]
    for process in processes:
        process.join(timeout=60)
    unexpected = [o for o in outcomes if o not in ("applied", "refused", "busy")]
    assert unexpected == []
    assert len(outcomes) == PROCESSES * PROMOTERS
    during = team.logged_since(logged_before)
    assert [line for line in during if '" 500 ' in line] == []
    applied = outcomes.count("applied")
    assert applied >= 1

    history = admin.history(NAME)
    raced = history[history["version"].isin(versions)]
    to_production = raced[raced["to_stage"] == "Production"]
    state = team.state()
    production = [
        v for v, stage, tags in state["versions"] if dict(tags)["jupyreg.stage"] == "Production"
    ]
    legacy = [v for v, stage, _ in state["versions"] if stage == "Production"]
    assert len(production) == 1 and legacy == production
    assert int(state["aliases"]["production"]) == int(production[0])
    assert len(to_production) == applied  # one event per applied transition, none lost
    assert len(history[history["from_stage"] == "Production"]) >= applied - 1
    assert admin.check(NAME).empty
    with capsys.disabled():
        print(
            f"\nconcurrency: {len(outcomes)} promotions attempted over 3 replicas, "
            f"{applied} applied, {outcomes.count('busy')} busy, {len(production)} Production, "
            f"{len(to_production)} Production events"
        )


def test_server_killed_during_register(team: Team, monkeypatch, workdir) -> None:
    from sklearn.linear_model import LogisticRegression

    alice = team.login(monkeypatch, "alice", replica=1)
    rng = np.random.default_rng(1)
    big = LogisticRegression().fit(rng.normal(size=(50, 3)), np.arange(50) % 2)
    big.padding = rng.normal(size=4_000_000)  # ~32 MB to upload: a window to crash in
    admin = MlflowClient(team.url)
    before = {int(mv.version) for mv in _as_admin(admin.search_model_versions, f"name = '{NAME}'")}
    failure: list[BaseException] = []

    def register() -> None:
        try:
            alice.register(big, NAME, metrics={"test": {"auc": 0.7}})
        except BaseException as exc:  # noqa: BLE001 - inspected below
            failure.append(exc)

    thread = threading.Thread(target=register)
    runs_before = len(_as_admin(admin.search_runs, [_experiment(admin)]))
    thread.start()
    deadline = time.monotonic() + 60
    while len(_as_admin(admin.search_runs, [_experiment(admin)])) == runs_before:
        assert time.monotonic() < deadline, "registration never started"
        time.sleep(0.02)
    team.replicas[1].kill()
    thread.join(timeout=120)
    (error,) = failure
    assert isinstance(error, RegistryUnavailable), repr(error)
    assert "cannot be reached" in str(error)
    after = _as_admin(admin.search_model_versions, f"name = '{NAME}'")
    new = [mv for mv in after if int(mv.version) not in before]
    assert all(
        mv.tags.get("jupyreg.stage", "None") == "None" and mv.current_stage == "None" for mv in new
    )  # nothing half-registered in a stage

    team.replicas[1].start()
    retried = alice.register(big, NAME, metrics={"test": {"auc": 0.7}}, lineage=error.lineage)
    assert retried.lineage == json.loads(error.lineage.to_tags()["jupyreg.lineage"])
    assert retried.stage == "None"


def _experiment(client: MlflowClient) -> str:
    return _as_admin(client.get_experiment_by_name, NAME).experiment_id


def _as_admin(call, *args):  # type: ignore[no-untyped-def]
    with _credentials("admin"):
        return call(*args)


def test_a_reproduction_is_kept_by_the_server_in_the_callers_name(
    team: Team, model, monkeypatch
) -> None:
    alice = team.login(monkeypatch, "alice")
    version = alice.register(model, NAME).version
    kept = alice.keep_reproduction(NAME, version, {"ok": True, "author": "mallory"})
    record = json.loads(alice.get(NAME, version).tags[f"jupyreg.reproduction.{kept}"])
    assert (record["ok"], record["author"]) == (True, "alice")
    assert alice.get(NAME, version).reproduced == "passed"
    eve = team.login(monkeypatch, "eve")
    with pytest.raises(PermissionDenied, match="keeping a reproduction needs EDIT"):
        eve.keep_reproduction(NAME, version, {"ok": True})


def test_client_against_plain_mlflow_keeps_the_client_side_path(mlflow_server, model, workdir):
    registry = Registry(mlflow_server, user="alice")
    assert isinstance(registry._backend, LocalBackend)
    assert registry.register(model, "plain").stage == "None"


def test_a_transient_failure_is_not_remembered_as_a_plain_server(team: Team, monkeypatch) -> None:
    replica = team.replicas[1]
    expected = team.login(monkeypatch, "bob").policy(NAME)
    alice = team.login(monkeypatch, "alice", replica=1)
    replica.kill()
    try:
        with pytest.raises(RegistryUnavailable, match="cannot be reached"):
            alice.policy(NAME)
    finally:
        replica.start()
    assert isinstance(alice._backend, RemoteBackend)
    assert alice.policy(NAME) == expected


def test_users_cli_adds_and_grants(team: Team, model, monkeypatch, capsys) -> None:
    from mlflow.server.auth.client import AuthServiceClient

    from jupyreg.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    base = ["--tracking-uri", team.url, "users"]
    assert main([*base, "add", "dana", "--password", "dana-password-1"]) == 0
    assert main([*base, "grant", "dana", NAME, "READ"]) == 0
    assert main([*base, "grant", "dana", NAME, "EDIT"]) == 0  # a second grant changes the first
    assert "dana has EDIT on fraud-detector" in capsys.readouterr().out
    auth = AuthServiceClient(team.url)
    assert auth.get_user_permission("dana", "registered_model", NAME).permission == "EDIT"
    assert main([*base, "add", "dana", "--password", "dana-password-1"]) == 2  # exists
    with pytest.raises(InvalidArgument, match="unknown permission 'owner': choose one of READ"):
        Registry(team.url).grant("dana", NAME, "owner")
    # a model nobody has trained yet: the grant makes its experiment, so it covers it
    MlflowClient(team.url, team.url).create_registered_model("churn-detector")
    assert main([*base, "grant", "dana", "churn-detector", "EDIT"]) == 0
    churn = MlflowClient(team.url).get_experiment_by_name("churn-detector").experiment_id
    assert auth.get_user_permission("dana", "experiment", churn).permission == "EDIT"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "dana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "dana-password-1")
    dana = Registry(team.url)
    assert dana.user == "dana"
    assert dana.register(model, NAME).author == "dana"  # the grant covers the experiment too
    assert dana.register(model, "churn-detector").version == 1
    with pytest.raises(PermissionDenied, match="dana has EDIT"):
        dana.rollback(NAME, reason="not allowed")
    assert main(["--tracking-uri", team.url, "requests", NAME, "--format", "json"]) == 0


def test_every_move_through_the_server_fires_signed_mlflow_webhooks(
    team: Team, model, monkeypatch, receiver, workdir
) -> None:
    name, secret = "hooked", "webhook-secret"
    admin = team.login(monkeypatch, "admin")
    admin.add_webhook(receiver.url, secret=secret)
    for _ in range(2):
        admin.register(model, name, metrics={"test": {"auc": 0.9}})
    admin.grant("alice", name, "EDIT")
    admin.grant("bob", name, "MANAGE")
    registry = Registry(team.url)  # credentials are read at each request: _credentials picks
    for version in (1, 2):  # the second promotion archives v1
        with _credentials("alice"):
            registry.transition(name, version, "Staging", reason="candidate")
            request = registry.request(name, version, "Production", reason="ship")
        with _credentials("bob"):
            registry.approve(request.id)
    with _credentials("bob"):
        registry.rollback(name, reason="v2 drifts")

    def stage_tags(deliveries) -> list[tuple[str, str]]:
        payloads = [json.loads(body) for _, body in deliveries]
        return sorted(
            (p["data"]["version"], p["data"]["value"])
            for p in payloads
            if p["entity"] == "model_version_tag" and p["data"]["key"] == "jupyreg.stage"
            and p["data"]["name"] == name
        )  # fmt: skip

    moves = sorted(
        [("1", "Staging"), ("1", "Production"), ("2", "Staging"), ("1", "Archived")]
        + [("2", "Production"), ("2", "Archived"), ("1", "Production")]
    )
    receiver.wait_for(lambda _: stage_tags(receiver.received) == moves)
    aliases = sorted(
        (p["data"]["alias"], p["data"]["version"])
        for p in (json.loads(body) for _, body in receiver.received)
        if p["entity"] == "model_version_alias" and p["action"] == "created"
    )
    assert aliases.count(("production", "1")) == 2 and ("production", "2") in aliases
    for headers, body in receiver.received:
        verify(headers, body, secret)
    # three replicas, one outbox: each delivery sent once (the receiver answered every
    # attempt), and a model's deliveries to the webhook arrive in step order
    deadline = time.monotonic() + 60
    while not admin.webhook_deliveries(status="pending").empty and time.monotonic() < deadline:
        time.sleep(0.5)
    arrived = [h["X-Jupyreg-Delivery-Id"] for h, b in receiver.received if name in b.decode()]
    assert len(arrived) == len(set(arrived))
    outbox = admin.webhook_deliveries()
    in_step_order = outbox[outbox["name"] == name]["id"].tolist()[::-1]  # newest first
    assert arrived == in_step_order
    client = MlflowClient(team.url)
    for version in (1, 2):  # each entered Production: the server wrote its model card
        (workdir / str(version)).mkdir()
        run_id = admin.get(name, version).run_id
        card = client.download_artifacts(run_id, "model_card.md", str(workdir / str(version)))
        assert f"# {name} v{version}" in Path(card).read_text()
