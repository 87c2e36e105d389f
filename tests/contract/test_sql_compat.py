"""Contract: jupyreg's fast paths into MLflow's SQL stores (``compat.sql_*``) read what
MLflow's own API says and write what MLflow's own calls write, and decline any other store
(a client of a server then goes through MLflow's API). ``reg.search`` relies on the alias
read for its speed, every lifecycle step on the model read and the one-transaction write,
the model card written on entering Production on the model and run reads."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

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


REMOTE = MlflowClient("http://127.0.0.1:9", "http://127.0.0.1:9")


def _seeded(tmp_path: Path) -> MlflowClient:
    tmp_path.mkdir(exist_ok=True)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    for name in ("m", "other"):
        client.create_registered_model(name, tags={"owner": name})
        for _ in range(3):
            client.create_model_version(name, f"file:///models/{name}", run_id=None)
    client.set_model_version_tag("m", "1", "jupyreg.request.0000abcd", "{}")
    client.set_model_version_tag("m", "2", "k", "v")
    client.set_registered_model_alias("m", "production", "2")
    client.delete_model_version("m", "3")
    return client


def _as_api_reads(client: MlflowClient, name: str, times: bool = True) -> dict:
    versions = client.search_model_versions(f"name = '{name}'")
    model = client.get_registered_model(name)
    fields = ("name", "current_stage", "run_id", "source", "description", "user_id")
    return {
        "versions": sorted(
            (
                int(mv.version),
                *(getattr(mv, f) or None for f in fields),
                mv.creation_timestamp if times else None,
                tuple(sorted(mv.tags.items())),
            )
            for mv in versions
        ),
        "tags": dict(model.tags),
        "aliases": {k: int(v) for k, v in model.aliases.items()},
    }


def test_sql_read_model_matches_mlflows_api(tmp_path: Path) -> None:
    client = _seeded(tmp_path)
    found = compat.sql_read_model(client, "m")
    fields = ("name", "current_stage", "run_id", "source", "description", "user_id")
    assert {
        "versions": sorted(
            (
                v.version,
                *(getattr(v, f) or None for f in fields),
                v.creation_timestamp,
                tuple(sorted(v.tags.items())),
            )
            for v in found.versions
        ),
        "tags": found.tags,
        "aliases": found.aliases,
    } == _as_api_reads(client, "m")
    one = compat.sql_read_model(client, "m", 2)
    assert one.versions == [v for v in found.versions if v.version == 2]
    assert (one.tags, one.aliases) == (found.tags, found.aliases)
    assert compat.sql_read_model(client, "m", 3).versions == []  # deleted
    with pytest.raises(MlflowException) as unknown:
        compat.sql_read_model(client, "nope")
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert compat.sql_read_model(REMOTE, "m") is None


def test_sql_read_run_matches_get_run_and_get_logged_model(tmp_path: Path) -> None:
    from mlflow.entities import LoggedModelOutput, Metric, Param, RunTag

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    run = client.create_run(client.create_experiment("e"))
    run_id, experiment = run.info.run_id, run.info.experiment_id
    client.log_batch(
        run_id,
        metrics=[Metric("auc", 0.5, 1, 0), Metric("auc", 0.9, 2, 1)],
        params=[Param("depth", "3")],
        tags=[RunTag("team", "risk")],
    )
    kept, deleted = (
        client.create_logged_model(experiment, source_run_id=run_id, model_type=kind)
        for kind in ("sklearn", "pytorch")
    )
    client.log_outputs(run_id, [LoggedModelOutput(m.model_id, step=0) for m in (kept, deleted)])
    client.delete_logged_model(deleted.model_id)

    found, logged = compat.sql_read_run(client, run_id)
    theirs = client.get_run(run_id)
    assert found.info == theirs.info
    assert (found.data.metrics, found.data.params) == (theirs.data.metrics, theirs.data.params)
    assert found.data.tags == theirs.data.tags
    assert [o.model_id for o in found.outputs.model_outputs] == [
        o.model_id for o in theirs.outputs.model_outputs
    ]
    their_model = client.get_logged_model(kept.model_id)
    assert [(m.model_id, m.model_type, m.artifact_location, m.model_uri) for m in logged] == [
        (
            kept.model_id,
            *(getattr(their_model, f) for f in ("model_type", "artifact_location")),
            their_model.model_uri,
        )
    ]  # the deleted one left out, as get_logged_model refuses it
    with pytest.raises(MlflowException) as unknown:
        compat.sql_read_run(client, "0" * 32)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert compat.sql_read_run(REMOTE, run_id) is None


def test_sql_models_with_version_tag_matches_mlflows_search(tmp_path: Path) -> None:
    client = _seeded(tmp_path)
    key = "jupyreg.request.0000abcd"
    searched = client.search_model_versions(f"tags.`{key}` LIKE '%'")
    assert compat.sql_models_with_version_tag(client, key) == sorted({mv.name for mv in searched})
    assert compat.sql_models_with_version_tag(client, "nope") == []
    assert compat.sql_models_with_version_tag(REMOTE, key) is None


def test_sql_write_writes_what_mlflows_calls_write(tmp_path: Path) -> None:
    """The same writes through ``sql_write`` (one transaction) on one registry and through
    MLflow's client calls on another leave the same state; a failing write leaves none."""
    ours, theirs = _seeded(tmp_path / "ours"), _seeded(tmp_path / "theirs")
    writes = [
        compat.Write("version_tag", "m", 1, "jupyreg.stage", "Production"),
        compat.Write("stage", "m", 1, "stage", "Production"),
        compat.Write("stage", "m", 2, "stage", "Archived"),
        compat.Write("model_tag", "m", None, "jupyreg.step", '{"done": true}'),
        compat.Write("alias", "m", 1, "alias", "production"),
        compat.Write("alias", "m", None, "alias", "staging"),  # not there: no change
        compat.Write("alias", "m", None, "alias", "gone"),
        compat.Write("version_tag", "m", 2, "k", "changed"),
        compat.Write("model_tag", "m", None, "owner", "changed"),
        compat.Write("version_tag", "other", 1, "k", "another model"),
    ]
    theirs.set_registered_model_alias("m", "gone", "1")
    ours.set_registered_model_alias("m", "gone", "1")
    applied = compat.sql_write(ours, writes)
    assert applied == [w for w in writes if w.value != "staging"]
    theirs.set_model_version_tag("m", "1", "jupyreg.stage", "Production")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.transition_model_version_stage("m", "1", "Production")
        theirs.transition_model_version_stage("m", "2", "Archived")
    theirs.set_registered_model_tag("m", "jupyreg.step", '{"done": true}')
    theirs.set_registered_model_alias("m", "production", "1")
    theirs.delete_registered_model_alias("m", "gone")
    theirs.set_model_version_tag("m", "2", "k", "changed")
    theirs.set_registered_model_tag("m", "owner", "changed")
    theirs.set_model_version_tag("other", "1", "k", "another model")
    for name in ("m", "other"):
        assert _as_api_reads(ours, name, times=False) == _as_api_reads(theirs, name, times=False)
    moved, model = ours.get_model_version("m", "1"), ours.get_registered_model("m")
    assert moved.last_updated_timestamp >= moved.creation_timestamp  # as MLflow stamps a move
    assert model.last_updated_timestamp == moved.last_updated_timestamp

    state = _as_api_reads(ours, "m")
    with pytest.raises(MlflowException) as missing:
        compat.sql_write(
            ours,
            [
                compat.Write("version_tag", "m", 1, "k", "written first"),
                compat.Write("version_tag", "m", 3, "k", "a deleted version"),
            ],
        )
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _as_api_reads(ours, "m") == state
    for bad in (  # refused by MLflow's own validators before anything is written
        compat.Write("alias", "m", 1, "alias", "no spaces!"),
        compat.Write("version_tag", "m", 1, "", "an empty key"),
    ):
        with pytest.raises(MlflowException):
            compat.sql_write(ours, [compat.Write("version_tag", "m", 1, "fresh", "x"), bad])
    assert _as_api_reads(ours, "m") == state
    assert compat.sql_write(REMOTE, writes) is None


def test_sql_registered_files_name_every_root_mlflows_api_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's guard reads who owns a file from here: a version's own location, its
    logged model's, and the run's (its own run_id, else the logged model's source run, as
    ``log_model(registered_model_name=)`` leaves it)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # where a models:/ source is looked up
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("e", artifact_location="mlflow-artifacts:/7/x")
    run = client.create_run(experiment)
    logged = client.create_logged_model(experiment, source_run_id=run.info.run_id)
    client.create_registered_model("m")
    marks = [compat.sql_model_versions_changed(client)]
    with_run = client.create_model_version("m", logged.model_uri, run_id=run.info.run_id)
    without = client.create_model_version("m", logged.model_uri, run_id=None)
    client.create_model_version("m", "file:///elsewhere", run_id=None)
    marks.append(compat.sql_model_versions_changed(client))
    client.delete_model_version("m", "3")
    marks.append(compat.sql_model_versions_changed(client))
    assert len(set(marks)) == 3, marks  # each change of a version changes the mark
    assert compat.sql_model_versions_changed(client) == marks[-1]
    assert compat.sql_model_versions_changed(REMOTE) is None
    found = {f.version: f for f in compat.sql_registered_files(client)}
    assert sorted(found) == [1, 2]
    for version in (with_run, without):
        files = found[int(version.version)]
        their = client.get_model_version("m", version.version)
        assert files.name == "m"
        assert files.run_ids == (run.info.run_id,)
        assert files.model_ids == (logged.model_id,)
        assert set(files.experiment_ids) == {experiment}
        roots = {client.get_run(run.info.run_id).info.artifact_uri, logged.artifact_location}
        assert roots <= set(files.roots)
        if getattr(their, "storage_location", None):
            assert their.storage_location in files.roots
    assert compat.sql_registered_files(REMOTE) is None


def test_what_the_guard_asks_mlflow_about_filters_and_webhook_events() -> None:
    assert compat.search_filter_problem("models", "name = 'a'") is None
    assert compat.search_filter_problem("versions", "tags.`k` = 'v' AND name LIKE 'a%'") is None
    for kind in ("models", "versions"):
        for text in ("name IS NULL", "tags.x IS NOT NULL", "name LIKE", "run_id = "):
            assert compat.search_filter_problem(kind, text), text
    assert compat.webhook_event_problem("MODEL_VERSION", "CREATED") is None
    assert compat.webhook_event_problem("model_version_alias", "deleted") is None
    assert compat.webhook_event_problem("bogus", "CREATED")
    assert compat.webhook_event_problem("MODEL_VERSION", "DELETED_FOREVER")


def test_the_fastapi_authentication_jupyreg_calls_takes_a_request() -> None:
    import inspect

    from mlflow.server import auth

    parameters = inspect.signature(auth._authenticate_fastapi_request).parameters
    assert list(parameters) == ["request"]
