"""`reproduce` runs the registrant's code, not the reproducer's: issue 23, item 5.

alice registers a version from a real kernel (nbclient) whose transcript holds a cell that
acts only under reproduction: it writes what it can see (its environment, a credentials
file under its home, whether 127.0.0.1 answers) to a probe file. bob reproduces it with
his registry credentials, tokens and a `~/.mlflow/credentials` of his own: the kernel gets
none of them, runs only once asked (or with `--yes`), and with `--no-network` reaches no
socket. 3 kernel runs in all (the registration, two reproductions).
"""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from nbclient import NotebookClient

from jupyreg import Registry
from jupyreg.cli import main
from jupyreg.errors import InvalidArgument, NotReproducible
from jupyreg.magics import JupyReg
from jupyreg.reproduce import SECRET_NAME
from tests.lineage.lineage_helpers import commit_all, init_git, run

pytestmark = pytest.mark.e2e  # kernels register a version, then re-run it

NAME = "sandboxed"
SECRETS = {
    "MLFLOW_TRACKING_USERNAME": "bob-the-reproducer",
    "MLFLOW_TRACKING_PASSWORD": "bobs-mlflow-password-1",
    "MLFLOW_TRACKING_TOKEN": "bobs-mlflow-token-2",
    "GITHUB_TOKEN": "ghp_bobsGithubToken3",
    "JUPYREG_OIDC_TOKEN": "bobs-oidc-token-4",
    "AWS_ACCESS_KEY_ID": "AKIABOBSKEY5",
    "AWS_SECRET_ACCESS_KEY": "bobs-aws-secret-6",
    "TEAM_API_KEY": "bobs-api-key-7",
    "HTTPS_PROXY": "http://bob:bobs-proxy-password-8@proxy.example.com:3128",  # allow-listed
}
PROBE = """\
import json, os, socket
from jupyreg.reproduce import reproducing
if reproducing():  # only when bob re-runs it
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
        reached = "yes"
    except OSError as exc:
        reached = repr(exc)
    seen = {{
        "env": dict(os.environ),
        "home": os.path.expanduser("~"),
        "mlflow_credentials": os.path.exists(os.path.expanduser("~/.mlflow/credentials")),
        "reached": reached,
    }}
    with open({probes!r}, "a") as out:
        out.write(json.dumps(seen) + "\\n")
"""
TRAIN = """\
%%register sandboxed --model clf --metrics metrics
import numpy as np
from sklearn.linear_model import LogisticRegression
x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
y = np.array([0, 0, 0, 1, 1, 1])
clf = LogisticRegression().fit(x, y)
metrics = {"val": {"acc": clf.score(x, y)}}
"""


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections (the kernel's backlog does)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, listener: int) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("sandbox") / "project"
    root.mkdir()
    probes = root.parent / "probes.jsonl"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYREG_CACHE_DIR", str(root.parent / "cache"))
        env.setenv("JUPYREG_USER", "alice")
        env.chdir(root)
        (root / ".gitignore").write_text("mlflow.db*\nmlruns/\nmlartifacts/\n")
        init_git(root)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(f"%load_ext jupyreg\n%config JupyReg.tracking_uri = {uri!r}"),
            nbformat.v4.new_code_cell(PROBE.format(port=listener, probes=str(probes))),
            nbformat.v4.new_code_cell(TRAIN),
        ]
        nb_path = root / "train.ipynb"
        nbformat.write(nb, nb_path)
        commit_all(root, "training notebook")
        env.setenv("JPY_SESSION_NAME", str(nb_path))
        where = {"metadata": {"path": str(root)}}
        NotebookClient(nb, timeout=300, kernel_name="python3", resources=where).execute()
        yield root


@pytest.fixture
def reg(project: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.chdir(project)
    monkeypatch.setenv("JUPYREG_CACHE_DIR", str(project.parent / "cache"))
    return Registry(f"sqlite:///{project / 'mlflow.db'}", user="bob")


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """stdin is not a terminal (as in CI, or with stdin redirected)."""
    devnull = open(os.devnull)  # noqa: SIM115 - closed at teardown
    monkeypatch.setattr(sys, "stdin", devnull)
    yield
    devnull.close()


def _probes(project: Path) -> list[dict]:
    path = project.parent / "probes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _kept(reg: Registry) -> list[str]:
    return [k for k in reg.get(NAME, 1).tags if k.startswith("jupyreg.reproduction.")]


def _worktrees(root: Path) -> int:
    return run("git", "worktree", "list", "--porcelain", cwd=root).count("worktree ")


def test_reproduce_hands_the_registrant_code_no_credentials(
    project: Path, reg: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "bob"
    (home / ".mlflow").mkdir(parents=True)
    (home / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = bob\nmlflow_tracking_password = bobs-file-9\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "bobs-checkout"))
    monkeypatch.setenv("TZ", "UTC")  # allow-listed: it changes dates the code computes
    before = len(_probes(project))

    result = reg.reproduce(NAME, 1, confirm=False, env={"PASSED_ON": "on purpose"})

    assert result.ok, result.text()
    (seen,) = _probes(project)[before:]
    env = seen["env"]
    shown = json.dumps(seen)
    assert not [name for name in env if SECRET_NAME.search(name)], sorted(env)
    for name, value in SECRETS.items():
        assert name not in env and value not in shown
    assert "bobs-file-9" not in shown and seen["mlflow_credentials"] is False
    assert seen["home"] != str(home) and "PYTHONPATH" not in env
    assert env["MLFLOW_TRACKING_URI"] != reg.tracking_uri  # a throwaway registry
    assert "throwaway" in env["MLFLOW_TRACKING_URI"]
    assert (env["TZ"], env["PASSED_ON"]) == ("UTC", "on purpose")
    assert seen["reached"] == "yes"  # the network was left on
    assert "passed: PASSED_ON" in result.sandbox and "network on" in result.sandbox
    assert "MLFLOW_TRACKING" not in result.sandbox and "HTTPS_PROXY" not in result.sandbox
    assert f"sandbox: {result.sandbox}" in result.text()
    kept = json.loads(reg.get(NAME, 1).tags[f"jupyreg.reproduction.{result.id}"])
    assert kept["sandbox"] == result.sandbox and kept["author"] == "bob"


def test_a_secret_is_never_passed_even_when_asked_for(
    project: Path, reg: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    before = (_kept(reg), len(_probes(project)))
    for env in ({"HF_TOKEN": "hf_x"}, {"AWS_REGION": "eu-west-1"}, {"DB": "https://u:p@db/x"}):
        with pytest.raises(InvalidArgument, match="looks like a credential.*nothing ran"):
            reg.reproduce(NAME, 1, confirm=False, env=env)
    with pytest.raises(InvalidArgument, match="JUPYREG_REPRODUCE is reproduce's own"):
        reg.reproduce(NAME, 1, confirm=False, env={"JUPYREG_REPRODUCE": "/tmp/x"})
    with pytest.raises(InvalidArgument, match="confirm must be True or False"):
        reg.reproduce(NAME, 1, confirm="no")
    base = ["--tracking-uri", reg.tracking_uri, "reproduce", NAME, "1", "--yes", "--env"]
    assert main([*base, "GITHUB_TOKEN=ghp_x"]) == 2
    assert "env: GITHUB_TOKEN looks like a credential" in capsys.readouterr().err
    assert main([*base, "NOT_SET_ANYWHERE"]) == 2
    assert "--env NOT_SET_ANYWHERE: not set here" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(project.parent / "no-such-bin"))  # no unshare to be had
    with pytest.raises(NotReproducible, match="cannot reproduce without network.*nothing ran"):
        reg.reproduce(NAME, 1, confirm=False, network=False)
    assert (_kept(reg), len(_probes(project))) == before


def test_without_a_terminal_it_says_what_would_run_and_refuses_to_run_it(
    project: Path, reg: Registry, no_terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (_kept(reg), len(_probes(project)))
    commit = reg.get(NAME, 1).lineage["git"]["commit"]
    with pytest.raises(InvalidArgument, match=r"nobody can answer.*pass confirm=False; nothing"):
        reg.reproduce(NAME, 1)
    said = capsys.readouterr().err
    assert said.startswith(f"reproduce {NAME} v1 runs code that alice registered on ")
    assert f"commit   {commit[:12]}\n" in said
    assert "entry    train.ipynb: the kernel's transcript, 3 cell(s)" in said
    assert "[1] %load_ext jupyreg" in said and f"[3] %%register {NAME}" in said
    assert "network on" in said and "cell 1/3" not in said  # no kernel ran

    assert main(["--tracking-uri", reg.tracking_uri, "reproduce", NAME, "1"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("jupyreg: error: sandboxed v1: reproduce asks")
    assert f"`jupyreg reproduce {NAME} 1 --yes`; nothing ran" in err

    shell = InteractiveShell.instance()
    magics = JupyReg(shell)
    shell.register_magics(magics)
    try:
        shell.run_line_magic("config", f"JupyReg.tracking_uri = {reg.tracking_uri!r}")
        with pytest.raises(UsageError, match=f"`%registry reproduce {NAME} 1 --yes`"):
            shell.run_line_magic("registry", f"reproduce {NAME} 1")
    finally:
        shell.configurables.remove(magics)
    assert (_kept(reg), len(_probes(project))) == before
    assert _worktrees(project) == 1


def test_a_no_on_the_terminal_runs_nothing(project: Path, reg: Registry) -> None:
    before = (_kept(reg), len(_probes(project)))
    terminal, answering = pty.openpty()
    os.write(terminal, b"n\n")
    done = subprocess.run(
        [sys.executable, "-m", "jupyreg.cli", "--tracking-uri", reg.tracking_uri]
        + ["reproduce", NAME, "1"],
        stdin=answering,
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
    )
    os.close(answering)
    os.close(terminal)
    assert done.returncode == 1, done.stderr
    assert "registered on" in done.stderr and "run it? [y/N] " in done.stderr
    assert done.stderr.endswith(  # the answer was echoed on the terminal, not in stderr
        f"run it? [y/N] jupyreg: refused: {NAME} v1 was not reproduced: you said no; nothing ran\n"
    )
    assert (_kept(reg), len(_probes(project))) == before


def test_yes_and_no_network_from_the_cli(
    project: Path, reg: Registry, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from jupyreg.reproduce import _launcher

    try:
        _launcher(False)
    except NotReproducible as exc:
        pytest.skip(str(exc))
    before = len(_probes(project))
    monkeypatch.setenv("FROM_THE_SHELL", "its value here")
    argv = ["reproduce", NAME, "1", "--yes", "--no-network", "--env", "PASSED_ON=cli"]
    argv += ["--env", "FROM_THE_SHELL"]
    code = main(["--tracking-uri", reg.tracking_uri, *argv])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    (seen,) = _probes(project)[before:]
    assert "unreachable" in seen["reached"].lower(), seen["reached"]  # not even loopback
    assert (seen["env"]["PASSED_ON"], seen["env"]["FROM_THE_SHELL"]) == ("cli", "its value here")
    assert "runs code that alice registered" in err and "cell 3/3" in err
    assert out.startswith(f"{NAME} v1 reproduced") and "network off (unshare" in out
