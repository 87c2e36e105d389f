"""The scoring app in process (FastAPI's TestClient, no server): a signed MLflow webhook
makes the follower look at once; an unsigned one is refused; `jupyreg.follow` is lazy; a
`jupyreg serve` worker serves what its supervisor verified and published, and a model load
waits while requests are being answered."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from jupyreg.serving.app import create_app
from jupyreg.serving.follower import Follower, Requests, yielding_to
from jupyreg.serving.replica import Channel, Replica
from tests.conftest import signed_webhook

NAME = "scorer"
SECRET = "webhook-secret"


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
    headers, body = signed_webhook(event, SECRET)
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


def _production(alice, bob, features: int) -> int:
    x = np.random.default_rng(features).normal(size=(40, features))
    model = LogisticRegression().fit(x, x[:, 0] > 0)
    version = alice.register(model, NAME, input_example=x[:2]).version
    alice.transition(NAME, version, "Staging", reason="candidate")
    bob.approve(alice.request(NAME, version, "Production", reason="ship").id)
    return version


def test_a_worker_serves_what_its_supervisor_verified_and_says_so(alice, bob, tmp_path) -> None:
    first = _production(alice, bob, 2)
    supervisor = Follower(
        alice, NAME, log=io.StringIO(), start=False, models_dir=tmp_path / "m", keep_models=False
    )
    assert supervisor.current.model is None and supervisor.current.path  # verified, not kept
    channel = Channel(tmp_path)
    channel.publish(supervisor.current)
    log = io.StringIO()
    worker = Replica(channel, NAME, supervisor.following, log=log, start=False)
    assert worker.version == first and worker.current.model.predict(np.zeros((1, 2))) is not None
    assert channel.wait_for(1, lambda: [os.getpid()]) == {}  # the worker acknowledged it
    client = TestClient(create_app(worker))
    assert client.get("/version").json()["version"] == first
    assert not worker.check_once()  # nothing new published

    second = _production(alice, bob, 2)
    assert supervisor.poll_once() and supervisor.version == second
    serial = channel.publish(supervisor.current)
    assert worker.check_once() and worker.version == second
    assert channel.wait_for(serial, lambda: [os.getpid()]) == {}
    assert f"now serving v{second} (was v{first}; loaded in" in log.getvalue()
    answer = client.post("/invocations", json={"inputs": [[0.1, 0.2]]})
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == str(second)

    # a version whose files vanished after verification: the worker keeps serving, and
    # its acknowledgement tells the supervisor why
    broken = Path(tmp_path / "gone")
    record = {**supervisor.current.describe(), "version": second + 1}
    channel.state.write_text(
        json.dumps({"serial": 9, "version": second + 1, "path": str(broken),
                    "described": record, "published_at": time.time()})
    )  # fmt: skip
    assert not worker.check_once() and worker.version == second
    why = channel.wait_for(9, lambda: [os.getpid()])[os.getpid()]
    assert why.startswith(f"v{second + 1} did not load here")


def test_a_services_follower_polls_and_swaps_in_slices_a_supervisors_does_not(alice, bob) -> None:
    """Inside a service (``jupyreg.follow``) the poll, load, verification and callbacks run
    under the slicing profile hook (``yielding_to``), which frees the GIL for the service's
    requests; a ``jupyreg serve`` supervisor's follower (background) is alone: no hook."""
    _production(alice, bob, 2)
    hooked: dict[bool, list[bool]] = {}
    for background in (False, True):
        follower = Follower(alice, NAME, log=io.StringIO(), start=False, background=background)
        follower.on_change(
            lambda new, old, b=background: hooked.setdefault(b, []).append(
                sys.getprofile() is not None
            )
        )
        _production(alice, bob, 2)
        assert follower.poll_once()
    assert hooked == {False: [True], True: [False]}
    assert sys.getprofile() is None  # taken off after the poll


def test_a_profiler_of_the_loading_thread_gets_its_hook_back() -> None:
    calls: list[str] = []

    def profiler(frame, event, arg) -> None:
        calls.append(event)

    sys.setprofile(profiler)
    try:
        with yielding_to(Requests()):
            assert sys.getprofile() is not profiler  # the slicing hook, meanwhile
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)


def test_a_model_load_waits_while_requests_are_answered() -> None:
    requests = Requests()
    requests.started()
    calls: list[float] = []

    def mark() -> None:
        calls.append(time.monotonic())

    def load() -> None:
        with yielding_to(requests, longest=5.0):
            mark()  # a Python function call: it waits until no request is in flight

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(0.3)
    assert calls == []
    finished = time.monotonic()
    requests.finished()
    loader.join(timeout=5)
    assert calls and calls[0] >= finished


def test_a_model_load_frees_the_gil_between_its_slices() -> None:
    """With no request in flight the load still sleeps between slices, the GIL free: a
    thread that wants it (the event loop, a new request) runs during the load, not after."""
    during: list[bool] = []
    loading, done = threading.Event(), threading.Event()

    def other() -> None:
        while not done.is_set():
            during.append(loading.is_set())
            time.sleep(0.001)

    def step() -> None:
        pass

    switch = sys.getswitchinterval()
    sys.setswitchinterval(10.0)  # the interpreter itself then never takes the GIL away
    watcher = threading.Thread(target=other)
    try:
        watcher.start()
        time.sleep(0.05)
        with yielding_to(Requests()):
            loading.set()
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                step()  # busy, in Python calls: the load's slices
            loading.clear()
    finally:
        sys.setswitchinterval(switch)
        done.set()
        watcher.join(timeout=5)
    assert sum(during) >= 20, f"the other thread ran {sum(during)} times during the load"
