"""The team server's guard, per request: a ``jupyreg server`` against MLflow's own
``mlflow server --app-name basic-auth``, both one worker on their own SQLite files, each
holding the same registered versions (every version with its own run, so the files of
each are somewhere else).

Measured as the admin (basic-auth checks the password of every request on both sides):

- a read the UI and every client make: ``GET registered-models/search``;
- an artifact upload to a run that backs no version: ``PUT mlflow-artifacts/artifacts/...``,
  which the guard answers only after finding who owns the path in the stores (read again
  only when a version has changed, ``jupyreg/server/state.py``);
- the same upload right after a version was registered (the owners read afresh).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import _common as c  # noqa: E402

NAME = "guarded"


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    args = c.parser(__doc__, default_repeat=30).parse_args(argv)
    repeat = c.repeats(args, 30)
    versions = 20 if args.smoke else 500
    c.quiet_mlflow()
    with c.workdir("guard") as root, c.team_on_sqlite(root) as (ours, anchor):
        sides = {"jupyreg": _Side(ours, versions), "anchor": _Side(anchor, versions)}
        rows = [
            _row("read: GET registered-models/search", sides, repeat, _Side.search),
            _row("artifact upload, owners known", sides, repeat, _Side.upload),
            _row(
                "artifact upload after a new version",
                sides,
                max(1, repeat // 5),
                _Side.upload_after_registering,
            ),
        ]
    c.print_table(
        f"team server guard ({versions} versions, each with its own run)",
        rows,
        "one worker each, SQLite, the admin's basic-auth credentials on every request",
        "mlflow server --app-name basic-auth",
    )
    return rows


class _Side:
    """One server with ``versions`` versions of ``NAME`` and a run that backs none."""

    def __init__(self, url: str, versions: int) -> None:
        from mlflow import MlflowClient

        self.url, self.session = url, requests.Session()
        self.session.auth = c.JUPYREG_ADMIN
        with c.credentials(*c.JUPYREG_ADMIN):
            self.client = MlflowClient(url, url)
            experiment = self.client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
            self.client.create_registered_model(NAME)
            for _ in range(versions):
                self._register(experiment)
            free = self.client.create_run(experiment).info
        self.experiment = experiment
        self.free_path = free.artifact_uri.split("mlflow-artifacts:", 1)[1].lstrip("/")

    def _register(self, experiment: str) -> None:
        run = self.client.create_run(experiment).info
        self.client.create_model_version(NAME, f"{run.artifact_uri}/model", run_id=run.run_id)

    def search(self) -> None:
        response = self.session.get(
            f"{self.url}/api/2.0/mlflow/registered-models/search",
            params={"max_results": 100},
            timeout=60,
        )
        response.raise_for_status()

    def upload(self) -> None:
        response = self.session.put(
            f"{self.url}/api/2.0/mlflow-artifacts/artifacts/{self.free_path}/notes.txt",
            data=b"a note\n",
            timeout=60,
        )
        response.raise_for_status()

    def upload_after_registering(self) -> float:
        with c.credentials(*c.JUPYREG_ADMIN):
            self._register(self.experiment)
        return c.timed(self.upload)


def _row(measure: str, sides: dict[str, _Side], repeat: int, action) -> c.Row:  # type: ignore[no-untyped-def]
    self_timed = action is _Side.upload_after_registering
    found = c.alternate(
        {label: (lambda s=side: action(s)) for label, side in sides.items()},
        repeat,
        self_timed=self_timed,
    )
    return c.Row(measure, found["jupyreg"], found["anchor"])


if __name__ == "__main__":
    main()
