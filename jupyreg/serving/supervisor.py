"""``jupyreg serve``: a supervising process and its scoring workers (uvicorn's own
multi-process supervisor, extended).

The supervisor follows the registry with a ``Follower`` that verifies each new version
(load, input schema, its input example) and keeps no model; it publishes what it verified
to its workers (``serving.replica``), waits until each serves it, then sends the alert.
One process polls and alerts however many workers there are, and the workers spend on a
swap only the load of the model they will serve.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from uvicorn.supervisors import Multiprocess

from jupyreg.serving.app import CONFIG_ENV
from jupyreg.serving.follower import Follower, Served, alert_poster
from jupyreg.serving.replica import Channel

if TYPE_CHECKING:
    import uvicorn


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor; SIGUSR1 (a worker got a webhook) makes the follower
    look at the registry now."""

    def __init__(self, config: uvicorn.Config, follower: Follower) -> None:
        super().__init__(config, sockets=[config.bind_socket()])
        self.follower = follower

    def handle_usr1(self) -> None:
        self.follower.check_now()

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None and p.process.is_alive()]


def serve(
    name: str,
    *,
    stage: str | None = "Production",
    alias: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5001,
    workers: int = 1,
    poll_interval: float = 5.0,
    alert_url: str | None = None,
    webhook_secret: str | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    user: str | None = None,
) -> None:
    """Run the scoring server until interrupted: ``workers`` uvicorn processes serving
    the version of ``name`` in ``stage`` (or at ``alias``), swapped as the registry moves."""
    import uvicorn

    from jupyreg.registry import Registry

    with tempfile.TemporaryDirectory(prefix="jupyreg-serve-") as shared:
        state = Path(shared)
        (state / "metrics").mkdir()
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(state / "metrics"))
        follower = Follower(
            Registry(tracking_uri, registry_uri, user=user),
            name,
            stage,
            alias=alias,
            poll_interval=poll_interval,
            alert=alert_poster(name, alert_url),
            start=False,
            models_dir=state / "models",
            keep_models=False,
            background=True,  # its loads and alerts take only CPU the workers leave
        )
        channel = Channel(state)
        channel.publish(follower.current)
        os.environ[CONFIG_ENV] = json.dumps(
            {
                "state_dir": shared,
                "name": name,
                "following": follower.following,
                "supervisor": os.getpid(),
                "webhook_secret": webhook_secret,
            }
        )
        config = uvicorn.Config(
            "jupyreg.serving.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
        supervisor = _Supervisor(config, follower)

        @follower.on_change
        def _publish(new: Served, old: Served) -> None:
            serial = channel.publish(new)
            for pid, why in channel.wait_for(serial, supervisor.worker_pids).items():
                follower.say(f"worker {pid} does not serve v{new.version}: {why}")
            for download in (state / "models").glob("v*"):  # a remote store's old versions
                if download.name != f"v{new.version}":
                    shutil.rmtree(download, ignore_errors=True)

        follower.start()
        try:
            supervisor.run()
        finally:
            follower.close()
