"""`import jupyreg` stays light: MLflow, DVC and pandas load only when a call needs them."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, jupyreg, jupyreg.errors, jupyreg.lifecycle, jupyreg.lineage, "
        "jupyreg.magics, jupyreg.widgets, jupyreg.webhooks; "
        "heavy = [m for m in ('mlflow', 'dvc', 'pandas', 'sklearn', 'git') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_class_is_reachable_lazily() -> None:
    import jupyreg

    assert jupyreg.Registry.__name__ == "Registry"
    assert issubclass(jupyreg.errors.NotFound, jupyreg.RegistryError)
