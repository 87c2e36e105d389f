"""Benchmark ``%load_ext jupyreg`` in a fresh IPython against ``import mlflow`` in a fresh
interpreter.

    .venv/bin/python benchmarks/bench_load_ext.py [--smoke] [--repeat N]

Each repetition starts two fresh interpreters, alternately: one creates
``InteractiveShell.instance()`` (untimed) and then times
``shell.run_line_magic("load_ext", "jupyreg")``; the other times ``import mlflow``. Both
are timed inside the interpreter with ``time.perf_counter``. Target: ratio <= 0.15.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import _common as c

TARGET = 0.15
MEASURE = "%load_ext jupyreg (fresh kernel)"
LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
shell.run_line_magic("load_ext", "jupyreg")
took = time.perf_counter() - start
import sys
assert "mlflow" not in sys.modules, "load_ext imported mlflow"
print(took)
"""
IMPORT_MLFLOW = """
import time
start = time.perf_counter()
import mlflow
print(time.perf_counter() - start)
"""


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    args = c.parser(__doc__, default_repeat=7).parse_args(argv)
    repeat = c.repeats(args, 7)
    with c.workdir("load-ext") as root:
        missing = _unavailable(root)
        if missing:
            rows = [c.Row(MEASURE, None, None, TARGET, note=f"not available yet: {missing}")]
        else:
            stats = c.alternate(
                {
                    "jupyreg": lambda: c.fresh_python(LOAD_EXT, cwd=root),
                    "anchor": lambda: c.fresh_python(IMPORT_MLFLOW, cwd=root),
                },
                repeat,
                warmup=0 if args.smoke else 1,
                self_timed=True,  # the in-interpreter times, not the subprocesses' wall time
            )
            rows = [c.Row(MEASURE, stats["jupyreg"], stats["anchor"], TARGET)]
    c.print_table(
        "load_ext: %load_ext jupyreg vs import mlflow",
        rows,
        f"fresh interpreter per call, sides alternating, {repeat} repetition(s)"
        f"{'' if args.smoke else ' after 1 warm-up each (page cache)'}; timed inside it",
        "import mlflow in a fresh python",
    )
    return rows


def _unavailable(root: Path) -> str | None:
    code = (
        "import importlib.util\n"
        "spec = importlib.util.find_spec('jupyreg.magics')\n"
        "ok = spec is not None and 'load_ipython_extension' in open(spec.origin).read()\n"
        "print(1.0 if ok else 0.0)\n"
    )
    try:
        found = c.fresh_python(code, cwd=root)
    except RuntimeError as exc:
        return str(exc).splitlines()[-1]
    return None if found else "jupyreg.magics has no load_ipython_extension"


if __name__ == "__main__":
    main()
