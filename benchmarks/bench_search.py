"""Benchmark ``reg.search`` over 1,000 versions against the MLflow calls it makes for you.

    .venv/bin/python benchmarks/bench_search.py [--smoke] [--repeat N] [--versions N] [--profile]

A SQLite registry gets N versions spread over 10 models, each with a run of its own
carrying ``test.auc`` and ``val.auc`` and the tags jupyreg writes at registration (stage,
author, lineage with ``git.dirty``, ``gpu.count``, ``data.0.md5``, registered metrics), made
through ``MlflowClient`` with a URI source (no model is logged: only the search is
measured). Sides alternate after one untimed warm-up call each:

- jupyreg: ``reg.search("test.auc > 0.9 and git.dirty = 'false'")`` (a DataFrame);
- anchor: every page of ``search_model_versions("tags.`jupyreg.git.dirty` = 'false'")``
  and of ``search_runs(experiment, "metrics.`test.auc` > 0.9")``, joined on run id.

``--smoke``: 50 versions, one repetition.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import _common as c

EXPR = "test.auc > 0.9 and git.dirty = 'false'"
MODELS = 10


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    p = c.parser(__doc__, default_repeat=9)
    p.add_argument("--versions", type=int, default=0, help="default 1,000 (smoke 50)")
    p.add_argument("--profile", action="store_true", help="cProfile one reg.search call")
    args = p.parse_args(argv)
    repeat = c.repeats(args, 9)
    count = args.versions or (50 if args.smoke else 1_000)
    c.quiet_mlflow()
    with c.workdir("search") as root:
        uri = c.sqlite_uri(root)
        experiment = _seed(uri, count)
        row = _bench(uri, experiment, count, repeat, args.profile)
    c.print_table(
        f"search: one expression over {count:,} versions of {MODELS} models (SQLite)",
        [row],
        f"same process, sides alternating, 1 warm-up call each, {repeat} repetition(s)",
        "search_model_versions (tag filter) + search_runs (metric filter), all pages, joined",
    )
    return [row]


def _seed(uri: str, count: int) -> str:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from jupyreg import tags

    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("bench-search")
    rng = random.Random(0)
    for m in range(MODELS):
        client.create_registered_model(f"model-{m}")
    for n in range(count):
        metrics = {"test.auc": round(rng.uniform(0.8, 1.0), 4), "val.auc": rng.uniform(0.8, 1.0)}
        run = client.create_run(experiment)
        client.log_batch(run.info.run_id, [Metric(k, v, 0, 0) for k, v in metrics.items()])
        record = {
            "git": {"commit": f"{n:040x}", "dirty": n % 2 == 0},
            "hardware": {"gpu_count": n % 3, "gpus": [{"name": "A100"}] * (n % 3)},
            "data": [{"path": "data/train.csv", "md5": f"{n:032x}"}],
        }
        version_tags = {
            **tags.lineage_tags(record),
            tags.STAGE_TAG: "None",
            tags.AUTHOR_TAG: "bench",
            tags.METRICS_TAG: tags.metrics_value(metrics),
        }
        client.create_model_version(
            f"model-{n % MODELS}",
            f"file:///bench/models/{n}",
            run_id=run.info.run_id,
            tags=version_tags,
        )
    return experiment


def _bench(uri: str, experiment: str, count: int, repeat: int, profile: bool) -> c.Row:
    from mlflow import MlflowClient

    from jupyreg import Registry

    reg, client = Registry(uri, user="bench"), MlflowClient(uri, uri)
    expected: list[int] = []

    def ours() -> None:
        expected.append(len(reg.search(EXPR)))

    def anchor() -> None:
        versions = _pages(
            lambda token: client.search_model_versions(
                "tags.`jupyreg.git.dirty` = 'false'", max_results=1000, page_token=token
            )
        )
        runs = {
            r.info.run_id: r
            for r in _pages(
                lambda token: client.search_runs(
                    [experiment],
                    "metrics.`test.auc` > 0.9",
                    max_results=1000,
                    page_token=token,
                )
            )
        }
        expected.append(len([(mv, runs[mv.run_id]) for mv in versions if mv.run_id in runs]))

    stats = c.alternate({"jupyreg": ours, "anchor": anchor}, repeat)
    assert len(set(expected)) == 1 and expected[0] > 0, expected  # both sides agree
    if profile:
        c.profile(ours)
    return c.Row(
        f"reg.search, {count:,} versions, {expected[0]} found",
        stats["jupyreg"],
        stats["anchor"],
        target=1.2,
    )


def _pages(fetch) -> list:  # type: ignore[no-untyped-def]
    found, token = [], None
    while True:
        page = fetch(token)
        found.extend(page)
        token = page.token
        if not token:
            return found


if __name__ == "__main__":
    main()
