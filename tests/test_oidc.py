"""Approvals from CI name the person (issue 26): a jupyreg server trusts a local OIDC issuer
(a generated RSA key, its discovery document and JWKS served on 127.0.0.1) that signs
GitHub-shaped tokens; the CI service account relays them, the lifecycle acts as the
linked user and the history keeps the attestation. Every bad token is refused with
nothing written; approver groups decide who may approve."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from jupyreg import Registry
from jupyreg.errors import PermissionDenied, PolicyViolation
from tests.conftest import BIN
from tests.team import ADMIN_PASSWORD, TeamServer, signed_in

NAME = "fraud-detector"
REPOSITORY = "org/fraud"
PASSWORDS = {
    "admin": ADMIN_PASSWORD,
    "ci-bot": "ci-bot-password-1",
    "alice": "alice-password-1",
    "bob": "bob-password-12",
    "carol": "carol-password-1",
}


class Issuer:
    """An OIDC issuer on loopback: discovery, JWKS, and GitHub-shaped tokens it signs."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        documents: dict[str, bytes] = {"/jwks": json.dumps({"keys": [{**jwk, "kid": "k1"}]})}
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = documents.get(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = json.dumps({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
                self.send_response(200 if body else 404)
                self.end_headers()
                self.wfile.write(body.encode() if isinstance(body, str) else body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, actor: str, *, key=None, audience="jupyreg", expires_in=600, **claims) -> str:  # noqa: ANN001
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": audience,
            "sub": f"repo:{REPOSITORY}:environment:production",
            "actor": actor,
            "repository": REPOSITORY,
            "workflow": "promote",
            "ref": "refs/heads/main",
            "environment": "production",
            "run_id": "4242",
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + expires_in,
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "k1"})


class Team:
    def __init__(self, server: TeamServer, issuer: Issuer) -> None:
        self.server, self.issuer, self.url = server, issuer, server.url

    def login(self, monkeypatch: pytest.MonkeyPatch, user: str, token: str | None = None):  # noqa: ANN201
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS[user])
        monkeypatch.delenv("JUPYREG_USER", raising=False)
        if token:
            monkeypatch.setenv("JUPYREG_OIDC_TOKEN", token)
        else:
            monkeypatch.delenv("JUPYREG_OIDC_TOKEN", raising=False)
        return Registry(self.url)

    def approve_raw(self, request_id: str, token: str) -> requests.Response:
        """ci-bot relays ``token`` on an approval, as curl in a workflow would."""
        return requests.post(
            f"{self.url}/api/2.0/jupyreg/approve",
            json={"request_id": request_id, "comment": "from CI"},
            headers={"X-Jupyreg-Oidc-Token": token},
            auth=("ci-bot", PASSWORDS["ci-bot"]),
            timeout=30,
        )


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, model) -> Iterator[Team]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("oidc")
    issuer = Issuer()
    server = TeamServer(
        root,
        f"sqlite:///{root}/mlflow.db",
        f"sqlite:///{root}/auth.db",
        str(root / "artifacts"),
        {"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
        workers=1,
        options=["--trust-oidc-issuer", issuer.url, "--oidc-audience", "jupyreg"],
    )
    server.start()
    try:
        with signed_in("admin", ADMIN_PASSWORD):
            admin = Registry(server.url)
            for user in ("ci-bot", "alice", "bob", "carol"):
                admin.add_user(user, PASSWORDS[user])
            admin.register(model, NAME, metrics={"test": {"auc": 0.9}})
            for user, level in (("alice", "MANAGE"), ("bob", "MANAGE"), ("carol", "MANAGE")):
                admin.grant(user, NAME, level)
            admin.grant("ci-bot", NAME, "READ")
            admin.link_identity("bob", issuer.url, "actor", "octocat", {"repository": REPOSITORY})
            admin.link_identity("alice", issuer.url, "actor", "alice-gh")
        yield Team(server, issuer)
    finally:
        server.stop()
        issuer.server.shutdown()


@pytest.fixture()
def pending(team: Team, model, monkeypatch) -> str:  # noqa: ANN001
    """A new version alice asks to move to Production: the request's id."""
    alice = team.login(monkeypatch, "alice")
    version = alice.register(model, NAME, metrics={"test": {"auc": 0.91}}).version
    alice.transition(NAME, version, "Staging", reason="candidate")
    return alice.request(NAME, version, "Production", reason="better AUC").id


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "jupyreg"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_ci_bot_relaying_a_linked_token_approves_as_the_person(team: Team, pending, monkeypatch):
    token = team.issuer.token("octocat")
    env = {
        "MLFLOW_TRACKING_URI": team.url,
        "MLFLOW_TRACKING_USERNAME": "ci-bot",
        "MLFLOW_TRACKING_PASSWORD": PASSWORDS["ci-bot"],
        "JUPYREG_OIDC_TOKEN": token,  # sent by jupyreg's request-header provider
    }
    done = _cli("approve", pending, "--comment", "risk reviewed", env=env)
    assert done.returncode == 0, done.stderr
    assert "approved (by bob)" in done.stdout
    reader = team.login(monkeypatch, "alice")
    request = reader.get_request(pending)
    assert request.decided_by == "bob" and request.approvals[0].by == "bob"
    assert request.approvals[0].attestation["relayed_by"] == "ci-bot"
    event = reader.history(NAME).iloc[-1]
    assert (event["author"], event["to_stage"]) == ("bob", "Production")
    attestation = event["attestation"]
    assert attestation["issuer"] == team.issuer.url
    assert attestation["repository"] == REPOSITORY
    assert attestation["workflow"] == "promote" and attestation["environment"] == "production"
    assert attestation["run_url"] == f"{team.issuer.url}/{REPOSITORY}/actions/runs/4242"
    assert attestation["relayed_by"] == "ci-bot"


def test_the_same_person_attested_cannot_approve_their_own_request(
    team: Team, pending, monkeypatch
):
    bot = team.login(monkeypatch, "ci-bot", team.issuer.token("alice-gh"))
    with pytest.raises(PolicyViolation, match="alice cannot approve their own request"):
        bot.approve(pending)
    assert team.login(monkeypatch, "alice").get_request(pending).status == "pending"


def _expired(issuer: Issuer) -> str:
    return issuer.token("octocat", expires_in=-60, iat=int(time.time()) - 700)


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [
        (_expired, 401, "the OIDC token has expired"),
        (lambda i: i.token("octocat", audience="sts.amazonaws.com"), 401, "audience 'jupyreg'"),
        (lambda i: i.token("octocat", key=i.other_key), 401, "signature does not match"),
        (lambda i: i.token("octocat", iss="https://evil.example"), 401, "is not trusted here"),
        (lambda i: i.token("mallory"), 403, "no registry user is linked to this token"),
        (lambda i: i.token("octocat", repository="org/other"), 403, "requires 'org/fraud'"),
        (lambda i: "not-a-token", 401, "is not a JWT"),
    ],
    ids=["expired", "audience", "key", "issuer", "unlinked", "repository", "garbage"],
)
def test_a_bad_token_is_refused_and_nothing_is_written(
    team, pending, monkeypatch, make, status, message
):  # noqa: ANN001
    before = team.login(monkeypatch, "alice").history(NAME)
    response = team.approve_raw(pending, make(team.issuer))
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert "\n" not in response.json()["message"]
    alice = team.login(monkeypatch, "alice")
    assert alice.get_request(pending).status == "pending"
    assert len(alice.history(NAME)) == len(before)


def test_a_claimed_user_without_attestation_is_refused_saying_how_to_attest(
    team, pending, monkeypatch
):  # noqa: ANN001
    team.login(monkeypatch, "ci-bot")
    monkeypatch.setenv("JUPYREG_USER", "octocat")
    with pytest.raises(PermissionDenied, match="id-token: write.*link-identity"):
        Registry(team.url).approve(pending)
    env = {
        "MLFLOW_TRACKING_URI": team.url,
        "MLFLOW_TRACKING_USERNAME": "ci-bot",
        "MLFLOW_TRACKING_PASSWORD": PASSWORDS["ci-bot"],
        "JUPYREG_USER": "octocat",
    }
    done = _cli("approve", pending, env=env)
    assert done.returncode == 1 and "attest" in done.stderr and "Traceback" not in done.stderr
    monkeypatch.setenv("JUPYREG_UNATTESTED_USER", "warn")
    with pytest.warns(UserWarning, match="you claim to be octocat"):
        Registry(team.url).policy(NAME)
    assert team.login(monkeypatch, "alice").get_request(pending).status == "pending"


def test_approver_groups_decide_who_approves_production(team: Team, pending, monkeypatch):
    with signed_in("admin", ADMIN_PASSWORD):
        admin = Registry(team.url)
        admin.change_group("risk", add=["bob"])
        admin.set_policy(NAME, approvers={"Production": ["group:risk"]}, reason="risk signs off")
    try:
        carol = team.login(monkeypatch, "carol")  # MANAGE on the model, not in risk
        with pytest.raises(PolicyViolation, match="carol may not approve .*group:risk"):
            carol.approve(pending)
        assert team.login(monkeypatch, "bob").groups() == {"risk": ["bob"]}
        approved = team.login(monkeypatch, "bob").approve(pending)
        assert approved.status == "approved"
    finally:
        with signed_in("admin", ADMIN_PASSWORD):
            Registry(team.url).set_policy(NAME, approvers={}, reason="back to MANAGE")


def test_only_admins_link_identities_and_change_groups(team: Team, monkeypatch) -> None:
    bob = team.login(monkeypatch, "bob")
    with pytest.raises(PermissionDenied, match="needs an admin"):
        bob.link_identity("bob", team.issuer.url, "actor", "bobby")
    with pytest.raises(PermissionDenied, match="needs an admin"):
        bob.change_group("risk", add=["bob"])
    links = team.login(monkeypatch, "admin").identity_links()
    assert {(k["username"], k["value"]) for k in links} >= {
        ("bob", "octocat"),
        ("alice", "alice-gh"),
    }


def test_the_token_is_never_stored_or_logged(team: Team, pending, monkeypatch) -> None:
    token = team.issuer.token("octocat", jti="never-kept")
    assert team.approve_raw(pending, token).status_code == 200
    signature = token.rsplit(".", 1)[1].encode()
    root = team.server.root
    for path in [p for p in Path(root).rglob("*") if p.is_file()]:
        assert signature not in path.read_bytes(), path


@contextlib.contextmanager
def github_token_endpoint(token: str, asked: list) -> Iterator[dict[str, str]]:  # noqa: ANN001
    """GitHub's job token endpoint on loopback: the variables GitHub sets in a job with
    ``permissions: id-token: write``; each request's path and bearer go to ``asked``."""

    class GitHub(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append((self.path, self.headers["Authorization"]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"value": token}).encode())

        def log_message(self, *args: object) -> None:
            pass

    github = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GitHub)
    threading.Thread(target=github.serve_forever, daemon=True).start()
    try:
        yield {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://127.0.0.1:{github.server_port}/token?v=2",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "job-request-token",
        }
    finally:
        github.shutdown()


def test_inside_github_actions_the_client_fetches_the_jobs_token(team: Team) -> None:
    """What jupyreg's request-header provider does in a job with `id-token: write`: ask
    GitHub's token endpoint for the audience, with the job's request token, once."""
    asked: list[tuple[str, str]] = []
    token = team.issuer.token("octocat")
    script = (
        "from mlflow.tracking.request_header.registry import resolve_request_headers as r;"
        "import sys; h = [r()['X-Jupyreg-Oidc-Token'] for _ in range(3)];"
        "sys.stdout.write(h[0] if len(set(h)) == 1 else 'changed')"
    )
    with github_token_endpoint(token, asked) as job:
        env = {k: v for k, v in os.environ.items() if k != "JUPYREG_OIDC_TOKEN"}
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={**env, **job},
            timeout=120,
        )
    assert done.stdout == token, done.stderr
    assert asked == [("/token?v=2&audience=jupyreg", "Bearer job-request-token")]


def test_the_promote_workflow_approves_as_the_person_who_ran_it(
    team: Team, pending, monkeypatch, workdir
) -> None:  # noqa: ANN001
    """examples/ci/github-actions/promote.yml's steps, with its job's environment, the CI
    service account's secrets and GitHub's token endpoint: history names bob, attested."""
    from tests.test_github_actions import run_job

    context = {
        "secrets.MLFLOW_TRACKING_URI": team.url,
        "secrets.MLFLOW_TRACKING_USERNAME": "ci-bot",
        "secrets.MLFLOW_TRACKING_PASSWORD": PASSWORDS["ci-bot"],
        "inputs.model": NAME,
        "inputs.request_id": pending,
        "inputs.comment": "approved in GitHub Actions",
    }
    team.login(monkeypatch, "alice")  # no JUPYREG_OIDC_TOKEN: the job's token is fetched
    with github_token_endpoint(team.issuer.token("octocat"), []) as job:
        for variable, value in job.items():
            monkeypatch.setenv(variable, value)
        (shown,) = run_job("promote.yml", "show", context, workdir)
        (approved,) = run_job("promote.yml", "approve", context, workdir)
    assert pending in shown
    assert "is approved (by bob)" in approved
    history = json.loads(approved[approved.index("[") : approved.rindex("]") + 1])
    assert history[-1]["author"] == "bob"
    assert history[-1]["attestation"]["run_url"].endswith(f"/{REPOSITORY}/actions/runs/4242")


def test_an_issuer_that_is_not_https_is_a_one_line_error(capsys) -> None:  # noqa: ANN001
    from jupyreg.cli import main

    assert main(["server", "--trust-oidc-issuer", "http://issuer.example"]) == 2
    err = capsys.readouterr().err
    assert "must be an https:// URL" in err and "Traceback" not in err
