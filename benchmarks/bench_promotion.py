"""Benchmark promotion latency and throughput: jupyreg's lifecycle against MLflow's
``transition_model_version_stage`` on the same store.

    .venv/bin/python benchmarks/bench_promotion.py [--smoke] [--repeat N] [--profile]

Stores: an embedded SQLite file, and a plain ``mlflow server`` (one worker) on a throwaway
PostgreSQL cluster (skipped in ``--smoke`` or where PostgreSQL is unavailable). On each
store, N+1 plain-MLflow versions of two models are created from one logged model; then,
in this one process, sides alternating per version (version 1 of each side is an untimed
warm-up):

1. ``reg.transition(name, v, "Staging")`` vs ``transition_model_version_stage(.., "Staging")``;
2. ``reg.request(.., "Production")`` by alice + ``reg.approve`` by bob (Production is
   exclusive: the previous holder is archived, with its own history event) vs
   ``transition_model_version_stage(.., "Production", archive_existing_versions=True)``.

Throughput is N / total time of the N sequential promotions. Targets: report only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import _common as c

OURS, ANCHOR = "bench-jupyreg", "bench-anchor"


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=30)
    p.add_argument("--profile", action="store_true", help="cProfile one request+approve")
    args = p.parse_args(argv)
    count = c.repeats(args, 30)
    c.quiet_mlflow()
    rows: list[c.Row] = []
    with c.workdir("promotion") as root:
        rows += _bench("SQLite embedded", c.sqlite_uri(root), count, args.profile)
        why = "--smoke" if args.smoke else c.postgres_unavailable()
        if why:
            for measure in _measures("PostgreSQL mlflow server"):
                rows.append(c.Row(measure, None, None, None, note=f"skipped: {why}"))
        else:
            with c.postgres() as backend, c.mlflow_server(backend, root) as url:
                rows += _bench("PostgreSQL mlflow server", url, count, args.profile)
    c.print_table(
        "promotion: jupyreg lifecycle vs MlflowClient.transition_model_version_stage",
        rows,
        f"same process, sides alternating per version, 1 warm-up version each,"
        f" {count} promotion(s) per side; throughput = promotions / total time",
        "transition_model_version_stage on the same store",
    )
    for row in rows:
        if row.ours and row.anchor:
            print(
                f"throughput {row.measure}: jupyreg {_per_s(row.ours)}/s,"
                f" anchor {_per_s(row.anchor)}/s"
            )
    return rows


def _measures(store: str) -> list[str]:
    return [f"-> Staging, transition ({store})", f"-> Production, request+approve ({store})"]


def _bench(store: str, uri: str, count: int, profile: bool) -> list[c.Row]:
    from mlflow import MlflowClient

    from jupyreg import Registry

    source = c.log_one_model(uri)
    for name in (OURS, ANCHOR):
        c.create_versions(uri, name, count + 1 + profile, source)
    client = MlflowClient(uri, uri)
    alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")

    def each_version(action: Callable[[int], object]) -> Callable[[], object]:
        versions = itertools.count(1)
        return lambda: action(next(versions))

    staging = c.alternate(
        {
            "jupyreg": each_version(lambda v: alice.transition(OURS, v, "Staging", reason="b")),
            "anchor": each_version(
                lambda v: client.transition_model_version_stage(ANCHOR, str(v), "Staging")
            ),
        },
        count,
    )

    def promote(version: int) -> None:
        bob.approve(alice.request(OURS, version, "Production", reason="bench").id)

    production = c.alternate(
        {
            "jupyreg": each_version(promote),
            "anchor": each_version(
                lambda v: client.transition_model_version_stage(
                    ANCHOR, str(v), "Production", archive_existing_versions=True
                )
            ),
        },
        count,
    )
    if profile:
        last = count + 2
        alice.transition(OURS, last, "Staging", reason="bench")
        c.profile(lambda: promote(last))
    to_staging, to_production = _measures(store)
    return [
        c.Row(to_staging, staging["jupyreg"], staging["anchor"]),
        c.Row(to_production, production["jupyreg"], production["anchor"]),
    ]


def _per_s(stats: c.Stats) -> str:
    return f"{len(stats.times) / sum(stats.times):.1f}"


if __name__ == "__main__":
    main()
