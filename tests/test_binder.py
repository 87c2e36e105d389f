"""binder/: what mybinder.org (repo2docker) needs to start JupyterLab with jupyreg, its lab
extension and the notebooks, validated offline as far as possible.

The slow test builds a fresh virtualenv from binder/requirements.txt only, runs
binder/postBuild in a copy of the repository (install + seeding the demo registry by
executing notebooks 1 and 2), then starts what a Binder user would through binder/start.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NAME = "fraud-detector"


def test_the_files_repo2docker_reads_are_there() -> None:
    for name in ("requirements.txt", "runtime.txt", "apt.txt", "postBuild", "start"):
        assert (BINDER / name).is_file(), name
    for name in ("postBuild", "start"):
        script = BINDER / name
        assert os.access(script, os.X_OK), f"{name} must be executable"
        assert script.read_text().startswith("#!/bin/bash\n"), name
        subprocess.run(["bash", "-n", str(script)], check=True)  # syntax


def test_runtime_and_requirements_agree_with_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-")
    assert runtime.removeprefix("python-") in SpecifierSet(project["requires-python"])
    ours = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    listed = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert {"jupyterlab", "ipywidgets", "mlflow"} <= {r.name for r in listed}
    for requirement in listed:  # the same pins as the package where both name one
        if requirement.name in ours:
            assert requirement.extras >= ours[requirement.name].extras, requirement
    mlflow = next(r for r in listed if r.name == "mlflow")
    assert str(mlflow.specifier) == str(ours["mlflow"].specifier)


def test_post_build_installs_the_package_and_seeds_the_demo() -> None:
    text = (BINDER / "postBuild").read_text()
    assert "set -euo pipefail" in text
    # the build uses the environment's JupyterLab, hatchling and hatch-jupyter-builder
    assert "pip install --no-cache-dir --no-build-isolation ." in text
    listed = (BINDER / "requirements.txt").read_text()
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in [
        *build["build-system"]["requires"],
        *build["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]["dependencies"],
    ]:
        assert Requirement(requirement).name in listed, requirement
    assert 'JUPYREG_DEMO_DIR="$HOME/demo"' in text
    assert "notebooks/01-register.ipynb notebooks/02-compare-and-promote.ipynb" in text


def test_start_points_at_the_seeded_registry_and_execs_its_arguments(tmp_path) -> None:
    lines = [
        line
        for line in (BINDER / "start").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == 'exec "$@"'
    done = subprocess.run(
        [str(BINDER / "start"), "env"],
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/demo/mlflow.db"
    assert env["JUPYREG_DEMO_DIR"] == f"{tmp_path}/demo"


def _repository_copy(dest: Path) -> Path:
    """The tracked (and not ignored new) files, as a Binder clone has them, plus the lab
    extension when it is already built here (else `pip install .` builds it with npm)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    built = ROOT / "jupyreg" / "labextension"
    if (built / "static" / "style.js").is_file():
        shutil.copytree(built, dest / "jupyreg" / "labextension")
    return dest


def _versions(db: Path) -> dict[int, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select version, value from model_version_tags where name = ? and key = ?",
            (NAME, "jupyreg.stage"),
        ).fetchall()
    return {int(v): stage for v, stage in rows}


@pytest.mark.slow
def test_a_fresh_environment_from_binder_spec_runs_post_build_and_the_notebooks(
    tmp_path,
) -> None:
    """Minutes: a virtualenv from binder/requirements.txt (pip's cache is reused), then
    postBuild, then notebook 1 again as a Binder user would run it."""
    repo = _repository_copy(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-compile",  # byte-compiling ~250 packages is minutes of CPU, and not under test
    ]
    subprocess.run([*pip, "-r", str(repo / "binder" / "requirements.txt")], check=True)

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "JUPYREG_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        HOME=str(home),
        PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
        TMPDIR=str(tmp_path),
    )
    subprocess.run([str(repo / "binder" / "postBuild")], cwd=repo, env=env, check=True)

    python = str(venv / "bin" / "python")
    probe = subprocess.run(
        [python, "-c", "import jupyreg, sys; print(jupyreg.__file__); print(sys.prefix)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.startswith(str(venv))  # installed, not imported from the checkout
    for command in (["labextension", "list"], ["server", "extension", "list"]):
        listed = subprocess.run(
            [str(venv / "bin" / "jupyter"), *command],
            env={**env, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            check=True,
        )
        lines = (listed.stdout + listed.stderr).splitlines()
        assert any("jupyreg" in line and "enabled" in line for line in lines), lines

    seeded = home / "demo" / "mlflow.db"
    assert _versions(seeded) == {1: "Production", 2: "Archived"}

    # what a Binder user does first: open notebook 1 (through `start`) and run it again over
    # the seeded registry (notebook 2's run over notebook 1's output is test_notebooks')
    subprocess.run(
        [
            str(repo / "binder" / "start"),
            "jupyter",
            "execute",
            "--kernel_name=python3",
            "notebooks/01-register.ipynb",
        ],
        cwd=repo,
        env=env,
        check=True,
    )
    assert _versions(seeded) == {1: "Production", 2: "Archived", 3: "None", 4: "None"}


@pytest.mark.slow
def test_repo2docker_reads_the_binder_folder(tmp_path) -> None:
    """`jupyter-repo2docker --no-build` (no Docker needed) writes the Dockerfile it would
    build: Python 3.11, binder/requirements.txt, postBuild at build time, start at launch."""
    r2d = shutil.which("jupyter-repo2docker")
    if r2d is None:
        venv = tmp_path / "r2d"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "jupyter-repo2docker"],
            capture_output=True,
            text=True,
        )
        if install.returncode:
            pytest.skip(f"jupyter-repo2docker cannot be installed here: {install.stderr[-500:]}")
        r2d = str(venv / "bin" / "jupyter-repo2docker")
    repo = _repository_copy(tmp_path / "repo")
    done = subprocess.run(
        [r2d, "--no-build", "--no-run", "--debug", str(repo)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    dockerfile = done.stdout
    assert "Building conda environment for python=3.11" in done.stderr + done.stdout
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile
    assert 'R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in dockerfile
