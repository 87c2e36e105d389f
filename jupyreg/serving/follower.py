"""``Follower``: a model that follows a stage (or alias) of a registered model.

A background thread notices a change (polling every ``poll_interval`` seconds, or at once
when ``check_now()`` is called, e.g. by a webhook), loads the new version, verifies it (its
input schema does not break the served version's callers; it predicts on its own stored
input example) and only then swaps it in, by replacing one reference: a caller that took
``current`` keeps that model for the whole request. A version that fails to load or verify
is never served; the old one keeps answering and an alert says why.

``jupyreg serve`` runs a Follower in its supervising process only (``keep_models=False``:
it verifies, keeps no model) and its scoring workers load what it verified
(``serving.replica``): the work of a swap stays out of the processes answering requests.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from jupyreg import lifecycle, schema, tags
from jupyreg.errors import (
    InvalidArgument,
    NotFound,
    NotServable,
    RegistryError,
    RegistryUnavailable,
)

if TYPE_CHECKING:
    from jupyreg.registry import Registry


@dataclass(frozen=True)
class Served:
    """One loaded version: the MLflow pyfunc model and what ``/version`` says about it."""

    name: str
    version: int
    model: Any
    run_id: str | None
    loaded_at: str
    load_seconds: float
    lineage: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    """The local directory the model was loaded from (None where MLflow chose it)."""
    inputs: list[schema.Input] | None = None
    """The model's input schema, what a candidate is checked against."""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 3),
            "lineage": self.lineage,
        }


Callback = Callable[[Served, Served], None]
"""``callback(new, old)``, called after each swap."""


class Serving:
    """What a follower and a worker's replica share: the version served, the callbacks
    called after each swap, and the log they both write to."""

    name: str
    _current: Served
    _callbacks: list[Callback]
    _log: TextIO

    @property
    def current(self) -> Served:
        """The version being served; take it once per request and use it to the end."""
        return self._current

    @property
    def version(self) -> int:
        return self._current.version

    def on_change(self, callback: Callback) -> Callback:
        """Call ``callback(new, old)`` after each swap (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    def say(self, text: str) -> None:
        """Print a line to the log."""
        print(f"{self._speaker()}: {text}", file=self._log, flush=True)

    def _speaker(self) -> str:
        return f"jupyreg {self.name}"

    def _swapped(self, new: Served, old: Served) -> None:
        """Say so and call the callbacks; one that fails is reported, never raised."""
        self.say(
            f"{self._swap_verb} v{new.version} (was v{old.version}; loaded in "
            f"{new.load_seconds:.2f} s)"
        )
        for callback in list(self._callbacks):
            try:
                callback(new, old)
            except Exception as exc:  # a caller's callback must not stop the following
                self.say(f"on_change callback failed: {exc!r}")

    _swap_verb = "now serving"


class Follower(Serving):
    """Serve the version of ``name`` in ``stage`` (or pointed at by ``alias``), swapping
    versions as the registry moves them; ``predict``, ``version``, ``on_change``."""

    def __init__(
        self,
        registry: Registry,
        name: str,
        stage: str | None = lifecycle.PRODUCTION,
        *,
        alias: str | None = None,
        poll_interval: float = 5.0,
        alert: Callable[[str], None] | None = None,
        log: TextIO = sys.stderr,
        start: bool = True,
        models_dir: str | os.PathLike[str] | None = None,
        keep_models: bool = True,
        background: bool = False,
    ) -> None:
        """``models_dir``: where a remote artifact store's models are downloaded, one
        directory per version; ``keep_models=False`` verifies each version and keeps only
        what describes it (``current.model`` is None: this follower cannot predict);
        ``background``: the following thread runs only on CPU nothing else wants
        (``SCHED_IDLE``), for a process that answers no requests (in one that does, a
        descheduled thread holding the GIL would stall them)."""
        if poll_interval <= 0:
            raise InvalidArgument(f"poll_interval must be positive, not {poll_interval!r}")
        self.registry = registry
        self.name = name
        self.alias = alias
        self.stage = None if alias else lifecycle.normalize_stage(stage or lifecycle.PRODUCTION)
        self.poll_interval = poll_interval
        self._alert = alert
        self._log = log
        self._models_dir = None if models_dir is None else os.fspath(models_dir)
        self._keep_models = keep_models
        if not keep_models:  # it verifies; the workers it publishes to serve
            self._swap_verb = "verified"
        self._background = background
        self._callbacks: list[Callback] = []
        self._refused: set[int] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        target = self._target()
        if target is None:
            raise NotFound(f"{name} has no version in {self.following}: promote one first")
        self._current: Served = self._load(target, None)
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    @property
    def following(self) -> str:
        return f"alias {self.alias!r}" if self.alias else str(self.stage)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The served model's prediction (MLflow pyfunc ``predict``)."""
        model = self._current.model
        return model.predict(data, params=params) if params else model.predict(data)

    def check_now(self) -> None:
        """Look for a change now instead of at the next poll (a webhook arrived)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._follow, name=f"jupyreg-follow-{self.name}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # following -----------------------------------------------------------------------

    def _target(self) -> int | None:
        if self.alias:
            return self.registry.alias_target(self.name, self.alias)
        return self.registry.holder(self.name, self.stage or lifecycle.PRODUCTION)

    def _follow(self) -> None:
        if self._background:
            _run_in_background()
        unreachable = False
        while not self._stop.is_set():
            try:
                self.poll_once()
                if unreachable:
                    self.say("the registry is back")
                unreachable = False
            except RegistryUnavailable as exc:
                if not unreachable:
                    self.say(f"{exc}; still serving v{self.version}, retrying")
                unreachable = True
            except RegistryError as exc:  # e.g. the alias was deleted: keep serving
                self.say(f"{exc}; still serving v{self.version}")
            except Exception as exc:  # nothing may stop the following; say what happened
                self.say(f"unexpected {_short(exc)}; still serving v{self.version}")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def poll_once(self) -> bool:
        """Swap in the version the registry now names, if it is new and servable; whether
        a swap happened."""
        sharing = contextlib.nullcontext() if self._background else yielding_to()
        with short_gil_slices(), sharing:  # the registry read too: every poll makes one
            target = self._target()
            if target is None or target == self.version or target in self._refused:
                return False
            return self._swap_to(target)

    def _swap_to(self, target: int) -> bool:
        old = self._current
        try:
            new = self._load(target, old)
        except NotServable as exc:
            self._refused.add(target)
            self.say(str(exc))
            self._send(f"{exc}\nStill serving {self.name} v{old.version}.")
            return False
        self._current = new  # the swap: one reference, atomic for every reader
        self._swapped(new, old)
        self._announce(new, old)
        return True

    def _load(self, version: int, current: Served | None) -> Served:
        """Load and verify ``version``: NotServable when it cannot be served (or
        RegistryUnavailable when the registry cannot be reached: try again later)."""
        started = time.monotonic()
        what = f"{self.name} v{version} ({self.following})"
        path = None
        try:
            if self._models_dir is None:
                model = self.registry.load(self.name, version=version)
            else:
                into = os.path.join(self._models_dir, f"v{version}")
                os.makedirs(into, exist_ok=True)
                path = self.registry.model_dir(self.name, version, into)
                model = load_model(path)
        except RegistryUnavailable:
            raise
        except Exception as exc:  # a broken artifact fails in many ways: all mean "not this one"
            raise NotServable(
                f"{what} was not served: its model does not load ({_short(exc)}); fix or "
                "re-register it and promote the new version"
            ) from exc
        candidate = _inputs(model)
        served = None if current is None else current.inputs
        if served is not None and candidate is not None:
            broken = schema.breaking_changes(served, candidate)
            if broken:
                raise NotServable(
                    f"{what} was not served: its input schema would break the callers of "
                    f"v{current.version}: {', '.join(broken)}; register a version that accepts "
                    "what they send (the require_compatible_schema gate catches this earlier)"
                )
        example = getattr(model, "input_example", None)
        if example is not None:
            try:
                model.predict(example)
            except Exception as exc:
                raise NotServable(
                    f"{what} was not served: it fails on its own input example ({_short(exc)}); "
                    "fix the model or its example and register it again"
                ) from exc
        return Served(
            name=self.name,
            version=version,
            model=model if self._keep_models else None,
            run_id=getattr(model.metadata, "run_id", None),
            loaded_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            load_seconds=time.monotonic() - started,
            lineage=self._lineage(version),
            path=path,
            inputs=candidate,
        )

    def _lineage(self, version: int) -> dict[str, Any]:
        try:
            mv = self.registry.get(self.name, version)
        except RegistryError:
            return {}
        fields = mv.lineage_fields
        return {
            "stage": mv.stage,
            "author": mv.author,
            "git_commit": fields.get("git.commit"),
            "git_dirty": fields.get("git.dirty"),
            "datasets": {k: v for k, v in fields.items() if k.startswith("data.")},
            "metrics": mv.metrics,
            "input_schema": schema.summary(mv.tags.get(tags.SCHEMA_TAG)),
        }

    def _announce(self, new: Served, old: Served) -> None:
        if self._alert is None:
            return
        from jupyreg.alerts import change_details

        stage = self.stage or lifecycle.PRODUCTION
        lines = [f"now serving {self.name} v{new.version} ({self.following}; was v{old.version})"]
        lines += change_details(self.registry, self.name, stage, new.version, old.version)
        self._send("\n".join(lines))

    def _send(self, text: str) -> None:
        if self._alert is not None:
            self._alert(text)


def _run_in_background() -> None:
    """Give this thread only the CPU that nothing else wants: ``SCHED_IDLE`` where the OS
    has it (a waking request thread preempts it at once), else nice 19."""
    me = threading.get_native_id()
    try:
        os.sched_setscheduler(me, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, me, 19)


def load_model(path: str, *, checked: bool = False) -> Any:
    """The MLflow pyfunc model in a local directory. ``checked``: this environment already
    loaded it and warned of its requirements (a worker loads what its supervisor verified),
    so MLflow's requirement check, most of a small model's load time, is skipped."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path, suppress_warnings=checked)


@contextlib.contextmanager
def short_gil_slices() -> Iterator[None]:
    """While a thread loads a model beside request threads: it would hold the GIL in 5 ms
    slices by default, each a wait for the requests answered meanwhile; 1 ms slices
    shorten those waits. (It must not run at a lower OS priority: descheduled while holding
    the GIL, it would stall every request thread of the process.)"""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(switch)


class Requests:
    """The requests the scoring app is answering: it calls ``started`` and ``finished``
    for each, on its event loop; ``idle`` is set while there are none."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = threading.Event()
        self.idle.set()

    def started(self) -> None:
        self.count += 1
        self.idle.clear()

    def finished(self) -> None:
        self.count -= 1
        if not self.count:
            self.idle.set()


@contextlib.contextmanager
def yielding_to(
    requests: Requests | None = None,
    longest: float = 0.005,
    run: float = 0.0005,
    breath: float = 0.0002,
) -> Iterator[None]:
    """Run the block (a model load) in this thread in slices of ``run`` seconds, checked at
    each Python function call it makes: between two slices it sleeps ``breath`` seconds,
    the GIL free, so a thread that wants it (the event loop reading a new request) takes it
    at once instead of waiting for the interpreter's switch interval; while ``requests``
    are being answered it waits for them, at most ``longest`` seconds, so that it still
    progresses under a load that never pauses. (Plain GIL sharing would halve the speed of
    every request during a load.)"""
    runs_until = [0.0]

    def pause(frame: Any, event: str, arg: Any) -> None:
        if event != "call" or time.monotonic() < runs_until[0]:
            return
        if requests is not None and requests.count:
            requests.idle.wait(longest)
        else:
            time.sleep(breath)
        runs_until[0] = time.monotonic() + run

    previous = sys.getprofile()  # a profiler of this thread gets its hook back after
    sys.setprofile(pause)
    try:
        yield
    finally:
        sys.setprofile(previous)


def _inputs(model: Any) -> list[schema.Input] | None:
    inputs = model.metadata.get_input_schema()
    return None if inputs is None else schema.from_signature_inputs(inputs)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:300] + "..."


def follow(
    name: str,
    stage: str | None = lifecycle.PRODUCTION,
    *,
    alias: str | None = None,
    registry: Registry | None = None,
    poll_interval: float = 5.0,
    alert_url: str | None = None,
) -> Follower:
    """A handle serving the version of ``name`` in ``stage`` (or at ``alias``) and following
    it: ``.predict(data)``, ``.version``, ``.on_change(callback)``; ``registry`` defaults to
    ``jupyreg.Registry()`` as configured (MLFLOW_TRACKING_URI, ...)."""
    from jupyreg.registry import Registry

    return Follower(
        registry or Registry(),
        name,
        stage,
        alias=alias,
        poll_interval=poll_interval,
        alert=alert_poster(name, alert_url),
    )


def alert_poster(name: str, url: str | None) -> Callable[[str], None] | None:
    """What posts a follower's alerts about ``name`` to ``url`` (None: no alerts)."""
    if not url:
        return None
    from jupyreg.alerts import post

    def alert(text: str) -> None:
        post(url, text, {"model": name}, who=f"jupyreg {name}")

    return alert
