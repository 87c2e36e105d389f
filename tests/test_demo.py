"""The README's main job: `jupyreg demo` end to end on the embedded default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_prints_the_history_table(tmp_path: Path) -> None:
    jupyreg = Path(sys.executable).parent / "jupyreg"
    out = subprocess.run(
        [str(jupyreg), "demo", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "bob approved request" in out.stdout
    history = out.stdout.split("history:")[1]
    assert "from_stage" in history and "to_stage" in history and "reason" in history
    assert "Staging Production bob@example.com" in " ".join(history.split())
    assert (tmp_path / "mlflow.db").exists()
