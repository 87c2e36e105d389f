"""Every route the installed MLflow's tracking server serves is classified by
``jupyreg.server.routes``: a route a new MLflow release adds fails here (and the server
refuses it meanwhile). CI runs this on the oldest and the newest supported MLflow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jupyreg.server import routes

SCRIPT = """
import json, os, sys
root = sys.argv[1]
os.environ.update(MLFLOW_FLASK_SERVER_SECRET_KEY="k", MLFLOW_AUTH_ADMIN_PASSWORD="Adm1n-pw-987",
    _MLFLOW_SERVER_FILE_STORE=f"sqlite:///{root}/m.db", _MLFLOW_SGI_NAME="uvicorn",
    MLFLOW_AUTH_CONFIG_PATH=f"{root}/auth.ini")
if sys.argv[2]:
    os.environ["_MLFLOW_STATIC_PREFIX"] = sys.argv[2]
open(f"{root}/auth.ini", "w").write(
    f"[mlflow]\\ndefault_permission = READ\\ndatabase_uri = sqlite:///{root}/a.db\\n"
    "admin_username = admin\\nadmin_password = Adm1n-pw-987\\n"
    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\\n")
from starlette.routing import Mount
from jupyreg.server.app import create_app
from mlflow.server import app
served = create_app(app)

def native(candidates):
    # FastAPI >= 0.16x keeps included routers as branches of effective routes
    for route in candidates:
        if isinstance(route, Mount):
            continue
        if hasattr(route, "effective_candidates"):
            yield from native(route.effective_candidates())
            continue
        route = getattr(route, "route", route)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            yield method, route.path

flask = [(m, r.rule) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}]
print(json.dumps({"flask": flask, "native": sorted(set(native(served.router.routes)))}))
"""


PREFIX = "/mlflow"
"""Served under ``--static-prefix``: every rule carries it, and taking it off is part of
what is checked (the routes without it are the same rules)."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    """Every Flask rule and FastAPI route of the installed MLflow's server with jupyreg's
    app, built once in a fresh interpreter (MLflow's app is a module-level singleton)."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path_factory.mktemp("routes")), PREFIX],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_every_route_of_the_installed_mlflow_is_classified(served) -> None:
    flask = served["flask"]
    assert len(flask) > 400  # every API prefix, auth's routes and jupyreg's
    unclassified = [f"{m} {r}" for m, r in flask if routes.route(m, r, PREFIX) is None]
    assert unclassified == [], "classify these in jupyreg/server/routes.py"
    native = served["native"]
    assert any("assistant" in path for _, path in native)
    unnamed = [f"{m} {p}" for m, p in native if routes.native_feature(p, PREFIX) is None]
    assert unnamed == [], "name these routers in jupyreg/server/routes.py NATIVE"


def test_what_the_server_serves_by_default(served) -> None:
    """Tracking, the registry, artifacts, users, webhooks and the UI are served; the
    assistant, the gateway, MCP, jobs, scorers and the rest are not, natively or not."""
    features = {routes.native_feature(path, PREFIX) for _, path in served["native"]} | {
        routes.route(m, r, PREFIX).feature for m, r in served["flask"]
    }
    assert features >= routes.SERVED
    off = features - routes.SERVED
    assert {"assistant", "gateway", "mcp", "jobs", "scorers", "traces"} <= off
    assert off <= routes.OPTIONAL.keys()
    # a route that runs code, calls out or keeps secrets serves admins at most
    for key in ("POST mlflow/scorer/invoke", "POST mlflow/gateway/secrets/create"):
        assert routes.ROUTES[key].feature not in routes.SERVED
    for key in ("POST mlflow/webhooks", "POST mlflow/webhooks/<webhook_id>/test"):
        assert routes.ROUTES[key].admin
