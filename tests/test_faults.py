"""Lifecycle steps survive kill -9 at any point: after each crash and the next lifecycle call
(no manual repair) the registry is exactly the outcome of its last recorded step."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from jupyreg import Registry, tags
from jupyreg.errors import (
    InvalidTransition,
    PolicyViolation,
    RegistryError,
    RegistryUnavailable,
)
from tests.conftest import register_versions, worker_processes

pytestmark = pytest.mark.slow
NAME = "crashy"
KILLS = 50
VERSIONS = 5


def _promote_forever(uri: str, ready: multiprocessing.Event, seed: int) -> None:
    """Lifecycle steps back to back until killed: promotions through a request and its
    approval (archiving the holder), moves to Staging and Archived, rollbacks."""
    rng = random.Random(seed)
    alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
    alice.holder(NAME)  # the store is open: what follows is steps only
    ready.set()
    while True:
        stages = {mv.version: mv.stage for mv in alice.version_records(NAME)}
        version = rng.choice(sorted(stages))
        with contextlib.suppress(RegistryError):  # e.g. nothing earlier to roll back to
            _one_step(alice, bob, version, stages[version], rng)


def _one_step(alice: Registry, bob: Registry, version: int, stage: str, rng) -> None:
    if stage in ("None", "Archived"):
        alice.transition(NAME, version, "Staging", reason="candidate")
    elif stage == "Staging" and rng.random() < 0.8:
        pending = [r.id for r in alice.request_records(NAME) if r.version == version]
        request = pending[0] if pending else alice.request(NAME, version, "Production", "go").id
        bob.approve(request, comment="ok")
    elif stage == "Staging":
        alice.transition(NAME, version, "Archived", reason="retired")
    else:
        bob.rollback(NAME, reason="drifts")


def assert_consistent(registry: Registry) -> None:
    """One Production version; aliases, stage tags and MLflow's stage agree; each version's
    history is one unbroken chain of moves ending in its stage (a move applied twice or lost
    breaks it); every approved request moved its version, no pending one did; the last
    recorded step is done and its outcome stands."""
    versions = registry.version_records(NAME)
    stages = {mv.version: mv.stage for mv in versions}
    assert list(stages.values()).count("Production") == 1, stages
    problems = registry.check(NAME, repo_path=None)  # consistency only, not staleness
    assert problems.empty, problems.to_dict("records")
    events = registry.history_records(NAME)
    for number, stage in stages.items():
        chain = [e for e in events if e.version == number]
        assert all(a.to_stage == b.from_stage for a, b in zip(chain, chain[1:], strict=False))
        assert (chain[-1].to_stage if chain else "None") == stage
    settled = Counter(e.request_id for e in events if e.request_id)
    for request in registry.request_records(NAME, status=None):
        assert settled[request.id] == (1 if request.status == "approved" else 0), request
    model = registry._store.registered_model(NAME)
    step = tags.step_from_tag(NAME, model.tags[tags.STEP_TAG])
    assert step is not None and step.done
    assert all(stages[v] == s for v, s in step.final_stages().items() if v in stages)


@pytest.mark.serial  # its kill window is timed on this machine: not beside other load
def test_kill_9_at_random_points_of_lifecycle_steps_embedded(alice, bob, model, sqlite_uri):
    register_versions(alice, model, NAME, VERSIONS)
    alice.transition(NAME, 1, "Staging", reason="first")
    bob.approve(alice.request(NAME, 1, "Production", reason="first").id)
    started = time.monotonic()
    alice.transition(NAME, 2, "Staging", reason="candidate")
    initial = len(alice.history_records(NAME))
    # kills land within about 4 steps' time of this machine, now (at least 0.6 s): on a
    # loaded machine fixed windows ended before most workers' first step began
    window = max(0.6, 4 * (time.monotonic() - started))
    context = worker_processes(__name__)
    rng = random.Random(13)
    interrupted = 0
    for kill in range(KILLS):
        ready = context.Event()
        worker = context.Process(target=_promote_forever, args=(sqlite_uri, ready, kill))
        worker.start()
        assert ready.wait(60), "the worker did not start"
        time.sleep(rng.uniform(0.05, window))
        os.kill(worker.pid, signal.SIGKILL)
        worker.join()
        assert worker.exitcode == -signal.SIGKILL
        after = Registry(sqlite_uri, user="carol")
        last = tags.step_from_tag(NAME, after._store.registered_model(NAME).tags[tags.STEP_TAG])
        interrupted += not last.done
        after.finish_steps(NAME)  # what the next lifecycle call does first
        assert_consistent(after)
    # a step on SQLite is one transaction: a kill leaves it whole or absent, never half
    # done (test_registry holds the finish-forward path of the REST store, writes one by one)
    assert interrupted == 0, f"{interrupted} kills left a step half done"
    made = len(after.history_records(NAME)) - initial
    assert made >= KILLS // 10, f"the workers made {made} moves in {KILLS} lives"
    assert Path(sqlite_uri.removeprefix("sqlite:///")).exists()


SERVER_KILLS = 4


@pytest.mark.server
def test_kill_9_of_a_jupyreg_server_on_postgresql_mid_step(tmp_path, model, monkeypatch, receiver):
    """A client promotes through a jupyreg server while the server is killed at random
    moments; after each restart (no repair) the registry is its last step's outcome, and
    every committed step's webhook deliveries arrive (under one id each), none of a step
    that was not committed."""
    import base64
    import json

    from tests.conftest import WEBHOOK_ENV
    from tests.team import ADMIN_PASSWORD, Postgres, TeamServer

    postgres = Postgres()
    env = {
        **WEBHOOK_ENV,
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"f" * 32).decode(),
    }
    backend = postgres.create_database("mlflow")
    auth_db = postgres.create_database("auth")
    # one worker: the server starts 5 times, and its one client sends one step at a time
    server = TeamServer(tmp_path, backend, auth_db, str(tmp_path), env, workers=1)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server.start()
    try:
        admin = Registry(server.url)
        register_versions(admin, model, NAME, VERSIONS)
        admin.set_policy(NAME, allow_self_approval=True)
        admin.transition(NAME, 1, "Staging", reason="first")
        started = time.monotonic()
        admin.approve(admin.request(NAME, 1, "Production", reason="first").id)
        step = (time.monotonic() - started) / 2  # a step's time on this machine, now
        admin.add_webhook(receiver.url, secret="faults", events=["model_version_tag.set"])
        hooked_from = len(admin.history_records(NAME))  # the moves the webhook sees
        rng = random.Random(7)
        direct = Registry(backend, user="check")  # reads the database, not the server
        steps = interrupted = 0
        for _ in range(SERVER_KILLS):
            client = Registry(server.url)
            killer, life_steps = None, 0
            life_started = time.monotonic()
            with contextlib.suppress(RegistryUnavailable):
                while True:  # steps until the server dies under them
                    stages = {v: s.stage for v, s in direct._store.model_versions(NAME).items()}
                    version = rng.choice(sorted(stages))
                    with contextlib.suppress(PolicyViolation, InvalidTransition):
                        _one_step(client, client, version, stages[version], rng)
                        life_steps += 1
                    if killer is None and life_steps:
                        # armed once a step has gone through this life (a loaded machine's
                        # first steps after a restart are slow): kills within 0-3 steps' time
                        killer = threading.Timer(rng.uniform(0.0, 3.0) * step, server.kill)
                        killer.start()
                    assert killer or time.monotonic() - life_started < 300, "no step went through"
            killer.join()
            steps += life_steps
            last = direct._store.registered_model(NAME).tags[tags.STEP_TAG]
            interrupted += not tags.step_from_tag(NAME, last).done
            server.start()
            assert_consistent(direct)
        # a step is one transaction of the server's database: none is left half done
        assert steps >= SERVER_KILLS and interrupted == 0, (steps, interrupted)
        # and its deliveries are in that transaction: each committed move's stage tag
        # arrives, under one delivery id (a resend after a kill repeats the id), no other
        deadline = time.monotonic() + 120
        while not admin.webhook_deliveries(status="pending").empty:
            assert time.monotonic() < deadline, "deliveries still pending after 2 minutes"
            time.sleep(0.5)
        moves = admin.history_records(NAME)[hooked_from:]
        sent: dict[str, tuple[str, str]] = {}
        for headers, body in receiver.received:
            data = json.loads(body)["data"]
            if data["key"] == tags.STAGE_TAG:
                delivery = headers["X-Jupyreg-Delivery-Id"]
                assert sent.setdefault(delivery, (data["version"], data["value"])) == (
                    data["version"],
                    data["value"],
                )  # one id, one delivery
        assert sorted(sent.values()) == sorted((str(e.version), e.to_stage) for e in moves)
    finally:
        server.stop()
        postgres.stop()
