"""The panels benchmark runs end to end on a few versions in embedded SQLite (the server
run takes longer; figures are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_panels.py"


def test_benchmark_smoke(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_panels", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    results = bench.main(["--smoke", "--embedded"])
    assert bench.ANCHOR in results and "compare controller, 10 versions" in results
    assert all(0 < r["min"] <= r["median"] <= r["max"] for r in results.values())
    assert "/ anchor" in capsys.readouterr().out
