"""capture() as a whole: record shape, environment, degradation and a light import."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

import jupyreg.lineage.capturing as capture_module
from jupyreg.lineage import Lineage, capture


def test_record_shape_and_defaults(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(git_repo)
    lineage = capture(data=[])
    assert isinstance(lineage, Lineage)
    record = json.loads(json.dumps(lineage.record))  # JSON-serialisable as it is
    assert list(record) == [
        "git",
        "notebook",
        "entry",
        "data",
        "hardware",
        "environment",
        "warnings",
        "captured_at",
    ]
    assert record["git"]["commit"] is not None  # cwd defaults to the working directory
    assert record["entry"]["kind"] == "script"  # pytest's process: no kernel, no notebook
    assert not any(w.startswith("notebook:") for w in record["warnings"])
    assert datetime.fromisoformat(record["captured_at"]).tzinfo is not None
    assert lineage.warnings == tuple(record["warnings"])


def test_environment(tmp_path: Path) -> None:
    lineage = capture(cwd=tmp_path, data=[])
    environment = lineage.record["environment"]
    assert environment["python"] == platform.python_version()
    assert environment["implementation"] == platform.python_implementation()
    assert environment["platform"] == platform.platform()
    assert environment["requirements"] == [] and lineage.requirements == ()
    listed = lineage.artifacts["jupyreg/installed-packages.txt"].decode().splitlines()
    names = [line.partition("==")[0] for line in listed]
    assert names == sorted(set(names)) and environment["installed_packages"] == len(listed)
    assert f"pytest=={importlib.metadata.version('pytest')}" in listed
    assert lineage.to_tags()["jupyreg.python"] == platform.python_version()
    assert "installed" not in lineage.to_tags()["jupyreg.lineage"].replace("installed_packages", "")


def test_model_requirements(tmp_path: Path) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    model = linear_model.LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    lineage = capture(cwd=tmp_path, data=[], model=model)
    sklearn = f"scikit-learn=={importlib.metadata.version('scikit-learn')}"
    assert sklearn in lineage.requirements
    assert lineage.record["environment"]["requirements"] == list(lineage.requirements)


def test_an_unexpected_error_becomes_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("sensor on fire")

    monkeypatch.setattr(capture_module, "capture_hardware", broken)
    lineage = capture(cwd=tmp_path, data=[])
    assert "hardware: capture failed (RuntimeError: sensor on fire)" in lineage.warnings
    assert lineage.record["hardware"] == {}
    assert "jupyreg.lineage" in lineage.to_tags()


def test_import_and_capture_stay_light(tmp_path: Path) -> None:
    """No MLflow ever; no DVC, GitPython, pandas, PyYAML or pynvml at import time, and
    no DVC or pandas for a capture that has no DVC repository and no data to hash."""
    code = f"""
import sys, json
import jupyreg.lineage
heavy = ("mlflow", "dvc", "git", "pandas", "yaml", "pynvml", "sklearn")
at_import = [m for m in heavy if m in sys.modules]
jupyreg.lineage.capture(cwd={str(tmp_path)!r}, data=[])
after_capture = [m for m in ("mlflow", "dvc", "dvc_data", "pandas") if m in sys.modules]
print(json.dumps([at_import, after_capture]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == [[], []]


def test_deleted_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    lineage = capture(data=[])
    assert any(w.startswith("capture: no working directory") for w in lineage.warnings)
