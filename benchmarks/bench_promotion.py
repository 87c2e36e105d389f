"""Benchmark promotion latency and throughput: jupyreg's lifecycle against MLflow's
``transition_model_version_stage``.

    .venv/bin/python benchmarks/bench_promotion.py [--smoke] [--repeat N] [--profile]

Stores (tracker issue 13 sets the targets):

- ``SQLite embedded``: both sides on one SQLite file, in this process (target <= 3);
- ``PostgreSQL mlflow server``: a plain ``mlflow server`` (one worker) on a throwaway
  PostgreSQL cluster; jupyreg runs its lifecycle client-side over MLflow's REST API, as
  it does against any plain server (report only);
- ``PostgreSQL jupyreg server``: jupyreg's side through a ``jupyreg server`` (started with
  the installed CLI, one worker: MLflow's basic-auth app plus jupyreg's lifecycle
  endpoints) on a second database of the same cluster, users in a third; each step is one
  request to ``/api/2.0/jupyreg/*`` (``Registry(url)`` discovers the endpoints once).
  The jupyreg server refuses MLflow's legacy stage transition (its guard: that would
  bypass the lifecycle), so this row's anchor is ``transition_model_version_stage`` by a
  MANAGE user on MLflow's own authenticated server (``mlflow server --app-name
  basic-auth``, one worker, the same basic-auth settings) on two more databases of the
  same cluster: both sides pay basic-auth's password check on every request (target
  <= 1.5). All servers run without MLflow's background job runner
  (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``);
- ``PostgreSQL jupyreg server, auth cache``: the same with MLflow's basic-auth password
  cache on, on both servers (``auth_cache_ttl_seconds``, which ``jupyreg server`` does not
  set: by default basic-auth hashes the password, scrypt, at every authentication check);
  a diagnostic row, report only, that separates that cost from the lifecycle's. Its own
  databases.

``--smoke``, or no PostgreSQL here: the PostgreSQL rows say ``skipped``, and the
jupyreg-server row runs on SQLite files instead (a jupyreg server and MLflow's basic-auth
server, each on its own files), so that path is exercised.

On each store, N+1 plain-MLflow versions of each side's model are created from one logged
model; then, in this one process, sides alternating per version (version 1 of each side is
an untimed warm-up):

1. ``reg.transition(name, v, "Staging")`` by alice vs ``transition_model_version_stage(..,
   "Staging")``;
2. ``reg.request(.., "Production")`` by alice + ``reg.approve`` by bob (Production is
   exclusive: the previous holder is archived, with its own history event) vs
   ``transition_model_version_stage(.., "Production", archive_existing_versions=True)``.

On a jupyreg server alice and bob are users of its basic-auth, made by the admin (alice
EDIT on the model, bob MANAGE); each ``Registry`` sends its own user's credentials, and the
server's default policy (one approval by someone else for Production) applies. The HTTP
requests each step sends are counted on the wire (urllib3, retries included) and printed
for both sides of the server stores (``HTTP requests per step ...``), and so is the time of
one password check as basic-auth does it (``password check ...``).

Throughput is N / total time of the N sequential promotions.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import _common as c

OURS, ANCHOR = "bench-jupyreg", "bench-anchor"
PLAIN_PG, TEAM_PG, TEAM_PG_CACHED, TEAM_SQLITE = (
    "PostgreSQL mlflow server",
    "PostgreSQL jupyreg server",
    "PostgreSQL jupyreg server, auth cache",
    "SQLite jupyreg server",
)
TARGETS = {"SQLite embedded": 3.0, TEAM_PG: 1.5, TEAM_SQLITE: 1.5}
AUTH_CACHE_SECONDS = 600
ANCHOR_USER = "carol"
PASSWORD = "bench-user-password-1234"
TEAM_NOTE = (
    "anchor: transition_model_version_stage by a user with MANAGE on MLflow's own"
    " authenticated server (mlflow server --app-name basic-auth, one worker, the same"
    " basic-auth settings) on the same {where}, started in the same run: both servers check"
    " the password of every request; the jupyreg server refuses MLflow's legacy stage"
    " transition, so it cannot be its own anchor"
)
CACHE_NOTE = (
    f"; diagnostic row, report only: auth_cache_ttl_seconds={AUTH_CACHE_SECONDS} in the"
    " server's basic_auth.ini, so a checked password is not hashed again (MLflow's default,"
    " 0, hashes it at every authentication check: see the 'password check' line)"
)


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=30)
    p.add_argument("--profile", action="store_true", help="cProfile one request+approve")
    args = p.parse_args(argv)
    count = c.repeats(args, 30)
    c.quiet_mlflow()
    rows: list[c.Row] = []
    requests: list[str] = []

    def bench(store: str, ours: str, anchor: str, team: bool, note: str = "") -> None:
        found, counted = _bench(store, ours, anchor, count, args.profile, team)
        for row in found:
            row.note = note
        rows.extend(found)
        requests.extend(counted)

    with c.workdir("promotion") as root:
        bench("SQLite embedded", c.sqlite_uri(root), c.sqlite_uri(root), team=False)
        why = "--smoke" if args.smoke else c.postgres_unavailable()
        if why:
            for store in (PLAIN_PG, TEAM_PG, TEAM_PG_CACHED):
                rows += [
                    c.Row(m, None, None, None, note=f"skipped: {why}") for m in _measures(store)
                ]
            with c.team_on_sqlite(root) as (team, anchor):
                bench(TEAM_SQLITE, team, anchor, True, TEAM_NOTE.format(where="machine (SQLite)"))
        else:
            with c.postgres() as backend, c.mlflow_server(backend, root, c.SERVER_ENV) as plain:
                bench(PLAIN_PG, plain, plain, team=False)
                note = TEAM_NOTE.format(where="PostgreSQL cluster")
                for store, cache, db in (
                    (TEAM_PG, 0, "jupyreg"),
                    (TEAM_PG_CACHED, AUTH_CACHE_SECONDS, "jupyreg_cached"),
                ):
                    team_db, auth_db, anchor_db, anchor_auth_db = (
                        c.create_database(backend, f"{db}{suffix}")
                        for suffix in ("", "_auth", "_anchor", "_anchor_auth")
                    )
                    with (
                        c.jupyreg_server(team_db, auth_db, root, auth_cache_seconds=cache) as team,
                        c.mlflow_auth_server(anchor_db, anchor_auth_db, root, cache) as anchor,
                    ):
                        bench(store, team, anchor, True, note + (CACHE_NOTE if cache else ""))
    c.print_table(
        "promotion: jupyreg lifecycle vs MlflowClient.transition_model_version_stage",
        rows,
        f"same process, sides alternating per version, 1 warm-up version each,"
        f" {count} promotion(s) per side; throughput = promotions / total time",
        "transition_model_version_stage on the same store (jupyreg-server rows: on a plain"
        " mlflow server on the same cluster, see the notes)",
    )
    for row in rows:
        if row.ours and row.anchor:
            print(
                f"throughput {row.measure}: jupyreg {_per_s(row.ours)}/s,"
                f" anchor {_per_s(row.anchor)}/s"
            )
    for line in requests:
        print(line)
    if any(row.ours and row.note for row in rows):
        print(
            f"password check (basic-auth): {_password_check_ms():.1f} ms here for one"
            " werkzeug check_password_hash of a password hashed as MLflow's basic-auth"
            " stores it; without its cache MLflow hashes at every authentication check"
        )
    for row in rows:
        if row.ours and row.note:
            print(f"note {row.measure}: {row.note}")
    return rows


def _measures(store: str) -> list[str]:
    return [f"-> Staging, transition ({store})", f"-> Production, request+approve ({store})"]


class _User:
    """alice or bob: a ``Registry`` acting as that user; on a jupyreg server with that
    user's basic-auth credentials (MLflow's client reads them at each request)."""

    def __init__(self, uri: str, name: str, team: bool, registry: bool = True) -> None:
        from jupyreg import Registry

        self.name, self.team = name, team
        if registry:
            with self.acting():
                self.reg = Registry(uri, user=name)

    def acting(self) -> contextlib.AbstractContextManager[None]:
        return c.credentials(self.name, PASSWORD) if self.team else contextlib.nullcontext()

    def run(self, action: Callable[[], Any]) -> Any:
        with self.acting():
            return action()


def _setup(ours: str, anchor: str, versions: int, team: bool) -> tuple[str, str]:
    """``versions`` plain-MLflow versions of each side's model; on a jupyreg server, as its
    admin, who also makes alice (EDIT on the model) and bob (MANAGE). Returns the model
    names (ours, anchor)."""
    from jupyreg import Registry

    if not team:
        source = c.log_one_model(ours)
        for name in (OURS, ANCHOR):
            c.create_versions(ours, name, versions, source)
        return OURS, ANCHOR
    from mlflow.server import get_app_client

    with c.credentials(*c.JUPYREG_ADMIN):
        c.create_versions(ours, OURS, versions, c.log_one_model(ours))
        admin = Registry(ours)
        for user, permission in (("alice", "EDIT"), ("bob", "MANAGE")):
            admin.add_user(user, PASSWORD)
            admin.grant(user, OURS, permission)
        c.create_versions(anchor, ANCHOR, versions, c.log_one_model(anchor))
        anchor_admin = get_app_client("basic-auth", tracking_uri=anchor)
        anchor_admin.create_user(ANCHOR_USER, PASSWORD)
        anchor_admin.grant_user_permission(ANCHOR_USER, "registered_model", ANCHOR, "MANAGE")
    return OURS, ANCHOR


def _bench(
    store: str, ours: str, anchor: str, count: int, profile: bool, team: bool
) -> tuple[list[c.Row], list[str]]:
    from mlflow import MlflowClient

    ours_name, anchor_name = _setup(ours, anchor, count + 1 + profile, team)
    client = MlflowClient(anchor, anchor)
    alice, bob = _User(ours, "alice", team), _User(ours, "bob", team)
    carol = _User(anchor, ANCHOR_USER, team, registry=False)  # the anchor's MANAGE user
    sent: dict[str, list[list[tuple[str, str]]]] = {}

    with c.count_http() as http:

        def counted(step: str, action: Callable[[], Any]) -> Any:
            mark = http.mark()
            result = action()
            sent.setdefault(step, []).append(http.since(mark))
            return result

        def each_version(action: Callable[[int], object]) -> Callable[[], object]:
            versions = itertools.count(1)
            return lambda: action(next(versions))

        def to_staging(version: int) -> None:
            with alice.acting():
                counted(
                    "transition",
                    lambda: alice.reg.transition(ours_name, version, "Staging", reason="b"),
                )

        def promote(version: int) -> None:
            with alice.acting():
                filed = counted(
                    "request",
                    lambda: alice.reg.request(ours_name, version, "Production", reason="bench"),
                )
            with bob.acting():
                counted("approve", lambda: bob.reg.approve(filed.id))

        staging = c.alternate(
            {
                "jupyreg": each_version(to_staging),
                "anchor": each_version(
                    lambda v: carol.run(
                        lambda: counted(
                            "anchor Staging",
                            lambda: client.transition_model_version_stage(
                                anchor_name, str(v), "Staging"
                            ),
                        )
                    )
                ),
            },
            count,
        )
        production = c.alternate(
            {
                "jupyreg": each_version(promote),
                "anchor": each_version(
                    lambda v: carol.run(
                        lambda: counted(
                            "anchor Production",
                            lambda: client.transition_model_version_stage(
                                anchor_name, str(v), "Production", archive_existing_versions=True
                            ),
                        )
                    )
                ),
            },
            count,
        )
    if profile:
        last = count + 2
        to_staging(last)
        c.profile(lambda: promote(last))
    measure_staging, measure_production = _measures(store)
    target = TARGETS.get(store)
    lines = []
    if ours.startswith("http"):
        lines = [
            f"HTTP requests per step {measure_staging}: jupyreg {_requests(sent['transition'])};"
            f" anchor {_requests(sent['anchor Staging'])}",
            f"HTTP requests per step {measure_production}: jupyreg request"
            f" {_requests(sent['request'])} + approve {_requests(sent['approve'])};"
            f" anchor {_requests(sent['anchor Production'])}",
        ]
    return [
        c.Row(measure_staging, staging["jupyreg"], staging["anchor"], target),
        c.Row(measure_production, production["jupyreg"], production["anchor"], target),
    ], lines


def _requests(calls: list[list[tuple[str, str]]]) -> str:
    """Requests per timed call (the warm-up call left out): the count, then what the
    last call sent, e.g. ``1 [POST jupyreg/transition]``."""
    timed = calls[1:] or calls
    counts = [len(call) for call in timed]
    low, high = min(counts), max(counts)
    number = str(low) if low == high else f"{statistics.median(counts):g} ({low}-{high})"
    what = Counter(f"{method} {path.removeprefix('/api/2.0/')}" for method, path in timed[-1])
    listed = ", ".join(f"{k}" + (f" x{n}" if n > 1 else "") for k, n in what.items())
    return f"{number} [{listed}]"


def _password_check_ms(repeat: int = 5) -> float:
    from werkzeug.security import check_password_hash, generate_password_hash

    stored = generate_password_hash(PASSWORD)  # MLflow's basic-auth: werkzeug's default
    times = [c.timed(lambda: check_password_hash(stored, PASSWORD)) for _ in range(repeat)]
    return statistics.median(times) * 1000


def _per_s(stats: c.Stats) -> str:
    return f"{len(stats.times) / sum(stats.times):.1f}"


if __name__ == "__main__":
    main()
