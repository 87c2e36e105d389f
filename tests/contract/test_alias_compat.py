"""Contract: ``compat.sql_model_aliases`` reads what MLflow's own API says, in one query
of its SQL registry store (``reg.search`` relies on it for its speed), and declines any
other store."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from jupyreg import compat


def test_sql_model_aliases_match_mlflows_registered_models(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    for name in ("a", "b", "c"):
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, f"file:///models/{name}")
    client.set_registered_model_alias("a", "production", "2")
    client.set_registered_model_alias("a", "champion", "1")
    client.set_registered_model_alias("c", "staging", "1")
    found = compat.sql_model_aliases(client, ["a", "b"])
    assert found == {"a": {"production": 2, "champion": 1}, "b": {}}
    for name in ("a", "b"):
        expected = {k: int(v) for k, v in client.get_registered_model(name).aliases.items()}
        assert found[name] == expected
    remote = MlflowClient("http://127.0.0.1:9", "http://127.0.0.1:9")
    assert compat.sql_model_aliases(remote, ["a"]) is None
