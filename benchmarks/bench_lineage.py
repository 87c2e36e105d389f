"""Benchmark lineage capture against DVC and md5sum.

    .venv/bin/python benchmarks/bench_lineage.py [--smoke] [--repeat N]

Builds a temp git+DVC repo with one 512 MB file (``--smoke``: 8 MB, one repetition),
``dvc add``s it, then measures:

1. ``capture()`` on the unchanged repo, in a warm process (a kernel's case) and in a fresh
   interpreter (which also imports GitPython and DVC), against ``dvc status`` in the same
   repo (target ratio <= 0.1 warm);
2. hashing a plain file of the same size with jupyreg's hasher (dvc-data's) against
   ``md5sum`` (target throughput ratio >= 0.8);
3. ``mlflow.start_run()`` in that repo (a SQLite store, warm process) with jupyreg's
   run-context provider against the same with ``JUPYREG_CAPTURE=0``: the provider's cost
   per run (targets <= 50 ms and <= 0.1 x ``dvc status``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jupyreg.lineage import capture  # noqa: E402 - after making the checkout importable
from jupyreg.lineage.hashing import md5_of_file  # noqa: E402

DVC = Path(sys.executable).parent / "dvc"
MiB = 1 << 20


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the benchmark, print a table, and return ``{measure: {median, min, max}}``."""
    args = _parse(argv)
    size = (8 if args.smoke else 512) * MiB
    repeat = args.repeat or (1 if args.smoke else 5)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_OPTIONAL_LOCKS": "0"}
    with tempfile.TemporaryDirectory(prefix="bench-lineage-") as tmp:
        repo = Path(tmp, "repo")
        _make_repo(repo, size, env)
        plain = Path(tmp, "plain.bin")
        _write_random(plain, size)
        capture(cwd=repo)  # first call: imports and caches, as a kernel's first registration
        results = {
            "capture() warm process": _time(lambda: capture(cwd=repo), repeat),
            "capture() fresh python": _time(lambda: _fresh_capture(repo, env), repeat),
            "dvc status": _time(lambda: _run([DVC, "status", "-q"], repo, env), repeat),
            "hash (jupyreg)": _time(lambda: md5_of_file(plain), repeat),
            "md5sum": _time(lambda: _run(["md5sum", plain], repo, env), repeat),
            **_start_runs(repo, Path(tmp, "mlflow.db"), repeat),
        }
    _report(results, size, repeat)
    return results


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="8 MB file, one repetition")
    parser.add_argument("--repeat", type=int, help="repetitions per measure (default 5)")
    return parser.parse_args(argv)


def _make_repo(repo: Path, size: int, env: dict[str, str]) -> None:
    repo.mkdir()
    _run(["git", "init", "-q"], repo, env)
    _run(["git", "config", "user.email", "bench@example.com"], repo, env)
    _run(["git", "config", "user.name", "bench"], repo, env)
    _run([DVC, "init", "-q"], repo, env)
    (repo / "data").mkdir()
    _write_random(repo / "data" / "big.bin", size)
    _run([DVC, "add", "-q", "data/big.bin"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-q", "-m", "data"], repo, env)


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(8 * MiB)
    with open(path, "wb") as file:
        for offset in range(0, size, len(block)):
            file.write(block[: min(len(block), size - offset)])
            block = block[1:] + block[:1]  # every block differs


def _fresh_capture(repo: Path, env: dict[str, str]) -> None:
    code = "from jupyreg.lineage import capture; capture()"
    _run([sys.executable, "-c", code], repo, {**env, "PYTHONPATH": str(ROOT)})


def _start_runs(repo: Path, db: Path, repeat: int) -> dict[str, dict[str, float]]:
    """``start_run`` + end in ``repo``, with jupyreg's run-context provider and without."""
    import mlflow

    def run() -> None:
        with mlflow.start_run(experiment_id=experiment):
            pass

    here, switch = os.getcwd(), os.environ.pop("JUPYREG_CAPTURE", None)
    os.chdir(repo)
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    try:
        # its own experiment: the process may have set another store's as the active one
        experiment = mlflow.MlflowClient().create_experiment("bench-start-run")
        run()  # warms the store: not timed
        with_provider = _time(run, repeat)
        os.environ["JUPYREG_CAPTURE"] = "0"
        without = _time(run, repeat)
        return {"start_run, capture on": with_provider, "start_run, capture off": without}
    finally:
        os.chdir(here)
        mlflow.set_tracking_uri(None)
        os.environ.pop("JUPYREG_CAPTURE", None)
        if switch is not None:
            os.environ["JUPYREG_CAPTURE"] = switch


def _run(cmd: Sequence[str | Path], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, check=True, capture_output=True)


def _time(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm the page cache and any per-process state
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def _report(results: dict[str, dict[str, float]], size: int, repeat: int) -> None:
    print(f"file size {size // MiB} MiB, {repeat} repetition(s); seconds")
    print(f"{'measure':<26}{'median':>10}{'min':>10}{'max':>10}")
    for name, figures in results.items():
        print(f"{name:<26}" + "".join(f"{figures[k]:>10.4f}" for k in ("median", "min", "max")))
    dvc = results["dvc status"]["median"]
    ratio_warm = results["capture() warm process"]["median"] / dvc
    ratio_fresh = results["capture() fresh python"]["median"] / dvc
    ours = size / results["hash (jupyreg)"]["median"]
    md5sum = size / results["md5sum"]["median"]
    print(
        f"capture / dvc status: warm {ratio_warm:.3f}, fresh python {ratio_fresh:.3f}"
        " (target <= 0.1 warm)"
    )
    print(
        f"hash throughput: jupyreg {ours / MiB:.0f} MiB/s, md5sum {md5sum / MiB:.0f} MiB/s,"
        f" ratio {ours / md5sum:.2f} (target >= 0.8)"
    )
    overhead = (
        results["start_run, capture on"]["median"] - results["start_run, capture off"]["median"]
    )
    print(
        f"run-context provider per start_run: {overhead * 1000:.1f} ms (target <= 50 ms),"
        f" / dvc status {overhead / dvc:.3f} (target <= 0.1)"
    )


if __name__ == "__main__":
    main()
