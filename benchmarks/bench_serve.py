"""Benchmark ``jupyreg serve`` against ``mlflow models serve``, and memory during a swap.

    .venv/bin/python benchmarks/bench_serve.py [--smoke] [--repeat N] [--seconds S]

Throughput: one small scikit-learn model (a LogisticRegression on 4 features, tensor input)
is registered with jupyreg in a temp SQLite registry and promoted to Production; then
``jupyreg serve NAME`` and ``mlflow models serve -m models:/NAME/Production --env-manager
local`` (both one uvicorn worker, 127.0.0.1) take turns: each is started, warmed up for
1 s, then driven for ``--seconds`` (default 15) by 4 closed-loop clients on keep-alive
connections (http.client, in this process), then stopped. The figure per side is the time
per request (1 / throughput); target: jupyreg's throughput ≥ 0.9× MLflow's (ratio ≤ 1.11).

Memory: in a fresh interpreter, a ``Follower`` serves a larger model (a 200-tree random
forest) and swaps to a second version of the same size while a thread samples the
process's RSS every 2 ms. Baseline = RSS after a tiny model was loaded (the imports paid);
one model = RSS after the first version loaded − baseline; during the swap = peak RSS −
baseline. Target: ≤ 2.2× one loaded model.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import _common as c

NAME = "bench-serve"
CLIENTS = 4
TARGET_THROUGHPUT = 0.9
TARGET_MEMORY = 2.2

MEMORY = r"""
import gc, json, sys, threading, time
import psutil
from jupyreg import Registry
from jupyreg.serving.follower import Follower
uri, name = sys.argv[1], sys.argv[2]
alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
process = psutil.Process()
alice.load("tiny", version=1)  # the imports a load needs, paid before the baseline
gc.collect()
baseline = process.memory_info().rss
follower = Follower(alice, name, start=False)
gc.collect()
one = process.memory_info().rss - baseline
bob.approve(alice.request(name, 2, "Production", reason="bench").id)
peak, sampling = [0], [True]
def sample():
    while sampling[0]:
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.002)
thread = threading.Thread(target=sample)
thread.start()
swapped = follower.poll_once()
gc.collect()
sampling[0] = False
thread.join()
after = process.memory_info().rss - baseline
print(json.dumps({"swapped": swapped, "one": one, "peak": peak[0] - baseline, "after": after}))
"""


def _drive(port: int, seconds: float) -> int:
    """Requests answered in ``seconds`` by CLIENTS closed-loop keep-alive clients."""
    body = json.dumps({"inputs": [[0.1, -0.2, 0.3, 0.4], [1.0, 0.5, -0.5, 0.0]]}).encode()
    headers = {"Content-Type": "application/json"}
    counts = [0] * CLIENTS
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            connection.request("POST", "/invocations", body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status} from the server under test")
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


@contextmanager
def _server(command: list[str], root: Path, env: dict[str, str], port: int) -> Iterator[None]:
    log_path = root / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    with c.serving(process, f"http://127.0.0.1:{port}", log_path, command[0], probe="/ping"):
        yield


def _per_request(command: list[str], root: Path, env: dict[str, str], seconds: float) -> float:
    port = c.free_port()
    with _server([*command, "--port", str(port)], root, env, port):
        _drive(port, 1.0)  # warm-up
        return seconds / _drive(port, seconds)


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=3)
    p.add_argument("--seconds", type=float, default=0, help="load per run (default 15)")
    args = p.parse_args(argv)
    repeat = c.repeats(args, 3)
    seconds = args.seconds or (2.0 if args.smoke else 15.0)
    c.quiet_mlflow()
    with c.workdir("serve") as root:
        import numpy as np
        from sklearn.ensemble import RandomForestClassifier

        from jupyreg import Registry

        uri = c.sqlite_uri(root)
        alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")

        def promote(name: str, version: int) -> None:
            alice.transition(name, version, "Staging", reason="bench")
            bob.approve(alice.request(name, version, "Production", reason="bench").id)

        small = c.small_model()
        example = np.zeros((2, 4))
        promote(NAME, alice.register(small, NAME, input_example=example).version)
        env = {**c.clean_env(), "PATH": f"{c.BIN}:{os.environ['PATH']}"}
        ours = [str(c.BIN / "jupyreg"), "--tracking-uri", uri, "serve", NAME, "--workers", "1"]
        anchor = [str(c.BIN / "mlflow"), "models", "serve", "-m", f"models:/{NAME}/Production"]
        anchor += ["--env-manager", "local", "--host", "127.0.0.1", "--workers", "1"]
        anchor_env = {**env, "MLFLOW_TRACKING_URI": uri}
        throughput = c.alternate(
            {
                "jupyreg": lambda: _per_request(ours, root, env, seconds),
                "anchor": lambda: _per_request(anchor, root, anchor_env, seconds),
            },
            repeat,
            warmup=0,
            self_timed=True,
        )

        rng = np.random.default_rng(0)
        x = rng.normal(size=(2000, 20))
        y = (x[:, 0] + rng.normal(scale=0.5, size=2000) > 0).astype(int)
        trees = 50 if args.smoke else 200
        for seed in (1, 2):
            forest = RandomForestClassifier(n_estimators=trees, random_state=seed).fit(x, y)
            alice.register(forest, "forest", input_example=x[:2])
        promote("forest", 1)
        alice.transition("forest", 2, "Staging", reason="bench")
        alice.register(small, "tiny")
        done = subprocess.run(
            [sys.executable, "-c", MEMORY, uri, "forest"],
            cwd=root,
            env={**c.clean_env(), "PYTHONPATH": str(c.ROOT)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        memory = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [
        c.Row(
            "serve throughput, ms per request (1 / throughput)",
            throughput["jupyreg"],
            throughput["anchor"],
            round(1 / TARGET_THROUGHPUT, 2),
        )
    ]
    c.print_table(
        "serve: jupyreg serve vs mlflow models serve (--env-manager local), one worker each",
        rows,
        f"servers take turns, {CLIENTS} closed-loop keep-alive clients, {seconds:g} s per run"
        f" after 1 s of warm-up, {repeat} run(s) per side; tensor input, 2 rows per request",
        "mlflow models serve -m models:/NAME/Production --env-manager local",
    )
    mib = 2**20
    ratio = memory["peak"] / memory["one"]
    verdict = "met" if ratio <= TARGET_MEMORY else "MISSED"
    per_second = {side: 1 / stats.median for side, stats in throughput.items()}
    print(
        f"throughput: jupyreg {per_second['jupyreg']:.0f}/s, mlflow models serve "
        f"{per_second['anchor']:.0f}/s ({per_second['jupyreg'] / per_second['anchor']:.2f}x)"
    )
    print(
        f"memory, {trees}-tree forest: one loaded model {memory['one'] / mib:.1f} MiB, peak during"
        f" the swap {memory['peak'] / mib:.1f} MiB, after {memory['after'] / mib:.1f} MiB"
        f" (swapped: {memory['swapped']})"
    )
    print(
        f"RATIO serve memory during a swap / one loaded model: {ratio:.2f} (target <= "
        f"{TARGET_MEMORY}: {verdict}; peak {memory['peak'] / mib:.1f} MiB, one model "
        f"{memory['one'] / mib:.1f} MiB)"
    )
    return rows


if __name__ == "__main__":
    main()
