"""A lifecycle step on a jupyreg server with 3 webhooks against the same step with none.

    .venv/bin/python benchmarks/bench_outbox.py [--smoke] [--repeat N]

One ``jupyreg server`` (one worker) on SQLite files; the admin moves version 1 of a model
between Staging and Archived, one request a step (each step causes a stage-tag, a
history-tag and, into or out of Staging, an alias event). Three webhooks, subscribed to
those events and answered by a receiver on loopback, are switched on (ACTIVE) for the
timed side and off (DISABLED) for the anchor between steps, alternating. With them on,
each step also writes its deliveries (one per event and webhook) in its own transaction;
the server's deliverer sends them off the request path (target <= 1.1).
"""

from __future__ import annotations

import http.server
import itertools
import os
import threading
from collections.abc import Sequence

import _common as c

NAME = "bench-outbox"
EVENTS = ["model_version_tag.set", "model_version_alias.created", "model_version_alias.deleted"]


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    args = c.parser(__doc__, default_repeat=30).parse_args(argv)
    repeat = c.repeats(args, 30)
    c.quiet_mlflow()
    os.environ |= {  # the server delivers to the receiver on loopback, over plain HTTP
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    }
    receiver = _receiver()
    with (
        c.workdir("outbox") as root,
        c.jupyreg_server(
            f"sqlite:///{root / 'team.db'}", f"sqlite:///{root / 'auth.db'}", root
        ) as url,
        c.credentials(*c.JUPYREG_ADMIN),
    ):
        from mlflow import MlflowClient

        from jupyreg import Registry

        reg, client = Registry(url), MlflowClient(url, url)
        reg.register(c.small_model(), NAME, metrics={"test": {"auc": 0.9}})
        port = receiver.server_address[1]
        hooks = [
            client.create_webhook(
                f"bench-{n}", f"http://127.0.0.1:{port}/{n}", EVENTS, secret="s"
            ).webhook_id
            for n in range(3)
        ]
        stages = itertools.cycle(["Staging", "Archived"])

        def step(active: bool) -> float:
            for hook in hooks:  # untimed: which side this step is
                client.update_webhook(hook, status="ACTIVE" if active else "DISABLED")
            return c.timed(lambda: reg.transition(NAME, 1, next(stages), reason="bench"))

        results = c.alternate(
            {"3 webhooks": lambda: step(True), "none": lambda: step(False)},
            repeat,
            warmup=2,
            self_timed=True,
        )
        delivered = reg.webhook_deliveries(status="delivered").shape[0]
    receiver.shutdown()
    rows = [
        c.Row(
            "a step with 3 webhooks vs none",
            results["3 webhooks"],
            results["none"],
            target=1.1,
        )
    ]
    c.print_table(
        "webhook outbox: deliveries written in the step's transaction",
        rows,
        f"one jupyreg server worker on SQLite; {delivered} deliveries sent by its deliverer",
        "the same step with the webhooks disabled",
    )
    return rows


def _receiver() -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    main()
