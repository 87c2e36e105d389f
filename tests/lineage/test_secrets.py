"""No secret from the environment or a git remote reaches tags, the record or artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lineage_helpers import run

from jupyreg.lineage import Lineage, capture
from jupyreg.lineage.scrub import Scrubber

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "GITHUB_TOKEN": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "MLFLOW_TRACKING_PASSWORD": "hunter2-but-longer",
    "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz",
}
REMOTE_TOKEN = "s3cr3t-remote-token"


def everything_captured(lineage: Lineage) -> list[bytes]:
    return [
        json.dumps(lineage.record).encode(),
        json.dumps(lineage.to_tags()).encode(),
        *(value.encode() for value in lineage.to_tags().values()),
        *lineage.artifacts.values(),
    ]


def test_no_secret_reaches_tags_record_or_artifacts(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JUPYREG_TEST_MARKER", "innocent-marker-value")
    run(
        "git",
        "remote",
        "add",
        "origin",
        f"https://user:{REMOTE_TOKEN}@example.com/x.git",
        cwd=git_repo,
    )
    # The user pasted secrets into the code and the notebook: the diff and the snapshot
    # must not carry them either.
    (git_repo / "train.py").write_text(
        f"KEY = {SECRETS['AWS_SECRET_ACCESS_KEY']!r}\n"
        f"URL = 'https://bob:{REMOTE_TOKEN}@example.com/data.csv'\n"
    )
    notebook = git_repo / "train.ipynb"
    content = json.loads(notebook.read_text())
    content["cells"][0]["source"] = [f"token = {SECRETS['GITHUB_TOKEN']!r}\n"]
    content["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": [SECRETS["HF_TOKEN"]]}
    ]
    notebook.write_text(json.dumps(content))

    lineage = capture(cwd=git_repo, notebook=notebook, data=[])
    # a transcript comes too where this process runs an IPython shell (another test's, on
    # this pytest worker); it is scanned for secrets below like every other artifact
    assert set(lineage.artifacts) - {"jupyreg/transcript.json"} == {
        "jupyreg/git.diff",
        "jupyreg/notebook.ipynb",
        "jupyreg/installed-packages.txt",
    }
    for blob in everything_captured(lineage):
        for secret in [*SECRETS.values(), REMOTE_TOKEN]:
            assert secret.encode() not in blob
    assert lineage.record["git"]["remote"] == "https://example.com/x.git"
    assert b"https://example.com/data.csv" in lineage.artifacts["jupyreg/git.diff"]
    assert "secrets: credentials found in jupyreg/git.diff were redacted" in lineage.warnings
    assert "secrets: credentials found in jupyreg/notebook.ipynb were redacted" in lineage.warnings
    # No environment variable is captured wholesale, not even an innocent one.
    assert b"innocent-marker-value" not in b"".join(everything_captured(lineage))


def test_scrubber_ignores_short_values_and_paths(tmp_path: Path) -> None:
    scrubber = Scrubber.from_environ(
        {
            "API_KEY": "abc",  # too short to redact safely
            "SSH_AUTH_SOCK": str(tmp_path),  # a path, not a secret
            "HOME": "/home/someone-long",  # not a secret-looking name
            "DB_PASSWORD": "correct-horse-battery",
        }
    )
    text = f"abc {tmp_path} /home/someone-long correct-horse-battery"
    assert scrubber.text(text) == f"abc {tmp_path} /home/someone-long ***"
    assert scrubber.bytes(text.encode()) == f"abc {tmp_path} /home/someone-long ***".encode()
    assert scrubber.record({"a": [text], "n": 1}) == {"a": [scrubber.text(text)], "n": 1}
