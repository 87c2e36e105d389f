"""Benchmark registry size: ``reg.versions(name)`` over 10,000 versions on PostgreSQL,
time and peak memory, against listing them with plain MLflow.

    .venv/bin/python benchmarks/bench_versions.py [--smoke] [--repeat N] [--versions N]
                                                   [--profile]

A throwaway PostgreSQL cluster (fsync off: seeding is not what is measured) gets one logged
sklearn model and N plain ``MlflowClient.create_model_version`` versions on its source
``models:/m-...`` (so they all share one run). Measured in this one process, first over
the direct SQL store URI (``postgresql+psycopg2://...``), then through a plain
``mlflow server`` on the same database (REST), sides alternating after one untimed
warm-up call each:

- jupyreg: ``reg.versions(name)`` (a pandas DataFrame: stage, aliases, metrics, lineage);
- anchor: every page of ``MlflowClient.search_model_versions("name = '...'")``.

Peak memory is tracemalloc's peak over one more call of each side (its overhead is kept
out of the timed calls). ``--smoke``: 50 versions on SQLite, one repetition, no server.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import _common as c

NAME = "bench-size"
MiB = 1024 * 1024


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=3)
    p.add_argument("--versions", type=int, default=0, help="default 10,000 (smoke 50)")
    p.add_argument("--profile", action="store_true", help="cProfile one reg.versions call")
    args = p.parse_args(argv)
    repeat = c.repeats(args, 3)
    count = args.versions or (50 if args.smoke else 10_000)
    c.quiet_mlflow()
    with c.workdir("versions") as root:
        why = c.postgres_unavailable()
        if args.smoke or why:
            store = "SQLite, smoke" if args.smoke else f"SQLite; PostgreSQL skipped: {why}"
            uri = c.sqlite_uri(root)
            _seed(uri, count)
            rows = [_bench(uri, count, repeat, store, args.profile)]
        else:
            with c.postgres(fast_seed=True) as backend:
                _seed(backend, count)
                rows = [_bench(backend, count, repeat, "PostgreSQL, SQL URI", args.profile)]
                with c.mlflow_server(backend, root) as url:
                    rows.append(_bench(url, count, repeat, "PostgreSQL, mlflow server", False))
    c.print_table(
        f"registry size: reg.versions over {count:,} versions",
        rows,
        "same process, sides alternating, 1 warm-up call each,"
        f" {repeat} repetition(s); peak memory by tracemalloc over one extra call",
        "MlflowClient.search_model_versions, all pages",
    )
    for row in rows:
        ours, anchor = row.peaks  # type: ignore[attr-defined]
        print(
            f"RATIO {row.measure} peak memory: {ours / anchor:.3f} (report;"
            f" jupyreg {ours / MiB:.1f} MiB, anchor {anchor / MiB:.1f} MiB)"
        )
    return rows


def _seed(uri: str, count: int) -> None:
    c.create_versions(uri, NAME, count, c.log_one_model(uri))


def _bench(uri: str, count: int, repeat: int, store: str, profile: bool) -> c.Row:
    from mlflow import MlflowClient

    from jupyreg import Registry

    reg, client = Registry(uri, user="bench"), MlflowClient(uri, uri)

    def ours() -> None:
        frame = reg.versions(NAME)
        assert len(frame) == count, len(frame)

    def anchor() -> None:
        found, token = [], None
        while True:
            page = client.search_model_versions(
                f"name = '{NAME}'", max_results=1000, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        assert len(found) == count, len(found)

    stats = c.alternate({"jupyreg": ours, "anchor": anchor}, repeat)
    peaks = (_peak(ours), _peak(anchor))
    if profile:
        c.profile(ours)
    row = c.Row(f"reg.versions, {count:,} versions ({store})", stats["jupyreg"], stats["anchor"])
    row.peaks = peaks  # type: ignore[attr-defined]
    return row


def _peak(action: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


if __name__ == "__main__":
    main()
