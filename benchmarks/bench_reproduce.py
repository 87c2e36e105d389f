"""Benchmark ``reg.reproduce`` of a version registered from a small notebook against
nbclient executing the same cells in a fresh kernel: what reproduce adds beyond running
the notebook itself.

    .venv/bin/python benchmarks/bench_reproduce.py [--smoke] [--repeat N]

A small git + DVC repository in a temp dir (a 2,000-row CSV under DVC, a two-cell training
notebook: ``%load_ext`` and a ``%%register`` cell fitting a LogisticRegression); the
version is registered by running the notebook with nbclient (untimed). The anchor runs the
same two cells in a fresh kernel with nbclient, in this process, with ``JUPYREG_REPRODUCE``
set so that ``%%register`` records instead of registering — exactly what reproduce
executes. Sides alternate after one warm-up each. Target: reproduce's overhead (its median
minus the anchor's: worktree, DVC checkout, artifacts, comparison, keeping the outcome)
<= 2 s; the ratio is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import _common as c

TARGET_OVERHEAD_S = 2.0
NAME = "bench-reproduce"
TRAIN = f"""\
%%register {NAME} --model clf --metrics metrics
import numpy as np
from sklearn.linear_model import LogisticRegression
data = np.loadtxt("data/train.csv", delimiter=",")
clf = LogisticRegression().fit(data[:, :2], data[:, 2])
metrics = {{"val": {{"acc": clf.score(data[:, :2], data[:, 2])}}}}
"""


def _project(root: Path) -> list[str]:
    """The repository, committed; returns the notebook's cells."""
    git = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    dvc = [sys.executable, "-m", "dvc"]
    (root / "data").mkdir()
    rows = "".join(f"{i % 7},{(i * 3) % 5},{(i // 3) % 2}\n" for i in range(2000))
    (root / "data" / "train.csv").write_text(rows)
    (root / ".gitignore").write_text("mlflow.db*\nmlruns/\nmlartifacts/\n.cache/\n")
    cells = [f"%load_ext jupyreg\n%config JupyReg.tracking_uri = {c.sqlite_uri(root)!r}", TRAIN]
    for command in (
        [*git, "init", "-q", "-b", "main"],
        [*dvc, "init", "-q"],
        [*dvc, "add", "-q", "data/train.csv"],
        [*git, "add", "."],
        [*git, "commit", "-q", "-m", "project"],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    return cells


def _run_cells(cells: list[str], where: Path, env: dict[str, str]) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    resources = {"metadata": {"path": str(where)}}
    NotebookClient(nb, kernel_name="python3", resources=resources).execute(env=env)


def main(argv: Sequence[str] | None = None) -> list[c.Row]:
    args = c.parser(__doc__, default_repeat=5).parse_args(argv)
    repeat = c.repeats(args, 5)
    c.quiet_mlflow()
    with c.workdir("reproduce") as root:
        os.environ.update(DVC_NO_ANALYTICS="1", JUPYREG_CACHE_DIR=str(root / ".cache"))
        os.environ.pop("JPY_SESSION_NAME", None)
        cells = _project(root)
        _run_cells(cells, root, dict(os.environ))  # registers version 1

        from jupyreg import Registry

        reg = Registry(c.sqlite_uri(root), user="bench")
        records = root / ".cache" / "anchor-records.jsonl"
        records.parent.mkdir(exist_ok=True)
        anchor_env = {**os.environ, "JUPYREG_REPRODUCE": str(records)}

        def ours() -> None:
            result = reg.reproduce(NAME, 1, progress=lambda done, total: None, confirm=False)
            assert result.ok, result.text()

        def anchor() -> None:
            _run_cells(cells, root, anchor_env)

        warmup = 0 if args.smoke else 1
        stats = c.alternate({"jupyreg": ours, "anchor": anchor}, repeat, warmup=warmup)
    row = c.Row("reproduce, 2-cell notebook, git + DVC (SQLite)", stats["jupyreg"], stats["anchor"])
    c.print_table(
        "reproduce: reg.reproduce vs nbclient executing the same cells",
        [row],
        f"same process, sides alternating, {warmup} warm-up call(s) each, {repeat} "
        "repetition(s); one small git + DVC repository and SQLite registry in a temp dir",
        "nbclient executing the same cells in a fresh kernel (JUPYREG_REPRODUCE set)",
    )
    overhead = row.ours.median - row.anchor.median
    verdict = "met" if overhead <= TARGET_OVERHEAD_S else "MISSED"
    print(
        f"RATIO reproduce overhead beyond executing the notebook: {overhead * 1000:.0f} ms "
        f"(target <= {TARGET_OVERHEAD_S * 1000:.0f} ms: {verdict})"
    )
    return [row]


if __name__ == "__main__":
    main()
