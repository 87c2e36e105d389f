"""A stage changed outside jupyreg never splits the registry silently: after plain MLflow's
``transition_model_version_stage``, ``models:/NAME/Production`` and ``models:/NAME@production``
name different versions, and every read says so until ``check --repair`` adopts the move,
recorded as made by an unknown user outside jupyreg, not by the repairer."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
from mlflow import MlflowClient

from jupyreg import lifecycle
from jupyreg.errors import SplitReferences
from jupyreg.lifecycle import VersionFacts
from tests.conftest import register_versions

NAME = "fraud-detector"
SPLIT = (
    f"{NAME}: models:/{NAME}/Production is v7 but models:/{NAME}@production is v3 "
    "(a stage was changed outside jupyreg); run "
)


@pytest.fixture(scope="module")
def seven_versions(tmp_path_factory: pytest.TempPathFactory, model) -> Path:
    """fraud-detector v1..v7 with v3 in Production (alice requested, bob approved), made
    once per module; each test gets a copy of the database."""
    from jupyreg import Registry

    root = tmp_path_factory.mktemp("seven")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "JUPYREG_USER"):
            patch.delenv(var, raising=False)
        alice, bob = Registry(uri, user="alice"), Registry(uri, user="bob")
        register_versions(alice, model, NAME, 7)
        alice.transition(NAME, 3, "Staging", reason="candidate")
        bob.approve(alice.request(NAME, 3, "Production", reason="better auc").id)
    return root / "mlflow.db"


@pytest.fixture
def seeded(seven_versions: Path, sqlite_uri: str, workdir: Path) -> str:
    """The seven versions in place of the test's empty registry; its URI."""
    shutil.copy(seven_versions, workdir / "mlflow.db")
    return sqlite_uri


def move_outside(sqlite_uri: str) -> None:
    """The seed's plain-MLflow call, exactly (the working directory's ``mlflow.db``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MLflow deprecates stages
        MlflowClient().transition_model_version_stage(
            NAME, 7, "Production", archive_existing_versions=True
        )
    client = MlflowClient(sqlite_uri, sqlite_uri)
    assert client.get_latest_versions(NAME, ["Production"])[0].version in (7, "7")
    assert int(client.get_model_version_by_alias(NAME, "production").version) == 3


def test_list_warns_naming_both_references(seeded, cli) -> None:
    move_outside(seeded)
    code, out, err = cli("list")
    assert code == 0 and NAME in out
    assert f"jupyreg: warning: {SPLIT}`jupyreg check {NAME} --repair`" in err
    code, out, err = cli("list", "--format", "json")
    assert json.loads(out)[0]["split"] == f"{SPLIT}`jupyreg check {NAME} --repair`"
    assert SPLIT in err


def test_load_and_models_warn_with_split_references(seeded, alice, model) -> None:
    move_outside(seeded)
    with pytest.warns(SplitReferences) as caught:
        loaded = alice.load(NAME)  # the alias's version, as before the move
    [split] = [w for w in caught if w.category is SplitReferences]
    assert str(split.message) == f"{SPLIT}reg.check({NAME!r}, repair=True)"
    assert split.filename == __file__  # points at the user's line
    assert list(loaded.predict(model.sample_input)) == list(model.predict(model.sample_input))
    with pytest.warns(SplitReferences, match="models:/fraud-detector@production is v3"):
        alice.models()


def test_repair_brings_the_references_back_in_step_and_names_no_repairer_as_author(
    seeded, alice, bob, cli
) -> None:
    move_outside(seeded)
    code, out, _ = cli("check", NAME, "--repair", user="carol")
    assert code == 0
    client = MlflowClient(seeded, seeded)
    assert int(client.get_latest_versions(NAME, ["Production"])[0].version) == 7
    assert int(client.get_model_version_by_alias(NAME, "production").version) == 7
    events = {e.version: e for e in alice.history_records(NAME)[-2:]}
    assert {v: (e.from_stage, e.to_stage) for v, e in events.items()} == {
        3: ("Production", "Archived"),
        7: ("None", "Production"),
    }
    for event in events.values():
        assert event.author == "unknown (outside jupyreg)" and event.repaired_by == "carol"
        assert event.reason.startswith("adopted a move made outside jupyreg (by unknown)")
    history = alice.history(NAME)
    assert history["author"].iloc[-1] == "unknown (outside jupyreg)"
    assert history["repaired_by"].iloc[-1] == "carol"
    assert history["repaired_by"].iloc[:-2].isna().all()  # jupyreg's own moves: none
    _, out, _ = cli("history", NAME, "--format", "json")
    assert json.loads(out)[-1]["repaired_by"] == "carol"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SplitReferences)
        alice.load(NAME)
        assert alice.check(NAME).empty
    code, _, err = cli("list")
    assert code == 0 and "warning" not in err


def test_no_warning_where_nothing_moved_outside(seeded, alice, bob, cli) -> None:
    alice.transition(NAME, 5, "Staging", reason="next")
    alice.transition(NAME, 4, "Staging", reason="another")  # two in Staging: not exclusive
    with warnings.catch_warnings():
        warnings.simplefilter("error", SplitReferences)
        alice.load(NAME)
        alice.load(NAME, "Staging")
        alice.models()
    code, out, err = cli("list", "--format", "json")
    assert code == 0 and "warning" not in err and json.loads(out)[0]["split"] is None


def _facts(version: int, legacy: str, tag: str | None) -> VersionFacts:
    return VersionFacts(version, (), tag, legacy)


def test_split_references_judges_the_newest_of_each_stage_against_the_aliases() -> None:
    def split(facts: list[VersionFacts], aliases: dict[str, int]) -> str | None:
        return lifecycle.split_references("m", facts, aliases)

    agreed = [_facts(3, "Production", "Production"), _facts(5, "Staging", "Staging")]
    assert split(agreed, {"production": 3, "staging": 5}) is None
    assert split(agreed, {"production": 3, "staging": 4}) is None  # both in Staging
    moved = [_facts(7, "Production", "Staging"), _facts(3, "Archived", "Production")]
    assert split(moved, {"production": 3}).startswith(
        "m: models:/m/Production is v7 but models:/m@production is v3 "
    )
    assert "models:/m/Production is no version but models:/m@production is v3" in split(
        [_facts(3, "Archived", "Production")], {"production": 3}
    )
    both = split([_facts(6, "Staging", "None")], {"production": 2, "staging": 4})
    assert "is no version but models:/m@production is v2, and models:/m/Staging is v6" in both
    assert "models:/m@staging is no version" in split([_facts(5, "Staging", "Staging")], {})
