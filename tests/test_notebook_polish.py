"""``%%register`` cells in a real kernel (nbclient, as ``jupyter nbconvert --execute`` runs
them, no Jupyter server and no JPY_SESSION_NAME): a failing cell shows the user's line and
registers nothing, the last value is displayed, ``%time`` works, and the notebook's path is
found from the running cell."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from mlflow import MlflowClient
from nbclient import NotebookClient

TRAIN = """\
import numpy as np
from sklearn.linear_model import LogisticRegression
x = np.random.default_rng(0).normal(size=(60, 3))
model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
"""


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.outputs:
        parts += [output.get("text", ""), "\n".join(output.get("traceback", []))]
        parts += [str(output.get("data", {}).get("text/plain", ""))]
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(parts))  # no terminal colours


def test_register_cells_behave_as_cells_in_a_kernel(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setenv("JUPYREG_USER", "alice")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"%load_ext jupyreg\n%config JupyReg.tracking_uri = {uri!r}"),
        nbformat.v4.new_code_cell("%%register broken\nratio = 1 / 0  # the user's own line"),
        nbformat.v4.new_code_cell(f"%%register fine\n%time {TRAIN.splitlines()[0]}\n{TRAIN}41 + 1"),
        nbformat.v4.new_code_cell("print(_.lineage['notebook']['path'])"),
    ]
    path = tmp_path / "train.ipynb"
    nbformat.write(nb, path)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()  # fmt: skip
    failed, fine, where = (_text(cell) for cell in nb.cells[1:])
    assert "ratio = 1 / 0  # the user's own line" in failed and "ZeroDivisionError" in failed
    assert "Could not get source" not in failed and "magics.py" not in failed
    assert "the cell raised ZeroDivisionError; nothing was registered" in failed
    assert "Wall time" in fine and "42" in fine  # %time ran, the last value was shown
    assert where.strip() == str(path)
    client = MlflowClient(uri, uri)
    assert [mv.name for mv in client.search_model_versions()] == ["fine"]
