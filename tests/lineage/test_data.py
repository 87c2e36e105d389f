"""DVC data capture against real `dvc add` / `dvc repro` output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lineage_helpers import DVC, dvc_outs, md5, run

from jupyreg.lineage import capture
from jupyreg.lineage.hashing import md5_of_file


def entries_by_path(lineage) -> dict[str, dict]:
    return {entry["path"]: entry for entry in lineage.record["data"]}


def test_every_dvc_output_by_default(dvc_repo: Path) -> None:
    lineage = capture(cwd=dvc_repo)
    entries = entries_by_path(lineage)
    assert set(entries) == {"data/train.csv", "data/images", "prepared.txt"}
    assert not [w for w in lineage.warnings if w.startswith("data:")]
    tags = lineage.to_tags()
    for n, entry in enumerate(lineage.record["data"]):
        assert tags[f"jupyreg.data.{n}.path"] == entry["path"]
        assert tags[f"jupyreg.data.{n}.md5"] == entry["md5"]
        assert tags[f"jupyreg.data.{n}.stale"] == "false"
        assert tags[f"jupyreg.data.{n}.dvc"] == "true"


def test_tracked_file_matches_dvc_and_hashlib(dvc_repo: Path) -> None:
    entry = entries_by_path(capture(cwd=dvc_repo, data=["data/train.csv"]))["data/train.csv"]
    recorded = dvc_outs(dvc_repo / "data" / "train.csv.dvc")
    assert entry["md5"] == recorded["md5"] == md5(dvc_repo / "data" / "train.csv")
    assert entry["recorded_md5"] == recorded["md5"]
    assert entry["size"] == recorded["size"]
    assert entry["dvc"] is True and entry["stale"] is False
    assert entry["source"] == "data/train.csv.dvc"


def test_tracked_directory_matches_dvc_dir_hash(dvc_repo: Path) -> None:
    entry = entries_by_path(capture(cwd=dvc_repo, data=["data/images"]))["data/images"]
    recorded = dvc_outs(dvc_repo / "data" / "images.dvc")
    assert recorded["md5"].endswith(".dir")
    assert entry["md5"] == recorded["md5"]
    assert (
        (entry["size"], entry["nfiles"])
        == (recorded["size"], recorded["nfiles"])
        == (
            2 + 12 + 2000,
            3,
        )
    )
    # DVC's listing in its cache names every file with the md5 of its raw bytes (CRLF kept).
    digest = recorded["md5"]
    listing = json.loads(
        (dvc_repo / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]).read_text()
    )
    assert {item["relpath"]: item["md5"] for item in listing} == {
        rel: md5(dvc_repo / "data" / "images" / rel) for rel in ("a.txt", "b.txt", "sub/c.bin")
    }


def test_pipeline_output_from_dvc_lock(dvc_repo: Path) -> None:
    entry = entries_by_path(capture(cwd=dvc_repo))["prepared.txt"]
    assert entry["md5"] == md5(dvc_repo / "prepared.txt")
    assert entry["source"] == "dvc.lock:prepare"
    assert entry["dvc"] is True and entry["stale"] is False


def test_file_inside_a_tracked_directory(dvc_repo: Path) -> None:
    entry = capture(cwd=dvc_repo, data=["data/images/b.txt"]).record["data"][0]
    assert entry["dvc"] is True and entry["stale"] is False
    assert entry["md5"] == entry["recorded_md5"] == md5(dvc_repo / "data" / "images" / "b.txt")


def test_unchanged_data_is_not_reread(dvc_repo: Path) -> None:
    """The md5 comes from DVC's state (filled by `dvc add`), not from reading the file."""
    lineage = capture(cwd=dvc_repo)
    assert {e["path"]: e["hashed_from"] for e in lineage.record["data"]} == {
        "data/train.csv": "dvc-state",
        "data/images": "dvc-state",
        "prepared.txt": "dvc-state",
    }


def test_plain_file_not_under_dvc(dvc_repo: Path) -> None:
    lineage = capture(cwd=dvc_repo, data=["plain.csv"])
    entry = lineage.record["data"][0]
    md5sum = subprocess.run(
        ["md5sum", "plain.csv"], cwd=dvc_repo, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert entry["md5"] == md5sum
    assert entry["dvc"] is False and entry["stale"] is False and entry["recorded_md5"] is None
    assert "data: plain.csv is not under DVC (md5 recorded, but DVC cannot restore it)" in (
        lineage.warnings
    )
    assert lineage.to_tags()["jupyreg.data.0.dvc"] == "false"


def test_missing_path(dvc_repo: Path) -> None:
    lineage = capture(cwd=dvc_repo, data=["nope.csv"])
    assert lineage.record["data"][0]["md5"] is None
    assert "data: nope.csv does not exist" in lineage.warnings
    assert "jupyreg.data.0.md5" not in lineage.to_tags()


def test_data_modified_after_dvc_add(make_dvc_repo: Callable[..., Path]) -> None:
    root = make_dvc_repo()
    recorded = dvc_outs(root / "data" / "train.csv.dvc")["md5"]
    with open(root / "data" / "train.csv", "ab") as file:
        file.write(b"one more row\n")
    (root / "data" / "images" / "a.txt").write_text("changed\n")

    lineage = capture(cwd=root)
    entries = entries_by_path(lineage)
    train = entries["data/train.csv"]
    assert train["stale"] is True
    assert train["recorded_md5"] == recorded
    assert train["md5"] == md5(root / "data" / "train.csv") != recorded
    assert train["hashed_from"] == "computed"
    assert (
        f"data: data/train.csv changed since `dvc add` (recorded md5 {recorded} in "
        f"data/train.csv.dvc, workspace md5 {train['md5']})" in lineage.warnings
    )
    images = entries["data/images"]
    assert images["stale"] is True and images["md5"] != images["recorded_md5"]
    # After `dvc add` again, DVC and capture agree on the new directory hash.
    run(DVC, "add", "-q", "data/images", cwd=root)
    assert dvc_outs(root / "data" / "images.dvc")["md5"] == images["md5"]
    assert entries_by_path(capture(cwd=root))["data/images"]["stale"] is False


def test_tracked_data_missing_from_workspace(make_dvc_repo: Callable[..., Path]) -> None:
    root = make_dvc_repo()
    (root / "data" / "train.csv").unlink()
    lineage = capture(cwd=root, data=["data/train.csv"])
    entry = lineage.record["data"][0]
    assert entry["md5"] is None and entry["stale"] is True and entry["dvc"] is True
    assert any("data/train.csv is tracked by DVC" in w and "missing" in w for w in lineage.warnings)


def test_dvc_state_wherever_dvc_keeps_it(
    make_dvc_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DVC's state is found where DVC itself looks (here DVC_SITE_CACHE_DIR); when it has
    moved, the first capture reads the files and saves their md5 there for the next one.
    Without git the DVC files are found by walking the tree."""
    site = tmp_path / "dvc-site"
    root = make_dvc_repo(git=False, env={"DVC_SITE_CACHE_DIR": str(site)})
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(site))
    assert {e["hashed_from"] for e in capture(cwd=root).record["data"]} == {"dvc-state"}

    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "elsewhere"))
    first = capture(cwd=root).record["data"]
    second = capture(cwd=root).record["data"]
    assert {e["hashed_from"] for e in first} == {"computed"}
    assert {e["hashed_from"] for e in second} == {"dvc-state"}
    assert [e["md5"] for e in first] == [e["md5"] for e in second]
    assert all(e["stale"] is False for e in second)


def test_own_cache_outside_dvc(tmp_path: Path) -> None:
    """Files outside any DVC repository are read once, then found in jupyreg's cache."""
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.txt").write_text("x\n")
    data = ["table.csv", "images"]
    first = capture(cwd=tmp_path, data=data).record["data"]
    second = capture(cwd=tmp_path, data=data).record["data"]
    assert [e["hashed_from"] for e in first] == ["computed", "computed"]
    assert [e["hashed_from"] for e in second] == ["cache", "cache"]
    assert [e["md5"] for e in first] == [e["md5"] for e in second]
    assert first[0]["md5"] == md5(tmp_path / "table.csv")
    assert first[1]["md5"].endswith(".dir") and first[1]["nfiles"] == 1


def test_unwritable_cache_only_costs_rehashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(blocker))
    (tmp_path / "table.csv").write_text("a,b\n")
    for _ in range(2):
        lineage = capture(cwd=tmp_path, data=["table.csv"])
        assert lineage.record["data"][0]["md5"] == md5(tmp_path / "table.csv")
        assert lineage.record["data"][0]["hashed_from"] == "computed"


def test_no_dvc_repository(tmp_path: Path) -> None:
    lineage = capture(cwd=tmp_path)
    assert lineage.record["data"] == []
    assert "data: no DVC repository found; pass data paths to record datasets" in lineage.warnings


def test_large_file_hash_matches_md5sum(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom((5 << 20) + 123))
    md5sum = subprocess.run(["md5sum", str(path)], capture_output=True, text=True, check=True)
    assert md5_of_file(path) == md5sum.stdout.split()[0]


def test_dvc_that_cannot_open_the_repo_is_a_warning(make_dvc_repo: Callable[..., Path]) -> None:
    root = make_dvc_repo()
    (root / ".dvc" / "config").write_text("[core\nbroken")
    lineage = capture(cwd=root)
    entries = entries_by_path(lineage)
    assert entries["data/train.csv"]["md5"] == md5(root / "data" / "train.csv")
    assert entries["data/train.csv"]["stale"] is False
    assert any(w.startswith(f"data: DVC cannot open {root}") for w in lineage.warnings)


def test_dvc_not_importable(dvc_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jupyreg.lineage.dvcfiles as dvcfiles

    monkeypatch.setattr(dvcfiles, "_KEPT", {})
    monkeypatch.setitem(sys.modules, "dvc.repo", None)
    lineage = capture(cwd=dvc_repo, data=["data/train.csv"])
    assert lineage.record["data"][0]["md5"] == md5(dvc_repo / "data" / "train.csv")
    assert any(w.startswith("data: DVC cannot be imported") for w in lineage.warnings)
