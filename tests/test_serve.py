"""`jupyreg serve` end to end: one real server process (a SQLite registry in a temp dir,
127.0.0.1) shared by the module; a 60 s load while Production changes 3 times and is rolled
back once; broken and incompatible versions never served, with alerts received by a real
HTTP receiver; the FastAPI example (`examples/fastapi_follow`) under uvicorn."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from jupyreg import Registry
from tests.conftest import (
    BIN,
    Receiver,
    free_port,
    schema_template,
    signed_webhook,
    stop_group,
)

NAME = "scorer"
POLL = 0.5
ROOT = Path(__file__).resolve().parents[1]
X = np.random.default_rng(7).normal(size=(80, 3))
Y = (X[:, 0] > 0).astype(int)
BODY = json.dumps({"inputs": X[:2].tolist()}).encode()
"""A tensor input: MLflow parses it in ~0.7 ms, a 3-column ``dataframe_split`` in ~6 ms of
CPU on the shared test machine."""
HEADERS = {"Content-Type": "application/json"}
LOAD_SECONDS = 60
RATE = 240  # requests per second offered (the issue asks for >= 200)
THREADS = 8
CHANGES = ((8, 2), (20, 3), (32, 4), (44, "rollback"))
"""(seconds into the load, version promoted to Production or a rollback)."""

MOVER = """
import json, sys, time
from jupyreg import Registry
uri, name, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
alice = Registry(uri, user="alice", publish_cards=False)  # the step, not the card after it
bob = Registry(uri, user="bob", publish_cards=False)
alice.holder(name)
print("ready", flush=True)
t0 = float(sys.stdin.readline())
for offset, target in plan:
    time.sleep(max(0.0, t0 + offset - time.monotonic()))
    start = time.monotonic()
    if target == "rollback":
        version = bob.rollback(name, reason="the new one drifts").version
    else:
        request = alice.request(name, target, "Production", reason=f"v{target} is better")
        bob.approve(request.id, comment="lgtm")
        version = target
    print(json.dumps({"version": version, "start": start, "end": time.monotonic()}), flush=True)
sys.stdin.readline()  # exits once the load is over: an interpreter's exit is a burst of CPU
"""


@dataclass
class Service:
    url: str
    port: int
    uri: str
    root: Path
    log: Path
    receiver: Receiver
    alice: Registry
    bob: Registry
    broken: int
    incompatible: int

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.status, dict(response.headers), response.read()

    def load_seconds(self) -> dict[int, float]:
        """Load time of each version swapped in, as the server logged it."""
        found = re.findall(
            r"now serving v(\d+) \(was v\d+; loaded in ([\d.]+) s\)", self.read_log()
        )
        return {int(v): float(s) for v, s in found}

    def read_log(self) -> str:
        return self.log.read_text()


def _register(reg: Registry, features: int, c: float, auc: float) -> int:
    model = LogisticRegression(C=c).fit(X[:, :features], Y)
    return reg.register(
        model, NAME, metrics={"test": {"auc": auc}}, input_example=X[:2, :features]
    ).version


def _start_serving(
    uri: str, root: Path, log: Path, receiver: Receiver
) -> tuple[subprocess.Popen, int]:
    """``jupyreg serve`` of NAME on a free port, its output in ``log``."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "jupyreg"), "--tracking-uri", uri, "serve", NAME]
            + ["--port", str(port), "--poll-interval", str(POLL), "--alert-url", receiver.url],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, port


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("serve")
    shutil.copyfile(schema_template(), root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    receiver = Receiver()
    log = root / "serve.log"
    before = os.getcwd()
    os.chdir(root)  # the registry's artifacts (./mlruns) live beside it
    try:
        alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
        first = _register(alice, 3, 1.0, 0.80)
        alice.transition(NAME, first, "Staging", reason="candidate")
        bob.approve(alice.request(NAME, first, "Production", reason="first").id)
        # the server starts while the other versions register
        process, port = _start_serving(uri, root, log, receiver)
        good = [_register(alice, 3, 1.0 / (i + 2), 0.81 + i / 100) for i in range(3)]
        broken = _register(alice, 3, 0.1, 0.9)
        model_dir = Path(alice._store.client.get_model_version_download_uri(NAME, str(broken)))
        for file in Path(str(model_dir).removeprefix("file://")).glob("model.*"):
            file.write_bytes(b"not a model any more")
        incompatible = _register(alice, 2, 1.0, 0.95)
        for version in [*good, broken, incompatible]:
            alice.transition(NAME, version, "Staging", reason="candidate")
    finally:
        os.chdir(before)
    deadline = time.monotonic() + 120
    for _ in range(3):  # a port free when chosen may be taken before the server binds it
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/ping", timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        process.kill()
                        raise RuntimeError(log.read_text()[-3000:]) from None
                    time.sleep(0.3)
            break
        except RuntimeError as exc:
            if "Address already in use" not in str(exc):
                raise
            process, port = _start_serving(uri, root, log, receiver)
    yield Service(url, port, uri, root, log, receiver, alice, bob, broken, incompatible)
    stop_group(process)
    receiver.server.shutdown()


def test_it_speaks_mlflows_scoring_protocol_and_says_what_it_serves(service) -> None:
    for path in ("/ping", "/health"):
        status, headers, _ = service.get(path)
        assert status == 200 and headers["x-model-version"] == "1"
    _, headers, body = service.get("/version")
    described = json.loads(body)
    assert described["name"] == NAME and described["version"] == 1
    assert described["run_id"] == service.alice.get(NAME, 1).run_id
    assert described["loaded_at"] and described["lineage"]["metrics"] == {"test.auc": 0.8}
    assert described["lineage"]["input_schema"] == "(tensor):tensor float64 (-1, 3)"
    expected = {"predictions": [int(p) for p in service.alice.load(NAME).predict(X[:2])]}
    bodies = [
        (BODY, "application/json"),
        (json.dumps({"instances": X[:2].tolist()}), "application/json"),
        (json.dumps({"dataframe_split": pd.DataFrame(X[:2]).to_dict("split")}), "application/json"),
    ]
    for data, kind in bodies:
        data = data if isinstance(data, bytes) else data.encode()
        request = urllib.request.Request(
            service.url + "/invocations", data=data, headers={"Content-Type": kind}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == expected
            assert response.headers["X-Model-Version"] == "1"
    bad = urllib.request.Request(
        service.url + "/invocations", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)
    assert refused.value.code == 400 and refused.value.headers["X-Model-Version"] == "1"
    _, _, metrics = service.get("/metrics")
    text = metrics.decode()
    # one sample per worker process (the server runs 1 here)
    assert re.search(rf'jupyreg_serve_model_version{{model="{NAME}",pid="\d+"}} 1.0', text)
    assert f'jupyreg_serve_requests_total{{model="{NAME}",version="1"}} 4.0' in text
    assert f'jupyreg_serve_errors_total{{model="{NAME}",version="1"}} 1.0' in text


def _load(port: int, t0: float, records: list, index: int) -> None:
    """One lean client: a keep-alive connection, requests paced to RATE / THREADS per s."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval = THREADS / RATE
    due = t0 + index * interval / THREADS
    mine = []
    while (now := time.monotonic()) < t0 + LOAD_SECONDS:
        if due > now:
            time.sleep(due - now)
        due += interval
        start = time.monotonic()
        try:
            connection.request("POST", "/invocations", BODY, HEADERS)
            response = connection.getresponse()
            response.read()
            mine.append(
                (start, time.monotonic(), response.status, response.getheader("X-Model-Version"))
            )
        except (OSError, http.client.HTTPException):
            mine.append((start, time.monotonic(), 0, None))
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.close()
    records.extend(mine)


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98]


@pytest.mark.serial  # its p99 and throughput mean nothing beside other tests' load
def test_load_while_production_changes_three_times_and_rolls_back(service) -> None:
    plan = json.dumps([list(change) for change in CHANGES])
    mover = subprocess.Popen(  # another process: its steps do not slow this one's clients
        [sys.executable, "-c", MOVER, service.uri, NAME, plan],
        cwd=service.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert mover.stdout.readline() == "ready\n", mover.stderr.read()
    t0 = time.monotonic() + 0.5  # CLOCK_MONOTONIC: one clock for both processes
    mover.stdin.write(f"{t0!r}\n")
    mover.stdin.flush()
    records: list[tuple[float, float, int, str | None]] = []
    threads = [
        threading.Thread(target=_load, args=(service.port, t0, records, i)) for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out, err = mover.communicate("done\n", timeout=60)
    assert mover.returncode == 0, err[-3000:]
    changes = [json.loads(line) for line in out.splitlines()]
    assert [c["version"] for c in changes] == [2, 3, 4, 3]

    records.sort()
    rate = len(records) / LOAD_SECONDS
    failed = [r for r in records if r[2] != 200]
    print(f"\n{len(records)} requests in {LOAD_SECONDS} s: {rate:.0f}/s, {len(failed)} failed")
    assert not failed, failed[:5]

    # versions: what held Production when, and how soon the server followed each change
    loads = service.load_seconds()
    windows, around_changes = [], []
    previous = 1
    for number, change in enumerate(changes):
        version, start, end = change["version"], change["start"], change["end"]
        following = changes[number + 1]["start"] if number + 1 < len(changes) else float("inf")
        answered = [r for r in records if start <= r[0] < following and r[3] == str(version)]
        assert answered, f"v{version} was never served"
        first, first_done = answered[0][:2]
        served_after, bound = first - end, POLL + loads[version]
        print(
            f"v{previous} -> v{version}: step {end - start:.2f} s, served {served_after:.3f} s "
            "after it "
            f"(poll {POLL} s + load {loads[version]:.3f} s = {bound:.3f} s)"
        )
        assert served_after <= bound + 0.5  # + the poll's own query and scheduling
        # once the new version answered, every request sent after is answered by it (those
        # sent meanwhile may be handled in another order than they were sent)
        later = {r[3] for r in records if first_done <= r[0] < following}
        assert later == {str(version)}, later
        # before, only the version it replaced
        earlier = {r[3] for r in records if start <= r[0] < first}
        assert earlier <= {str(previous)}, earlier
        windows.append((first - loads[version] - 0.05, first + 0.25))
        around_changes.append((end - 2.0, first + 1.5))
        previous = version
    assert {r[3] for r in records if r[0] < changes[0]["start"]} == {"1"}

    steady = [
        r[1] - r[0]
        for r in records
        if r[0] > t0 + 3 and not any(a <= r[0] <= b for a, b in around_changes)
    ]
    swapping = [r[1] - r[0] for r in records if any(a <= r[0] <= b for a, b in windows)]
    p99_steady, p99_swap = _p99(steady), _p99(swapping)
    # measured, not judged (DEVELOPERS.md): 1.2-1.5x on an idle 2-core machine shared by these
    # clients, the worker and the supervisor, 2.5x under other tests' load; RESULTS.md
    print(
        f"p99 latency: steady {p99_steady * 1000:.1f} ms ({len(steady)} requests), "
        f"during swaps {p99_swap * 1000:.1f} ms ({len(swapping)} requests): "
        f"{p99_swap / p99_steady:.2f}x (target <= 2)"
    )

    alerts = [json.loads(body)["text"] for _, body in service.receiver.received]
    swapped_in = [a for a in alerts if a.startswith(f"now serving {NAME} v2 ")]
    assert swapped_in, alerts
    assert "approved by bob (requested by alice): v2 is better" in swapped_in[0]
    assert "metrics vs v1: test.auc 0.81 (+0.01)" in swapped_in[0]
    load = os.getloadavg()[0]
    if rate < 200 and load > 3 * (os.cpu_count() or 1):
        pytest.skip(
            f"{rate:.0f} requests/s: the machine is overloaded by other work (load {load:.1f} "
            f"on {os.cpu_count()} cores), so throughput is not judged; all else held"
        )
    assert rate >= 200


def test_the_fastapi_example_serves_and_names_the_production_version(service) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": service.uri,
        "JUPYREG_MODEL": NAME,
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    log = service.root / "example.log"
    with open(log, "wb") as out:
        app = subprocess.Popen(
            [str(BIN / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT / "examples" / "fastapi_follow",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        body = json.dumps(pd.DataFrame(X[:2]).rename(columns=str).to_dict("records")).encode()
        deadline = time.monotonic() + 120
        while True:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/predict", data=body, headers=HEADERS
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer, header = json.loads(response.read()), response.headers
                break
            except urllib.error.HTTPError:
                raise
            except OSError:
                if app.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()[-3000:]) from None
                time.sleep(0.5)
    finally:
        stop_group(app)
    production = service.alice.holder(NAME)
    assert answer["version"] == production and header["X-Model-Version"] == str(production)
    assert len(answer["predictions"]) == 2


def _promote(service: Service, version: int) -> None:
    request = service.alice.request(NAME, version, "Production", reason=f"try v{version}")
    service.bob.approve(request.id)


def test_broken_or_incompatible_versions_are_never_served(service) -> None:
    _, headers, _ = service.get("/ping")
    serving = headers["x-model-version"]
    for version, why in (
        (service.broken, "its model does not load"),
        (service.incompatible, "its input schema would break the callers of"),
    ):
        _promote(service, version)
        (alert,) = service.receiver.wait_for(
            lambda item, v=version: f"{NAME} v{v} (Production) was not served" in item[1].decode()
        )
        text = json.loads(alert[1])["text"]
        assert why in text and f"Still serving {NAME} v{serving}" in text
        request = urllib.request.Request(service.url + "/invocations", data=BODY, headers=HEADERS)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["X-Model-Version"] == serving
        assert json.loads(service.get("/version")[2])["version"] == int(serving)


def test_two_workers_follow_one_supervisor_that_a_webhook_wakes(tmp_path, monkeypatch) -> None:
    """`--workers 2`: both workers serve what the supervisor verified; a signed webhook
    reaching a worker makes the supervisor look at once (its poll is 10 minutes away), and
    one alert goes out per change, not one per worker."""
    shutil.copyfile(schema_template(), tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # the registry's artifacts live beside it
    alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
    first = _register(alice, 3, 1.0, 0.80)
    second = _register(alice, 3, 0.5, 0.85)
    for version in (first, second):
        alice.transition(NAME, version, "Staging", reason="candidate")
    bob.approve(alice.request(NAME, first, "Production", reason="first").id)
    receiver, port, secret = Receiver(), free_port(), "hook-secret"
    command = [str(BIN / "jupyreg"), "--tracking-uri", uri, "serve", NAME, "--workers", "2"]
    command += ["--port", str(port), "--poll-interval", "600", "--alert-url", receiver.url]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--webhook-secret", secret],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def versions_served() -> dict[str, str]:
        """pid -> version, from each worker's sample of the served-version gauge."""
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            text = response.read().decode()
        pattern = rf'jupyreg_serve_model_version{{model="{NAME}",pid="(\d+)"}} (\d+)\.0'
        return dict(re.findall(pattern, text))

    def until(predicate, what: str) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                if predicate():
                    return
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {log.read_text()[-3000:]}")
            time.sleep(0.3)

    try:
        until(lambda: list(versions_served().values()) == [str(first)] * 2, "2 workers on v1")
        bob.approve(alice.request(NAME, second, "Production", reason="better").id)
        event = {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": NAME, "alias": "production", "version": str(second)},
        }
        headers, body = signed_webhook(event, secret)
        request = urllib.request.Request(f"{url}/webhook", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        until(lambda: set(versions_served().values()) == {str(second)}, "both workers on v2")
        for _ in range(8):  # new connections: whichever worker takes them answers with v2
            with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
                assert response.headers["X-Model-Version"] == str(second)
        time.sleep(1.0)  # an alert per worker would have arrived by now
        swaps = [b for _, b in receiver.received if b"now serving" in b]
        assert len(swaps) == 1, swaps
        assert f"now serving {NAME} v{second} ".encode() in swaps[0]
        assert log.read_text().count(f"now serving v{second} (was v{first};") == 2

        # the supervisor killed -9: its workers, which nothing tells of a change any more,
        # stop instead of serving v2 forever, and free the port for a new `jupyreg serve`
        workers = [int(pid) for pid in versions_served()]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), log.read_text()[-3000:]
        assert log.read_text().count("is gone: stopping this worker") == 2
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{url}/ping", timeout=2)
    finally:
        stop_group(process)
        receiver.server.shutdown()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (an exited orphan may stay a zombie where init does
    not reap, as in some containers)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
