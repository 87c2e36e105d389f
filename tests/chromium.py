"""Debian's Chromium, headless, driven over the DevTools protocol (CDP) with
websocket-client (a dependency of jupyter_server): no Playwright, no browser download.

``Chromium.open(url)`` loads a page and records every request it makes (status, or the
network error) and every uncaught exception; ``wait_for_text`` polls the page's text,
``screenshot`` writes a PNG. Installing Chromium: ``ensure_chromium`` (apt-get, as the
Makefile's ui-test target does).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"


@functools.cache
def ensure_chromium() -> str | None:
    """The path of Chromium, installed with apt-get when missing (as root); None when it is
    absent and cannot be installed (tried once per process)."""
    found = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # `make ui-test` may be installing it too
    for command in (
        ["apt-get", *wait, "install", "-y", "-q", "chromium"],
        ["apt-get", *wait, "update", "-q"],
        ["apt-get", *wait, "install", "-y", "-q", "chromium"],
    ):
        try:
            done = subprocess.run(command, env=env, capture_output=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "install" in command and done.returncode == 0:
            break
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else None


@dataclass
class Request:
    """One request the page made, and how it ended."""

    url: str
    method: str
    kind: str  # CDP's resource type: Document, Script, XHR, Fetch, ...
    page: str = ""  # the label of the page that made it (``Chromium.label``)
    status: int | None = None
    error: str | None = None  # a network error (no HTTP answer)
    body: str = ""  # the start of a 4xx/5xx answer's body

    def describe(self) -> str:
        outcome = self.status if self.status is not None else self.error
        return f"[{self.page}] {self.method} {self.url} -> {outcome} {self.body[:200]}".rstrip()


@dataclass
class Page:
    """What the tab did: its requests, uncaught exceptions, console errors, logins."""

    requests: dict[str, Request] = field(default_factory=dict)
    exceptions: list[str] = field(default_factory=list)
    challenges: list[str] = field(default_factory=list)  # URLs that asked for a login
    console_errors: list[str] = field(default_factory=list)

    def failed(self) -> list[Request]:
        """Requests answered >= 400 or not answered at all (not those the page cancelled)."""
        return [
            r
            for r in self.requests.values()
            if (r.status is not None and r.status >= 400)
            or (r.error is not None and r.error != "net::ERR_ABORTED")
        ]


class Chromium:
    """One headless Chromium with one tab, for one test (a context manager)."""

    def __init__(
        self,
        executable: str,
        profile: Path,
        login: tuple[str, str] | None = None,
        size: tuple[int, int] = (1440, 1000),
    ) -> None:
        self.executable, self.profile, self.size = executable, profile, size
        self.login = login  # what the user types into the basic-auth prompt
        self.label = ""  # the page being looked at, recorded with each request
        self.process: subprocess.Popen | None = None
        self.socket: Any = None
        self.page = Page()
        self._next_id = 0
        self._awaited: set[int] = set()
        self._results: dict[int, dict[str, Any]] = {}
        self._pending_bodies: list[str] = []

    def __enter__(self) -> Chromium:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        import urllib.request

        import websocket

        self.profile.mkdir(parents=True, exist_ok=True)
        active = self.profile / "DevToolsActivePort"
        active.unlink(missing_ok=True)  # a reused profile's is stale
        log = open(self.profile / "chromium.log", "wb")  # noqa: SIM115 - lives with the browser
        self.process = subprocess.Popen(
            [
                self.executable,
                "--headless",
                "--no-sandbox",  # as root, in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--password-store=basic",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={self.profile}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while not (active.exists() and active.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "Chromium did not start: "
                    + (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.1)
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        tab = next(t for t in targets if t.get("type") == "page")
        self.socket = websocket.create_connection(
            tab["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        for method in ("Page.enable", "Network.enable", "Runtime.enable"):
            self.call(method)
        # every request passes through here, so that a login prompt can be answered
        self.call("Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": "*"}])
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.size[0],
            height=self.size[1],
            deviceScaleFactor=1,
            mobile=False,
        )

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(Exception):
                self.socket.close()
            self.socket = None
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self.process = None

    # -- the protocol ------------------------------------------------------------------

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result, handling the events that come first."""
        ident = self._send(method, params)
        self._awaited.add(ident)
        while ident not in self._results:
            self._receive()
        self._awaited.discard(ident)
        message = self._results.pop(ident)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result", {})

    def _send(self, method: str, params: dict[str, Any]) -> int:
        """Send a command; its answer is kept only when ``call`` waits for it."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        return self._next_id

    def _receive(self, timeout: float | None = None) -> bool:
        """Handle one message (False: none came within ``timeout`` seconds)."""
        import websocket

        self.socket.settimeout(60 if timeout is None else timeout)
        try:
            message = json.loads(self.socket.recv())
        except websocket.WebSocketTimeoutException:
            if timeout is None:
                raise
            return False
        if "id" in message:
            if message["id"] in self._awaited:
                self._results[message["id"]] = message
        else:
            self._event(message)
        return True

    def pump(self, seconds: float) -> None:
        """Handle the browser's events for ``seconds`` (the page keeps loading meanwhile)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._receive(timeout=left)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        requests = self.page.requests
        if method == "Fetch.requestPaused":
            self._send("Fetch.continueRequest", {"requestId": params["requestId"]})
        elif method == "Fetch.authRequired":  # the browser's basic-auth prompt, answered
            self.page.challenges.append(params["request"]["url"])
            answer = {"response": "CancelAuth"}
            if self.login is not None and len(self.page.challenges) <= 3:
                username, password = self.login
                answer = {
                    "response": "ProvideCredentials",
                    "username": username,
                    "password": password,
                }
            self._send(
                "Fetch.continueWithAuth",
                {"requestId": params["requestId"], "authChallengeResponse": answer},
            )
        elif method == "Network.requestWillBeSent":
            request = params["request"]
            requests[params["requestId"]] = Request(
                request["url"], request["method"], params.get("type", ""), self.label
            )
        elif method == "Network.responseReceived":
            seen = requests.get(params["requestId"])
            if seen is not None:
                seen.status = params["response"]["status"]
        elif method == "Network.loadingFinished":
            seen = requests.get(params["requestId"])
            if seen is not None and seen.status is not None and seen.status >= 400:
                self._pending_bodies.append(params["requestId"])
        elif method == "Network.loadingFailed":
            seen = requests.get(params["requestId"])
            if seen is not None and seen.status is None:
                seen.error = "net::ERR_ABORTED" if params.get("canceled") else params["errorText"]
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.page.exceptions.append(text[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = params.get("args", [])
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            self.page.console_errors.append(text[:500])

    def _read_bodies(self) -> None:
        while self._pending_bodies:
            ident = self._pending_bodies.pop()
            with contextlib.suppress(RuntimeError):  # a body the browser no longer keeps
                body = self.call("Network.getResponseBody", requestId=ident)
                text = body.get("body", "")
                if body.get("base64Encoded"):
                    text = base64.b64decode(text).decode(errors="replace")
                self.page.requests[ident].body = " ".join(text.split())[:500]

    # -- pages -------------------------------------------------------------------------

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def open(self, url: str) -> None:
        """Navigate (a fresh load, or a change of the URL's fragment in the same app)."""
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(
        self, *needles: str, absent: tuple[str, ...] = (), timeout: float = 60, quiet: float = 1.0
    ) -> str:
        """Wait until the page shows every needle and none of ``absent`` (a spinner's
        text), with no request in flight for ``quiet`` seconds; returns the page's text."""
        deadline = time.monotonic() + timeout
        settled_since: float | None = None
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            busy = any(  # this page's calls still unanswered
                r.page == self.label
                and r.status is None
                and r.error is None
                and r.kind in ("XHR", "Fetch", "Document")
                for r in self.page.requests.values()
            )
            shown = all(n in text for n in needles) and not any(a in text for a in absent)
            if shown and not busy:
                settled_since = settled_since or time.monotonic()
                if time.monotonic() - settled_since >= quiet:
                    self._read_bodies()
                    return text
            else:
                settled_since = None
            self.pump(0.25)
        self._read_bodies()
        missing = [n for n in needles if n not in text] + [f"no {a!r}" for a in absent if a in text]
        raise TimeoutError(f"the page never showed {missing}; it shows:\n{text[:1500]}")

    def click_text(self, text: str) -> None:
        """Click the innermost element whose whole text is ``text``."""
        xpath = f"//*[normalize-space(.)={json.dumps(text)}]"
        found = self.evaluate(
            f"""(() => {{
                const all = document.evaluate({json.dumps(xpath)}, document, null,
                    XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
                if (!all.snapshotLength) return false;
                const element = all.snapshotItem(all.snapshotLength - 1);
                element.scrollIntoView();
                element.click();
                return true;
            }})()"""
        )
        if not found:
            raise TimeoutError(f"nothing on the page says {text!r}")

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
