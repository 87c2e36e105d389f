"""Relay verified MLflow webhooks to GitHub's repository_dispatch API.

MLflow posts a signed event for every alias change; when ``production`` moves, this
relay checks the signature with ``jupyreg.webhooks.verify`` and starts the
``deploy-model`` workflow (github-actions/deploy.yml) with the model and version.

    JUPYREG_WEBHOOK_SECRET=... GITHUB_TOKEN=... GITHUB_REPOSITORY=owner/repo \\
        python webhook_relay.py --port 8787
    jupyreg webhooks add http://relay-host:8787/ --secret "$JUPYREG_WEBHOOK_SECRET"
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jupyreg.errors import InvalidSignature
from jupyreg.webhooks import stage_entry, verify

SEEN: set[str] = set()


def dispatch(name: str, version: int) -> None:
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com")
    request = urllib.request.Request(
        f"{api}/repos/{os.environ['GITHUB_REPOSITORY']}/dispatches",
        data=json.dumps(
            {"event_type": "model-production", "client_payload": {"name": name, "version": version}}
        ).encode(),
        headers={
            "Authorization": f"Bearer {os.environ['GITHUB_TOKEN']}",
            "Accept": "application/vnd.github+json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


class Relay(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            payload = verify(
                dict(self.headers), body, os.environ["JUPYREG_WEBHOOK_SECRET"], seen=SEEN
            )
        except InvalidSignature as exc:
            self.send_error(401, str(exc))
            return
        entry = stage_entry(payload)
        if (
            entry is not None
            and entry.stage == "Production"
            and payload["entity"].endswith("alias")
        ):
            dispatch(entry.name, entry.version)
        self.send_response(204)
        self.end_headers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), Relay).serve_forever()


if __name__ == "__main__":
    main()
