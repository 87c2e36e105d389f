"""The benchmark scripts run (smoke sizes) and print their ratio lines; speed is never
asserted here: the full run is `benchmarks/run_all.py`, outside CI pass/fail."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
# bench_lineage.py and bench_panels.py are called in-process below
OURS = ["register", "load_ext", "load", "promotion", "versions"]


def test_benchmark_scripts_run_and_print_their_ratios() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke"]
        + ["--only", ",".join(OURS)],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard; bench_promotion alone starts two servers (about 1 min)
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.split("##### summary", 1)[1]
    for name in OURS:
        assert f"bench_{name}.py" in summary, summary
    section = {
        name: summary.split(f"bench_{name}.py", 1)[1].split("\nbench_", 1)[0] for name in OURS
    }
    for name, lines in section.items():
        assert "RATIO " in lines, (name, lines)
        assert "FAILED" not in lines, (name, lines)
    assert "%load_ext jupyreg" in section["load_ext"]
    assert "register small sklearn model" in section["register"]
    assert 'reg.load(stage="Production")' in section["load"]
    assert "request+approve" in section["promotion"]
    # through a jupyreg server (smoke: on SQLite) each lifecycle step is one HTTP request
    steps = [ln for ln in done.stdout.splitlines() if ln.startswith("HTTP requests per step")]
    team = [ln for ln in steps if "(SQLite jupyreg server)" in ln]
    assert any("jupyreg 1 [POST jupyreg/transition];" in ln for ln in team), steps
    assert any(
        "jupyreg request 1 [POST jupyreg/request] + approve 1 [POST jupyreg/approve];" in ln
        for ln in team
    ), steps
    assert "peak memory" in section["versions"]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lineage_benchmark_runs_on_a_small_file(capsys) -> None:
    results = _script("bench_lineage").main(["--smoke"])
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


def test_panels_benchmark_runs_on_a_few_embedded_versions(capsys) -> None:
    bench = _script("bench_panels")
    results = bench.main(["--smoke", "--embedded"])
    assert bench.ANCHOR in results and "compare controller, 10 versions" in results
    assert all(0 < r["min"] <= r["median"] <= r["max"] for r in results.values())
    assert "/ anchor" in capsys.readouterr().out
