"""The server's guard on MLflow's own write routes: an allow-list of classified routes, the
request read as MLflow's handler reads it, and lifecycle state written only by the
lifecycle, whatever the spelling (the guard is a function of the request and the state)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyreg.server.guard import Refusal, Request, check, gate
from jupyreg.server.routes import EMPTY, OPTIONAL, ROUTES, native_feature, route

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

    def owner_of_path(self, path: str) -> str | None:
        """m v1's files live where no fixed position tells: under experiment 7's folder."""
        owned = "7/x/models/m-" + "1" * 32
        inside = path == owned or path.startswith(owned + "/") or owned.startswith(path + "/")
        return "m v1" if inside or not path else None

    def experiment_holding(self, experiment_id: str) -> str | None:
        return "m v1 in Production" if experiment_id == "7" else None

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
    admin: bool = False,
    enabled: frozenset[str] = frozenset(),
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
    return check(request, state or Registry(), static, enabled, admin)


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
    owned = f"7/x/models/m-{held}"
    for path in (f"{owned}/artifacts/MLmodel", owned, "7/x", "7", f"7/x/./models/m-{held}/a"):
        for method in ("PUT", "DELETE"):
            outcome = attempt(
                method,
                "mlflow-artifacts/artifacts/<path:artifact_path>",
                view_args={"artifact_path": path},
                raw=b"\x00binary",
                content_type="application/octet-stream",
            )
            assert "immutable" in refused(outcome), path
    free_path = {"artifact_path": f"7/x/{free}/artifacts/model.pkl"}
    route_ = "mlflow-artifacts/artifacts/<path:artifact_path>"
    assert isinstance(attempt("PUT", route_, view_args=free_path, raw=b"x"), dict)
    dotted = {"artifact_path": f"8/../{owned}/artifacts/MLmodel"}
    assert "'..'" in refused(attempt("PUT", route_, view_args=dotted, raw=b"x"), 400)
    upload = attempt("POST", "mlflow/upload-artifact", query={"run_uuid": [held]}, raw=b"x")
    assert "immutable" in refused(upload)
    presigned = "mlflow/artifacts/presigned-upload-url"
    for field, value in (("run_id", held), ("model_id", f"m-{held}")):
        assert "immutable" in refused(attempt("POST", presigned, {field: value, "path": "x"}))
    assert "immutable" in refused(attempt("POST", "mlflow/runs/delete", {"run_id": held}))
    assert isinstance(attempt("POST", "mlflow/runs/delete", {"run_id": free}), dict)


def test_the_experiment_of_a_staging_or_production_version_stays() -> None:
    for route_, body in (
        ("mlflow/experiments/delete", {"experiment_id": "7"}),
        ("mlflow/experiments/update", {"experiment_id": "7", "new_name": "gone"}),
    ):
        assert "holds m v1 in Production" in refused(attempt("POST", route_, body))
        assert isinstance(attempt("POST", route_, {**body, "experiment_id": "8"}), dict)
    assert isinstance(attempt("POST", "mlflow/experiments/restore", {"experiment_id": "7"}), dict)


def test_only_an_admin_chooses_where_an_experiment_keeps_its_files() -> None:
    body = {"name": "M", "artifact_location": "mlflow-artifacts:/7/x"}
    create = "mlflow/experiments/create"
    assert "artifact_location" in refused(attempt("POST", create, body))
    assert isinstance(attempt("POST", create, body, admin=True), dict)
    assert isinstance(attempt("POST", create, {"name": "M"}), dict)


def test_a_tag_named_twice_at_creation_is_a_400() -> None:
    tags = [
        {"key": "mlflow.prompt.is_prompt", "value": "true"},
        {"key": "mlflow.prompt.is_prompt", "value": "false"},
    ]
    for route_ in ("mlflow/registered-models/create", "mlflow/model-versions/create"):
        body = {"name": "M", "source": "models:/m-1", "tags": tags}
        assert "more than once" in refused(attempt("POST", route_, body), 400)


@pytest.mark.parametrize(
    "method,route_,feature",
    [
        ("POST", "mlflow/gateway/secrets/create", "gateway"),
        ("GET", "mlflow/gateway/secrets/list", "gateway"),
        ("POST", "mlflow/scorer/invoke", "scorers"),
        ("GET", "mlflow/traces/get", "traces"),
        ("POST", "mlflow/genai/evaluate/invoke", "evaluation"),
        ("PATCH", "mlflow/jobs/cancel/<job_id>", "jobs"),
    ],
)
def test_features_the_server_does_not_serve_are_not_there(method, route_, feature) -> None:
    outcome = attempt(method, route_, {})
    assert f"--enable-mlflow-feature {feature}" in refused(outcome, 404)
    enabled = frozenset({feature})
    assert "admins only" in refused(attempt(method, route_, {}, enabled=enabled))
    assert not isinstance(attempt(method, route_, {}, enabled=enabled, admin=True), Refusal)


def test_a_search_filter_mlflow_cannot_parse_is_a_400() -> None:
    for route_ in ("mlflow/registered-models/search", "mlflow/model-versions/search"):
        bad = attempt("GET", route_, query={"filter": ["name IS NULL"]})
        assert "NULL" in refused(bad, 400)
        assert attempt("GET", route_, query={"filter": ["name = 'm'"]}) == {"filter": "name = 'm'"}
        assert attempt("GET", route_) == {}


def test_the_uis_reads_of_a_feature_that_is_off_get_an_empty_answer() -> None:
    """MLflow's UI reads traces, scorers, issues and the gateway's endpoints on its pages:
    with those off it gets MLflow's answer for 'none' instead of an error box."""
    assert EMPTY["GET mlflow/gateway-proxy"] == {"endpoints": []}
    for key, answer in EMPTY.items():
        assert ROUTES[key].feature in OPTIONAL
        assert gate(ROUTES[key], key, frozenset()) == answer
        assert gate(ROUTES[key], key, frozenset({ROUTES[key].feature})) is None
    off = ROUTES["POST mlflow/gateway-proxy"]
    assert isinstance(gate(off, "POST mlflow/gateway-proxy", frozenset()), Refusal)


def test_webhooks_and_the_servers_users_are_for_admins_only() -> None:
    for method, route_ in (
        ("GET", "mlflow/webhooks"),
        ("POST", "mlflow/webhooks"),
        ("POST", "mlflow/webhooks/<webhook_id>/test"),
        ("POST", "mlflow/users/create"),
        ("PATCH", "mlflow/users/update-admin"),
    ):
        assert "admins only" in refused(attempt(method, route_, {}))
        assert not isinstance(attempt(method, route_, {}, admin=True), Refusal)
    # MLflow's basic-auth decides these: a MANAGE holder grants on her model
    assert isinstance(attempt("POST", "mlflow/users/permissions/grant", {}), dict)


def test_transition_stage_is_the_lifecycles_and_an_unknown_write_is_refused() -> None:
    body = {"name": "m", "version": "2", "stage": "Production"}
    assert "lifecycle" in refused(attempt("POST", "mlflow/model-versions/transition-stage", body))
    assert "does not know" in refused(attempt("POST", "mlflow/model-versions/promote-now", body))
    assert "does not know" in refused(attempt("GET", "mlflow/model-versions/leak", body))
    assert attempt("GET", "mlflow/model-versions/get", body) == {}  # reads pass
    assert attempt("HEAD", "mlflow/model-versions/get", body) == {}
    assert attempt("OPTIONS", "mlflow/model-versions/create", body) == {}
    assert isinstance(attempt("POST", "mlflow/runs/log-metric", {"key": "test.auc"}), dict)


@pytest.mark.parametrize(
    "path,feature",
    [
        ("/v1/traces", "traces"),
        ("/mlflow/v1/traces", "traces"),
        ("/gateway/chat/mlflow/invocations", "gateway"),
        ("/ajax-api/3.0/jobs/cancel/7", "jobs"),
        ("/ajax-api/3.0/mlflow/assistant/config", "assistant"),
        ("/mlflow/ajax-api/3.0/mlflow/assistant/message", "assistant"),
        ("/api/3.0/mlflow/mcp-servers/s/versions/1/tags", "mcp"),
        ("/api/3.0/mlflow/skills/@org/s", "skills"),
        ("/api/2.0/mlflow-artifacts/artifacts/1/models/m-1/artifacts/model.pkl", "artifacts"),
        ("/ajax-api/3.0/mlflow/server-info", "ui"),
        ("/api/2.0/mlflow/registered-models/delete", None),
        ("/v1/traces/../../api/2.0/mlflow/registered-models/delete", "traces"),
        ("/gateway/x/api/2.0/mlflow/server-info", "gateway"),
        ("/assistant", None),
    ],
)
def test_routes_fastapi_serves_alone_are_classified_by_where_they_are_served(path, feature) -> None:
    """FastAPI's own routes never reach Flask's guard: each belongs to the feature of the
    router it is served under, by where its path starts (what follows is the caller's)."""
    assert native_feature(path, "/mlflow") == feature


def test_each_optional_feature_says_what_it_would_do_on_the_host() -> None:
    assert {"assistant", "gateway", "mcp", "jobs", "scorers"} <= OPTIONAL.keys()
    assert all(len(why) > 15 for why in OPTIONAL.values())
    assert route("POST", "/api/2.0/jupyreg/<action>").feature == "jupyreg"
    assert len(ROUTES) > 240
