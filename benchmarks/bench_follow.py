"""Benchmark ``jupyreg.follow`` inside a FastAPI service: p99 latency while Production
changes, against the steady p99 of the same run.

    .venv/bin/python benchmarks/bench_follow.py [--smoke] [--seconds S]

A temp SQLite registry gets six versions of a small LogisticRegression (signature and
input example; version 1 in Production). A FastAPI app whose ``/predict`` serves
``jupyreg.follow(NAME, poll_interval=0.5)`` runs under uvicorn (one worker, 127.0.0.1).
This process offers 240 requests/s from 8 keep-alive clients for ``--seconds`` (default
40; smoke 14) while another process approves the next version into Production 6 s after
the start and every 8 s after that. A swap window runs from 0.2 s before the first
response of a new version to 0.25 s after it (the follower's poll, load, verification and
swap); steady = every request more than 2.5 s before or 1.5 s after any change, the first
3 s left out. Target (tracker issue 16): p99 during swaps <= 2x the steady p99.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import _common as c

NAME = "bench-follow"
RATE, CLIENTS = 240, 8
TARGET = 2.0
APP = f"""
import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse

import jupyreg

model = jupyreg.follow({NAME!r}, stage="Production", poll_interval=0.5)
app = FastAPI()


@app.get("/health")
def health() -> dict:
    return {{"version": model.version}}


@app.post("/predict")
def predict(rows: list[list[float]]) -> JSONResponse:
    served = model.current  # one version for the whole request
    served.model.predict(np.array(rows))
    return JSONResponse({{}}, headers={{"X-Model-Version": str(served.version)}})
"""
MOVER = """
import sys, time
from jupyreg import Registry
uri, name, start, changes = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
for n in range(changes):
    time.sleep(max(0.0, start + 6 + 8 * n - time.monotonic()))
    bob.approve(alice.request(name, n + 2, "Production", reason="bench").id)
"""


def _registry(uri: str) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from jupyreg import Registry

    x = np.random.RandomState(0).rand(200, 3)
    y = (x[:, 0] > 0.5).astype(int)
    alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
    for i in range(6):
        fitted = LogisticRegression(C=1.0 / (i + 1)).fit(x, y)
        version = alice.register(fitted, NAME, input_example=x[:2]).version
        alice.transition(NAME, version, "Staging", reason="candidate")
        if i == 0:
            bob.approve(alice.request(NAME, version, "Production", reason="first").id)


def _client(port: int, start: float, seconds: float, index: int, records: list) -> None:
    body, headers = b"[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]", {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval = CLIENTS / RATE
    due, mine = start + index * interval / CLIENTS, []
    while (now := time.monotonic()) < start + seconds:
        if due > now:
            time.sleep(due - now)
        due += interval
        sent = time.monotonic()
        connection.request("POST", "/predict", body, headers)
        response = connection.getresponse()
        response.read()
        version = response.getheader("X-Model-Version")
        mine.append((sent, time.monotonic(), response.status, version))
    connection.close()
    records.extend(mine)


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98]


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=1)
    p.add_argument("--seconds", type=float, default=0, help="load per run (default 40)")
    args = p.parse_args(argv)
    seconds = args.seconds or (14.0 if args.smoke else 40.0)
    changes = min(4, int((seconds - 8) // 8) + 1)
    c.quiet_mlflow()
    with c.workdir("follow") as root:
        uri = c.sqlite_uri(root)
        _registry(uri)
        (root / "follow_app.py").write_text(APP)
        port, log_path = c.free_port(), root / "uvicorn.log"
        env = {**c.clean_env(), "MLFLOW_TRACKING_URI": uri}
        command = [str(Path(sys.executable).with_name("uvicorn")), "follow_app:app"]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [*command, "--port", str(port), "--log-level", "warning"],
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        with c.serving(process, f"http://127.0.0.1:{port}", log_path, "uvicorn"):
            start = time.monotonic() + 0.5
            mover = subprocess.Popen(
                [sys.executable, "-c", MOVER, uri, NAME, repr(start), str(changes)], cwd=root
            )
            records: list[tuple[float, float, int, str | None]] = []
            clients = [
                threading.Thread(target=_client, args=(port, start, seconds, i, records))
                for i in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            if mover.wait(timeout=120) != 0:
                raise RuntimeError("the mover failed")
    records.sort()
    firsts = [b[0] for a, b in zip(records, records[1:], strict=False) if a[3] != b[3]]
    swapping = [r for r in records if any(f - 0.2 <= r[0] <= f + 0.25 for f in firsts)]
    steady = [
        r
        for r in records
        if r[0] > start + 3 and not any(f - 2.5 <= r[0] <= f + 1.5 for f in firsts)
    ]
    failed = sum(r[2] != 200 for r in records)
    rows = [
        c.Row(
            "follow() in FastAPI: p99 during swaps",
            c.Stats([_p99([r[1] - r[0] for r in swapping])]),
            c.Stats([_p99([r[1] - r[0] for r in steady])]),
            TARGET,
        )
    ]
    c.print_table(
        "jupyreg.follow in a FastAPI service while Production changes",
        rows,
        f"{len(records)} requests in {seconds:g} s ({RATE}/s offered, {CLIENTS} clients),"
        f" {failed} failed; {len(firsts)} swap(s) of {changes} change(s);"
        f" {len(swapping)} requests in swap windows, {len(steady)} steady",
        "p99 of the steady requests of the same run",
    )
    print(json.dumps({"swaps": len(firsts), "failed": failed}))
    return rows


if __name__ == "__main__":
    main()
