"""Every write route the tracking server serves, classified for the guard.

A route is named by its method and its rule with the static prefix and the API prefix
(``/api/2.0/``, ``/ajax-api/2.0/``, ``/api/3.0/``, ...) taken off, e.g.
``DELETE mlflow/model-versions/delete``. Each is allowed as is (``OPEN``: MLflow's own
basic-auth decides), allowed after a check of jupyreg's (the check's name), or only ever
done by the lifecycle (``LIFECYCLE``). A write route missing here (one a newer MLflow adds)
is refused until someone classifies it.
"""

from __future__ import annotations

import re

OPEN = "open"
LIFECYCLE = "lifecycle"

_API_PREFIX = re.compile(r"^/(?:.*/)?(?:ajax-)?api/\d+\.\d+/?")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# the registry: every write that can touch a stage, its history, or what the gates judge
_REGISTRY = {
    "POST mlflow/registered-models/create": "new_model",
    "POST mlflow/registered-models/rename": "rename_model",
    "PATCH mlflow/registered-models/update": OPEN,  # description only
    "DELETE mlflow/registered-models/delete": "delete_model",
    "POST mlflow/registered-models/set-tag": "model_tag",
    "DELETE mlflow/registered-models/delete-tag": "model_tag",
    "POST mlflow/registered-models/alias": "alias",
    "DELETE mlflow/registered-models/alias": "alias",
    "POST mlflow/registered-models/get-latest-versions": OPEN,  # a read
    "POST mlflow/model-versions/create": "new_version",
    "PATCH mlflow/model-versions/update": OPEN,  # description only
    "DELETE mlflow/model-versions/delete": "delete_version",
    "POST mlflow/model-versions/set-tag": "version_tag",
    "DELETE mlflow/model-versions/delete-tag": "version_tag",
    "POST mlflow/model-versions/transition-stage": LIFECYCLE,
    "POST jupyreg/<action>": OPEN,  # jupyreg's endpoints authorise each action themselves
}

# files: a registered version's model and its run's artifacts are immutable
_ARTIFACTS = {
    "PUT mlflow-artifacts/artifacts/<path:artifact_path>": "artifact_path",
    "DELETE mlflow-artifacts/artifacts/<path:artifact_path>": "artifact_path",
    "POST mlflow-artifacts/mpu/create/<path:artifact_path>": "artifact_path",
    "POST mlflow-artifacts/mpu/complete/<path:artifact_path>": "artifact_path",
    "POST mlflow-artifacts/mpu/abort/<path:artifact_path>": "artifact_path",
    "POST mlflow/upload-artifact": "run_artifacts",
    "POST mlflow/artifacts/presigned-upload-url": "upload_url",
    "POST mlflow/artifacts/presigned-download-url": OPEN,
    "DELETE mlflow/logged-models/<model_id>": "logged_model",
    "PATCH mlflow/logged-models/<model_id>": "logged_model",  # finalize: its status
    "POST mlflow/runs/delete": "run_delete",
}

# tracking: experiments, runs, logged-model metadata (the gates read a record frozen at
# registration, never a run's metrics, so these cannot change what a gate judges)
_TRACKING = {
    f"POST mlflow/{route}": OPEN
    for route in (
        "experiments/create",
        "experiments/delete",
        "experiments/delete-experiment-tag",
        "experiments/restore",
        "experiments/search",
        "experiments/search-datasets",
        "experiments/set-experiment-tag",
        "experiments/update",
        "runs/create",
        "runs/create-promptlab-run",
        "runs/delete-tag",
        "runs/log-batch",
        "runs/log-inputs",
        "runs/log-metric",
        "runs/log-model",
        "runs/log-parameter",
        "runs/outputs",
        "runs/restore",
        "runs/search",
        "runs/set-tag",
        "runs/update",
        "logged-models",
        "logged-models/<model_id>/params",
        "logged-models/search",
    )
} | {
    "PATCH mlflow/logged-models/<model_id>/tags": OPEN,
    "DELETE mlflow/logged-models/<model_id>/tags/<tag_key>": OPEN,
}

# GenAI, gateway, traces, evaluation, jobs, webhooks, users: nothing of the registry's
_ELSEWHERE = {
    f"{method} mlflow/{route}": OPEN
    for method, routes in {
        "POST": (
            "datasets/<dataset_id>/add-experiments",
            "datasets/<dataset_id>/records",
            "datasets/<dataset_id>/remove-experiments",
            "datasets/create",
            "datasets/search",
            "demo/delete",
            "demo/generate",
            "gateway-proxy",
            "gateway/budgets/create",
            "gateway/budgets/update",
            "gateway/endpoints/bindings/create",
            "gateway/endpoints/create",
            "gateway/endpoints/models/attach",
            "gateway/endpoints/models/detach",
            "gateway/endpoints/set-tag",
            "gateway/endpoints/update",
            "gateway/guardrails/add-to-endpoint",
            "gateway/guardrails/create",
            "gateway/model-definitions/create",
            "gateway/model-definitions/update",
            "gateway/secrets/create",
            "gateway/secrets/update",
            "genai/evaluate/invoke",
            "issues",
            "issues/invoke",
            "issues/schedule/state",
            "issues/search",
            "label-schemas/create",
            "prompt-optimization/jobs",
            "prompt-optimization/jobs/<job_id>/cancel",
            "prompt-optimization/jobs/search",
            "review-queues/create",
            "review-queues/delete",
            "review-queues/get-or-create-user",
            "review-queues/items/add",
            "review-queues/items/remove",
            "review-queues/items/set-status",
            "review-queues/update",
            "roles/assign",
            "roles/create",
            "roles/permissions/add",
            "scorer/invoke",
            "scorers/register",
            "traces",
            "traces/<trace_id>/assessments",
            "traces/batchGetInfos",
            "traces/calculate-filter-correlation",
            "traces/delete-traces",
            "traces/link-prompts",
            "traces/link-to-run",
            "traces/metrics",
            "traces/search",
            "ui-telemetry",
            "users/create",
            "users/create-ui",
            "users/permissions/grant",
            "users/permissions/revoke",
            "webhooks",
            "webhooks/<webhook_id>/test",
            "workspaces",
        ),
        "PATCH": (
            "datasets/<dataset_id>/tags",
            "gateway/guardrails/update-config",
            "issues/<issue_id>",
            "jobs/cancel/<job_id>",
            "label-schemas/update",
            "roles/permissions/update",
            "roles/update",
            "traces/<request_id>",
            "traces/<request_id>/tags",
            "traces/<trace_id>/assessments/<assessment_id>",
            "traces/<trace_id>/tags",
            "users/update-admin",
            "users/update-password",
            "webhooks/<webhook_id>",
            "workspaces/<workspace_name>",
        ),
        "DELETE": (
            "datasets/<dataset_id>",
            "datasets/<dataset_id>/records",
            "datasets/<dataset_id>/tags/<key>",
            "gateway/budgets/delete",
            "gateway/endpoints/bindings/delete",
            "gateway/endpoints/delete",
            "gateway/endpoints/delete-tag",
            "gateway/guardrails/delete",
            "gateway/guardrails/remove-from-endpoint",
            "gateway/model-definitions/delete",
            "gateway/secrets/delete",
            "label-schemas/delete",
            "prompt-optimization/jobs/<job_id>",
            "roles/delete",
            "roles/permissions/remove",
            "roles/unassign",
            "scorers/delete",
            "traces/<request_id>/tags",
            "traces/<trace_id>/assessments/<assessment_id>",
            "traces/<trace_id>/tags",
            "users/delete",
            "webhooks/<webhook_id>",
            "workspaces/<workspace_name>",
        ),
        "PUT": ("scorers/online-config",),
    }.items()
    for route in routes
} | {"POST graphql": OPEN}  # MLflow's GraphQL serves queries only

ROUTES: dict[str, str] = {**_REGISTRY, **_ARTIFACTS, **_TRACKING, **_ELSEWHERE}
JUPYREG = "POST jupyreg/<action>"
REGISTRY = frozenset(_REGISTRY) - {JUPYREG}
"""MLflow's registry routes: their body must be exactly what MLflow's handler expects (a
JSON object with fields of the right types), whichever check follows."""


NATIVE_OPEN = re.compile(
    r"^/(?:v1/traces"  # OpenTelemetry trace ingestion
    r"|ajax-api/3\.0/jobs/.*"  # MLflow's server jobs
    r"|gateway/.*"  # the AI gateway's invocations
    r"|ajax-api/3\.0/mlflow/assistant/.*"  # the UI's assistant
    r"|(?:ajax-)?api/3\.0/mlflow/mcp-servers(?:/.*)?"  # the MCP server registry
    r")$"
)
"""Writes MLflow's FastAPI app serves natively with no Flask twin: none touches a
registered model, a stage or a version's files."""


def native_open(path: str, static_prefix: str = "") -> bool:
    if static_prefix and path.startswith(static_prefix + "/"):
        path = path[len(static_prefix) :]
    return bool(NATIVE_OPEN.match(path))


def route_name(method: str, rule: str, static_prefix: str = "") -> str:
    """``METHOD key`` of a Flask URL rule, prefixes taken off."""
    if static_prefix and rule.startswith(static_prefix + "/"):
        rule = rule[len(static_prefix) :]
    return f"{method} {_API_PREFIX.sub('', rule, count=1).lstrip('/')}"


def classify(method: str, rule: str, static_prefix: str = "") -> str | None:
    """What the guard does with a write to ``rule`` (None: not classified, refuse it)."""
    return ROUTES.get(route_name(method, rule, static_prefix))
