"""The compare panel's controller against a real SQLite registry."""

from __future__ import annotations

import subprocess

import pytest

from jupyreg.errors import NotFound
from jupyreg.widgets.comparison import CompareController
from tests.widgets.panel_helpers import NAME, promote, register, set_tags


@pytest.fixture
def three(alice, bob, model):
    """v1 in Production; v2 and v3 newer, with different auc and loss."""
    versions = [
        register(alice, model, {"val.auc": 0.80, "val.loss": 0.50, "test.auc": 0.79}),
        register(alice, model, {"val.auc": 0.85, "val.loss": 0.40, "test.auc": 0.79}),
        register(alice, model, {"val.auc": 0.75, "val.loss": 0.60, "test.auc": 0.79}),
    ]
    promote(alice, bob, versions[0])
    return versions


def test_defaults_to_production_against_the_newest(alice, three):
    controller = CompareController(alice, NAME)
    assert controller.production == 1
    assert controller.selected == [1, 3]


def test_defaults_to_the_two_newest_without_production(alice, model):
    for auc in (0.8, 0.81, 0.82):
        register(alice, model, {"val.auc": auc})
    assert CompareController(alice, NAME).selected == [2, 3]


def test_rows_mark_the_cells_that_differ(alice, three):
    controller = CompareController(alice, NAME, versions=[1, 2, 3])
    rows = {(r.section, r.field): r for r in controller.rows()}
    auc = rows[("metrics", "val.auc")]
    assert [c.differs for c in auc.cells] == [False, True, True]
    assert not rows[("metrics", "test.auc")].differs
    assert rows[("version", "stage")].cells[0].text == "Production"


def test_deltas_are_against_production_with_direction(alice, three):
    controller = CompareController(alice, NAME, versions=["v1", "2", 3])
    assert controller.delta("val.auc", 1) is None
    better_auc = controller.delta("val.auc", 2)
    assert better_auc.difference == pytest.approx(0.05)
    assert better_auc.direction == "better"
    assert controller.delta("val.loss", 2).direction == "better"  # lower loss
    assert controller.delta("val.auc", 3).direction == "worse"
    assert controller.delta("val.loss", 3).direction == "worse"
    assert controller.delta("test.auc", 3).direction == "same"


def test_deltas_without_production_are_against_the_oldest_selected(alice, model):
    register(alice, model, {"rmse": 2.0})
    register(alice, model, {"rmse": 1.0})
    controller = CompareController(alice, NAME)
    assert controller.baseline == 1
    assert controller.delta("rmse", 2).direction == "better"


def test_chart_series_cover_every_version(alice, three):
    controller = CompareController(alice, NAME, versions=[1, 2])
    controller.choose_metrics(["val.auc", "no.such.metric"])
    assert controller.chart_metrics == ["val.auc"]
    assert [v for v, _ in controller.chart_series()["val.auc"]] == [1, 2, 3]
    assert controller.chart_png().startswith(b"\x89PNG")


def test_unknown_versions_are_refused(alice, three):
    with pytest.raises(NotFound, match="no version 9"):
        CompareController(alice, NAME, versions=[1, 9])


def test_data_is_read_without_a_get_per_version(alice, three, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("Registry.get called per version")

    monkeypatch.setattr(type(alice), "get", forbidden)
    controller = CompareController(alice, NAME, versions=[1, 2, 3])
    assert controller.rows() and controller.lineage_diffs()


def git(cwd, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(workdir):
    """A git repo in the working directory with two commits; returns their SHAs."""
    git(workdir, "init", "-q")
    git(workdir, "config", "user.email", "t@example.com")
    git(workdir, "config", "user.name", "t")
    (workdir / "train.py").write_text("C = 1\n")
    (workdir / "README").write_text("hi\n")
    git(workdir, "add", "train.py", "README")
    git(workdir, "commit", "-qm", "one")
    first = git(workdir, "rev-parse", "HEAD")
    (workdir / "train.py").write_text("C = 2\n")
    git(workdir, "commit", "-qam", "two")
    return first, git(workdir, "rev-parse", "HEAD")


def test_lineage_diff_names_the_files_changed_between_commits(alice, model, repo):
    first, second = repo
    register(alice, model, {"auc": 0.8}, jupyreg__git__commit=first, jupyreg__git__dirty="false")
    register(alice, model, {"auc": 0.9}, jupyreg__git__commit=second, jupyreg__git__dirty="true")
    (diff,) = CompareController(alice, NAME).lineage_diffs()
    assert (diff.git.base, diff.git.other) == (first[:8], second[:8])
    assert diff.git.files == ("train.py",)
    assert diff.git.other_dirty is True
    assert "uncommitted" in diff.git.note


def test_files_changed_are_unknown_for_commits_not_in_the_repo(alice, model, repo):
    register(alice, model, {"auc": 0.8}, jupyreg__git__commit=repo[0])
    register(alice, model, {"auc": 0.9}, jupyreg__git__commit="ab" * 20)
    (diff,) = CompareController(alice, NAME).lineage_diffs()
    assert diff.git.files is None
    assert "unknown" in diff.git.note


def test_many_versions_get_their_own_files_changed_in_one_batch(alice, model, repo, workdir):
    first, second = repo
    (workdir / "data.py").write_text("rows = 10\n")
    git(workdir, "add", "data.py")
    git(workdir, "commit", "-qm", "three")
    third = git(workdir, "rev-parse", "HEAD")
    git(workdir, "commit", "-q", "--allow-empty", "-m", "four: nothing changed")
    fourth = git(workdir, "rev-parse", "HEAD")
    commits = [first, second, "ab" * 20, third, fourth, first, third[:12]]
    for auc, commit in enumerate(commits):
        register(alice, model, {"auc": auc / 10}, jupyreg__git__commit=commit)
    controller = CompareController(alice, NAME)
    controller.select(range(1, len(commits) + 1))
    files = {d.other: d.git.files for d in controller.lineage_diffs()}
    assert files == {
        2: ("train.py",),
        3: None,  # not in the repo
        4: ("data.py", "train.py"),
        5: ("data.py", "train.py"),  # same tree as the third commit
        6: (),  # same commit
        7: ("data.py", "train.py"),  # an abbreviated commit resolves
    }


def test_commits_that_look_like_options_never_reach_git(alice, model, repo, workdir):
    register(alice, model, {"auc": 0.8}, jupyreg__git__commit=repo[0])
    register(alice, model, {"auc": 0.9}, jupyreg__git__commit="--output=pwned")
    (diff,) = CompareController(alice, NAME).lineage_diffs()
    assert diff.git.files is None
    assert not (workdir / "pwned").exists()


def test_lineage_diff_reports_datasets_and_hardware(alice, model):
    register(
        alice,
        model,
        {"auc": 0.8},
        jupyreg__data__0__path="data/train.csv",
        jupyreg__data__0__md5="a" * 32,
        jupyreg__data__1__path="data/test.csv",
        jupyreg__data__1__md5="b" * 32,
        jupyreg__gpu__count="0",
    )
    register(
        alice,
        model,
        {"auc": 0.9},
        jupyreg__data__0__path="data/train.csv",
        jupyreg__data__0__md5="c" * 32,
        jupyreg__data__1__path="data/test.csv",
        jupyreg__data__1__md5="b" * 32,
        jupyreg__gpu__count="2",
        jupyreg__gpu__name="NVIDIA H100",
    )
    (diff,) = CompareController(alice, NAME).lineage_diffs()
    statuses = {d.path: d.status for d in diff.datasets}
    assert statuses == {"data/train.csv": "changed", "data/test.csv": "unchanged"}
    assert diff.datasets_changed is True
    assert (diff.hardware.base, diff.hardware.other) == ("none", "2x NVIDIA H100")
    assert diff.hardware.changed is True


def test_versions_without_lineage_say_unknown(alice, model):
    register(alice, model, {"auc": 0.8})
    register(alice, model, {"auc": 0.9})
    (diff,) = CompareController(alice, NAME).lineage_diffs()
    assert diff.git.changed is None and "unknown" in diff.git.note
    assert diff.datasets_changed is None
    assert diff.hardware.changed is False  # both registered here: no GPU


def write_dvc(workdir, path: str, md5: str) -> None:
    (workdir / ".dvc").mkdir(exist_ok=True)
    (workdir / f"{path}.dvc").parent.mkdir(parents=True, exist_ok=True)
    (workdir / f"{path}.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: 10\n  hash: md5\n  path: {path.rsplit('/', 1)[-1]}\n"
    )


def test_stale_production_hint_when_dvc_records_other_data(alice, bob, model, workdir):
    old, new = "a1" * 16, "b2" * 16
    version = register(
        alice,
        model,
        {"auc": 0.8},
        jupyreg__data__0__path="data/train.csv",
        jupyreg__data__0__md5=old,
    )
    promote(alice, bob, version)
    write_dvc(workdir, "data/train.csv", new)
    hint = CompareController(alice, NAME).stale_hint
    assert "Production v1" in hint and "data/train.csv" in hint and new[:8] in hint
    set_tags(alice, version, jupyreg__data__0__md5=new)
    assert CompareController(alice, NAME).stale_hint is None


def test_no_stale_hint_without_production_or_dvc(alice, bob, model, workdir):
    version = register(
        alice, model, {"auc": 0.8}, jupyreg__data__0__path="d.csv", jupyreg__data__0__md5="1" * 32
    )
    assert CompareController(alice, NAME).stale_hint is None
    promote(alice, bob, version)
    assert CompareController(alice, NAME).stale_hint is None  # no .dvc here


def test_versions_registered_by_plain_mlflow_compare_without_errors(alice, model):
    from mlflow import MlflowClient

    first = alice.get(NAME, register(alice, model, {"auc": 0.8}))
    client = MlflowClient(tracking_uri=alice.tracking_uri, registry_uri=alice.registry_uri)
    client.create_model_version(NAME, first.source, run_id=first.run_id)
    controller = CompareController(alice, NAME)
    assert controller.selected == [1, 2]
    assert controller.stage(2) == "None"
    (diff,) = controller.lineage_diffs()
    assert diff.git.changed is None and diff.hardware.changed is None
    assert diff.datasets_changed is None
    assert controller.delta("auc", 2).direction == "same"  # same run, same metrics


def mlflow_calls(build) -> int:
    """How many MlflowClient reads ``build()`` makes (a counting wrapper, no mock)."""
    from mlflow import MlflowClient

    calls = []
    with pytest.MonkeyPatch.context() as patch:
        for attr in dir(MlflowClient):
            if attr.startswith(("get_", "search_")):
                original = getattr(MlflowClient, attr)

                def counted(*args, _original=original, _attr=attr, **kwargs):
                    calls.append(_attr)
                    return _original(*args, **kwargs)

                patch.setattr(MlflowClient, attr, counted)
        build()
    return len(calls)


def test_round_trips_do_not_grow_with_the_number_of_versions(alice, model):
    from jupyreg.widgets.promotion import PromotionController

    def panels():
        CompareController(alice, NAME).select(range(1, len(alice.versions(NAME)) + 1))
        PromotionController(alice, NAME)

    register(alice, model, {"auc": 0.8})
    register(alice, model, {"auc": 0.9})
    few = mlflow_calls(panels)
    for auc in (0.91, 0.92, 0.93):
        register(alice, model, {"auc": auc})
    assert 0 < few == mlflow_calls(panels)
