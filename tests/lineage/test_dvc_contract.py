"""Contract tests: capture's fast paths against DVC's own answers, on real repos.

Capture reads ``.dvc`` files and ``dvc.lock`` itself (listed by git) and walks tracked
directories itself; DVC's own code does the rest. Each test here asks DVC the same
question (``Repo.index``, dvc-data's ``build``, ``dvc data status``, DVC's state) and
fails when DVC's answer changes under us.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from lineage_helpers import DVC, commit_all, run

pytest.importorskip("dvc.repo")  # the GPU machine runs tests/lineage without DVC

from dvc.repo import Repo  # noqa: E402

from jupyreg.lineage import capture  # noqa: E402
from jupyreg.lineage.dvcfiles import tracked_outputs  # noqa: E402


def dvc_outputs(root: Path) -> set[tuple]:
    """Every local output as DVC collects it: path, md5, size, nfiles, where, DVC 2 hash."""
    with Repo(str(root)) as repo:
        return {
            (
                out.fs_path,
                out.hash_info.value,
                out.meta.size,
                out.meta.nfiles,
                _source(out, root),
                out.hash_info.name == "md5-dos2unix",
            )
            for out in repo.index.outs
            if out.protocol == "local"
        }


def _source(out, root: Path) -> str:
    relpath = Path(out.stage.dvcfile.path).relative_to(root)
    if relpath.suffix == ".dvc":
        return relpath.as_posix()
    return f"{relpath.with_name('dvc.lock').as_posix()}:{out.stage.name}"


def our_outputs(root: Path) -> set[tuple]:
    outputs, warnings = tracked_outputs(root)
    assert warnings == []
    return {(str(o.path), o.md5, o.size, o.nfiles, o.source, o.legacy) for o in outputs}


def dvc_build(root: Path, target: str) -> tuple[str, int, int | None]:
    """md5, size and nfiles of a workspace path as DVC itself hashes it for `dvc add`."""
    from dvc_data.hashfile.build import build

    with Repo(str(root)) as repo:
        path = os.path.join(repo.root_dir, target)
        _, meta, obj = build(
            repo.cache.local, path, repo.fs, "md5", ignore=repo.dvcignore, dry_run=True
        )
        return obj.hash_info.value, meta.size, meta.nfiles


def dvc_data_status(root: Path) -> dict:
    return json.loads(run(DVC, "data", "status", "--json", "--granular", cwd=root))


@pytest.fixture
def rich_repo(make_dvc_repo: Callable[..., Path]) -> Path:
    """A file, a directory, a pipeline, a pipeline in a subdirectory with ``wdir``, a
    ``.dvc`` file in a subdirectory, an uncommitted ``dvc add`` and a DVC 2 ``.dvc`` file."""
    root = make_dvc_repo(pipeline=True)
    sub = root / "sub"
    (sub / "work").mkdir(parents=True)
    (sub / "work" / "in.txt").write_text("in\n")
    run(
        DVC, "stage", "add", "-q", "-n", "copy", "-w", "work", "-d", "in.txt", "-o", "out.txt",
        "cp in.txt out.txt", cwd=sub,
    )  # fmt: skip
    run(DVC, "repro", "-q", "sub/dvc.yaml", cwd=root)
    (sub / "model.bin").write_bytes(b"\x01" * 100)
    run(DVC, "add", "-q", "sub/model.bin", cwd=root)
    (root / "legacy.txt").write_text("dos\r\n")
    run(DVC, "add", "-q", "legacy.txt", cwd=root)
    legacy = root / "legacy.txt.dvc"
    legacy.write_text(legacy.read_text().replace("  hash: md5\n", ""))  # as DVC 2 wrote it
    commit_all(root, "more outputs")
    (root / "late.csv").write_text("late\n")
    run(DVC, "add", "-q", "late.csv", cwd=root)  # its .dvc file is not committed yet
    return root


def test_outputs_read_from_dvc_files_are_dvcs_outputs(rich_repo: Path) -> None:
    ours = our_outputs(rich_repo)
    assert ours == dvc_outputs(rich_repo)
    assert {Path(o[0]).relative_to(rich_repo).as_posix() for o in ours} == {
        "data/train.csv",
        "data/images",
        "prepared.txt",
        "sub/work/out.txt",
        "sub/model.bin",
        "legacy.txt",
        "late.csv",
    }
    assert any(o[5] for o in ours)  # the DVC 2 file is seen as such by both


def test_workspace_hashes_are_dvcs(rich_repo: Path) -> None:
    """Unchanged, changed (no `dvc add` since) and with a .dvcignored file inside a
    tracked directory: capture's md5, size and file count are DVC's."""
    (rich_repo / ".dvcignore").write_text("*.tmp\n")
    (rich_repo / "data" / "images" / "scratch.tmp").write_text("ignored by DVC\n")
    (rich_repo / "data" / "images" / "sub" / "new.txt").write_text("new\n")
    with open(rich_repo / "data" / "train.csv", "ab") as file:
        file.write(b"one more row\n")
    targets = ["data/train.csv", "data/images", "prepared.txt", "sub/model.bin", "plain.csv"]

    entries = {e["path"]: e for e in capture(cwd=rich_repo, data=targets).record["data"]}
    for target in targets:
        entry = entries[target]
        assert (entry["md5"], entry["size"], entry["nfiles"]) == dvc_build(rich_repo, target)

    uncommitted = dvc_data_status(rich_repo).get("uncommitted", {})
    assert {"data/train.csv", "data/images/"} <= set(uncommitted.get("modified", []))
    assert uncommitted.get("added") == ["data/images/sub/new.txt"]  # not scratch.tmp
    assert entries["data/train.csv"]["stale"] and entries["data/images"]["stale"]
    assert not entries["prepared.txt"]["stale"] and not entries["sub/model.bin"]["stale"]


def test_state_entries_are_dvcs(rich_repo: Path) -> None:
    """What DVC saved (`dvc add`) is found in its state; what capture saves there after
    reading a changed file is what DVC's own state returns for it."""
    assert {e["hashed_from"] for e in capture(cwd=rich_repo).record["data"]} == {"dvc-state"}

    train = rich_repo / "data" / "train.csv"
    with open(train, "ab") as file:
        file.write(b"changed\n")
    entry = capture(cwd=rich_repo, data=["data/train.csv"]).record["data"][0]
    assert entry["hashed_from"] == "computed"
    with Repo(str(rich_repo)) as repo:
        _, hash_info = repo.state.get(str(train), repo.fs)
    assert hash_info is not None and (hash_info.name, hash_info.value) == ("md5", entry["md5"])
    again = capture(cwd=rich_repo, data=["data/train.csv"]).record["data"][0]
    assert (again["hashed_from"], again["md5"]) == ("dvc-state", entry["md5"])


def test_file_inside_a_directory_is_read_from_dvcs_listing(rich_repo: Path) -> None:
    entry = capture(cwd=rich_repo, data=["data/images/sub/c.bin"]).record["data"][0]
    with Repo(str(rich_repo)) as repo:
        (out,) = [o for o in repo.index.outs if o.fs_path.endswith("images")]
        _, hash_info = out.get_obj().get(("sub", "c.bin"))
    assert entry["recorded_md5"] == hash_info.value == entry["md5"]
    assert entry["dvc"] is True and entry["stale"] is False
