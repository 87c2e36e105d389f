"""Lineage records as flat MLflow tags, their JSON size limit, and the retry round trip."""

from __future__ import annotations

import json
from pathlib import Path

from jupyreg.lineage import Lineage, capture
from jupyreg.tags import MAX_TAG_LENGTH, compact_json


def sample_record(**changes: object) -> dict:
    record = {
        "git": {
            "commit": "a" * 40,
            "branch": "main",
            "dirty": True,
            "modified": ["train.py"],
            "untracked": 0,
            "diff_sha256": "b" * 64,
            "notebook_committed": False,
            "remote": "https://example.com/x.git",
        },
        "notebook": {"path": "train.ipynb", "sha256": "c" * 64, "source": "option"},
        "data": [
            {
                "path": "data/train.csv",
                "md5": "d" * 32,
                "recorded_md5": "e" * 32,
                "stale": True,
                "dvc": True,
            },
            {
                "path": "plain.csv",
                "md5": "f" * 32,
                "recorded_md5": None,
                "stale": False,
                "dvc": False,
            },
        ],
        "hardware": {
            "gpu_count": 2,
            "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559}] * 2,
        },
        "environment": {"python": "3.11.7", "requirements": ["numpy==2.4.6"]},
        "warnings": ["git: working tree is dirty (1 modified file)"],
        "captured_at": "2026-01-01T00:00:00.000Z",
    }
    record.update(changes)
    return record


def test_tags() -> None:
    tags = Lineage.from_record(sample_record()).to_tags()
    assert tags == {
        "jupyreg.git.commit": "a" * 40,
        "jupyreg.git.branch": "main",
        "jupyreg.git.dirty": "true",
        "jupyreg.git.diff_sha256": "b" * 64,
        "jupyreg.git.remote": "https://example.com/x.git",
        "jupyreg.git.notebook_committed": "false",
        "jupyreg.notebook.path": "train.ipynb",
        "jupyreg.notebook.sha256": "c" * 64,
        "jupyreg.gpu.count": "2",
        "jupyreg.gpu.name": "NVIDIA H100 80GB HBM3",
        "jupyreg.python": "3.11.7",
        "jupyreg.data.0.path": "data/train.csv",
        "jupyreg.data.0.md5": "d" * 32,
        "jupyreg.data.0.recorded_md5": "e" * 32,
        "jupyreg.data.0.stale": "true",
        "jupyreg.data.0.dvc": "true",
        "jupyreg.data.1.path": "plain.csv",
        "jupyreg.data.1.md5": "f" * 32,
        "jupyreg.data.1.stale": "false",
        "jupyreg.data.1.dvc": "false",
        "jupyreg.lineage": json.dumps(sample_record(), separators=(",", ":")),
    }


def test_round_trip_through_the_json_tag(tmp_path: Path) -> None:
    lineage = capture(cwd=tmp_path, data=[])
    tags = lineage.to_tags()
    again = Lineage.from_record(json.loads(tags["jupyreg.lineage"]))
    assert again.to_tags() == tags
    assert again.record == lineage.record
    assert again.warnings == lineage.warnings
    assert again.requirements == lineage.requirements
    assert again.artifacts == {}


def test_from_record_copies_the_record() -> None:
    record = sample_record()
    lineage = Lineage.from_record(record)
    record["git"]["commit"] = "changed"
    assert lineage.record["git"]["commit"] == "a" * 40
    assert lineage.requirements == ("numpy==2.4.6",)


def test_huge_lists_are_truncated_to_fit_a_tag() -> None:
    modified = [f"src/module_{i:06d}.py" for i in range(20_000)]
    record = sample_record()
    record["git"]["modified"] = modified
    lineage = Lineage(record=record)
    value = lineage.to_tags()["jupyreg.lineage"]
    assert len(value) <= MAX_TAG_LENGTH
    parsed = json.loads(value)
    assert parsed["truncated"] == {"git.modified": 20_000}
    assert parsed["git"]["modified"] == modified[: len(parsed["git"]["modified"])]
    assert parsed["git"]["commit"] == "a" * 40
    assert lineage.record["git"]["modified"] == modified  # the record itself is untouched
    assert all(len(v) <= MAX_TAG_LENGTH for v in lineage.to_tags().values())


def test_compact_json_small_limit() -> None:
    text = compact_json({"a": list(range(1000)), "b": ["x"] * 10}, limit=200)
    assert len(text) <= 200
    assert json.loads(text)["truncated"]["a"] == 1000
