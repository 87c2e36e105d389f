"""The benchmark scripts run (smoke sizes) and print their ratio lines; speed is never
asserted here: the full run is `benchmarks/run_all.py`, outside CI pass/fail."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
# bench_lineage.py and bench_panels.py are called in-process below
OURS = ["register", "load_ext", "load", "promotion", "versions", "outbox"]
# what each script's section of run_all's summary names (a line of its own output)
SAYS = {
    "load_ext": "%load_ext jupyreg",
    "register": "register small sklearn model",
    "load": 'reg.load(stage="Production")',
    "promotion": "request+approve",
    "versions": "peak memory",
    "outbox": "a step with 3 webhooks vs none",
}


@pytest.mark.parametrize("name", OURS)  # one test each: they spread over the workers
def test_benchmark_script_runs_and_prints_its_ratios(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke", "--only", name],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard; bench_promotion alone starts two servers (about 1 min)
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    section = done.stdout.split("##### summary", 1)[1].split(f"bench_{name}.py", 1)[1]
    assert "RATIO " in section, section
    assert "FAILED" not in section, section
    assert SAYS[name] in section, section
    if name == "promotion":  # through a jupyreg server (smoke: on SQLite), one request a step
        steps = [ln for ln in done.stdout.splitlines() if ln.startswith("HTTP requests per step")]
        team = [ln for ln in steps if "(SQLite jupyreg server)" in ln]
        assert any("jupyreg 1 [POST jupyreg/transition];" in ln for ln in team), steps
        assert any(
            "jupyreg request 1 [POST jupyreg/request] + approve 1 [POST jupyreg/approve];" in ln
            for ln in team
        ), steps


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
        "start_run, capture on",
        "start_run, capture off",
    }
    assert all(0 < r["min"] <= r["median"] <= r["max"] for r in results.values())
    out = capsys.readouterr().out
    assert "capture / dvc status" in out and "hash throughput" in out
    assert "run-context provider per start_run" in out


def test_panels_benchmark_runs_on_a_few_embedded_versions(capsys) -> None:
    bench = _script("bench_panels")
    results = bench.main(["--smoke", "--embedded"])
    assert bench.ANCHOR in results and "compare controller, 10 versions" in results
    assert all(0 < r["min"] <= r["median"] <= r["max"] for r in results.values())
    assert "/ anchor" in capsys.readouterr().out
