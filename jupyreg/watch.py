"""``jupyreg watch``: act each time the version holding a stage changes.

Polling the registry (rather than waiting for webhooks) works with any MLflow backend
and survives tracking-server restarts: an unreachable registry is reported and retried.
With a state file, a restarted watcher neither misses a change nor repeats a handled one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from jupyreg.errors import RegistryUnavailable

if TYPE_CHECKING:
    from jupyreg.registry import Registry


@dataclass(frozen=True)
class StageChange:
    name: str
    stage: str
    version: int | None
    previous_version: int | None

    def environment(self) -> dict[str, str]:
        return {
            "JUPYREG_MODEL": self.name,
            "JUPYREG_STAGE": self.stage,
            "JUPYREG_VERSION": "" if self.version is None else str(self.version),
            "JUPYREG_PREVIOUS_VERSION": (
                "" if self.previous_version is None else str(self.previous_version)
            ),
        }

    def message(self) -> str:
        was = f" (was v{self.previous_version})" if self.previous_version else ""
        if self.version is None:
            return f"{self.name}: no version is in {self.stage} any more{was}"
        return f"{self.name} v{self.version} entered {self.stage}{was}"


@dataclass(frozen=True)
class StaleProduction:
    """Production's code or data changed since it was trained (``jupyreg.staleness``)."""

    name: str
    version: int
    summary: str
    what: tuple[object, ...]  # what is stale (not its age): a new alert when it changes

    def environment(self) -> dict[str, str]:
        return {
            "JUPYREG_MODEL": self.name,
            "JUPYREG_STAGE": "Production",
            "JUPYREG_VERSION": str(self.version),
            "JUPYREG_STALE": self.summary,
        }

    def message(self) -> str:
        return f"{self.summary}: retrain and register a new version"


Event = StageChange | StaleProduction


def run_command(command: str) -> Callable[[Event], None]:
    """An action running ``command`` in a shell with the change in its environment."""

    def act(change: Event) -> None:
        done = subprocess.run(command, shell=True, env={**os.environ, **change.environment()})
        if done.returncode:
            print(f"jupyreg watch: command exited {done.returncode}", file=sys.stderr)

    return act


def post_message(url: str, registry: Registry | None = None) -> Callable[[Event], None]:
    """An action posting a Slack-compatible ``{"text": ...}`` message to ``url``: the change,
    then (given the registry) who approved it, why, and the metric deltas against the version
    it replaced."""
    from jupyreg.alerts import change_details, post

    def act(change: Event) -> None:
        lines = [change.message()]
        if registry is not None and isinstance(change, StageChange):
            lines += change_details(
                registry, change.name, change.stage, change.version, change.previous_version
            )
        post(url, "\n".join(lines), change.environment(), who="jupyreg watch")

    return act


class _State:
    """The last version seen in the stage, kept in a file when one is given."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.known = False
        self.version: int | None = None
        if path is not None and path.exists():
            self.version = json.loads(path.read_text()).get("version")
            self.known = True

    def remember(self, version: int | None) -> None:
        self.version, self.known = version, True
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": version}))
            tmp.replace(self.path)


def watch(
    registry: Registry,
    name: str,
    stage: str,
    act: Callable[[Event], None],
    *,
    interval: float = 5.0,
    count: int | None = None,
    state_file: str | os.PathLike[str] | None = None,
    stale_against: str | os.PathLike[str] | None = None,
    log: TextIO = sys.stderr,
) -> int:
    """Call ``act`` once per change of the version in ``stage``, and (``stale_against``: a
    repository) once each time Production is found stale in a new way; return after
    ``count`` events (never, if None). The version found at start is the baseline, not a
    change, unless a state file remembers an earlier one."""
    state = _State(Path(state_file) if state_file else None)
    alerted: tuple[object, ...] | None = None  # the staleness last acted on
    fired = 0
    unreachable = started = False
    while count is None or fired < count:
        try:
            current = registry.holder(name, stage)
        except RegistryUnavailable as exc:
            if not unreachable:
                print(f"jupyreg watch: {exc}; retrying every {interval:g} s", file=log)
            unreachable = True
            time.sleep(interval)
            continue
        if unreachable:
            print("jupyreg watch: the registry is back", file=log)
            unreachable = False
        if not started:
            started = True
            print(f"jupyreg watch: watching {name} {stage} (now v{current})", file=log, flush=True)
        if not state.known:
            state.remember(current)
        elif current != state.version:
            change = StageChange(name, stage, current, state.version)
            print(f"jupyreg watch: {change.message()}", file=log, flush=True)
            act(change)
            state.remember(current)
            fired += 1
            continue
        stale = _stale(registry, name, current, stale_against) if stage == "Production" else None
        if stale is not None and stale.what != alerted:
            print(f"jupyreg watch: {stale.message()}", file=log, flush=True)
            act(stale)
            alerted = stale.what
            fired += 1
            continue
        time.sleep(interval)
    return fired


def _stale(
    registry: Registry, name: str, version: int | None, repo: str | os.PathLike[str] | None
) -> StaleProduction | None:
    if repo is None or version is None:
        return None
    from jupyreg.staleness import staleness

    measured = staleness(registry, name, repo)
    if not measured.stale:
        return None
    what = (measured.version, measured.commits_behind, *measured.changed_data)
    return StaleProduction(name, version, measured.summary(), what)
