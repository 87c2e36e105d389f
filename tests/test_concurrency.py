"""Invariants 1 and 2 of DESIGN.md §7 across processes sharing one SQLite registry."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from jupyreg import Registry
from tests.conftest import register_versions, worker_processes

NAME = "fraud-detector"
PROCESSES = 8


def _approve_when_released(uri: str, reviewer: str, request_id: str, start, results) -> None:
    registry = Registry(uri, user=reviewer)
    registry.history(NAME)  # warm up imports and the connection before the race
    start.wait(timeout=120)
    try:
        results.put((request_id, registry.approve(request_id, comment="go").status))
    except Exception as exc:  # reported to the test, which fails on it
        results.put((request_id, f"{type(exc).__name__}: {exc}"))


def test_concurrent_promotions_keep_one_production_and_every_event(alice, model, sqlite_uri):
    versions = register_versions(alice, model, NAME, PROCESSES)
    requests = []
    for version in versions:
        alice.transition(NAME, version, "Staging", reason="candidate")
        requests.append(alice.request(NAME, version, "Production", reason=f"v{version}").id)

    context = worker_processes(__name__)
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(
            target=_approve_when_released,
            args=(sqlite_uri, f"reviewer{i}", request_id, start, results),
        )
        for i, request_id in enumerate(requests)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = dict(results.get(timeout=300) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == dict.fromkeys(requests, "approved")

    client = MlflowClient(sqlite_uri, sqlite_uri)
    mvs = client.search_model_versions(f"name = '{NAME}'")
    production = [int(mv.version) for mv in mvs if mv.tags["jupyreg.stage"] == "Production"]
    legacy = [int(mv.version) for mv in mvs if mv.current_stage == "Production"]
    assert len(production) == 1
    assert legacy == production
    assert client.get_registered_model(NAME).aliases == {"production": production[0]}

    history = alice.history(NAME)
    applied = history[history["to_stage"] == "Production"]
    assert sorted(applied["request_id"]) == sorted(requests)  # one event per approval
    archived = history[(history["from_stage"] == "Production")]
    assert len(archived) == PROCESSES - 1  # every displaced holder got its own event
    assert len(history) == 3 * PROCESSES - 1  # + the None -> Staging moves, nothing else
    assert alice.check(NAME).empty
    assert Path(sqlite_uri.removeprefix("sqlite:///") + ".jupyreg.lock").exists()
