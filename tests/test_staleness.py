"""Stale Production: code commits, changed data and age, against a real git + DVC project."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jupyreg import Registry
from jupyreg.errors import NotFound
from jupyreg.lifecycle import parse_iso
from jupyreg.lineage import Lineage, capture
from jupyreg.staleness import Staleness, staleness, touches_code
from tests.lineage.lineage_helpers import DVC, commit_all, dvc_outs, run
from tests.registered_project import NAME, promote, register


@pytest.fixture
def project(git_dvc_project: Path) -> Path:
    """A fresh copy of the project, as the working directory (alice's registry is in it)."""
    return git_dvc_project


@pytest.fixture
def production(project: Path, alice: Registry, bob: Registry, model) -> int:
    """A version registered from the project's HEAD and promoted to Production."""
    version = register(alice, model)
    promote(alice, bob, version)
    return version


def commit(root: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return commit_all(root, message)


def test_production_is_not_stale_right_after_registering(
    project: Path, production: int, alice: Registry
) -> None:
    found = staleness(alice, NAME, project)
    assert isinstance(found, Staleness)
    assert (found.version, found.commits_behind, found.changed_data) == (production, 0, [])
    assert not found.stale and 0 <= found.age_days < 0.01
    assert found.summary() == str(found)
    assert found.summary().startswith(f"{NAME} Production v{production} up to date: 0 commits")


def test_commits_that_touch_the_notebook_or_code_are_counted(
    project: Path, production: int, alice: Registry
) -> None:
    commit(project, {"features.py": "SCALE = 2\n"})
    commit(project, {"train.ipynb": (project / "train.ipynb").read_text() + "\n"})
    commit(project, {"README.md": "# fraud, documented\n"})  # not code
    commit(project, {"src/model/layers.py": "DEPTH = 3\n", "docs/x.md": "x\n"})
    commit(project, {"requirements.txt": "scikit-learn==1.5.0\n"})

    found = staleness(alice, NAME, project)
    assert found.commits_behind == 4 and found.stale
    assert "4 commits touching code since training" in found.summary()
    assert "may be stale" in found.summary()


def test_commits_touching_only_unrelated_files_are_not_counted(
    project: Path, production: int, alice: Registry
) -> None:
    commit(project, {"README.md": "# fraud\n\nmore\n"})
    commit(project, {"docs/guide.md": "how to\n", ".github/workflows/ci.yml": "on: push\n"})
    commit(project, {"notes/figure.svg": "<svg/>\n", ".gitignore": "mlflow.db*\nmlartifacts/\n"})

    found = staleness(alice, NAME, project)
    assert found.commits_behind == 0 and not found.stale


def test_merges_count_the_code_commits_they_bring_in_once(
    project: Path, production: int, alice: Registry
) -> None:
    run("git", "checkout", "-q", "-b", "feature", cwd=project)
    commit(project, {"features.py": "SCALE = 3\n"})
    commit(project, {"README.md": "feature docs\n"})
    run("git", "checkout", "-q", "main", cwd=project)
    commit(project, {"docs/other.md": "main docs\n"})
    run("git", "merge", "-q", "--no-ff", "-m", "merge feature", "feature", cwd=project)

    assert staleness(alice, NAME, project).commits_behind == 1


def test_a_dataset_is_changed_after_the_file_changes_and_dvc_add_runs_again(
    project: Path, production: int, alice: Registry
) -> None:
    trained = alice.get(NAME, production).lineage["data"][0]["md5"]
    (project / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n3,1\n")
    run(DVC, "add", "-q", "data/train.csv", cwd=project)
    commit_all(project, "more data")  # touches data/train.csv.dvc only: not code
    now = dvc_outs(project / "data" / "train.csv.dvc")["md5"]
    assert now != trained

    found = staleness(alice, NAME, project)
    assert found.changed_data == ["data/train.csv"] and found.commits_behind == 0
    assert found.stale and "data changed: data/train.csv" in found.summary()
    (warning,) = [w for w in found.warnings if w.startswith("data: data/train.csv")]
    assert trained[:12] in warning and now[:12] in warning


def test_a_dataset_edited_without_dvc_add_is_changed_too(
    project: Path, production: int, alice: Registry
) -> None:
    (project / "data" / "train.csv").write_text("x,y\n9,9\n")

    found = staleness(alice, NAME, project)
    assert found.changed_data == ["data/train.csv"]
    assert any("the workspace holds" in w for w in found.warnings)


def test_a_version_trained_on_uncommitted_changes_counts_from_its_commit(
    project: Path, alice: Registry, bob: Registry, model
) -> None:
    (project / "features.py").write_text("SCALE = 5\n")  # trained with this, uncommitted
    promote(alice, bob, register(alice, model))
    commit_all(project, "the change that was trained")

    found = staleness(alice, NAME, project)
    assert found.commits_behind == 1
    assert any("uncommitted changes" in w for w in found.warnings)


def test_an_unknown_commit_gives_none_and_a_warning(
    project: Path, alice: Registry, bob: Registry, model
) -> None:
    captured = capture(data=["data/train.csv"], notebook="train.ipynb", model=model)
    elsewhere = {**captured.record["git"], "commit": "0123456789abcdef" * 2 + "01234567"}
    lineage = dataclasses.replace(captured, record={**captured.record, "git": elsewhere})
    promote(alice, bob, register(alice, model, lineage=lineage))

    found = staleness(alice, NAME, project)
    assert found.commits_behind is None and found.changed_data == []
    assert any("0123456789ab is not in the repository" in w for w in found.warnings)
    assert "code: unknown" in found.summary()


def test_a_commit_that_is_not_an_ancestor_of_head_gives_none_and_a_warning(
    project: Path, alice: Registry, bob: Registry, model
) -> None:
    run("git", "checkout", "-q", "-b", "experiment", cwd=project)
    trained_on = commit(project, {"features.py": "SCALE = 9\n"})
    promote(alice, bob, register(alice, model))
    run("git", "checkout", "-q", "main", cwd=project)

    found = staleness(alice, NAME, project)
    assert found.commits_behind is None
    assert any(f"{trained_on[:12]} is not an ancestor of HEAD" in w for w in found.warnings)


def test_outside_a_git_repository_code_changes_are_unknown(
    project: Path, production: int, alice: Registry, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("no-git")
    found = staleness(alice, NAME, elsewhere)
    assert found.commits_behind is None
    assert any("not in a git repository" in w for w in found.warnings)


def test_a_version_without_lineage_is_unknown_not_an_error(
    project: Path, alice: Registry, bob: Registry, model
) -> None:
    promote(alice, bob, register(alice, model, lineage=Lineage.from_record({})))
    found = staleness(alice, NAME, project)
    assert (found.commits_behind, found.changed_data) == (None, [])
    assert any("recorded no commit" in w for w in found.warnings)


def test_age_counts_from_entering_production(
    project: Path, production: int, alice: Registry
) -> None:
    (entered,) = [e for e in alice.history_records(NAME, production) if e.to_stage == "Production"]
    before = (datetime.now(UTC) - parse_iso(entered.at)).total_seconds() / 86_400
    found = staleness(alice, NAME, project)
    after = (datetime.now(UTC) - parse_iso(entered.at)).total_seconds() / 86_400
    assert before <= found.age_days <= after


def test_without_production_there_is_nothing_to_be_stale(
    project: Path, alice: Registry, model
) -> None:
    register(alice, model)
    with pytest.raises(NotFound, match="no version in Production"):
        staleness(alice, NAME, project)


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("train.ipynb", True),
        ("src/pkg/model.py", True),
        ("requirements-gpu.txt", True),
        ("pyproject.toml", True),
        ("dvc.yaml", True),
        ("params.yaml", True),
        ("notebooks/Explore.IPYNB", True),
        ("README.md", False),
        ("docs/index.rst", False),
        ("data/train.csv.dvc", False),
        ("dvc.lock", False),
        (".github/workflows/ci.yml", False),
        ("analysis.txt", False),
    ],
)
def test_what_counts_as_code(path: str, code: bool) -> None:
    assert touches_code(path) is code


def test_the_recorded_notebook_counts_whatever_its_name() -> None:
    assert touches_code("analysis/run.md", notebook="analysis/run.md")
    assert not touches_code("analysis/run.md", notebook="train.ipynb")


def test_check_warns_of_stale_production_without_failing(
    project: Path, production: int, alice: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    from jupyreg.cli import main

    assert alice.check(NAME).empty
    commit(project, {"features.py": "SCALE = 3\n"}, "rescale")
    (row,) = alice.check(NAME).to_dict("records")
    assert (row["kind"], row["version"], row["repaired"]) == ("stale", production, False)
    assert "1 commit touching code" in row["problem"]
    assert alice.check(NAME, repo_path=None).empty  # a server does not look
    assert main(["--tracking-uri", alice.tracking_uri, "check", NAME]) == 0  # a warning
    assert "1 commit touching code" in capsys.readouterr().out


def test_watch_alerts_once_when_production_goes_stale(
    project: Path, production: int, alice: Registry
) -> None:
    from jupyreg.watch import StaleProduction, watch

    events: list = []
    commit(project, {"features.py": "SCALE = 3\n"}, "rescale")
    assert watch(alice, NAME, "Production", events.append, interval=0, count=1,
                 stale_against=project) == 1  # fmt: skip
    (alert,) = events
    assert isinstance(alert, StaleProduction) and alert.version == production
    assert "1 commit touching code" in alert.message()
    assert alert.environment()["JUPYREG_STALE"] == alert.summary
