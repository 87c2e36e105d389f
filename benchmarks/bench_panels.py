"""Benchmark the panels' data reads against reading each version one by one.

    .venv/bin/python benchmarks/bench_panels.py [--versions N] [--repeat R] [--smoke] [--embedded]

Starts a local ``mlflow server`` (SQLite backend; ``--embedded``: the SQLite file itself,
no server), seeds N versions (default 200) with
plain ``MlflowClient`` calls (a run with metrics and params, a model version with lineage
tags), puts one in Production through jupyreg, then measures in one warm process:

1. building the compare controller's data for all N versions (target <= 1 s);
2. building the promotion controller's data;
3. the anchor: one ``get_model_version`` + ``get_run`` per version, the way a naive panel
   would read them; and prints each time with its ratio to the anchor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):  # the checkout, and _common beside this script
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import _common as c  # noqa: E402

from jupyreg import Registry  # noqa: E402 - after making the checkout importable
from jupyreg.widgets.comparison import CompareController  # noqa: E402
from jupyreg.widgets.promotion import PromotionController  # noqa: E402

NAME = "bench-model"
ANCHOR = "anchor: get_model_version + get_run per version"


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the benchmark, print a table, and return ``{measure: {median, min, max}}``."""
    args = _parse(argv)
    count = 10 if args.smoke else args.versions
    repeat = args.repeat or (1 if args.smoke else 5)
    store = _embedded if args.embedded else _server
    with tempfile.TemporaryDirectory(prefix="bench-panels-") as tmp, store(Path(tmp)) as url:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=url, registry_uri=url)
        seeded = _seed(client, count)
        Registry(url, user="alice").transition(NAME, count, "Staging", reason="bench")
        request = Registry(url, user="alice").request(NAME, count, "Production", reason="bench")
        Registry(url, user="bob").approve(request.id)
        registry = Registry(url, user="bob")
        CompareController(registry, NAME).chart_png()  # warm: imports pandas, matplotlib
        results = {
            f"compare controller, {count} versions": _time(lambda: _compare_data(registry), repeat),
            f"compare, all {count} versions selected": _time(
                lambda: _compare_data(registry, select_all=True), repeat
            ),
            "compare chart (PNG)": _time(CompareController(registry, NAME).chart_png, repeat),
            "promotion controller": _time(lambda: PromotionController(registry, NAME), repeat),
            ANCHOR: _time(lambda: _one_by_one(client, seeded), repeat),
        }
    _report(results, count, repeat, "embedded SQLite" if args.embedded else "a local mlflow server")
    return results


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=0, help="default 5 (smoke: 1)")
    parser.add_argument("--smoke", action="store_true", help="10 versions, one repetition")
    parser.add_argument("--embedded", action="store_true", help="a SQLite file, no server")
    return parser.parse_args(argv)


def _compare_data(registry: Registry, select_all: bool = False) -> None:
    """What the compare panel computes before drawing: rows, deltas, lineage diff (the
    stale-Production hint is part of building the controller)."""
    controller = CompareController(registry, NAME)
    if select_all:
        controller.select(controller.versions)
    controller.rows()
    controller.lineage_diffs()


def _one_by_one(client: object, versions: Sequence[tuple[str, str]]) -> None:
    for version, run_id in versions:
        client.get_model_version(NAME, version)  # type: ignore[attr-defined]
        client.get_run(run_id)  # type: ignore[attr-defined]


def _seed(client: object, count: int) -> list[tuple[str, str]]:
    """``count`` versions created with plain MLflow calls, each with its run and lineage."""
    from mlflow.entities import Metric, Param

    experiment = client.create_experiment(NAME)  # type: ignore[attr-defined]
    client.create_registered_model(NAME)  # type: ignore[attr-defined]
    seeded = []
    for i in range(count):
        run = client.create_run(experiment)  # type: ignore[attr-defined]
        run_id = run.info.run_id
        metrics = {"val.auc": 0.8 + i / 2000, "val.loss": 0.5 - i / 2000, "test.auc": 0.79}
        client.log_batch(  # type: ignore[attr-defined]
            run_id,
            metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
            params=[Param("C", str(1 + i % 3)), Param("max_iter", "100")],
        )
        commit = f"{i:040x}"
        lineage = {
            "git": {"commit": commit, "dirty": i % 2 == 0},
            "data": [{"path": "data/train.csv", "md5": f"{i // 10:032x}"}],
            "hardware": {"gpu_count": 1, "gpus": [{"name": "NVIDIA H100"}]},
        }
        mv = client.create_model_version(  # type: ignore[attr-defined]
            NAME,
            f"s3://bench/models/{i}",
            run_id=run_id,
            tags={
                "jupyreg.stage": "None",
                "jupyreg.author": "alice",
                "jupyreg.git.commit": commit,
                "jupyreg.git.dirty": "true" if i % 2 == 0 else "false",
                "jupyreg.data.0.path": "data/train.csv",
                "jupyreg.data.0.md5": lineage["data"][0]["md5"],
                "jupyreg.gpu.count": "1",
                "jupyreg.gpu.name": "NVIDIA H100",
                "jupyreg.lineage": json.dumps(lineage),
            },
        )
        seeded.append((mv.version, run_id))
    return seeded


@contextmanager
def _embedded(root: Path) -> Iterator[str]:
    yield f"sqlite:///{root / 'mlflow.db'}"


@contextmanager
def _server(root: Path) -> Iterator[str]:
    """A local ``mlflow server`` on a free port with a SQLite backend."""
    with c.mlflow_server(f"sqlite:///{root / 'mlflow.db'}", root) as url:
        yield url


def _time(action: Callable[[], object], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def _report(results: dict[str, dict[str, float]], count: int, repeat: int, store: str) -> None:
    anchor = results[ANCHOR]["median"]
    print(f"{count} versions over {store}, median of {repeat}")
    print(f"{'measure':<52} {'median s':>9} {'min s':>8} {'max s':>8} {'/ anchor':>9}")
    for measure, r in results.items():
        print(
            f"{measure:<52} {r['median']:9.3f} {r['min']:8.3f} {r['max']:8.3f} "
            f"{r['median'] / anchor:9.3f}"
        )
    for measure, r in results.items():  # run_all.py's summary collects these lines
        if measure == ANCHOR:
            continue
        ratio, median = r["median"] / anchor, r["median"]
        if measure.startswith("compare controller"):
            verdict = "met" if ratio <= 0.1 and median <= 1 else "MISSED"
            target = f"target <= 0.1 and <= 1 s: {verdict}"
        else:
            target = "report"
        print(
            f"RATIO {measure}: {ratio:.3f} ({target}; jupyreg {median * 1000:.0f} ms, "
            f"anchor {anchor * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
