"""Issue 14's acceptance tests: the team server's lifecycle holds against its own users.

A table of attacks tries every guarded MLflow write route (and jupyreg's own endpoints)
with every way of sending it (JSON, text/plain, form-urlencoded, no content type, a query
string naming another object than the body), under every prefix MLflow serves (/api/2.0,
/ajax-api/2.0, /api/3.0 where it serves the route, and all of them behind
``--static-prefix /mlflow``), as READ (eve), EDIT (alice), MANAGE (bob), admin and
anonymous, on SQLite and on PostgreSQL; after each attempt the protected state of a model
holding a Production and a Staging version is read back and must be unchanged. Controls
show that what a role may do still works, and each numbered repro of the issue has its
own regression test.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from jupyreg.server.actions import ACTIONS
from tests.attacks_support import (
    DECOY,
    STATIC_PREFIX,
    Deployment,
    Target,
    credentials,
    deployment,
    describe,
)

MAX_RESEEDS = int(os.environ.get("JUPYREG_ATTACKS_MAX_RESEEDS", "3"))
"""Attempts of one case that may break the protected model (each breach re-seeds it, ~3 s);
past that the case stops and reports how many attempts it did not try."""
FULL = os.environ.get("JUPYREG_ATTACKS_FULL") == "1"
"""Every variant x prefix x user of each route (about 1,500 attempts per backend, not 700)."""
ATTEMPTS: dict[str, int] = {}
"""Attempts made per backend (the issue asks for at least 300)."""

VARIANTS = ("json", "text", "form", "none", "mismatch")
API_PREFIXES = ("/api/2.0", "/ajax-api/2.0", "/api/3.0", "/ajax-api/3.0")
USERS = ("anonymous", "eve", "alice", "bob", "admin")
FORGED = "forged replacement of a Production model file\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployed(request, tmp_path_factory: pytest.TempPathFactory, model) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"attacks-{request.param}")
    with deployment(request.param, root, model) as running:
        yield running


# -- the table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One attack: ``route`` after the API prefix (``{file}`` is the Production version's
    model file), a body built from the target, and who and how it is tried."""

    id: str
    method: str
    route: str
    body: Callable[[Target], Any] | None  # None: file content
    scope: str = "full"  # full: every variant x prefix x user; keys: a covering subset
    users: tuple[str, ...] = USERS
    expect: tuple[int, ...] | None = None  # every user's answer (None: by user and variant)
    apis: tuple[str, ...] | None = None  # FastAPI's own routes: the prefixes they serve


def _prod(t: Target, **fields: Any) -> dict[str, Any]:
    return {"name": t.name, "version": str(t.production), **fields}


def _staging(t: Target, **fields: Any) -> dict[str, Any]:
    return {"name": t.name, "version": str(t.staging), **fields}


def _model(t: Target, **fields: Any) -> dict[str, Any]:
    return {"name": t.name, **fields}


def _forged_version(tags: list[dict[str, str]]) -> Callable[[Target], dict[str, Any]]:
    def body(t: Target) -> dict[str, Any]:
        return {"name": t.name, "source": t.source, "run_id": t.run_id, "tags": tags}

    return body


EVENT = json.dumps(
    {"from": "Staging", "to": "Production", "author": "bob", "reason": "forged", "at": "x"}
)
REQUEST = json.dumps({"to": "Production", "requested_by": "eve", "status": "approved"})
RM, MV = "mlflow/registered-models", "mlflow/model-versions"
UNPRIVILEGED = ("anonymous", "eve", "alice")
AJAX3 = ("/ajax-api/3.0",)
HI = {"message": "hi", "name": "x"}
OLLAMA = {
    "providers": {
        "ollama": {
            "selected": True,
            "base_url": "http://127.0.0.1:9",
            "model": "m",
            "permissions": {"full_access": True},
        }
    }
}
SKILL = {"source": "http://127.0.0.1:9/skill.tar.gz", "path": "/root/.bashrc"}
SECRET = {"secret_name": "k", "secret_value": "sk-x", "provider": "openai"}
VERSION_CREATED = {"entity": "MODEL_VERSION", "action": "CREATED"}
NEW_USER = {"username": "mallory", "password": "mallory-password-1"}

CASES = [
    # every route once with every variant, prefix and user
    Case("delete-model", "DELETE", f"{RM}/delete", _model),
    Case("rename-model", "POST", f"{RM}/rename", lambda t: _model(t, new_name=t.name + "-x")),
    Case("delete-production-version", "DELETE", f"{MV}/delete", _prod),
    Case(
        "set-version-tag-stage",
        "POST",
        f"{MV}/set-tag",
        lambda t: _prod(t, key="jupyreg.stage", value="Archived"),
    ),
    Case(
        "delete-version-tag-stage",
        "DELETE",
        f"{MV}/delete-tag",
        lambda t: _prod(t, key="jupyreg.stage"),
    ),
    Case(
        "set-model-tag-policy",
        "POST",
        f"{RM}/set-tag",
        lambda t: _model(t, key="jupyreg.policy", value='{"approvals": {}}'),
    ),
    Case(
        "delete-model-tag-policy",
        "DELETE",
        f"{RM}/delete-tag",
        lambda t: _model(t, key="jupyreg.policy"),
    ),
    Case(
        "set-alias-production",
        "POST",
        f"{RM}/alias",
        lambda t: _model(t, alias="production", version=str(t.staging)),
    ),
    Case(
        "delete-alias-production",
        "DELETE",
        f"{RM}/alias",
        lambda t: _model(t, alias="production"),
    ),
    Case(
        "transition-stage-to-production",
        "POST",
        f"{MV}/transition-stage",
        lambda t: _staging(t, stage="Production", archive_existing_versions=True),
    ),
    Case(
        "create-version-forged-stage",
        "POST",
        f"{MV}/create",
        _forged_version([{"key": "jupyreg.stage", "value": "Production"}]),
    ),
    Case("put-production-model-file", "PUT", "mlflow-artifacts/artifacts/{file}", None),
    Case("delete-production-model-file", "DELETE", "mlflow-artifacts/artifacts/{file}", None),
    Case(
        "jupyreg-demote-production",
        "POST",
        "jupyreg/transition",
        lambda t: _prod(t, stage="Archived", reason="demote"),
        users=UNPRIVILEGED,
    ),
    Case(
        "jupyreg-drop-approvals",
        "POST",
        "jupyreg/policy",
        lambda t: _model(t, policy={"approvals": {}}, reason="faster"),
        users=UNPRIVILEGED,
    ),
    # the other protected objects and spellings, on a covering subset
    *(
        Case(f"set-version-tag-{label}", "POST", f"{MV}/set-tag", body, scope="keys")
        for label, body in [
            ("new-event", lambda t: _prod(t, key="jupyreg.event.20990101T0Z-x.0", value=EVENT)),
            ("overwrite-event", lambda t: _prod(t, key=t.event_key, value=EVENT)),
            ("new-request", lambda t: _prod(t, key="jupyreg.request.deadbeef", value=REQUEST)),
            ("overwrite-request", lambda t: _prod(t, key=t.request_key, value=REQUEST)),
            ("author", lambda t: _prod(t, key="jupyreg.author", value="bob")),
            ("lineage", lambda t: _prod(t, key="jupyreg.lineage", value="{}")),
            ("git-dirty", lambda t: _prod(t, key="jupyreg.git.dirty", value="false")),
            ("git-commit", lambda t: _prod(t, key="jupyreg.git.commit", value="0" * 40)),
            ("shadow-upper", lambda t: _prod(t, key="JUPYREG.STAGE", value="Production")),
            ("shadow-title", lambda t: _prod(t, key="Jupyreg.Stage", value="Production")),
            ("shadow-space", lambda t: _prod(t, key=" jupyreg.stage", value="Production")),
            ("shadow-event", lambda t: _prod(t, key="JUPYREG.EVENT.x", value=EVENT)),
            ("look-alike", lambda t: _prod(t, key="ｊupyreg.stage", value="Archived")),
            (
                "staging-to-production",
                lambda t: _staging(t, key="jupyreg.stage", value="Production"),
            ),
        ]
    ),
    *(
        Case(f"delete-version-tag-{label}", "DELETE", f"{MV}/delete-tag", body, scope="keys")
        for label, body in [
            ("event", lambda t: _prod(t, key=t.event_key)),
            ("request", lambda t: _prod(t, key=t.request_key)),
            ("author", lambda t: _prod(t, key="jupyreg.author")),
            ("lineage", lambda t: _prod(t, key="jupyreg.lineage")),
            ("shadow-upper", lambda t: _prod(t, key="JUPYREG.STAGE")),
            ("shadow-space", lambda t: _prod(t, key=" jupyreg.stage")),
        ]
    ),
    Case("delete-staging-version", "DELETE", f"{MV}/delete", _staging, scope="keys"),
    *(
        Case(f"set-model-tag-{label}", "POST", f"{RM}/set-tag", body, scope="keys")
        for label, body in [
            ("policy-upper", lambda t: _model(t, key="JUPYREG.POLICY", value="{}")),
            ("policy-space", lambda t: _model(t, key=" jupyreg.policy ", value="{}")),
            ("step", lambda t: _model(t, key="jupyreg.step", value="{}")),
        ]
    ),
    Case(
        "delete-model-tag-step",
        "DELETE",
        f"{RM}/delete-tag",
        lambda t: _model(t, key="jupyreg.step"),
        scope="keys",
    ),
    *(
        Case(f"set-alias-{alias}", "POST", f"{RM}/alias", body, scope="keys")
        for alias, body in [
            ("Production", lambda t: _model(t, alias="Production", version=str(t.staging))),
            ("PRODUCTION", lambda t: _model(t, alias="PRODUCTION", version=str(t.staging))),
            ("staging", lambda t: _model(t, alias="staging", version=str(t.production))),
            ("Staging", lambda t: _model(t, alias="Staging", version=str(t.production))),
            ("fullwidth", lambda t: _model(t, alias="ｐroduction", version=str(t.staging))),
            ("dotless-i", lambda t: _model(t, alias="Stagıng", version=str(t.production))),
            ("cyrillic", lambda t: _model(t, alias="prоduction", version=str(t.staging))),
        ]
    ),
    *(
        Case(
            f"delete-alias-{alias}",
            "DELETE",
            f"{RM}/alias",
            functools.partial(lambda a, t: _model(t, alias=a), alias),
            scope="keys",
        )
        for alias in ("Production", "PRODUCTION", "staging", "Staging")
    ),
    Case(
        "transition-stage-demote-production",
        "POST",
        f"{MV}/transition-stage",
        lambda t: _prod(t, stage="Archived", archive_existing_versions=False),
        scope="keys",
    ),
    Case(
        "create-version-forged-event",
        "POST",
        f"{MV}/create",
        _forged_version([{"key": "jupyreg.event.x", "value": EVENT}]),
        scope="keys",
    ),
    Case(
        "create-version-forged-stage-upper",
        "POST",
        f"{MV}/create",
        _forged_version([{"key": "JUPYREG.STAGE", "value": "Production"}]),
        scope="keys",
    ),
    Case(
        "jupyreg-rollback",
        "POST",
        "jupyreg/rollback",
        lambda t: _model(t, reason="roll back"),
        scope="keys",
        users=UNPRIVILEGED,
    ),
    # issue 23: the lineage the run keeps, the folders above, the experiment's lifecycle
    Case("put-run-lineage-file", "PUT", "mlflow-artifacts/artifacts/{lineage}", None),
    Case("delete-run-lineage-file", "DELETE", "mlflow-artifacts/artifacts/{lineage}", None),
    Case("delete-holder-folder", "DELETE", "mlflow-artifacts/artifacts/{holder}", None),
    Case(
        "delete-experiment",
        "POST",
        "mlflow/experiments/delete",
        lambda t: {"experiment_id": t.experiment_id},
    ),
    Case(
        "rename-experiment",
        "POST",
        "mlflow/experiments/update",
        lambda t: {"experiment_id": t.experiment_id, "new_name": t.name + "-gone"},
        scope="keys",
    ),
    Case("delete-run", "POST", "mlflow/runs/delete", lambda t: {"run_id": t.run_id}, scope="keys"),
    Case(
        "experiment-inside-another",
        "POST",
        "mlflow/experiments/create",
        lambda t: {"name": t.name + "-side", "artifact_location": f"mlflow-artifacts:/{t.holder}"},
        scope="keys",
        users=UNPRIVILEGED,
    ),
    Case(
        "create-webhook",
        "POST",
        "mlflow/webhooks",
        lambda t: {"name": "h", "url": "http://127.0.0.1:9/x", "events": [VERSION_CREATED]},
        scope="keys",
        users=UNPRIVILEGED,
    ),
    Case(
        "create-user",
        "POST",
        "mlflow/users/create",
        lambda t: NEW_USER,
        scope="keys",
        users=UNPRIVILEGED,
        apis=("/api/2.0", "/ajax-api/2.0"),
    ),
    # MLflow's features a team server does not serve: 404 for everyone, admins included
    *(
        Case(f"off-{label}", method, route, body, scope="keys", expect=(404,), apis=apis)
        for label, method, route, body, apis in [
            ("assistant-config", "PUT", "mlflow/assistant/config", lambda t: OLLAMA, AJAX3),
            ("assistant-message", "POST", "mlflow/assistant/message", lambda t: HI, AJAX3),
            ("assistant-skill", "POST", "mlflow/assistant/skills/install", lambda t: SKILL, AJAX3),
            ("assistant-read", "GET", "mlflow/assistant/config", None, AJAX3),
            ("gateway-secret", "POST", "mlflow/gateway/secrets/create", lambda t: SECRET, None),
            ("gateway-list", "GET", "mlflow/gateway/secrets/list", None, None),
            ("gateway-proxy", "POST", "mlflow/gateway-proxy", lambda t: HI, None),
            ("gateway-invoke", "POST", "gateway/openai/v1/chat/completions", lambda t: HI, ("",)),
            ("mcp-server", "POST", "mlflow/mcp-servers", lambda t: HI, ("/api/3.0", *AJAX3)),
            ("skills", "POST", "mlflow/skills", lambda t: HI, ("/api/3.0", *AJAX3)),
            ("jobs", "POST", "jobs/", lambda t: HI, AJAX3),
            ("scorer-invoke", "POST", "mlflow/scorer/invoke", lambda t: HI, None),
            ("evaluate", "POST", "mlflow/genai/evaluate/invoke", lambda t: HI, None),
            ("optimize", "POST", "mlflow/prompt-optimization/jobs", lambda t: HI, None),
            ("otel-traces", "POST", "v1/traces", lambda t: HI, ("",)),
            ("demo", "POST", "mlflow/demo/generate", lambda t: HI, None),
            ("workspaces", "POST", "mlflow/workspaces", lambda t: {"name": "w"}, None),
        ]
    ),
]


@dataclass
class Attempt:
    case: Case
    variant: str
    prefix: str  # "/api/2.0", ... or "/mlflow/api/2.0", ...
    user: str
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        route = self.case.route.replace("{file}", "<Production model file>")
        route = route.replace("{lineage}", "<its run's lineage file>")
        route = route.replace("{holder}", "<the folder holding its files>")
        return f"{self.case.method} {self.prefix}/{route} [{self.variant}] as {self.user}"


@functools.cache
def _mlflow_routes():  # type: ignore[no-untyped-def]
    from mlflow.server import app

    return app.url_map.bind("127.0.0.1")


def served(method: str, path: str) -> bool:
    """Whether MLflow serves ``method path`` (jupyreg's endpoints: under /api/2.0)."""
    from werkzeug.exceptions import HTTPException

    if path.startswith("/api/2.0/jupyreg/"):
        return True
    if "/jupyreg/" in path:
        return False
    try:
        _mlflow_routes().match(path.replace("{file}", "x/y"), method=method)
    except HTTPException:
        return False
    return True


def attempts(case: Case) -> list[Attempt]:
    """``full``: each user with each variant, the prefix turning so that every pair of
    (user, variant, prefix) values is tried (``JUPYREG_ATTACKS_FULL=1``: their whole
    product); ``keys``: each user with JSON and mismatch, the prefix turning over the
    served ones."""
    prefixes = [
        statics + api
        for statics in ("", STATIC_PREFIX)
        for api in case.apis or API_PREFIXES
        if case.apis or served(case.method, f"{api}/{case.route}")
    ]
    if case.scope == "full" and FULL:
        return [
            Attempt(case, variant, prefix, user)
            for prefix in prefixes
            for user in case.users
            for variant in VARIANTS
        ]
    if case.scope == "full":
        return [
            Attempt(case, variant, prefixes[(i + j) % len(prefixes)], user)
            for i, user in enumerate(case.users)
            for j, variant in enumerate(VARIANTS)
        ]
    found = []
    for user in case.users:
        for variant in ("json",) if user == "anonymous" else ("json", "mismatch"):
            found.append(Attempt(case, variant, prefixes[len(found) % len(prefixes)], user))
    return found


def _query(body: dict[str, Any]) -> dict[str, str]:
    return {
        k: (str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in body.items()
        if isinstance(v, str | int | bool)
    }


def send(deployed: Deployment, attempt: Attempt, target: Target) -> requests.Response:
    case, variant = attempt.case, attempt.variant
    static = attempt.prefix.startswith(STATIC_PREFIX)
    api = attempt.prefix.removeprefix(STATIC_PREFIX)
    route = case.route.replace("{file}", quote(target.model_file))
    route = route.replace("{lineage}", quote(target.lineage_file))
    route = route.replace("{holder}", target.holder)
    url = f"{deployed.base(static)}{api}/{route}"
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if case.body is None:  # an artifact file: raw bytes
        data: bytes = FORGED.encode()
        headers["Content-Type"] = {
            "json": "application/octet-stream",
            "text": "text/plain",
            "form": "application/x-www-form-urlencoded",
            "mismatch": "application/octet-stream",
        }.get(variant, "")
        if variant == "mismatch":
            params = {"path": "0/decoy/MLmodel", "name": DECOY}
    elif case.method == "GET":
        data = b""
        headers["Content-Type"] = ""
    else:
        body = case.body(target)
        data = json.dumps(body).encode()
        if variant != "json":
            params = _query(body)
        if variant == "mismatch":
            params.update(name=DECOY, **({"version": "1"} if "version" in params else {}))
        headers["Content-Type"] = {
            "json": "application/json",
            "text": "text/plain",
            "form": "application/x-www-form-urlencoded",
            "mismatch": "application/json" if case.method != "DELETE" else "text/plain",
        }.get(variant, "")
    if not headers["Content-Type"]:
        del headers["Content-Type"]
    return deployed.sessions[attempt.user].request(
        case.method, url, data=data, headers=headers, params=params, timeout=60
    )


CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: None,
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
}


def judge(attempt: Attempt, response: requests.Response) -> str | None:
    """What is wrong with the answer to an attempt (None: a correct refusal)."""
    status = response.status_code
    if attempt.case.expect is not None:
        expected: tuple[int, ...] = attempt.case.expect
    elif attempt.user == "anonymous":
        expected = (401,)
    elif attempt.variant == "json":
        expected = (403,)
    else:
        expected = (400, 403)
    if status not in expected:
        return f"answered {status}, expected {' or '.join(map(str, expected))}"
    if CODES[status] is not None and response.headers.get("Content-Type", "").startswith(
        "application/json"
    ):
        code = response.json().get("error_code")
        if code != CODES[status]:
            return f"answered {status} with error_code {code}, expected {CODES[status]}"
    return None


def _excerpt(response: requests.Response) -> str:
    return " ".join(response.text.split())[:240]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_attack_is_refused_and_changes_nothing(deployed: Deployment, case: Case) -> None:
    """Every attempt answers 4xx (401 anonymous, 403 lifecycle-owned, 400 malformed),
    never 2xx or 500, and the protected model reads back unchanged."""
    table = attempts(case)
    failures: list[str] = []
    breaches = 0
    deployed.protected(check=True)
    for done, attempt in enumerate(table):
        target = deployed.protected()
        response = send(deployed, attempt, target)
        ATTEMPTS[deployed.kind] = ATTEMPTS.get(deployed.kind, 0) + 1
        problems = [judge(attempt, response)]
        after = deployed.state(target)
        if after != target.pristine:
            problems.append(f"changed {describe(target.pristine, after)}")
            deployed.target = None  # the next attempt gets a fresh protected model
            breaches += 1
        problems = [p for p in problems if p]
        if problems:
            failures.append(
                f"{attempt}: {response.status_code} {_excerpt(response)!r}: {'; '.join(problems)}"
            )
        if breaches > MAX_RESEEDS:
            failures.append(
                f"... stopped after {breaches} breaches: {len(table) - done - 1} untried"
            )
            break
    assert not failures, f"{len(failures)} of {len(table)} attempts:\n" + "\n".join(failures)


def test_the_table_makes_at_least_500_attempts(deployed: Deployment, capsys) -> None:
    planned = sum(len(attempts(case)) for case in CASES)
    with capsys.disabled():
        print(
            f"\n{deployed.kind}: {planned} attempts planned, {ATTEMPTS.get(deployed.kind, 0)} "
            f"made so far; setup {deployed.setup_seconds:.0f} s"
        )
    assert planned >= 500


# -- what each role may still do ---------------------------------------------------------


def test_edit_sets_a_plain_tag_on_a_protected_version(deployed: Deployment) -> None:
    target = deployed.protected()
    response = deployed.call(
        "alice", "POST", f"/api/2.0/{MV}/set-tag", _prod(target, key="team", value="risk")
    )
    assert response.status_code == 200, response.text
    version = deployed.admin_get(f"/api/2.0/{MV}/get", **_prod(target)).json()["model_version"]
    assert {"key": "team", "value": "risk"} in version["tags"]
    assert deployed.state(target) == target.pristine


def test_edit_logs_a_metric_to_a_run(deployed: Deployment) -> None:
    target = deployed.protected()
    metric = {"run_id": target.run_id, "key": "extra.auc", "value": 0.5, "timestamp": 1}
    response = deployed.call("alice", "POST", "/api/2.0/mlflow/runs/log-metric", metric)
    assert response.status_code == 200, response.text
    assert deployed.state(target) == target.pristine


def test_manage_deletes_archived_and_none_versions_and_their_history_survives(
    deployed: Deployment, model
) -> None:
    name = "cleanup"
    with credentials("admin"):
        admin = deployed.registry("admin")
        kept = admin.register(model, name).version  # stays None
        archived = admin.register(model, name).version
        deployed.grant(name)
        admin.transition(name, archived, "Staging", reason="candidate")
        admin.transition(name, archived, "Archived", reason="superseded")
        before = admin.history(name)
    assert sorted(before["version"].tolist()) == [archived, archived]
    for version in (archived, kept):
        response = deployed.call(
            "bob", "DELETE", f"/api/2.0/{MV}/delete", {"name": name, "version": str(version)}
        )
        assert response.status_code == 200, response.text
    with credentials("admin"):
        after = deployed.registry("admin").history(name)
    columns = ["version", "from_stage", "to_stage", "author", "reason"]
    assert after[columns].to_dict("records") == before[columns].to_dict("records")


def test_admin_deletes_a_model_holding_no_staging_or_production_version(
    deployed: Deployment, model
) -> None:
    name = "disposable"
    with credentials("admin"):
        admin = deployed.registry("admin")
        version = admin.register(model, name).version
        admin.transition(name, version, "Staging", reason="candidate")
        admin.transition(name, version, "Archived", reason="dropped")
        admin.register(model, name)  # None
    response = deployed.call("admin", "DELETE", f"/api/2.0/{RM}/delete", {"name": name})
    assert response.status_code == 200, response.text
    assert deployed.admin_get(f"/api/2.0/{RM}/get", name=name).status_code == 404


# -- the numbered repros -------------------------------------------------------


def _unchanged(deployed: Deployment, target: Target) -> None:
    after = deployed.state(target)
    assert after == target.pristine, describe(target.pristine, after)


def test_1_read_user_deletes_with_text_plain_and_a_query_naming_her_own_model(
    deployed: Deployment,
) -> None:
    target = deployed.seed("repro-1")
    own = deployed.admin_get(f"/api/2.0/{RM}/get", name=DECOY)
    assert own.status_code == 200, own.text  # eve created it (add_users)
    for route, body in [
        (f"{RM}/delete", _model(target)),
        (f"{MV}/delete", _prod(target)),
        (f"{MV}/delete-tag", _prod(target, key="jupyreg.stage")),
        (f"{MV}/delete-tag", _prod(target, key=target.event_key)),
        (f"{RM}/delete-tag", _model(target, key="jupyreg.policy")),
        (f"{RM}/alias", _model(target, alias="production")),
    ]:
        for api in ("/api/2.0", "/ajax-api/2.0"):
            for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
                query = {"name": DECOY, **({"version": "1"} if "version" in body else {})}
                query.update({k: v for k, v in body.items() if k in ("key", "alias")})
                headers = {"Content-Type": content_type} if content_type else {}
                response = deployed.sessions["eve"].delete(
                    f"{deployed.url}{api}/{route}",
                    params=query,
                    data=json.dumps(body),
                    headers=headers,
                    timeout=60,
                )
                where = f"DELETE {api}/{route} [{content_type}]"
                assert response.status_code == 400, (
                    f"{where}: {response.status_code} {response.text}"
                )
                assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE", where
                _unchanged(deployed, target)


def test_2_static_prefix_does_not_switch_the_guard_off(deployed: Deployment) -> None:
    target = deployed.seed("repro-2")
    base = deployed.base(static=True)
    for method, route, body in [
        ("POST", f"{MV}/set-tag", _prod(target, key="jupyreg.stage", value="Archived")),
        ("POST", f"{MV}/set-tag", _prod(target, key="jupyreg.event.x", value=EVENT)),
        ("POST", f"{MV}/transition-stage", _staging(target, stage="Production")),
        ("POST", f"{RM}/alias", _model(target, alias="production", version=str(target.staging))),
        ("POST", f"{RM}/set-tag", _model(target, key="jupyreg.policy", value="{}")),
        ("DELETE", f"{RM}/delete", _model(target)),
    ]:
        for api in ("/api/2.0", "/ajax-api/2.0"):
            response = deployed.sessions["admin"].request(
                method, f"{base}{api}/{route}", json=body, timeout=60
            )
            where = f"{method} {STATIC_PREFIX}{api}/{route}"
            assert response.status_code == 403, f"{where}: {response.status_code} {response.text}"
            assert response.json()["error_code"] == "PERMISSION_DENIED", where
            _unchanged(deployed, target)
    # jupyreg's own endpoints are served under the prefix too, with their checks
    info = deployed.sessions["eve"].get(f"{base}/api/2.0/jupyreg/info", timeout=60)
    assert info.status_code == 200 and info.json()["user"] == "eve", info.text
    demote = deployed.sessions["alice"].post(
        f"{base}/api/2.0/jupyreg/transition",
        json=_prod(target, stage="Archived", reason="x"),
        timeout=60,
    )
    assert demote.status_code == 403, demote.text
    _unchanged(deployed, target)


def test_3_edit_user_cannot_ship_her_model_by_renaming_and_recreating(
    deployed: Deployment, model
) -> None:
    target = deployed.seed("repro-3")
    alice = deployed.sessions["alice"]

    def post(route: str, body: dict) -> requests.Response:
        return alice.post(f"{deployed.url}/api/2.0/{route}", json=body, timeout=60)

    renamed = post(f"{RM}/rename", _model(target, new_name="repro-3-old"))
    assert renamed.status_code == 403, renamed.text
    assert renamed.json()["error_code"] == "PERMISSION_DENIED"
    _unchanged(deployed, target)
    # the rest of the recipe, as far as the server lets her go
    post(f"{RM}/create", {"name": target.name})
    policy = post("jupyreg/policy", _model(target, policy={"approvals": {}}, reason="faster"))
    assert policy.status_code == 403, policy.text
    with credentials("alice"):
        alice_reg = deployed.registry("alice")
        mine = alice_reg.register(model, target.name).version
        alice_reg.transition(target.name, mine, "Staging", reason="mine")
    shipped = post("jupyreg/transition", {**_prod(target), "version": str(mine)} | {
        "stage": "Production", "reason": "ship"
    })  # fmt: skip
    assert shipped.status_code in (400, 403, 409), shipped.text
    alias = deployed.admin_get(f"/api/2.0/{RM}/alias", name=target.name, alias="production")
    assert alias.json()["model_version"]["version"] == str(target.production)


def test_4_edit_user_cannot_demote_production(deployed: Deployment) -> None:
    target = deployed.seed("repro-4")
    for stage in ("Archived", "Staging"):
        response = deployed.call(
            "alice",
            "POST",
            "/api/2.0/jupyreg/transition",
            _prod(target, stage=stage, reason="demote"),
        )
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        _unchanged(deployed, target)


def _dirty_git_repo(root: Path) -> Path:
    repo = root / "dirty-repo"
    repo.mkdir(exist_ok=True)
    git = ["git", "-c", "user.email=a@example.com", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("print('v1')\n")
    subprocess.run([*git, "add", "train.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], cwd=repo, check=True)
    (repo / "train.py").write_text("print('v2, uncommitted')\n")
    return repo


def _request_production(deployed: Deployment, name: str, version: int) -> str:
    """alice moves ``version`` to Staging and asks for Production; bob approves what was
    filed. Returns where it ended: the version's stage."""
    staged = deployed.call(
        "alice",
        "POST",
        "/api/2.0/jupyreg/transition",
        {"name": name, "version": str(version), "stage": "Staging", "reason": "candidate"},
    )
    assert staged.status_code == 200, staged.text
    filed = deployed.call(
        "alice",
        "POST",
        "/api/2.0/jupyreg/request",
        {"name": name, "version": str(version), "stage": "Production", "reason": "ship"},
    )
    assert filed.status_code != 500, filed.text
    if filed.status_code == 200:
        approved = deployed.call(
            "bob",
            "POST",
            "/api/2.0/jupyreg/approve",
            {"request_id": filed.json()["request"]["id"], "comment": "gates say ok"},
        )
        assert approved.status_code != 500, approved.text
    got = deployed.admin_get(f"/api/2.0/{MV}/get", name=name, version=str(version))
    tags = {t["key"]: t["value"] for t in got.json()["model_version"]["tags"]}
    return tags["jupyreg.stage"]


def test_5_gate_inputs_cannot_be_forged(deployed: Deployment, model) -> None:
    # a dirty working tree: the clean-git gate must keep judging what was recorded
    saved = os.getcwd()
    os.chdir(_dirty_git_repo(deployed.root))
    try:
        with credentials("admin"):
            admin = deployed.registry("admin")
            dirty = admin.register(model, "repro-5-git", metrics={"test": {"auc": 0.99}})
    finally:
        os.chdir(saved)
    assert dirty.lineage["git"]["dirty"] is True
    deployed.grant("repro-5-git")
    with credentials("admin"):
        admin.set_policy("repro-5-git", require_clean_git=True)
    forged = deployed.call(
        "alice",
        "POST",
        f"/api/2.0/{MV}/set-tag",
        {"name": "repro-5-git", "version": str(dirty.version), "key": "jupyreg.git.dirty"}
        | {"value": "false"},
    )
    assert forged.status_code == 403, forged.text
    assert _request_production(deployed, "repro-5-git", dirty.version) != "Production"

    # a metric logged to the run after registration is allowed, but not judged
    with credentials("admin"):
        low = admin.register(model, "repro-5-metric", metrics={"test": {"auc": 0.80}})
        admin.set_policy("repro-5-metric", thresholds=["test.auc >= 0.95"])
    deployed.grant("repro-5-metric")
    logged = deployed.call(
        "alice",
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        {"run_id": low.run_id, "key": "test.auc", "value": 0.99, "step": 1000}
        | {"timestamp": int(time.time() * 1000)},
    )
    assert logged.status_code == 200, logged.text
    assert _request_production(deployed, "repro-5-metric", low.version) != "Production"
    with credentials("admin"):
        assert deployed.registry("admin").get("repro-5-metric", low.version).metrics[
            "test.auc"
        ] == pytest.approx(0.80)


def test_6_manage_cannot_delete_production_and_a_creator_gets_edit(
    deployed: Deployment, model
) -> None:
    target = deployed.seed("repro-6")
    for version in (target.production, target.staging):
        response = deployed.call(
            "bob", "DELETE", f"/api/2.0/{MV}/delete", {"name": target.name, "version": str(version)}
        )
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        _unchanged(deployed, target)

    # the documented order: grant first, then alice registers the model's first version
    name = "repro-6-new"
    deployed.grant(name, {"alice": "EDIT"})
    with credentials("alice"):
        alice = deployed.registry("alice")
        version = alice.register(model, name).version
        alice.transition(name, version, "Staging", reason="candidate")
    assert deployed.permission("alice", name) == "EDIT"
    with credentials("admin"):
        request = deployed.registry("admin").request(name, version, "Production", reason="ship")
    approved = deployed.call(
        "alice", "POST", "/api/2.0/jupyreg/approve", {"request_id": request.id}
    )
    assert approved.status_code == 403, approved.text
    deleted = deployed.call(
        "alice", "DELETE", f"/api/2.0/{MV}/delete", {"name": name, "version": str(version)}
    )
    assert deleted.status_code == 403, deleted.text


def test_7_production_model_files_cannot_be_replaced(deployed: Deployment) -> None:
    target = deployed.seed("repro-7")
    for user in ("alice", "bob", "admin"):
        for api in ("/api/2.0", "/ajax-api/2.0"):
            for method in ("PUT", "DELETE"):
                url = f"{deployed.url}{api}/mlflow-artifacts/artifacts/{quote(target.model_file)}"
                response = deployed.sessions[user].request(
                    method, url, data=FORGED.encode(), timeout=60
                )
                where = f"{method} {api} as {user}"
                assert 400 <= response.status_code < 500, f"{where}: {response.status_code}"
                _unchanged(deployed, target)
    # every file of the version, not only the one hashed per attempt
    for path in target.model_files:
        response = deployed.admin_get(f"/api/2.0/mlflow-artifacts/artifacts/{quote(path)}")
        assert response.status_code == 200 and response.content != FORGED.encode()


def test_8_shadow_names_are_refused(deployed: Deployment) -> None:
    target = deployed.seed("repro-8")
    attempts_ = [
        ("POST", f"{MV}/set-tag", _prod(target, key=key, value="Production"))
        for key in ("JUPYREG.STAGE", "Jupyreg.Stage", " jupyreg.stage", "JUPYREG.EVENT.x")
    ]
    attempts_ += [
        ("POST", f"{RM}/alias", _model(target, alias=alias, version=str(target.staging)))
        for alias in ("Production", "PRODUCTION", "Staging", " production")
    ]
    attempts_ += [("POST", f"{RM}/set-tag", _model(target, key="JUPYREG.POLICY", value="{}"))]
    for method, route, body in attempts_:
        for user in ("alice", "bob", "admin"):
            response = deployed.call(user, method, f"/api/2.0/{route}", body)
            where = f"{method} {route} {body} as {user}"
            assert response.status_code == 403, f"{where}: {response.status_code} {response.text}"
            _unchanged(deployed, target)


WRITE_ROUTES = [
    ("POST", f"{RM}/create"),
    ("POST", f"{RM}/rename"),
    ("PATCH", f"{RM}/update"),
    ("DELETE", f"{RM}/delete"),
    ("POST", f"{RM}/set-tag"),
    ("DELETE", f"{RM}/delete-tag"),
    ("POST", f"{RM}/alias"),
    ("DELETE", f"{RM}/alias"),
    ("POST", f"{MV}/create"),
    ("PATCH", f"{MV}/update"),
    ("DELETE", f"{MV}/delete"),
    ("POST", f"{MV}/set-tag"),
    ("DELETE", f"{MV}/delete-tag"),
    ("POST", f"{MV}/transition-stage"),
    ("POST", "mlflow/runs/log-metric"),
    ("POST", "mlflow/runs/set-tag"),
    ("POST", "mlflow/runs/log-batch"),
    *(("POST", f"jupyreg/{action}") for action in ACTIONS),
]
NOT_OBJECTS = {
    "array": b"[]",
    "array-of-objects": b'[{"name": "x"}]',
    "string": b'"name"',
    "number": b"42",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


def test_9_bodies_that_are_not_objects_get_400_not_500(deployed: Deployment) -> None:
    target = deployed.seed("repro-9")
    wrong = []
    for method, route in WRITE_ROUTES:
        for label, raw in NOT_OBJECTS.items():
            for user in ("alice", "admin"):
                response = deployed.sessions[user].request(
                    method,
                    f"{deployed.url}/api/2.0/{route}",
                    data=raw,
                    headers={"Content-Type": "application/json"},
                    timeout=60,
                )
                if response.status_code != 400:
                    wrong.append(
                        f"{method} {route} [{label}] as {user}: {response.status_code} "
                        f"{_excerpt(response)[:120]!r}"
                    )
    assert not wrong, "\n".join(wrong)
    _unchanged(deployed, target)


def test_9_malformed_fields_get_400_naming_the_field(deployed: Deployment) -> None:
    target = deployed.seed("repro-9-fields")
    cases = [
        (f"{MV}/create", {"name": target.name, "source": target.source, "tags": {"a": "b"}}),
        (f"{MV}/create", {"name": target.name, "source": target.source, "tags": [None]}),
        ("jupyreg/transition", _staging(target, stage="Archived", reason=5)),
        ("jupyreg/transition", _staging(target, stage="Archived", reason=["a", "b"])),
        ("jupyreg/request", _staging(target, stage="Production", reason=5)),
        ("jupyreg/request", _staging(target, stage="Production", reason={"a": 1})),
        ("jupyreg/transition", _staging(target, stage=["Production"], reason="x")),
        ("jupyreg/transition", {"name": target.name, "version": [1], "stage": "Archived"}),
        ("jupyreg/transition", {"name": {"a": 1}, "version": "1", "stage": "Archived"}),
    ]
    policies = [
        {"approvals": {"Production": "abc"}},
        {"approvals": {"Production": -1}},
        {"approvals": ["Production"]},
        {"exclusive": 5},
        {"exclusive": [None]},
        {"gated_stages": [None]},
        {"thresholds": ["test.auc >= 1e999999"]},
        {"thresholds": ["test.auc >= nan"]},
        {"thresholds": 5},
        {"require_clean_git": "yes"},
        {"allow_self_approval": 1},
    ]
    cases += [("jupyreg/policy", _model(target, policy=p, reason="bad")) for p in policies]
    cases += [("jupyreg/policy", _model(target, policy="approvals", reason="bad"))]
    wrong = []
    for route, body in cases:
        response = deployed.call("admin", "POST", f"/api/2.0/{route}", body)
        if response.status_code != 400:
            wrong.append(f"POST {route} {body}: {response.status_code} {_excerpt(response)}")
        elif response.json().get("error_code") != "INVALID_PARAMETER_VALUE":
            wrong.append(f"POST {route} {body}: error_code {response.json().get('error_code')}")
        after = deployed.state(target)
        if after != target.pristine:
            wrong.append(f"POST {route} {body}: changed {describe(target.pristine, after)}")
            break
    assert not wrong, "\n".join(wrong)


# -- issue 23: no side door to the host or to an approved version ------------------------


def test_23_1_read_user_cannot_reach_the_assistant_or_any_optional_feature(
    deployed: Deployment,
) -> None:
    """The assistant ran eve's provider's tool calls as the server's user: it is not served
    (404 for everyone, with and without --static-prefix, whatever the forwarding headers
    say), nor is any other feature that runs code, calls out or keeps secrets."""
    target = deployed.protected()
    proxied = ({}, {"X-Real-IP": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"})
    for static in (False, True):
        for headers in proxied:
            for user in ("eve", "admin"):
                session, base = deployed.sessions[user], deployed.base(static)
                config = session.put(
                    f"{base}/ajax-api/3.0/mlflow/assistant/config",
                    json=OLLAMA,
                    headers=headers,
                    timeout=60,
                )
                message = session.post(
                    f"{base}/ajax-api/3.0/mlflow/assistant/message",
                    json=HI,
                    headers=headers,
                    timeout=60,
                )
                for response in (config, message):
                    assert response.status_code == 404, response.text
                    error = response.json()
                    assert error["error_code"] == "ENDPOINT_NOT_FOUND"
                    assert "--enable-mlflow-feature assistant" in error["message"]
    _unchanged(deployed, target)


def test_23_1_an_enabled_feature_serves_admins_only(
    deployed: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An operator may turn a feature on by name: then admins reach it, no one else."""
    if deployed.kind != "sqlite":
        pytest.skip("the feature switch is the same on every backend")
    from tests.attacks_support import Server

    root = tmp_path_factory.mktemp("enabled")
    server = Server(root, deployed.plain.backend, deployed.plain.auth_db)
    server.extra = ["--enable-mlflow-feature", "assistant"]
    server.start(deployed.env)
    try:
        url = f"{server.url}/ajax-api/3.0/mlflow/assistant/config"
        eve = deployed.sessions["eve"].get(url, timeout=60)
        assert eve.status_code == 403, eve.text
        assert "admins only" in eve.json()["message"]
        admin = deployed.sessions["admin"].get(url, timeout=60)
        assert admin.status_code == 200, admin.text
        gateway = deployed.sessions["admin"].get(
            f"{server.url}/ajax-api/2.0/mlflow/gateway/secrets/list", timeout=60
        )
        assert gateway.status_code == 404, gateway.text  # only what was named
    finally:
        server.stop()


def test_23_2_files_of_a_production_version_kept_under_another_experiment_stay(
    deployed: Deployment,
) -> None:
    """alice made experiment M keep its files under her experiment M-holder's folder: the
    paths no longer say whose files they are. Who owns a path is read from the stores."""
    holder = deployed.call(
        "alice", "POST", "/api/2.0/mlflow/experiments/create", {"name": "repro-23-2-holder"}
    )
    assert holder.status_code == 200, holder.text
    side = deployed.call(
        "alice",
        "POST",
        "/api/2.0/mlflow/experiments/create",
        {
            "name": "repro-23-2",
            "artifact_location": f"mlflow-artifacts:/{holder.json()['experiment_id']}/x",
        },
    )
    assert side.status_code == 403, side.text
    assert "artifact_location" in side.json()["message"]
    target = deployed.seed("repro-23-2-nested", nested=True)  # an admin may place files
    assert "/x/" in target.model_file
    files = [*target.model_files, target.lineage_file]
    transcript = target.lineage_file.rsplit("/", 1)[0] + "/transcript.json"
    for user in ("alice", "bob", "admin"):
        for path in [*files, transcript]:
            for method in ("PUT", "DELETE"):
                url = f"{deployed.url}/api/2.0/mlflow-artifacts/artifacts/{quote(path)}"
                response = deployed.sessions[user].request(
                    method, url, data=FORGED.encode(), timeout=60
                )
                assert response.status_code == 403, f"{method} {path} as {user}: {response.text}"
        for folder in (target.holder, f"{target.holder}/x"):
            url = f"{deployed.url}/api/2.0/mlflow-artifacts/artifacts/{folder}"
            response = deployed.sessions[user].delete(url, timeout=60)
            assert response.status_code == 403, f"DELETE {folder} as {user}: {response.text}"
    _unchanged(deployed, target)
    for path in files:
        response = deployed.admin_get(f"/api/2.0/mlflow-artifacts/artifacts/{quote(path)}")
        assert response.status_code == 200 and response.content != FORGED.encode()


def test_23_3_a_creator_never_gets_manage_from_her_request(deployed: Deployment, model) -> None:
    """The prompt tag named twice (true, then false) made MLflow keep a model and jupyreg
    leave MLflow's MANAGE grant: eve could then set approvals {} and ship alone."""
    twice = [
        {"key": "mlflow.prompt.is_prompt", "value": "true"},
        {"key": "mlflow.prompt.is_prompt", "value": "false"},
    ]
    create = f"/api/2.0/{RM}/create"
    refused = deployed.call("eve", "POST", create, {"name": "repro-23-3", "tags": twice})
    assert refused.status_code == 400, refused.text
    assert "more than once" in refused.json()["message"]
    assert deployed.admin_get(f"/api/2.0/{RM}/get", name="repro-23-3").status_code == 404
    prompt = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    created = deployed.call("eve", "POST", create, {"name": "repro-23-3b", "tags": prompt})
    assert created.status_code == 200, created.text
    assert deployed.permission("eve", "repro-23-3b") == "EDIT"
    policy = deployed.call(
        "eve",
        "POST",
        "/api/2.0/jupyreg/policy",
        {"name": "repro-23-3b", "policy": {"approvals": {}}, "reason": "mine"},
    )
    assert policy.status_code == 403, policy.text


def test_23_4_the_experiment_of_a_production_version_cannot_be_deleted(
    deployed: Deployment, model
) -> None:
    """alice's first registration made her MANAGE of the experiment; deleting it marked the
    Production run deleted (a gc would purge it). Renaming it is refused too."""
    name = "repro-23-4"
    deployed.grant(name, {"alice": "EDIT", "bob": "MANAGE"})
    with credentials("alice"):
        alice = deployed.registry("alice")
        version = alice.register(model, name).version
        alice.transition(name, version, "Staging", reason="candidate")
        request = alice.request(name, version, "Production", reason="ship")
    with credentials("bob"):
        deployed.registry("bob").approve(request.id, comment="ok")
    run_id = deployed.admin_get(f"/api/2.0/{MV}/get", name=name, version=version).json()[
        "model_version"
    ]["run_id"]
    experiment = deployed.admin_get("/api/2.0/mlflow/runs/get", run_id=run_id).json()["run"][
        "info"
    ]["experiment_id"]
    for user in ("alice", "admin"):
        for route, body in (
            ("experiments/delete", {"experiment_id": experiment}),
            ("experiments/update", {"experiment_id": experiment, "new_name": "elsewhere"}),
            ("runs/delete", {"run_id": run_id}),
        ):
            response = deployed.call(user, "POST", f"/api/2.0/mlflow/{route}", body)
            assert response.status_code == 403, f"{route} as {user}: {response.text}"
    run = deployed.admin_get("/api/2.0/mlflow/runs/get", run_id=run_id).json()["run"]["info"]
    assert run["lifecycle_stage"] == "active"
    got = deployed.admin_get("/api/2.0/mlflow/experiments/get", experiment_id=experiment)
    assert got.json()["experiment"]["name"] == name
    assert got.json()["experiment"]["lifecycle_stage"] == "active"


def test_23_6_malformed_admin_and_search_requests_get_400_not_500(
    deployed: Deployment,
) -> None:
    """A webhook with an event MLflow does not know crashed its handler (500); a search
    with ``name IS NULL`` answers 400."""
    target = deployed.protected()
    for events in (
        [{"entity": "bogus", "action": "created"}],
        [{"entity": "MODEL_VERSION", "action": "DELETED_FOREVER"}],
        ["model_version.created"],
        "model_version.created",
    ):
        body = {"name": "h", "url": "http://127.0.0.1:9/x", "events": events}
        response = deployed.call("admin", "POST", "/api/2.0/mlflow/webhooks", body)
        assert response.status_code == 400, f"{events}: {response.status_code} {response.text}"
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    for route in (f"{RM}/search", f"{MV}/search"):
        response = deployed.call(
            "eve", "GET", f"/api/2.0/{route}", params={"filter": "name IS NULL"}
        )
        assert 400 <= response.status_code < 500, response.text
    _unchanged(deployed, target)
