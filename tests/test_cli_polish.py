"""What users of the CLI and the API ran into (issue 17): reads in JSON, exit codes of bad
usage, next steps worded for the front end in use, tables without NaN, registry paths that
do not exist, and where an embedded registry keeps its artifacts."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from jupyreg import Registry
from jupyreg.cli import main
from jupyreg.display import version_text
from jupyreg.errors import InvalidArgument, NotFound
from jupyreg.lineage import Lineage

NAME = "fraud-detector"
LINEAGE = Lineage.from_record({"environment": {"requirements": ["scikit-learn"]}})


@pytest.fixture
def one_version(alice: Registry, model) -> Registry:
    alice.register(model, NAME, metrics={"test": {"auc": 0.9}}, lineage=LINEAGE)
    return alice


def test_policy_reads_take_format_json(cli, one_version) -> None:
    code, out, _ = cli("policy", "show", NAME, "--format", "json")
    assert code == 0 and json.loads(out)["approvals"] == {"Production": 1}
    assert cli("policy", "set", NAME, "--threshold", "test.auc >= 0.8", "--reason", "floor")[0] == 0
    code, out, _ = cli("policy", "history", NAME, "--format", "json")
    assert code == 0 and [row["reason"] for row in json.loads(out)] == ["floor"]


def test_misspelt_stage_and_unreadable_time_are_bad_usage(cli, one_version) -> None:
    code, _, err = cli("promote", NAME, "1", "Prod", "--reason", "x")
    assert code == 2 and "unknown stage 'Prod'" in err
    with pytest.raises(InvalidArgument, match="cannot read the time 'yesterday'.*2026-11-20"):
        one_version.stage_at(NAME, "Production", "yesterday")
    assert one_version.stage_at(NAME, "Production", "2026-11-20") is None


def test_next_steps_name_the_cli_verb_in_the_cli_and_python_in_the_api(cli, one_version) -> None:
    code, _, err = cli("promote", NAME, "9", "Staging", "--reason", "x")
    assert code == 2 and f"`jupyreg versions {NAME}` lists them" in err and "reg." not in err
    one_version.transition(NAME, 1, "Staging", reason="candidate")
    code, _, err = cli("promote", NAME, "1", "Production", "--reason", "x")
    assert code == 1 and f"file `jupyreg request {NAME} 1 Production --reason TEXT`" in err
    code, _, err = cli("approve", "deadbeef")
    assert code == 2 and "`jupyreg requests` lists the pending ones" in err
    with pytest.raises(NotFound, match=r"reg\.versions\('fraud-detector'\) lists them"):
        one_version.get(NAME, 9)


def test_an_empty_reason_asks_for_the_flag_in_the_cli_and_the_keyword_in_the_api(
    cli, one_version
) -> None:
    code, _, err = cli("promote", NAME, "1", "Staging", "--reason", " ")
    assert code == 2 and "needs a reason: pass --reason TEXT" in err and "reason='" not in err
    with pytest.raises(InvalidArgument, match="needs a reason: pass reason='why this change'") as e:
        one_version.transition(NAME, 1, "Staging", reason=" ")
    assert (e.value.code, e.value.field) == ("invalid_argument", "reason")


def test_tables_show_missing_values_as_a_dash(cli, one_version) -> None:
    one_version.transition(NAME, 1, "Staging", reason="candidate")
    code, out, _ = cli("history", NAME)
    row = out.splitlines()[1]
    assert code == 0 and "NaN" not in out and row.split()[-1] == "-"  # no request id
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +1 +None +Staging +alice +candidate", row)
    code, out, _ = cli("list")
    header, row = out.splitlines()
    values = dict(zip(header.split()[:4], row.split()[:4], strict=True))
    assert values == {"name": NAME, "latest_version": "1", "production": "-", "staging": "1"}


def test_a_registry_in_a_missing_folder_is_an_error_and_creates_nothing(
    tmp_path: Path, capsys
) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    assert main(["--tracking-uri", f"sqlite:///{missing}/mlflow.db", "list"]) == 3
    err = capsys.readouterr().err
    assert f"the folder {missing} does not exist" in err and err.count("\n") == 1
    assert not missing.parent.exists()


def test_embedded_registry_keeps_artifacts_beside_its_database(
    tmp_path: Path, empty_registry_db: Path, workdir: Path, model, monkeypatch
) -> None:
    home = tmp_path / "A"
    home.mkdir()
    shutil.copyfile(empty_registry_db, home / "r.db")
    mv = Registry(f"sqlite:///{home / 'r.db'}", user="a").register(model, "m", lineage=LINEAGE)
    assert mv.source.startswith(str(home / "mlartifacts"))
    assert not (workdir / "mlruns").exists() and not (workdir / "mlartifacts").exists()
    assert f"artifacts: {mv.source}" in version_text(mv)
    monkeypatch.setenv("JUPYREG_ARTIFACT_ROOT", "elsewhere")
    other = Registry(f"sqlite:///{home / 'r.db'}", user="a").register(model, "n", lineage=LINEAGE)
    assert other.source.startswith(str(workdir / "elsewhere"))


def test_artifact_location_setting(tmp_path: Path, workdir: Path, monkeypatch) -> None:
    from jupyreg import settings

    uri = f"sqlite:///{tmp_path / 'A' / 'r.db'}"
    assert settings.resolve(uri).artifact_location == str(tmp_path / "A" / "mlartifacts")
    assert settings.resolve("http://127.0.0.1:5000").artifact_location is None  # server's say
    (workdir / "pyproject.toml").write_text('[tool.jupyreg]\nartifact_location = "s3://b/p"\n')
    assert settings.resolve(uri).artifact_location == "s3://b/p"
    monkeypatch.setenv("JUPYREG_ARTIFACT_ROOT", "art")
    assert settings.resolve(uri).artifact_location == str(workdir / "art")
