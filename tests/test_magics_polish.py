"""``%%register`` as users ran into it (issue 17), in a real IPython shell on a real SQLite
registry: quoted options, the usage line of a bare ``%register``, re-running an unchanged
cell, and the notebook found by the running cell where no Jupyter server can say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from mlflow import MlflowClient

from jupyreg import Registry
from jupyreg.errors import DuplicateVersion
from jupyreg.magics import JupyReg

NAME = "rf"
TRAIN = """\
import numpy as np
from sklearn.linear_model import LogisticRegression
x = np.random.default_rng(0).normal(size=(60, 3))
model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
metrics = {"test": {"auc": 0.9}}
"""


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    return InteractiveShell.instance()


@pytest.fixture
def magics(shell, sqlite_uri, monkeypatch):
    monkeypatch.setenv("JUPYREG_USER", "alice")
    instance = JupyReg(shell)
    shell.register_magics(instance)
    shell.run_line_magic("config", f"JupyReg.tracking_uri = {sqlite_uri!r}")
    yield instance
    shell.configurables.remove(instance)


def versions(uri: str) -> list[int]:
    return sorted(int(mv.version) for mv in MlflowClient(uri, uri).search_model_versions())


def test_quoted_reason_and_the_usage_line_of_a_bare_register(shell, magics, sqlite_uri) -> None:
    line = f"{NAME} --metrics metrics --stage Staging --reason \"rf model\" --description 'a b'"
    mv = shell.run_cell_magic("register", line, TRAIN)
    assert mv.description == "a b"
    assert Registry(sqlite_uri).history(NAME)["reason"].tolist() == ["rf model"]
    with pytest.raises(UsageError, match="^%register: the following arguments are required: name"):
        shell.run_line_magic("register", "")
    with pytest.raises(UsageError, match="^%register: .*No closing quotation"):
        shell.run_line_magic("register", f'{NAME} --reason "open')


def test_an_unchanged_cell_run_again_registers_only_with_force(
    shell, magics, sqlite_uri, capsys
) -> None:
    first = shell.run_cell_magic("register", f"{NAME} --metrics metrics", TRAIN)
    again = shell.run_cell_magic("register", f"{NAME} --metrics metrics", TRAIN)
    assert again.version == first.version == 1 and versions(sqlite_uri) == [1]
    assert "rf: identical to v1" in capsys.readouterr().out
    forced = shell.run_cell_magic("register", f"{NAME} --metrics metrics --force", TRAIN)
    changed = shell.run_cell_magic("register", f"{NAME}", TRAIN)  # no metrics: not identical
    assert (forced.version, changed.version) == (2, 3) and versions(sqlite_uri) == [1, 2, 3]
    reg = Registry(sqlite_uri)
    with pytest.raises(DuplicateVersion, match="identical to v3") as refused:
        reg.register(shell.user_ns["model"], NAME, lineage=reg_lineage(reg, 3), force=False)
    assert refused.value.version == 3 and versions(sqlite_uri) == [1, 2, 3]
    assert reg.register(shell.user_ns["model"], NAME, lineage=reg_lineage(reg, 3)).version == 4
    found = shell.run_line_magic("registry", "search test.auc >= 0.9 and version < 3")
    assert found[["name", "version"]].values.tolist() == [[NAME, 1], [NAME, 2]]
    with pytest.raises(UsageError, match="InvalidArgument: .*AND only"):
        shell.run_line_magic("registry", "search 'test.auc > 1 or version = 1'")
    with pytest.raises(UsageError, match=f"`%registry versions {NAME}` lists them"):
        shell.run_line_magic("registry", f"promote {NAME} 9 Staging --reason x")


def test_register_words_its_errors_as_registry_does(shell, magics, sqlite_uri) -> None:
    """``%%register`` runs in the notebook's error context, as ``%registry`` and the CLI
    run in theirs: next steps name ``%registry`` verbs and ``--reason``, never Python."""
    shell.run_cell_magic("register", NAME, TRAIN)
    Registry(sqlite_uri).set_policy(NAME, approvals={"Staging": 1, "Production": 1})
    with pytest.raises(UsageError, match=f"then `%registry request {NAME} VERSION Staging") as e:
        shell.run_cell_magic("register", f"{NAME} --stage Staging --reason r --force", TRAIN)
    assert "reg.request(" not in str(e.value)
    with pytest.raises(UsageError, match=f"file `%registry request {NAME} 1 Staging"):
        shell.run_line_magic("registry", f"promote {NAME} 1 Staging --reason r")
    with pytest.raises(UsageError, match="needs a reason: pass --reason TEXT") as promoted:
        shell.run_line_magic("registry", f"promote {NAME} 1 Archived --reason ' '")
    assert "reason='" not in str(promoted.value)


def reg_lineage(reg: Registry, version: int):  # type: ignore[no-untyped-def]
    from jupyreg.lineage import Lineage

    return Lineage.from_record(reg.get(NAME, version).lineage)


def test_the_notebook_holding_the_running_cell_is_found(shell, magics, workdir: Path) -> None:
    cell = f"%%register {NAME}\n{TRAIN}"
    notebook = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": cell.splitlines(True)}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (workdir / "train.ipynb").write_text(json.dumps(notebook))
    (workdir / "other.ipynb").write_text(json.dumps({**notebook, "cells": []}))
    shell.run_cell(cell, store_history=True)
    mv = shell.user_ns["_"]
    assert mv.lineage["notebook"]["path"] == str(workdir / "train.ipynb")
    assert mv.lineage["notebook"]["source"] == "cell"
