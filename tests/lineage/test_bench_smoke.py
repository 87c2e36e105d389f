"""The lineage benchmark runs end to end on a small file (figures are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_lineage.py"


def test_benchmark_smoke(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_lineage", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    results = bench.main(["--smoke"])
    assert set(results) == {
        "capture() warm process",
        "capture() fresh python",
        "dvc status",
        "hash (jupyreg)",
        "md5sum",
    }
    assert all(0 < r["min"] <= r["median"] <= r["max"] for r in results.values())
    out = capsys.readouterr().out
    assert "capture / dvc status" in out and "hash throughput" in out
