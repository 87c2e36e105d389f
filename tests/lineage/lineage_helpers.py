"""Helpers for the lineage tests: run real git/DVC commands, compute ground truth.

Only the standard library is imported, so the GPU test runs on a machine without
MLflow, GitPython or DVC.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

DVC = Path(sys.executable).parent / "dvc"
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": 3,
            "metadata": {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["fitted\n"]}],
            "source": ["model = train()\n"],
        },
        {"cell_type": "markdown", "metadata": {}, "source": ["# notes"]},
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a real command and return its stdout; fail the test with its stderr."""
    done = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env={**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{cmd} failed: {done.stderr}"
    return done.stdout


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def dvc_outs(dvc_file: Path) -> dict:
    """The single ``outs`` entry of a ``.dvc`` file, read without PyYAML or DVC."""
    out: dict = {}
    for line in dvc_file.read_text().splitlines():
        key, _, value = line.strip().lstrip("- ").partition(": ")
        if key in ("md5", "size", "nfiles", "hash", "path"):
            out[key] = int(value) if key in ("size", "nfiles") else value
    return out


def init_git(root: Path) -> None:
    run("git", "init", "-q", "-b", "main", cwd=root)
    run("git", "config", "user.email", "test@example.com", cwd=root)
    run("git", "config", "user.name", "Test", cwd=root)
    run("git", "config", "commit.gpgsign", "false", cwd=root)


def commit_all(root: Path, message: str = "commit") -> str:
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-q", "-m", message, cwd=root)
    return run("git", "rev-parse", "HEAD", cwd=root).strip()
