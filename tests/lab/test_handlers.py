"""The REST API of the JupyterLab sidebar against a real jupyter_server and SQLite registry."""

from __future__ import annotations

import json
import shutil

import pytest
from tornado.httpclient import HTTPClientError

from jupyreg.errors import PolicyViolation


async def test_models_lists_the_seeded_model(seeded, api):
    status, body = await api("GET", "models")
    assert status == 200
    [model] = body["models"]
    assert model["name"] == seeded["name"]
    assert model["latest_version"] == 2
    assert model["staging"] == 1
    assert model["production"] is None


async def test_versions_carry_stage_aliases_metrics_and_lineage_summary(seeded, api):
    status, body = await api("GET", "models", seeded["name"], "versions")
    assert status == 200
    v1, v2 = body["versions"]
    assert (v1["version"], v1["stage"], v1["aliases"]) == (1, "Staging", ["staging"])
    assert (v2["version"], v2["stage"], v2["aliases"]) == (2, "None", [])
    assert v1["metrics"] == {"val.auc": pytest.approx(0.8), "test.auc": pytest.approx(0.79)}
    assert v1["author"] == "alice"
    assert v1["created"].endswith("Z")
    assert {"git_commit", "git_dirty", "data", "gpu"} <= set(v1)


async def test_metrics_named_like_fields_do_not_break_the_versions_api(seeded, alice, model, api):
    alice.register(model, seeded["name"], metrics={"stage": 0.5, "version": 7.0, "gpu": 2.0})
    status, body = await api("GET", "models", seeded["name"], "versions")
    assert status == 200
    v3 = body["versions"][-1]
    assert (v3["version"], v3["stage"], v3["gpu"]) == (3, "None", None)
    assert v3["metrics"] == {"stage": 0.5, "version": 7.0, "gpu": 2.0}


async def test_history_lists_stage_changes_oldest_first(seeded, alice, api):
    alice.transition(seeded["name"], 2, "Staging", reason="second try")
    status, body = await api("GET", "models", seeded["name"], "history")
    assert status == 200
    assert [(e["version"], e["from_stage"], e["to_stage"]) for e in body["history"]] == [
        (1, "None", "Staging"),
        (2, "None", "Staging"),
    ]
    assert body["history"][0]["author"] == "alice"
    assert body["history"][0]["reason"] == "best validation AUC"

    status, body = await api("GET", "models", seeded["name"], "history", params={"version": "2"})
    assert [e["version"] for e in body["history"]] == [2]


async def test_requests_lists_pending_then_all(seeded, alice, api):
    status, body = await api("GET", "requests")
    assert status == 200
    [pending] = body["requests"]
    assert pending["id"] == seeded["request_id"]
    assert (pending["version"], pending["to_stage"], pending["requested_by"]) == (
        1,
        "Production",
        "alice",
    )
    alice.cancel(seeded["request_id"])
    assert (await api("GET", "requests"))[1]["requests"] == []
    status, body = await api("GET", "requests", params={"status": "all", "name": seeded["name"]})
    assert [r["status"] for r in body["requests"]] == ["cancelled"]


async def test_post_request_files_a_pending_request_as_the_server_user(seeded, alice, api):
    status, body = await api(
        "POST",
        "requests",
        body={"name": seeded["name"], "version": 2, "stage": "staging", "reason": "try v2"},
    )
    assert status == 201
    assert body["request"]["requested_by"] == "bob"
    assert body["request"]["to_stage"] == "Staging"
    assert body["request"]["status"] == "pending"
    pending = alice.requests(seeded["name"])
    assert set(pending["id"]) == {seeded["request_id"], body["request"]["id"]}


async def test_post_approve_moves_the_version_to_production(seeded, alice, api):
    status, body = await api(
        "POST", "requests", seeded["request_id"], "approve", body={"comment": "lgtm"}
    )
    assert status == 200
    assert body["request"]["status"] == "approved"
    assert body["request"]["decided_by"] == "bob"
    assert alice.get(seeded["name"], 1).stage == "Production"
    last = alice.history(seeded["name"]).iloc[-1]
    assert (last["to_stage"], last["author"], last["request_id"]) == (
        "Production",
        "bob",
        seeded["request_id"],
    )
    status, body = await api("GET", "models", seeded["name"], "versions")
    assert body["versions"][0]["stage"] == "Production"
    assert body["versions"][0]["aliases"] == ["production"]


async def test_post_reject_keeps_the_stage_and_records_the_comment(seeded, alice, api):
    status, body = await api(
        "POST", "requests", seeded["request_id"], "reject", body={"comment": "needs test data"}
    )
    assert status == 200
    assert (body["request"]["status"], body["request"]["comment"]) == (
        "rejected",
        "needs test data",
    )
    assert alice.get(seeded["name"], 1).stage == "Staging"


async def test_self_approval_is_refused_with_the_api_message(seeded, bob, api):
    _, filed = await api(
        "POST",
        "requests",
        body={"name": seeded["name"], "version": 2, "stage": "Staging", "reason": "mine"},
    )
    request_id = filed["request"]["id"]
    status, body = await api("POST", "requests", request_id, "approve", body={})
    assert status == 409
    with pytest.raises(PolicyViolation) as refused:
        bob.approve(request_id)
    assert body["error"] == "PolicyViolation"
    assert body["detail"] == str(refused.value)
    assert "reg." not in body["message"] and "own request" in body["message"]
    assert bob.get(seeded["name"], 2).stage == "None"


async def test_unknown_model_version_and_request_are_json_errors(seeded, api):
    status, body = await api("GET", "models", "no-such-model", "versions")
    assert status == 404
    assert body["error"] == "NotFound"
    assert "no-such-model" in body["message"]

    status, body = await api("POST", "requests", "deadbeef", "approve", body={})
    assert (status, body["error"]) == (404, "NotFound")

    status, body = await api("GET", "models", seeded["name"], "history", params={"version": "abc"})
    assert (status, body["error"]) == (400, "InvalidArgument")

    status, body = await api(
        "POST",
        "requests",
        body={"name": seeded["name"], "version": 99, "stage": "Staging", "reason": "x"},
    )
    assert (status, body["error"]) == (404, "NotFound")


async def test_malformed_bodies_are_bad_requests(seeded, api):
    status, body = await api("POST", "requests", body={"version": 1, "stage": "Staging"})
    assert (status, body["error"]) == (400, "InvalidArgument")
    status, body = await api("POST", "requests", body=[1, 2])
    assert (status, body["error"]) == (400, "InvalidArgument")
    status, body = await api(
        "POST", "requests", body={"name": seeded["name"], "version": 2, "stage": "Staging"}
    )
    assert (status, body["error"]) == (400, "InvalidArgument")
    assert "reason" in body["message"]


async def test_a_body_that_is_not_utf8_is_a_400_not_a_500(seeded, jp_fetch):
    """Found by tests/test_fuzz.py: jupyter_server decodes a JSON body outside its own
    error handling, so bytes that are not UTF-8 answered 500."""
    for path in (("requests",), ("requests", seeded["request_id"], "approve")):
        response = await jp_fetch(
            "jupyreg", "api", *path, method="POST", body=b'{"name": "\xff\xfe"}', raise_error=False
        )
        assert response.code == 400
        assert json.loads(response.body) == {
            "error": "InvalidArgument",
            "code": "invalid_argument",
            "message": "the request body is not JSON",
            "detail": "the request body is not JSON",
        }


async def test_an_unknown_stage_is_a_refusal(seeded, api):
    from jupyreg.errors import RegistryError, http_status
    from jupyreg.lifecycle import normalize_stage

    with pytest.raises(RegistryError) as refused:
        normalize_stage("Heaven")
    status, body = await api(
        "POST",
        "requests",
        body={"name": seeded["name"], "version": 2, "stage": "Heaven", "reason": "x"},
    )
    assert (status, body["error"]) == (http_status(refused.value), type(refused.value).__name__)


async def test_unauthenticated_calls_are_refused(seeded, jp_fetch):
    for method, path, body in [
        ("GET", ("models",), None),
        ("POST", ("requests", seeded["request_id"], "approve"), "{}"),
    ]:
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch(
                "jupyreg", "api", *path, method=method, body=body, headers={"Authorization": ""}
            )
        assert refused.value.code in (401, 403)


async def test_identity_is_the_configured_user(seeded, api):
    assert await api("GET", "identity") == (200, {"user": "bob"})


async def test_pending_requests_carry_the_candidates_metrics_and_deltas_vs_production(
    seeded, alice, api
):
    """v1 (val.auc 0.80) goes to Production; v2 (0.81) is requested: the inbox's data."""
    status, body = await api("GET", "requests")
    [before] = body["requests"]
    assert before["production"] is None and before["deltas"] == {}
    assert before["metrics"] == {"val.auc": pytest.approx(0.8), "test.auc": pytest.approx(0.79)}

    await api("POST", "requests", seeded["request_id"], "approve", body={"comment": "ok"})
    filed = alice.request(seeded["name"], 2, "Staging", reason="try v2")
    status, body = await api("GET", "requests")
    assert status == 200
    [pending] = body["requests"]
    assert pending["id"] == filed.id
    assert pending["production"] == {
        "version": 1,
        "metrics": {"val.auc": pytest.approx(0.8), "test.auc": pytest.approx(0.79)},
    }
    auc = pending["deltas"]["val.auc"]
    assert auc["value"] == pytest.approx(0.81) and auc["baseline"] == pytest.approx(0.8)
    assert auc["difference"] == pytest.approx(0.01)
    assert auc["direction"] == "better"
    assert pending["deltas"]["test.auc"]["direction"] == "same"

    status, body = await api("GET", "requests", params={"review": "0"})
    assert "deltas" not in body["requests"][0]


async def test_versions_carry_allowed_moves_and_pending_requests(seeded, alice, api):
    alice.transition(seeded["name"], 2, "Archived", reason="superseded")
    status, body = await api("GET", "models", seeded["name"], "versions")
    v1, v2 = body["versions"]
    assert v1["targets"] == ["Production", "Archived"]
    assert v1["pending_requests"] == [
        {"id": seeded["request_id"], "to_stage": "Production", "requested_by": "alice"}
    ]
    assert v2["targets"] == ["Staging"]  # from Archived only back to Staging
    assert v2["pending_requests"] == []


async def test_history_events_carry_the_review_comments(seeded, api):
    await api("POST", "requests", seeded["request_id"], "approve", body={"comment": "lgtm, AUC up"})
    status, body = await api("GET", "models", seeded["name"], "history")
    last = body["history"][-1]
    assert last["to_stage"] == "Production"
    assert [(c["by"], c["comment"]) for c in last["comments"]] == [("bob", "lgtm, AUC up")]
    assert body["history"][0]["comments"] == []


async def test_an_empty_reason_is_refused_in_words_for_the_gui(seeded, api):
    status, body = await api(
        "POST",
        "requests",
        body={"name": seeded["name"], "version": 2, "stage": "Staging", "reason": "  "},
    )
    assert (status, body["error"]) == (400, "InvalidArgument")
    assert "reason=" not in body["message"] and "pass " not in body["message"]
    assert "Reason box" in body["message"]
    assert "reason='why this change'" in body["detail"]


async def test_error_json_carries_the_code_and_words_the_message_from_its_parts(seeded, api):
    """The sidebar words an error from its ``code`` and parts, never from its text: the
    Python and CLI next steps (``hint``) stay in ``detail`` only."""
    status, body = await api("GET", "models", "no-such-model", "versions")
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"] == "no registered model named 'no-such-model'"
    assert "hint" not in body and "reg.models()" in body["detail"]
    status, body = await api("POST", "requests", "deadbeef", "approve", body={})
    assert (status, body["code"], body["message"]) == (404, "not_found", "no request 'deadbeef'")
    status, body = await api(
        "POST",
        "requests",
        body={"name": seeded["name"], "version": 2, "stage": "Staging", "reason": ""},
    )
    assert (status, body["code"], body["field"]) == (400, "invalid_argument", "reason")
    assert body["hint"] == "write why in the Reason box"
    assert body["message"].endswith("needs a reason: write why in the Reason box")


async def test_the_sidebar_setting_can_choose_another_registry(
    seeded, api, tmp_path, empty_registry_db
):
    """The ``registryUri`` setting travels as a header; the configured registry otherwise."""
    shutil.copyfile(empty_registry_db, tmp_path / "other.db")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    status, body = await api("GET", "models", headers={"X-JupyReg-Registry-URI": other})
    assert (status, body["models"]) == (200, [])
    status, body = await api("GET", "models")
    assert [m["name"] for m in body["models"]] == [seeded["name"]]


@pytest.mark.parametrize(
    "uri",
    [
        "databricks",
        "databricks-uc",
        "databricks://profile",
        "mysql://u:p@127.0.0.1:1/db",
        "file:///tmp/mlruns",
        "ftp://example.com/registry",
        "mlflow.db",
        "http://",
        "https:///no-host",
    ],
)
async def test_a_registry_uri_of_another_scheme_is_a_400_naming_the_supported_ones(
    seeded, api, uri
):
    """Issue 23: a ``databricks`` registry URI in the header answered 500."""
    status, body = await api("GET", "models", headers={"X-JupyReg-Registry-URI": uri})
    assert (status, body["error"]) == (400, "InvalidArgument")
    assert "sqlite:///PATH" in body["message"] and "postgresql" in body["message"]
    assert "\n" not in body["message"] and "p@" not in body["message"]


async def test_a_registry_uri_never_creates_or_touches_a_file(seeded, api, tmp_path):
    """Issue 23: a SQLite URI in the header created a database wherever the Jupyter user
    can write. It must name an existing MLflow database; nothing else is created or opened
    for writing, a non-MLflow SQLite file included (MLflow would add its tables to it)."""
    import sqlite3

    place = tmp_path / "registries"
    place.mkdir()
    notes = place / "notes.txt"
    notes.write_text("not a database")
    other = place / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    before = other.read_bytes()
    cases = {
        f"sqlite:///{place / 'new.db'}": "names no existing file",
        f"sqlite:///{place / 'no-such-folder' / 'new.db'}": "names no existing file",
        f"sqlite:///{place}": "names no existing file",
        "sqlite://": "names no existing file",
        "sqlite:///:memory:": "names no existing file",
        f"sqlite:///{notes}": "is not an MLflow database",
        f"sqlite:///{other}": "is not an MLflow database",
    }
    for uri, message in cases.items():
        status, body = await api("GET", "models", headers={"X-JupyReg-Registry-URI": uri})
        assert (status, body["error"]) == (400, "InvalidArgument"), (uri, body)
        assert message in body["message"]
    assert sorted(p.name for p in place.iterdir()) == ["notes.txt", "other.sqlite"]
    assert other.read_bytes() == before


async def test_the_inbox_says_who_may_decide_a_request_its_reader_may_not(seeded, alice, api):
    """The lab acts as bob: once Production's approvers are dana alone, bob's inbox keeps
    alice's request with the lifecycle's reason instead of the decision controls."""
    status, body = await api("GET", "requests")
    assert body["requests"][0]["blocked"] is None
    alice.set_policy(seeded["name"], approvers={"Production": ["dana"]}, reason="dana signs")
    status, body = await api("GET", "requests")
    [pending] = body["requests"]
    assert status == 200
    assert "bob may not approve" in pending["blocked"]
    assert "Production approvers are dana" in pending["blocked"]
    status, body = await api("POST", "requests", seeded["request_id"], "approve", body={})
    assert status == 409 and "approvers are dana" in body["detail"]
