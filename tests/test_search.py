"""``reg.search`` / ``jupyreg search`` over two models with metrics and lineage, on a real
SQLite registry."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from jupyreg import Registry
from jupyreg.cli import main
from jupyreg.errors import InvalidArgument
from jupyreg.lineage import Lineage


def lineage(dirty: bool, gpus: int, md5: str) -> Lineage:
    return Lineage.from_record(
        {
            "git": {"commit": "a" * 40, "dirty": dirty},
            "hardware": {"gpu_count": gpus, "gpus": [{"name": "A100"}] * gpus},
            "data": [{"path": "data/train.csv", "md5": md5}],
            "environment": {"python": "3.11.7", "requirements": ["scikit-learn"]},
        }
    )


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, empty_registry_db, model) -> Registry:
    """fraud v1 (auc .85, dirty, 0 GPU), v2 (auc .93, clean, 2 GPU, Production), v3 (auc .95,
    dirty); churn v1 (auc .91, clean, 1 GPU, Staging)."""
    root = tmp_path_factory.mktemp("search")
    shutil.copyfile(empty_registry_db, root / "mlflow.db")
    alice = Registry(f"sqlite:///{root / 'mlflow.db'}", user="alice")
    bob = Registry(alice.tracking_uri, user="bob")
    fraud = ((0.85, True, 0, "1"), (0.93, False, 2, "2"), (0.95, True, 0, "3"))
    for auc, dirty, gpus, md5 in fraud:
        metrics = {"test": {"auc": auc}}
        alice.register(model, "fraud", metrics=metrics, lineage=lineage(dirty, gpus, md5 * 32))
    alice.transition("fraud", 2, "Staging", reason="candidate")
    bob.approve(alice.request("fraud", 2, "Production", reason="best clean").id, comment="ok")
    alice.register(
        model, "churn", metrics={"test": {"auc": 0.91}, "val": {"auc": 0.9}},
        lineage=lineage(False, 1, "4" * 32), stage="Staging", reason="first",
    )  # fmt: skip
    return alice


def found(reg: Registry, expr: str) -> list[tuple[str, int]]:
    frame = reg.search(expr)
    return list(zip(frame["name"], frame["version"], strict=True))


def test_search_metrics_stage_and_lineage_across_models(two_models: Registry) -> None:
    frame = two_models.search("test.auc > 0.9 and stage = 'Production'")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns[:3]) == ["name", "version", "stage"]
    assert frame.loc[0, ["name", "version", "metrics.test.auc"]].tolist() == ["fraud", 2, 0.93]
    assert len(frame) == 1
    reg = two_models
    assert found(reg, "test.auc > 0.9") == [("churn", 1), ("fraud", 2), ("fraud", 3)]
    assert found(reg, "metrics.test.auc >= 0.91 AND git.dirty = 'false'") == [
        ("churn", 1),
        ("fraud", 2),
    ]
    assert found(reg, "git.dirty = true") == [("fraud", 1), ("fraud", 3)]
    assert found(reg, "tags.`jupyreg.git.dirty` = 'true'") == [("fraud", 1), ("fraud", 3)]
    assert found(reg, "gpu.count > 0") == [("churn", 1), ("fraud", 2)]
    assert found(reg, f"data.0.md5 = '{'4' * 32}'") == [("churn", 1)]
    assert found(reg, "stage = 'staging'") == [("churn", 1)]  # stage names in any case
    assert found(reg, "val.auc > 0") == [("churn", 1)]  # fraud has no val.auc
    assert found(reg, "name LIKE 'fr%' and version >= 2") == [("fraud", 2), ("fraud", 3)]
    assert found(reg, "author = 'alice' and params.C = '0.5' and stage != 'None'") == [
        ("churn", 1),
        ("fraud", 2),
    ]
    assert reg.search("test.auc > 0.99").empty


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty search expression"),
        ("test.auc >", "cannot read search expression"),
        ("test.auc > 0.9 or stage = 'Production'", "AND only"),
        ("stage = 'Prod'", "unknown stage 'Prod'"),
        ("git.dirt = 'true'", "unknown lineage field 'git.dirt'.*git.dirty"),
        ("test.auc = 'high'", "compare a metric with a number"),
        ("version = 'two'", "compare version with a number"),
    ],
)
def test_bad_search_expressions_are_invalid_arguments(
    two_models: Registry, expr: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        two_models.search(expr)


def test_cli_search_json_table_and_bad_usage(two_models: Registry, capsys) -> None:
    uri = ["--tracking-uri", two_models.tracking_uri]
    assert main([*uri, "search", "gpu.count > 0", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["version"], r["gpu"]) for r in rows] == [
        ("churn", 1, "1x A100"),
        ("fraud", 2, "2x A100"),
    ]
    assert main([*uri, "search", "stage", "=", "'Production'", "and", "test.auc", ">", "0"]) == 0
    out = capsys.readouterr().out
    assert "fraud" in out and "Production" in out and "churn" not in out
    assert main([*uri, "search", "test.auc >> 1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jupyreg: error: cannot read search expression") and err.count("\n") == 1


def test_a_hundred_clauses_are_judged_and_more_are_refused_before_anything_is_sent(
    two_models: Registry, capsys
) -> None:
    """Issue 23: 300 clauses answered 503 "registry unreachable" (SQLite joins at most 64
    tables: one per metric or param clause). 100 clauses are read; more, or more than
    10,000 characters, are an InvalidArgument naming the limit, exit 2 in the CLI."""
    hundred = " and ".join(["test.auc > 0.9"] * 50 + ["params.C = '0.5'"] * 49 + ["gpu.count > 0"])
    assert found(two_models, hundred) == [("churn", 1), ("fraud", 2)]
    for expr, limit in (
        (" and ".join(["test.auc > 0.9"] * 300), "at most 100 are read"),
        ("name = '" + "x" * 10_000 + "'", "at most 10,000 are read"),
    ):
        with pytest.raises(InvalidArgument, match=limit):
            two_models.search(expr)
        assert main(["--tracking-uri", two_models.tracking_uri, "search", expr]) == 2
        err = capsys.readouterr().err
        assert limit in err and err.count("\n") == 1


def test_past_the_limit_is_invalid_even_where_the_registry_is_unreachable(workdir) -> None:
    """The limit is checked before anything is sent; a search that is sent to a registry
    that cannot be reached is still RegistryUnavailable."""
    from jupyreg.errors import RegistryUnavailable
    from tests.conftest import free_port

    nowhere = Registry(f"http://127.0.0.1:{free_port()}", user="alice")
    with pytest.raises(InvalidArgument, match="more than 100 clauses"):
        nowhere.search(" and ".join(["test.auc > 0.9"] * 300))
    with pytest.raises(RegistryUnavailable, match="cannot be reached"):
        nowhere.search("test.auc > 0.9")
    missing = Registry(f"sqlite:///{workdir / 'no-such-folder' / 'mlflow.db'}", user="alice")
    with pytest.raises(RegistryUnavailable):
        missing.search("test.auc > 0.9")
