"""The benchmark scripts run (smoke sizes) and print their ratio lines; speed is never
asserted here: the full run is `benchmarks/run_all.py`, outside CI pass/fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench_lineage.py and bench_panels.py have smoke tests of their own
OURS = ["register", "load_ext", "load", "promotion", "versions"]


def test_benchmark_scripts_run_and_print_their_ratios() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke"]
        + ["--only", ",".join(OURS)],
        capture_output=True,
        text=True,
        timeout=300,
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
    assert "peak memory" in section["versions"]
