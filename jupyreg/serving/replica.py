"""What the scoring workers of ``jupyreg serve`` serve: the version their supervisor verified.

The supervising process follows the registry (a ``Follower`` that keeps no model) and, for
each version it verified, writes a state file: the version, the local directory of its
model and what ``/version`` says about it (``Channel.publish``). Each worker (a ``Replica``)
looks at that file every ``CHECK_SECONDS``, loads the model from that directory, swaps it
in by replacing one reference, and acknowledges; the supervisor announces a version once
every worker acknowledged it. So polling, verifying, lineage queries and alerts never take
CPU (or the GIL) from a process answering requests: a swap costs a worker one model load.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from jupyreg.serving.follower import (
    Requests,
    Served,
    Serving,
    load_model,
    short_gil_slices,
    yielding_to,
)

CHECK_SECONDS = 0.05
"""How often a worker looks at the state file (an ``os.stat``: microseconds)."""
ACK_TIMEOUT_SECONDS = 120.0


class Channel:
    """The state directory shared by the supervisor and its workers."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.state = self.directory / "served.json"
        self._serial = 0

    def publish(self, served: Served) -> int:
        """Tell the workers to serve ``served`` (atomically: a worker reads the old record
        or the new one); the record's serial number."""
        self._serial += 1
        record = {
            "serial": self._serial,
            "version": served.version,
            "path": served.path,
            "described": served.describe(),
            "published_at": time.time(),
        }
        partial = self.state.with_suffix(".partial")
        partial.write_text(json.dumps(record))
        os.replace(partial, self.state)
        return self._serial

    def read(self) -> dict[str, Any]:
        return json.loads(self.state.read_text())

    def acknowledge(self, serial: int, error: str | None = None) -> None:
        """A worker's answer to record ``serial``: served, or why not."""
        mine = self.directory / f"ack-{os.getpid()}.json"
        partial = mine.with_suffix(".partial")
        partial.write_text(json.dumps({"serial": serial, "error": error}))
        os.replace(partial, mine)

    def wait_for(self, serial: int, workers: Callable[[], Iterable[int]]) -> dict[int, str]:
        """Wait until every live worker answered record ``serial`` (at most
        ``ACK_TIMEOUT_SECONDS``); the workers that did not serve it, with why."""
        deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
        while True:
            missing: dict[int, str] = {}
            for pid in workers():
                try:
                    answer = json.loads((self.directory / f"ack-{pid}.json").read_text())
                except (OSError, ValueError):
                    answer = {"serial": 0}
                if answer["serial"] < serial:
                    missing[pid] = "no answer yet"
                elif answer.get("error"):
                    missing[pid] = answer["error"]
            pending = any(why == "no answer yet" for why in missing.values())
            if not pending or time.monotonic() > deadline:
                return missing
            time.sleep(CHECK_SECONDS)


class Replica(Serving):
    """A worker's model: the version the supervisor last published; the same interface as
    ``Follower`` for the scoring app (``current``, ``version``, ``on_change``...)."""

    def __init__(
        self,
        channel: Channel,
        name: str,
        following: str,
        *,
        supervisor: int | None = None,
        log: TextIO = sys.stderr,
        start: bool = True,
    ) -> None:
        """``supervisor``: the pid of the process that publishes to ``channel``, which
        ``check_now`` signals (while it is still this worker's parent)."""
        self.channel = channel
        self.supervisor = supervisor
        self.name = name
        self.following = following
        self.requests = Requests()
        self._log = log
        self._callbacks: list[Callable[[Served, Served], None]] = []
        self._stop = threading.Event()
        self._stamp = channel.state.stat().st_mtime_ns
        record = channel.read()
        self._current = self._load(record)
        self._serial = record["serial"]
        channel.acknowledge(self._serial)
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(
                target=self._follow, name=f"jupyreg-replica-{name}", daemon=True
            )
            self._thread.start()

    def check_now(self) -> None:
        """Ask the supervisor to look at the registry now (a webhook arrived); nothing
        when it is gone (this worker's parent is then another process)."""
        if self.supervisor is not None and not self._orphaned():
            os.kill(self.supervisor, signal.SIGUSR1)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _orphaned(self) -> bool:
        """The supervisor died (a worker's parent is then another process): nothing
        publishes any more, so this worker would serve its version forever."""
        return self.supervisor is not None and os.getppid() != self.supervisor

    def _follow(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            if self._orphaned():
                self.say(
                    f"supervisor {self.supervisor} is gone: stopping this worker (it would "
                    f"not follow {self.following} any more); start jupyreg serve again"
                )
                os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
                return
            try:
                self.check_once()
            except Exception as exc:  # nothing may stop the following; say what happened
                self.say(f"unexpected {type(exc).__name__}: {exc}; still serving v{self.version}")

    def check_once(self) -> bool:
        """Serve the version last published, if it is new; whether a swap happened."""
        stamp = self.channel.state.stat().st_mtime_ns
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        record = self.channel.read()
        if record["serial"] == self._serial:
            return False
        self._serial = record["serial"]
        if record["version"] == self.version:
            self.channel.acknowledge(self._serial)
            return False
        old = self._current
        try:
            with short_gil_slices(), yielding_to(self.requests):
                new = self._load(record)
        except Exception as exc:  # the supervisor loaded it: this is the disk or memory
            why = f"v{record['version']} did not load here ({type(exc).__name__}: {exc})"
            self.say(f"{why}; still serving v{old.version}")
            self.channel.acknowledge(self._serial, why)
            return False
        self._current = new  # the swap: one reference, atomic for every reader
        self._swapped(new, old)
        self.channel.acknowledge(self._serial)
        return True

    def _load(self, record: dict[str, Any]) -> Served:
        described = record["described"]
        model = load_model(record["path"], checked=True)  # the supervisor warned
        return Served(
            name=self.name,
            version=record["version"],
            model=model,
            run_id=described["run_id"],
            loaded_at=described["loaded_at"],
            # from the supervisor's first look at it to this worker serving it
            load_seconds=described["load_seconds"] + time.time() - record["published_at"],
            lineage=described["lineage"],
            path=record["path"],
        )

    def _speaker(self) -> str:
        return f"jupyreg {self.name} [{os.getpid()}]"
