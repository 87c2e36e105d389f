"""The README's main job: `jupyreg demo` end to end on the embedded default."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_prints_the_history_table(tmp_path: Path) -> None:
    jupyreg = Path(sys.executable).parent / "jupyreg"
    out = subprocess.run(
        [str(jupyreg), "demo", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    approved = r"request \w{8}: fraud-detector v2 -> Production is approved \(by bob@"
    assert re.search(approved, out.stdout)
    history = out.stdout.split("history:")[1]
    assert "from_stage" in history and "to_stage" in history and "reason" in history
    assert "Staging Production bob@example.com" in " ".join(history.split())
    assert re.search(r"\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +2 +None +Staging", history)
    # one rule for numbers (4 significant digits): the AUC of the summary line is the table's
    val_auc = re.search(r"registered fraud-detector v2: val.auc=(\S+)", out.stdout).group(1)
    row = out.stdout.split("versions:")[1].splitlines()[3].split()
    assert row[0] == "2" and val_auc in row and re.fullmatch(r"[0-9a-f]{10}", row[-1])  # commit
    assert f"{Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri" in out.stdout
    assert (tmp_path / "mlflow.db").exists()
