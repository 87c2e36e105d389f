"""The `jupyreg` CLI: every verb, JSON output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyreg.cli import main
from tests.conftest import register_versions

NAME = "fraud-detector"


@pytest.fixture
def two_versions(alice, model) -> None:
    register_versions(alice, model, NAME, 2)


def test_reads_print_tables_and_parseable_json(cli, two_versions) -> None:
    code, out, _ = cli("list")
    assert code == 0 and NAME in out
    code, out, _ = cli("list", "--format", "json")
    assert json.loads(out)[0]["name"] == NAME
    code, out, _ = cli("versions", NAME, "--format", "json")
    assert [row["version"] for row in json.loads(out)] == [1, 2]
    code, out, _ = cli("compare", NAME, "1", "2", "--format", "json")
    rows = {row["field"]: row for row in json.loads(out)}
    assert rows["metrics.val.auc"]["differs"] is True
    for verb in (
        ["history", NAME],
        ["history", NAME, "1"],
        ["requests"],
        ["requests", NAME],
        ["check"],
        ["check", NAME],
    ):
        code, out, _ = cli(*verb, "--format", "json")
        assert code == 0 and json.loads(out) == []


def test_request_approve_promote_rollback_flow(cli, two_versions) -> None:
    assert cli("promote", NAME, "1", "staging", "--reason", "candidate")[0] == 0
    code, _, err = cli("promote", NAME, "1", "Production", "--reason", "ship")
    assert code == 1 and "needs 1 approval" in err
    code, out, _ = cli("request", NAME, "1", "Production", "--reason", "ship", "--format", "json")
    request_id = json.loads(out)["id"]
    code, out, _ = cli("requests", "--format", "json")
    assert [r["id"] for r in json.loads(out)] == [request_id]
    code, _, err = cli("approve", request_id)
    assert code == 1 and "own request" in err
    code, out, _ = cli("approve", request_id, "--comment", "lgtm", user="bob")
    assert code == 0 and "approved" in out
    cli("promote", NAME, "2", "Staging", "--reason", "next")
    _, out, _ = cli("request", NAME, "2", "Production", "--reason", "better", "--format", "json")
    assert cli("reject", json.loads(out)["id"], "--comment", "no", user="bob")[0] == 0
    _, out, _ = cli("request", NAME, "2", "Production", "--reason", "again", "--format", "json")
    assert cli("approve", json.loads(out)["id"], user="bob")[0] == 0
    code, out, _ = cli("rollback", NAME, "--reason", "v2 regressed")
    assert code == 0 and "v1 is now in Production" in out
    _, out, _ = cli("history", NAME, "--format", "json")
    assert [(e["version"], e["to_stage"]) for e in json.loads(out)][-2:] == [
        (2, "Archived"),
        (1, "Production"),
    ]
    _, out, _ = cli("requests", NAME, "--status", "all", "--format", "json")
    assert sorted(r["status"] for r in json.loads(out)) == ["approved", "approved", "rejected"]


def test_cancel_and_check_exit_codes(cli, two_versions, sqlite_uri) -> None:
    cli("promote", NAME, "1", "Staging", "--reason", "candidate")
    _, out, _ = cli("request", NAME, "1", "Production", "--reason", "x", "--format", "json")
    request_id = json.loads(out)["id"]
    assert cli("cancel", request_id, user="bob")[0] == 1
    assert cli("cancel", request_id)[0] == 0
    from mlflow import MlflowClient

    MlflowClient(sqlite_uri, sqlite_uri).set_registered_model_alias(NAME, "staging", "2")
    code, out, _ = cli("check", NAME)
    assert code == 1 and "alias 'staging' points at 2, should be 1" in out
    assert cli("check", NAME, "--repair")[0] == 0
    assert cli("check", NAME)[0] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["versions", "nope"], "no registered model named 'nope'"),
        (["approve", "deadbeef"], "no request 'deadbeef'"),
        (["promote", NAME, "1", "gold", "--reason", "x"], "unknown stage 'gold'"),
        (["promote", NAME, "9", "Staging", "--reason", "x"], "no version 9"),
        (["promote", NAME, "1", "Staging", "--reason", " "], "needs a reason"),
    ],
)
def test_bad_input_is_one_line_and_exit_code(cli, two_versions, argv, message) -> None:
    code, out, err = cli(*argv)
    assert code == 2, err  # a misspelt stage is bad usage, not a refusal
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_usage_errors_exit_2(cli) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("promote", NAME, "1")
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        cli("frobnicate")
    assert exited.value.code == 2


def test_users_need_a_server_and_leave_no_database_behind(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    assert main(["users", "grant", "dana", NAME, "edit"]) == 2
    err = capsys.readouterr().err
    assert "users live on a tracking server" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # no mlflow.db made by a refused command
    with pytest.raises(SystemExit) as exited:
        main(["--tracking-uri", "http://127.0.0.1:9", "users", "grant", "dana", NAME, "write"])
    assert exited.value.code == 2
    assert "invalid choice: 'WRITE'" in capsys.readouterr().err


def test_installed_entry_point_runs(sqlite_uri, two_versions) -> None:
    jupyreg = Path(sys.executable).parent / "jupyreg"
    out = subprocess.run(
        [str(jupyreg), "--tracking-uri", sqlite_uri, "versions", NAME, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 2
    out = subprocess.run(
        [str(jupyreg), "--tracking-uri", sqlite_uri, "approve", "0000beef"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and out.stderr.startswith("jupyreg: error: no request")


def test_metrics_named_like_fields_keep_json_well_formed(cli, alice, model) -> None:
    alice.register(model, NAME, metrics={"stage": 0.5, "version": 7.0, "gpu": 2.0})
    code, out, _ = cli("versions", NAME, "--format", "json")
    (row,) = json.loads(out)
    assert (code, row["version"], row["stage"], row["gpu"]) == (0, 1, "None", None)
    assert row["metrics"] == {"stage": 0.5, "version": 7.0, "gpu": 2.0}
    code, out, _ = cli("list")
    line = next(line for line in out.splitlines() if line.strip().startswith(NAME))
    assert code == 0 and line.split()[1:3] == ["1", "-"]  # latest 1, no Production


def test_request_json_lists_each_approval(cli, two_versions, alice) -> None:
    alice.transition(NAME, 1, "Staging", reason="candidate")
    code, out, _ = cli("request", NAME, "1", "Production", "--reason", "ship", "--format", "json")
    request = json.loads(out)
    code, out, _ = cli("approve", request["id"], "--comment", "ok", "--format", "json", user="bob")
    decided = json.loads(out)
    assert (code, decided["status"], decided["decided_by"]) == (0, "approved", "bob")
    assert [(a["by"], a["comment"]) for a in decided["approvals"]] == [("bob", "ok")]
    assert decided["approvals"][0]["at"].endswith("Z")
