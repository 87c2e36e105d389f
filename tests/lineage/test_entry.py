"""The entry point a run records: a DVC stage, a command of `jupyreg run`, a notebook, or
the script argv[0] names (jupyreg.lineage.entry, pure)."""

from __future__ import annotations

import json
from pathlib import Path

from jupyreg.lineage.entry import ENTRY_ARGV_ENV, detect_entry


def test_a_script_is_recorded_relative_to_the_repository(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("")
    entry = detect_entry(tmp_path, tmp_path, ["src/train.py", "--lr", "0.1"], {})
    assert entry.info() == {
        "kind": "script",
        "path": "src/train.py",
        "argv": ["src/train.py", "--lr", "0.1"],
        "cwd": ".",
    }
    inner = detect_entry(tmp_path, tmp_path / "src", ["train.py"], {})
    assert (inner.path, inner.cwd) == ("src/train.py", "src")


def test_python_c_and_a_script_outside_the_repository(tmp_path: Path) -> None:
    assert detect_entry(tmp_path, tmp_path, ["-c"], {}).path is None
    outside = tmp_path.parent / "elsewhere.py"
    outside.write_text("")
    entry = detect_entry(tmp_path, tmp_path, [str(outside)], {})
    assert entry.path == str(outside)  # absolute: not in the repository


def test_a_dvc_stage_wins_over_the_command_that_ran_dvc(tmp_path: Path) -> None:
    environ = {
        "DVC_STAGE": "train",
        "DVC_ROOT": str(tmp_path),
        ENTRY_ARGV_ENV: json.dumps(["dvc", "repro"]),
    }
    entry = detect_entry(tmp_path, tmp_path, ["train.py"], environ)
    assert (entry.kind, entry.stage, entry.path) == ("dvc-stage", "train", "dvc.yaml")


def test_a_command_of_jupyreg_run(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    environ = {ENTRY_ARGV_ENV: json.dumps(["python", "train.py", "--C", "1"])}
    entry = detect_entry(tmp_path, tmp_path, ["train.py", "--C", "1"], environ)
    assert (entry.kind, entry.argv, entry.path) == (
        "command",
        ("python", "train.py", "--C", "1"),
        "train.py",
    )
    malformed = detect_entry(tmp_path, tmp_path, ["train.py"], {ENTRY_ARGV_ENV: "{not json"})
    assert malformed.kind == "script"


def test_a_notebook_path_makes_it_a_notebook(tmp_path: Path) -> None:
    entry = detect_entry(tmp_path, tmp_path, ["ipykernel_launcher.py"], {}, "train.ipynb")
    assert entry.info() == {"kind": "notebook", "path": "train.ipynb", "argv": [], "cwd": "."}
