"""Run every benchmark script, each in its own subprocess, and print a summary of their
ratio lines.

    .venv/bin/python benchmarks/run_all.py [--smoke] [--only NAME[,NAME...]]

``--smoke`` is passed through to every script (tiny sizes, one repetition, PostgreSQL
rows skipped). ``--only register,load`` runs ``bench_register.py`` and ``bench_load.py``.
Exit status 1 when a script failed (a slow figure is never a failure).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST = ["register", "load_ext", "load", "promotion", "versions"]  # then any other bench_*.py


def scripts() -> list[Path]:
    found = {p.stem.removeprefix("bench_"): p for p in HERE.glob("bench_*.py")}
    order = [n for n in FIRST if n in found] + sorted(n for n in found if n not in FIRST)
    return [found[n] for n in order]


def machine() -> str:
    """Date, machine and versions, for RESULTS.md."""
    cpu = platform.processor() or "?"
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    mlflow, sqlalchemy = (importlib.metadata.version(n) for n in ("mlflow", "sqlalchemy"))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {os.cpu_count()} cores, {ram:.0f} GiB RAM, CPU {cpu}; Python"
        f" {platform.python_version()}, MLflow {mlflow}, SQLAlchemy {sqlalchemy};"
        f" load average at the start: {_load()}"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="passed to every script")
    p.add_argument("--only", default="", help="comma-separated names, e.g. register,load")
    args = p.parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    chosen = [s for s in scripts() if not wanted or s.stem.removeprefix("bench_") in wanted]
    if wanted - {s.stem.removeprefix("bench_") for s in chosen}:
        p.error(f"unknown benchmark(s): {', '.join(sorted(wanted))}")
    print(machine(), flush=True)
    summary: list[str] = []
    failed = []
    for script in chosen:
        command = [sys.executable, str(script), *(["--smoke"] if args.smoke else [])]
        print(f"\n##### {script.name} {'--smoke' if args.smoke else ''}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        took = time.perf_counter() - start
        print(done.stdout, end="", flush=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RATIO ")] or [
            ln for ln in done.stdout.splitlines() if "target" in ln.lower() and "/" in ln
        ]
        if done.returncode != 0:
            failed.append(script.name)
            print(done.stderr[-3000:], file=sys.stderr)
            lines.append(f"FAILED (exit {done.returncode})")
        summary.append(f"{script.name} ({took:.0f} s)")
        summary.extend(f"    {ln}" for ln in lines)
    print("\n##### summary")
    print(f"load average at the end: {_load()}")
    print("\n".join(summary))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
