"""The GitHub Actions examples lint clean and every command they run really works: each
`run:` step is executed against a test registry with the workflow's own environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jupyreg import Registry
from tests.conftest import MlflowServer, free_port, register_versions

EXAMPLES = Path(__file__).parent.parent / "examples" / "ci"
WORKFLOWS = EXAMPLES / "github-actions"
BIN = Path(sys.executable).parent
NAME = "fraud-detector"
SECRET = "relay-secret"


def test_workflows_pass_actionlint() -> None:
    done = subprocess.run(
        [str(BIN / "actionlint"), *map(str, sorted(WORKFLOWS.glob("*.yml")))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _expand(value: str, context: dict[str, str]) -> str:
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: context[m.group(1)], str(value))


def run_job(workflow: str, job: str, context: dict[str, str], cwd: Path) -> list[str]:
    """Run every `run:` step of a job (but `pip install`, which would fetch jupyreg from
    PyPI) in bash with the job's env; returns the outputs."""
    spec = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][job]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.update({k: _expand(v, context) for k, v in spec.get("env", {}).items()})
    outputs = []
    for step in spec["steps"]:
        script = step.get("run")
        if script is None or script.startswith("pip install"):
            continue
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{step.get('name')}: {done.stdout}{done.stderr}"
        outputs.append(done.stdout)
    return outputs


def test_the_deploy_workflow_runs_against_a_registry(alice, bob, model, sqlite_uri, workdir):
    """promote.yml's approval runs against a team server in tests/test_oidc.py (its job's
    OIDC token names the person); here, what deploy.yml does once Production changed."""
    register_versions(alice, model, NAME, 2)
    alice.transition(NAME, 2, "Staging", reason="candidate")
    bob.approve(alice.request(NAME, 2, "Production", reason="better auc").id)
    context = {
        "secrets.MLFLOW_TRACKING_URI": sqlite_uri,
        "secrets.MLFLOW_TRACKING_USERNAME": "",
        "secrets.MLFLOW_TRACKING_PASSWORD": "",
        "github.event.client_payload.name": NAME,
        "github.event.client_payload.version": "2",
    }
    outputs = run_job("deploy.yml", "deploy", context, workdir)
    assert "deploying models:/fraud-detector/2" in outputs[-1]


def test_webhook_relay_dispatches_the_deploy_workflow(tmp_path, model, receiver, workdir):
    server = MlflowServer(tmp_path)
    server.start()
    port = free_port()
    relay = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "webhook_relay.py"), "--port", str(port)],
        env={
            **os.environ,
            "JUPYREG_WEBHOOK_SECRET": SECRET,
            "GITHUB_TOKEN": "test-token",
            "GITHUB_REPOSITORY": "acme/fraud",
            "GITHUB_API_URL": receiver.url,
        },
        stderr=subprocess.DEVNULL,
    )
    try:
        alice, bob = Registry(server.url, user="alice"), Registry(server.url, user="bob")
        register_versions(alice, model, NAME, 1)
        alice.add_webhook(f"http://127.0.0.1:{port}/", secret=SECRET)
        alice.transition(NAME, 1, "Staging", reason="candidate")
        bob.approve(alice.request(NAME, 1, "Production", reason="ship").id)
        ((headers, body),) = receiver.wait_for(lambda item: True)
        assert json.loads(body) == {
            "event_type": "model-production",
            "client_payload": {"name": NAME, "version": 1},
        }
        assert headers["Authorization"] == "Bearer test-token"
    finally:
        relay.terminate()
        server.stop()


@pytest.mark.parametrize("workflow", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_jupyreg_command_in_the_workflows_is_a_real_verb(workflow) -> None:
    from jupyreg.cli import build_parser

    verbs = set(build_parser()._subparsers._group_actions[0].choices)
    spec = yaml.safe_load((WORKFLOWS / workflow).read_text())
    for job in spec["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                if line.strip().startswith("jupyreg "):
                    assert line.split()[1] in verbs, line
