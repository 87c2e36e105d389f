"""No secret from the environment or a git remote reaches tags, the record or artifacts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lineage_helpers import run

from jupyreg.lineage import Lineage, capture, scrub
from jupyreg.lineage.scrub import REDACTED, Scrubber, redact_detected

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


# Secrets that no environment variable names, found by detect-secrets' plugins. Each is
# assembled at run time, so that this file holds nothing a secret scanner would flag.
_PEM = "PRIVATE KEY"
WRITTEN = {
    "github": "ghp_" + "Zq8Xw2Lm5Np7Rt1Vy4Bc6Df9Gh3Jk0Mn2Pq5St",
    "slack": "https://hooks.slack.com/services/" + "T04BX7QK2/B05CZ8RL3/Vn3Xq8Lp2Wm6Zr9Kt4Yb7Hc1",
    "aws_id": "AKIA" + "QTX7ZKM3VN2RPL4W",
    "aws_secret": "Kx7Qm2Zp9Lr4Vt8Wn3Yb6Hc1Fd5Gs0Ja" + "Ke7Ui2Op",
    "key_body": "MIIEowIBAAKCAQEAx7Qm2Zp9Lr4Vt8Wn3Yb6Hc1Fd5Gs0JaKe7Ui2OpXw4Lm8Nr",
    "key_tail": "Rt5Vy9Bc3Df7Gh==",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9."
    + "Qm2Zp9Lr4Vt8Wn3Yb6Hc1Fd5Gs0JaKe7Ui2OpXw4",
    "api_key": "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1" + "Jk0LmNb",
}
SECRET_CODE = [
    f"GH_PAT={WRITTEN['github']}",
    f"SLACK_URL = {WRITTEN['slack']!r}",
    f"aws_access_key_id = {WRITTEN['aws_id']!r}",
    f"aws_secret_access_key = {WRITTEN['aws_secret']!r}",
    f'DEPLOY_KEY = """-----BEGIN RSA {_PEM}-----',
    WRITTEN["key_body"],
    WRITTEN["key_tail"],
    f'-----END RSA {_PEM}-----"""',
    f"session = {WRITTEN['jwt']!r}",
    f'api_key = "{WRITTEN["api_key"]}"',
]
ORDINARY_CODE = [
    "import pandas as pd",
    "# the label leak was fixed in 0b6bc5a1234567890abcdef1234567890abcdef1",
    'df = pd.read_csv("data/transactions_2024.csv")',
    "model = train(df, n_estimators=100, max_depth=8)",
    "password = os.environ['DB_PASSWORD']",
    "token = client.get_token()",
    'reg.register(model, "fraud-detector", metrics={"auc": 0.93}, tags={"team": "risk"})',
    "for key, value in sorted(params.items()):",
    '    print(f"{key}: {value}")',
]


def test_secret_values_in_an_uncommitted_diff_never_reach_the_registry(git_repo: Path) -> None:
    """Secrets typed into code (a token, a webhook, an AWS key pair, a private key, a JWT,
    an API key) are redacted from the diff, the notebook snapshot and the transcript that
    READ users download; the code around them stays as it was."""
    code = "\n".join([*ORDINARY_CODE, *SECRET_CODE]) + "\n"
    (git_repo / "train.py").write_text(code)
    notebook = git_repo / "train.ipynb"
    content = json.loads(notebook.read_text())
    content["cells"][0]["source"] = code.splitlines(keepends=True)
    notebook.write_text(json.dumps(content, indent=1))

    lineage = capture(cwd=git_repo, notebook=notebook, data=[], user_ns={"In": ["", code]})

    written = {
        name: lineage.artifacts[name]
        for name in ("jupyreg/git.diff", "jupyreg/notebook.ipynb", "jupyreg/transcript.json")
    }
    for name, blob in written.items():
        for secret in WRITTEN.values():
            assert secret.encode() not in blob, f"{secret} in {name}"
    for blob in everything_captured(lineage):
        assert not any(secret.encode() in blob for secret in WRITTEN.values())
    diff = written["jupyreg/git.diff"].decode()
    for line in ORDINARY_CODE:
        assert f"+{line}\n" in diff
    assert f"+GH_PAT={REDACTED}\n" in diff  # the value goes, not the line
    assert f'+api_key = "{REDACTED}"\n' in diff
    assert f'+DEPLOY_KEY = """-----BEGIN RSA {_PEM}-----\n+{REDACTED}\n' in diff
    snapshot = json.loads(written["jupyreg/notebook.ipynb"])
    assert snapshot["cells"][0]["source"][: len(ORDINARY_CODE)] == [
        f"{line}\n" for line in ORDINARY_CODE
    ]
    transcript = json.loads(written["jupyreg/transcript.json"])["inputs"][0]
    assert transcript.startswith("\n".join(ORDINARY_CODE) + "\n")
    assert "secrets: credentials found in jupyreg/git.diff were redacted" in lineage.warnings


# A 16x16 PNG, base64 of high entropy as any image's: data, not a secret.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAOklEQVR4nGP8z8DwnwEJMDIwMDAwMbACBRgZ"
    "+P8zMPxnQAZMDAwM/5kgYg4qgKlnYGD4jwABPwDxDgEq4kV6xgAAAABJRU5ErkJggg=="
)


def test_ordinary_code_comes_back_byte_for_byte() -> None:
    """Nothing found, nothing changed: a notebook with an image and a diff with a binary
    patch, lines that detect-secrets finds nothing in, are returned as they were."""
    assert redact_detected(f'+icon = "{PNG}"\n'.encode(), "x.diff", []) == b'+icon = "***=="\n'

    notebook = {
        "cells": [
            {
                "cell_type": "markdown",
                "attachments": {"plot.png": {"image/png": PNG}},
                "metadata": {},
                "source": ["![plot](attachment:plot.png)"],
            },
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": ORDINARY_CODE},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    snapshot = json.dumps(notebook, indent=4).encode()  # not jupyreg's own layout
    diff = (
        "diff --git a/model.bin b/model.bin\nGIT binary patch\nliteral 40\n"
        "zcmV+^0P(*R6~W4Rj+QhPb3Lg7Dw9z4KVbN2x8Ts1Yc6Mf5Gp0Ja3Ke7Ui2OpXw4Lm8\n\n"
        + "".join(f"+{line}\n" for line in ORDINARY_CODE)
    ).encode()
    warnings: list[str] = []
    assert redact_detected(snapshot, "jupyreg/notebook.ipynb", warnings) == snapshot
    assert redact_detected(diff, "jupyreg/git.diff", warnings) == diff
    assert warnings == []


# A line each gated plugin flags: its gate (scrub._GATES) must let the line through.
GATED = {
    "KeywordDetector": 'db_password = "hunter2-but-longer"',
    "ArtifactoryDetector": 'artifactory = "AKC' + 'p8jQ8tBv2Wz5R1Kx9LmN3"',
    "AWSKeyDetector": "AWS_ACCESS_KEY_ID=AKIA" + "Q7XK3VN2MRTP4LZW",
    "CloudantDetector": 'cl_password = "' + "9f86d081884c7d659a2feaa0c55ad015" * 2 + '"',
    "IbmCloudIamDetector": 'ibm_cloud_iam_key = "Xq7Zp2Lk9Rt4Vw8Ny3Bm6Hc1Fd5Gs0Ja-Ke_Ui7Op2Ty"',
    "IbmCosHmacDetector": 'secret_access_key = "4a7d1ed414474e4033ac29ccb8653d9b1f2e3c4d5a6b7c8d"',
    "IPPublicDetector": 'host = "52.14.100.7"',
    "MailchimpDetector": 'mc = "3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e-us' + '12"',
    "SlackDetector": 'token = "xox' + 'b-2941567301-4829103756-Qm7ZpX2kLr9TvWn4"',
    "SoftlayerDetector": 'softlayer_api_key = "' + "a3f9c1e7b5d2f8a4c6e0b9d1f7a3c5e8" * 2 + '"',
    "TelegramBotTokenDetector": 'bot = "1102015437:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"',
}


def test_each_gate_lets_through_what_its_plugin_finds() -> None:
    detector = scrub._detector()
    plugins = {type(plugin).__name__: plugin for plugin, *_ in detector.plugins}
    assert set(scrub._GATES) <= set(plugins) and set(GATED) == set(scrub._GATES)
    # the keyword gate holds a word of every entry of the plugin's denylist
    from detect_secrets.plugins.keyword import DENYLIST

    assert all(re.search(scrub._GATES["KeywordDetector"], w.replace("_?", "")) for w in DENYLIST)
    lines = list(GATED.values())
    candidates = detector._candidates(lines)
    for number, (name, line) in enumerate(GATED.items()):
        assert plugins[name].analyze_line(filename="train.py", line=line), name
        assert plugins[name] in candidates[number], name
    # and what the filters keep is redacted (detect-secrets' filters drop a bare IP)
    redacted = redact_detected("\n".join(lines).encode(), "x.diff", []).decode().split("\n")
    assert [line.endswith(f'"{REDACTED}"') for line in redacted] == [
        name not in ("AWSKeyDetector", "IPPublicDetector") for name in GATED
    ]


def test_a_line_detect_secrets_fails_on_keeps_the_scrubbers_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    detector = scrub._detector()
    jwt = next(p for p, *_ in detector.plugins if type(p).__name__ == "JwtTokenDetector")
    analyze = jwt.analyze_line

    def failing(filename: str, line: str, **kwargs: object) -> object:
        if "boom" in line:
            raise RuntimeError("boom")
        return analyze(filename=filename, line=line, **kwargs)

    monkeypatch.setattr(jwt, "analyze_line", failing)
    diff = f"+boom = {WRITTEN['jwt']!r}\n+GH_PAT={WRITTEN['github']}\n".encode()
    warnings: list[str] = []
    redacted = redact_detected(diff, "jupyreg/git.diff", warnings).decode()
    assert redacted == f"+boom = {WRITTEN['jwt']!r}\n+GH_PAT={REDACTED}\n"
    assert warnings == [
        "secrets: detect-secrets could not scan 1 lines of jupyreg/git.diff (RuntimeError: "
        "boom); only secret environment values and URL credentials are redacted on those"
    ]

    def unavailable() -> None:
        raise ImportError("gone")

    monkeypatch.setattr(scrub, "_detector", unavailable)
    warnings.clear()
    assert redact_detected(diff, "jupyreg/git.diff", warnings) == diff
    assert warnings == [
        "secrets: detect-secrets could not scan jupyreg/git.diff (ImportError: gone); only "
        "secret environment values and URL credentials are redacted there"
    ]
