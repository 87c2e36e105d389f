"""The server's guard on MLflow's own write routes: an allow-list of classified routes, the
request read as MLflow's handler reads it, and lifecycle state written only by the
lifecycle, whatever the spelling (the guard is a function of the request and the state)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from jupyreg.server.guard import Refusal, Request, check
from jupyreg.server.routes import ROUTES, classify, native_open

FORGED_STEP = '{"id": "x", "moves": [[2, "None", "Production", "forged"]], "done": false}'
PREFIXES = ["/api/2.0/", "/ajax-api/2.0/", "/mlflow/api/2.0/", "/mlflow/ajax-api/2.0/"]


class Registry:
    """The guard's reads, answered from a dict: m v1 Production, v2 Staging, v3 Archived."""

    def __init__(self) -> None:
        self.kept: list[tuple[str, int]] = []
        self.held: list[str] = []

    def stages(self, name: str) -> dict[int, str]:
        return {1: "Production", 2: "Staging", 3: "Archived"} if name == "m" else {}

    def registered_version_of(self, run_id: str | None, model_id: str | None) -> str | None:
        return "m v1" if (run_id or model_id or "").endswith("1" * 32) else None

    def keep_history(self, name: str, version: int) -> None:
        self.kept.append((name, version))

    def hold(self, name: str) -> None:
        self.held.append(name)


def attempt(
    method: str,
    route: str,
    body: Any = None,
    *,
    prefix: str = "/api/2.0/",
    query: dict[str, list[str]] | None = None,
    content_type: str | None = "application/json",
    raw: bytes | None = None,
    view_args: dict[str, Any] | None = None,
    state: Registry | None = None,
) -> Refusal | dict | None:
    static = "/mlflow" if prefix.startswith("/mlflow/") else ""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    request = Request(
        method=method,
        rule=prefix + route,
        args=query or {},
        body=lambda: data,
        content_type=content_type,
        view_args=view_args or {},
        user="eve",
    )
    return check(request, state or Registry(), static)


def refused(outcome: Refusal | dict | None, status: int = 403) -> str:
    assert isinstance(outcome, Refusal), outcome
    assert outcome.status == status, outcome
    return outcome.message


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(
    "key", ["jupyreg.step", "jupyreg.policy", "JUPYREG.POLICY", " jupyreg.step", "Jupyreg.Step"]
)
@pytest.mark.parametrize(
    "method,route",
    [
        ("POST", "mlflow/registered-models/set-tag"),
        ("DELETE", "mlflow/registered-models/delete-tag"),
    ],
)
def test_model_tags_of_jupyreg_are_refused_in_any_spelling(prefix, key, method, route) -> None:
    body = {"name": "m", "key": key, "value": FORGED_STEP}
    assert "managed by jupyreg" in refused(attempt(method, route, body, prefix=prefix))


@pytest.mark.parametrize(
    "key", ["jupyreg.stage", "JUPYREG.STAGE", " jupyreg.event.x", "jupyreg.git.dirty"]
)
def test_version_tags_of_jupyreg_are_refused_in_any_spelling(key) -> None:
    body = {"name": "m", "version": "1", "key": key, "value": "false"}
    assert "managed by jupyreg" in refused(attempt("POST", "mlflow/model-versions/set-tag", body))


@pytest.mark.parametrize("alias", ["production", "Production", "PRODUCTION", " staging", "Staging"])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_stage_aliases_are_reserved_in_any_case(alias, method) -> None:
    body = {"name": "m", "alias": alias, "version": "2"}
    assert "reserved" in refused(attempt(method, "mlflow/registered-models/alias", body))
    assert attempt(method, "mlflow/registered-models/alias", {**body, "alias": "champion"})


def test_registration_may_carry_lineage_but_not_lifecycle_state() -> None:
    def create(*pairs: tuple[str, str]) -> Refusal | dict | None:
        tags = [{"key": k, "value": v} for k, v in pairs]
        return attempt("POST", "mlflow/model-versions/create", {"name": "m", "tags": tags})

    lineage = ("jupyreg.git.dirty", "false"), ("jupyreg.stage", "None")
    assert isinstance(create(*lineage, ("jupyreg.author", "eve")), dict)
    for forged in ("jupyreg.step", "jupyreg.event.1", "JUPYREG.GIT.DIRTY", "jupyreg.policy"):
        assert "cannot be set at creation" in refused(create(*lineage, (forged, "x")))
    assert "authenticated user" in refused(create(("jupyreg.author", "bob")))
    assert "starts in stage None" in refused(create(("jupyreg.stage", "Production")))
    model = attempt("POST", "mlflow/registered-models/create", {"name": "n", "tags": []})
    assert isinstance(model, dict)


def test_the_body_is_read_as_mlflows_handler_reads_it_whatever_the_content_type() -> None:
    """MLflow's basic-auth reads a non-JSON DELETE's query string, its handler the body."""
    route = "mlflow/registered-models/delete"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        outcome = attempt(
            "DELETE", route, {"name": "m"}, query={"name": ["eve-own"]}, content_type=content_type
        )
        assert "different 'name'" in refused(outcome, 400) or "as JSON" in refused(outcome, 400)
    double = json.dumps(json.dumps({"name": "m", "key": "jupyreg.stage", "value": "x"})).encode()
    outcome = attempt("POST", "mlflow/model-versions/set-tag", raw=double)
    assert "managed by jupyreg" in refused(outcome)  # double-encoded JSON is decoded as MLflow does


@pytest.mark.parametrize(
    "raw", [b"[1, 2]", b'"text"', b"5", b"null", b"{", b"[" * 100_000 + b"]" * 100_000]
)
@pytest.mark.parametrize(
    "method,route",
    [("DELETE", "mlflow/model-versions/delete"), ("POST", "jupyreg/<action>")],
)
def test_a_body_that_is_not_a_json_object_is_a_400(raw, method, route) -> None:
    refused(attempt(method, route, raw=raw), 400)


@pytest.mark.parametrize(
    "tags", [{"jupyreg.stage": "Production"}, [None], [{"key": 5, "value": "x"}], "x"]
)
def test_malformed_creation_tags_are_a_400(tags) -> None:
    refused(attempt("POST", "mlflow/model-versions/create", {"name": "m", "tags": tags}), 400)


def test_versions_that_hold_a_stage_stay_and_history_outlives_the_others() -> None:
    state = Registry()
    route = "mlflow/model-versions/delete"
    for version in (1, 2):
        message = refused(attempt("DELETE", route, {"name": "m", "version": version}, state=state))
        assert "'Archived'" in message and "reg.transition" in message
    assert isinstance(attempt("DELETE", route, {"name": "m", "version": "3"}, state=state), dict)
    assert state.kept == [("m", 3)] and set(state.held) == {"m"}
    for method, verb in (("DELETE", "delete"), ("POST", "rename")):
        message = refused(attempt(method, f"mlflow/registered-models/{verb}", {"name": "m"}))
        assert "v1 in Production" in message and "v2 in Staging" in message
    assert attempt("DELETE", "mlflow/registered-models/delete", {"name": "other"}) is not None


def test_a_registered_versions_files_are_immutable() -> None:
    held, free = "1" * 32, "2" * 32
    for path in (f"1/{held}/artifacts/model.pkl", f"1/models/m-{held}/artifacts/MLmodel"):
        for method in ("PUT", "DELETE"):
            outcome = attempt(
                method,
                "mlflow-artifacts/artifacts/<path:artifact_path>",
                view_args={"artifact_path": path},
                raw=b"\x00binary",
                content_type="application/octet-stream",
            )
            assert "immutable" in refused(outcome)
    upload = attempt("POST", "mlflow/upload-artifact", query={"run_uuid": [held]}, raw=b"x")
    assert "immutable" in refused(upload)
    presigned = "mlflow/artifacts/presigned-upload-url"
    for field, value in (("run_id", held), ("model_id", f"m-{held}")):
        assert "immutable" in refused(attempt("POST", presigned, {field: value, "path": "x"}))
    assert "immutable" in refused(attempt("POST", "mlflow/runs/delete", {"run_id": held}))
    assert isinstance(attempt("POST", "mlflow/runs/delete", {"run_id": free}), dict)


def test_transition_stage_is_the_lifecycles_and_an_unknown_write_is_refused() -> None:
    body = {"name": "m", "version": "2", "stage": "Production"}
    assert "lifecycle" in refused(attempt("POST", "mlflow/model-versions/transition-stage", body))
    assert "does not know" in refused(attempt("POST", "mlflow/model-versions/promote-now", body))
    assert attempt("GET", "mlflow/model-versions/get", body) is None  # reads pass
    assert isinstance(attempt("POST", "mlflow/runs/log-metric", {"key": "test.auc"}), dict)


def test_every_write_route_of_the_installed_mlflow_is_classified(tmp_path) -> None:
    """A route a newer MLflow adds fails here (and is refused by the server meanwhile)."""
    script = f"""
import os
os.environ.update(MLFLOW_FLASK_SERVER_SECRET_KEY="k", MLFLOW_AUTH_ADMIN_PASSWORD="Adm1n-pw-987",
    _MLFLOW_SERVER_FILE_STORE="sqlite:///{tmp_path}/m.db", _MLFLOW_STATIC_PREFIX="/mlflow",
    MLFLOW_AUTH_CONFIG_PATH="{tmp_path}/auth.ini")
open("{tmp_path}/auth.ini", "w").write(
    "[mlflow]\\ndefault_permission = READ\\ndatabase_uri = sqlite:///{tmp_path}/a.db\\n"
    "admin_username = admin\\nadmin_password = Adm1n-pw-987\\n"
    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\\n")
from jupyreg.server.app import create_app
from mlflow.server import app
create_app(app)
for rule in app.url_map.iter_rules():
    for method in sorted(rule.methods & {{"POST", "PUT", "PATCH", "DELETE"}}):
        print(method, rule.rule)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    writes = [line.split(" ", 1) for line in result.stdout.splitlines()]
    assert len(writes) > 200  # every API prefix, and the static prefix
    unclassified = [f"{m} {r}" for m, r in writes if classify(m, r, "/mlflow") is None]
    assert unclassified == []
    assert {"POST /mlflow/api/2.0/jupyreg/<action>", "POST /api/2.0/jupyreg/<action>"} <= {
        f"{m} {r}" for m, r in writes
    }
    assert len(ROUTES) > 140


@pytest.mark.parametrize(
    "path,open_",
    [
        ("/v1/traces", True),
        ("/mlflow/v1/traces", True),
        ("/gateway/chat/mlflow/invocations", True),
        ("/ajax-api/3.0/jobs/cancel/7", True),
        ("/api/3.0/mlflow/mcp-servers/s/versions/1/tags", True),
        ("/api/2.0/mlflow-artifacts/artifacts/1/models/m-1/artifacts/model.pkl", False),
        ("/api/2.0/mlflow/registered-models/delete", False),
        ("/v1/traces/../../api/2.0/mlflow/registered-models/delete", False),
    ],
)
def test_writes_fastapi_serves_alone_are_named_not_guessed(path, open_) -> None:
    """FastAPI's own routes never reach Flask's guard: those with no Flask twin are open only
    when named, by their whole path."""
    assert native_open(path, "/mlflow") is open_
