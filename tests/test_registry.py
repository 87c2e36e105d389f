"""Every Registry method against a real SQLite registry in a temp dir."""

from __future__ import annotations

import math
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from jupyreg import Registry
from jupyreg.errors import (
    ApprovalRequired,
    InvalidArgument,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PolicyViolation,
)
from tests.conftest import register_versions

NAME = "fraud-detector"


def snapshot(uri: str, name: str = NAME) -> dict:
    """Everything the lifecycle could have touched, to prove a refusal changed nothing."""
    client = MlflowClient(uri, uri)
    versions = client.search_model_versions(f"name = '{name}'")
    return {
        "aliases": dict(client.get_registered_model(name).aliases),
        "versions": {
            (mv.version, mv.current_stage, tuple(sorted(mv.tags.items()))) for mv in versions
        },
    }


def promote_to_production(requester: Registry, approver: Registry, version: int) -> None:
    requester.transition(NAME, version, "Staging", reason="candidate")
    request = requester.request(NAME, version, "Production", reason="better auc")
    approver.approve(request.id, comment="ok")


def test_register_logs_model_metrics_params_and_tags(alice: Registry, model, sqlite_uri) -> None:
    mv = alice.register(
        model,
        NAME,
        metrics={"val": {"auc": 0.91}, "test": {"auc": 0.9}},
        description="first",
        tags={"team": "risk"},
    )
    assert (mv.name, mv.version, mv.stage, mv.author) == (NAME, 1, "None", "alice")
    assert mv.metrics == {"val.auc": 0.91, "test.auc": 0.9}
    assert mv.params["C"] == "0.5"
    assert mv.description == "first"
    assert mv.tags["team"] == "risk" and mv.tags["jupyreg.stage"] == "None"
    assert "git" in mv.lineage and mv.tags["jupyreg.lineage"]
    run = MlflowClient(sqlite_uri).get_run(mv.run_id)
    assert run.data.metrics == {"val.auc": 0.91, "test.auc": 0.9}
    assert run.info.status == "FINISHED"
    assert alice.register(model, NAME).version == 2


def test_registered_model_pins_requirements_without_inference(alice: Registry, model) -> None:
    import sklearn

    mv = alice.register(model, NAME)
    local = mlflow.artifacts.download_artifacts(
        f"models:/{NAME}/{mv.version}", tracking_uri=alice.tracking_uri
    )
    requirements = Path(local, "requirements.txt").read_text().split()
    assert f"scikit-learn=={sklearn.__version__}" in requirements


def test_registered_version_loads_and_predicts(alice: Registry, model) -> None:
    mv = alice.register(model, NAME)
    loaded = alice.load(NAME, version=mv.version)
    assert list(loaded.predict(model.sample_input)) == list(model.predict(model.sample_input))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": {"auc": math.nan}}, "'auc' is nan"),
        ({"metrics": {"val": {"auc": "high"}}}, "'val.auc' must be a number"),
        ({"metrics": [0.9]}, "metrics must be a dict"),
        ({"tags": {"jupyreg.stage": "Production"}}, "reserved"),
        ({"stage": "Production"}, "allowed moves are to Staging, Archived"),
        ({"stage": "gold"}, "unknown stage 'gold'"),
    ],
)
def test_bad_registration_writes_nothing(alice: Registry, model, sqlite_uri, kwargs, message):
    with pytest.raises((InvalidArgument, InvalidTransition), match=message):
        alice.register(model, NAME, **kwargs)
    client = MlflowClient(sqlite_uri)
    assert client.search_registered_models() == []
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_unsupported_object_names_what_is_supported(alice: Registry) -> None:
    with pytest.raises(
        InvalidArgument,
        match="cannot register an object of type builtins.dict: supported are scikit-learn",
    ):
        alice.register({"weights": [1, 2]}, NAME)


def test_register_into_staging(alice: Registry, model) -> None:
    mv = alice.register(model, NAME, stage="staging", reason="smoke-tested")
    assert mv.stage == "Staging" and mv.aliases == ("staging",)
    assert alice.history(NAME)["reason"].tolist() == ["smoke-tested"]


def test_models_and_versions_tables(alice: Registry, model) -> None:
    register_versions(alice, model, NAME, 2)
    alice.transition(NAME, 2, "Staging", reason="candidate")
    (model_row,) = alice.models().itertuples(index=False)
    assert (model_row.name, model_row.latest_version, model_row.staging) == (NAME, 2, 2)
    assert model_row.production is pd.NA and model_row.description == ""
    versions = alice.versions(NAME)
    assert versions["version"].tolist() == [1, 2]
    assert versions["stage"].tolist() == ["None", "Staging"]
    assert versions["aliases"].tolist() == ["", "staging"]
    assert versions["author"].tolist() == ["alice", "alice"]
    assert versions["metrics.val.auc"].tolist() == [0.8, 0.81]
    assert {"git_commit", "git_dirty", "data", "gpu", "created"} <= set(versions.columns)


def test_metrics_named_like_fields_never_shadow_them(alice: Registry, model) -> None:
    metrics = {"stage": 0.5, "version": 7.0, "gpu": 2.0, "val": {"auc": 0.9}}
    alice.register(model, NAME, metrics=metrics)
    alice.register(model, NAME, metrics=metrics)
    versions = alice.versions(NAME)
    assert versions.columns.is_unique
    assert versions["version"].tolist() == [1, 2] and versions["version"].dtype == "Int64"
    assert versions["stage"].tolist() == ["None", "None"]
    assert versions["metrics.stage"].tolist() == [0.5, 0.5]
    assert versions["metrics.gpu"].tolist() == [2.0, 2.0] and versions["gpu"].isna().all()
    (record, _) = alice.version_records(NAME)
    assert record.version == 1 and record.metrics["version"] == 7.0


def test_models_without_a_holder_list_versions_as_integers(alice: Registry, model) -> None:
    alice.register(model, NAME)
    alice.register(model, "other")
    alice.transition("other", 1, "Staging", reason="candidate")
    listing = alice.models()
    assert str(listing["staging"].dtype) == "Int64"
    numbers = listing[["latest_version", "production", "staging"]].to_string()
    assert ".0" not in numbers  # the timestamps elsewhere may contain "1.0" by chance


def test_get_unknown_model_or_version_is_not_found(alice: Registry, model) -> None:
    with pytest.raises(NotFound, match="no registered model named 'nope'"):
        alice.get("nope", 1)
    alice.register(model, NAME)
    with pytest.raises(NotFound, match="has no version 7 \\(versions: 1\\)"):
        alice.get(NAME, 7)
    with pytest.raises(InvalidArgument, match="version must be a number"):
        alice.get(NAME, "latest")


def test_production_needs_an_approval(alice: Registry, model, sqlite_uri) -> None:
    register_versions(alice, model, NAME, 1)
    alice.transition(NAME, 1, "Staging", reason="candidate")
    before = snapshot(sqlite_uri)
    with pytest.raises(ApprovalRequired, match="needs 1 approval.*reg.request"):
        alice.transition(NAME, 1, "Production", reason="ship it")
    assert snapshot(sqlite_uri) == before


def test_request_approve_applies_transition_everywhere(alice, bob, model, sqlite_uri) -> None:
    register_versions(alice, model, NAME, 1)
    alice.transition(NAME, 1, "Staging", reason="candidate")
    request = alice.request(NAME, 1, "production", reason="beats baseline")
    assert request.status == "pending" and request.to_stage == "Production"
    assert alice.requests(NAME)["id"].tolist() == [request.id]
    decided = bob.approve(request.id, comment="lgtm")
    assert decided.status == "approved" and decided.decided_by == "bob"
    client = MlflowClient(sqlite_uri, sqlite_uri)
    mv = client.get_model_version(NAME, "1")
    assert mv.current_stage == "Production" and mv.tags["jupyreg.stage"] == "Production"
    assert client.get_registered_model(NAME).aliases == {"production": 1}
    history = alice.history(NAME)
    assert history[["version", "from_stage", "to_stage", "author"]].values.tolist() == [
        [1, "None", "Staging", "alice"],
        [1, "Staging", "Production", "bob"],
    ]
    assert history["request_id"].isna().tolist() == [True, False]
    assert history["request_id"].iloc[1] == request.id
    assert alice.requests(NAME).empty
    assert alice.requests(NAME, status="approved")["approved_by"].tolist() == ["bob"]
    with pytest.MonkeyPatch.context() as env:  # plain MLflow, as a service loads it
        env.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
        for uri in (f"models:/{NAME}/Production", f"models:/{NAME}@production"):
            assert len(mlflow.pyfunc.load_model(uri).predict(model.sample_input)) == 3
    assert len(alice.load(NAME).predict(model.sample_input)) == 3


def test_new_production_archives_the_previous_with_its_own_event(alice, bob, model, sqlite_uri):
    register_versions(alice, model, NAME, 2)
    promote_to_production(alice, bob, 1)
    promote_to_production(alice, bob, 2)
    stages = alice.versions(NAME)[["version", "stage", "aliases"]].values.tolist()
    assert stages == [[1, "Archived", ""], [2, "Production", "production"]]
    archived = alice.history(NAME, 1).iloc[-1]
    assert (archived["from_stage"], archived["to_stage"], archived["author"]) == (
        "Production",
        "Archived",
        "bob",
    )
    assert archived["reason"] == "replaced by v2 in Production"
    assert (
        MlflowClient(sqlite_uri, sqlite_uri).get_model_version(NAME, "1").current_stage
        == "Archived"
    )


def test_self_approval_is_refused_and_changes_nothing(alice, model, sqlite_uri) -> None:
    register_versions(alice, model, NAME, 1)
    alice.transition(NAME, 1, "Staging", reason="candidate")
    request = alice.request(NAME, 1, "Production", reason="ship")
    before = snapshot(sqlite_uri)
    with pytest.raises(PolicyViolation, match="alice cannot approve their own request"):
        alice.approve(request.id)
    assert snapshot(sqlite_uri) == before


def test_a_decided_request_is_not_decided_again(alice, bob, model, sqlite_uri):
    carol = Registry(sqlite_uri, user="carol")
    register_versions(alice, model, NAME, 2)
    promote_to_production(alice, bob, 1)
    approved = alice.requests(NAME, status="approved")["id"].iloc[0]
    before = snapshot(sqlite_uri)
    again = carol.approve(approved)  # a retried approval: the applied result, nothing written
    assert (again.status, again.decided_by) == ("approved", "bob")
    assert snapshot(sqlite_uri) == before
    alice.transition(NAME, 2, "Staging", reason="candidate")
    request = alice.request(NAME, 2, "Production", reason="ship")
    assert bob.reject(request.id, comment="test auc too low").status == "rejected"
    before = snapshot(sqlite_uri)
    with pytest.raises(PolicyViolation, match="already rejected by bob"):
        carol.approve(request.id)
    assert snapshot(sqlite_uri) == before
    assert alice.get(NAME, 2).stage == "Staging"


def test_duplicate_pending_request_and_cancel(alice, bob, model) -> None:
    register_versions(alice, model, NAME, 1)
    alice.transition(NAME, 1, "Staging", reason="candidate")
    request = alice.request(NAME, 1, "Production", reason="ship")
    with pytest.raises(PolicyViolation, match=f"request {request.id} .* is already pending"):
        alice.request(NAME, 1, "Production", reason="again")
    with pytest.raises(PolicyViolation, match="only the requester"):
        bob.cancel(request.id)
    assert alice.cancel(request.id).status == "cancelled"
    assert alice.requests(NAME).empty


@pytest.mark.parametrize("bad_id", ["deadbeef", "x'; drop", ""])
def test_unknown_request_id_is_not_found(bob, bad_id) -> None:
    with pytest.raises(NotFound, match="no request"):
        bob.approve(bad_id)


def test_bad_stage_invalid_move_and_empty_reason(alice, model, sqlite_uri) -> None:
    register_versions(alice, model, NAME, 1)
    before = snapshot(sqlite_uri)
    with pytest.raises(InvalidArgument, match="unknown stage 'Prod'"):
        alice.transition(NAME, 1, "Prod", reason="x")
    with pytest.raises(
        InvalidTransition, match="from None the allowed moves are to Staging, Archived"
    ):
        alice.request(NAME, 1, "Production", reason="x")
    for call in (
        lambda: alice.transition(NAME, 1, "Staging", reason=" "),
        lambda: alice.request(NAME, 1, "Staging", reason=""),
        lambda: alice.rollback(NAME, reason=None),
    ):
        with pytest.raises(InvalidArgument, match="needs a reason"):
            call()
    with pytest.raises(NotFound):
        alice.transition("nope", 1, "Staging", reason="x")
    with pytest.raises(NotFound, match="no version 9"):
        alice.request(NAME, 9, "Staging", reason="x")
    assert snapshot(sqlite_uri) == before


def test_rollback_restores_previous_production(alice, bob, model) -> None:
    register_versions(alice, model, NAME, 2)
    with pytest.raises(InvalidTransition, match="no earlier Production version"):
        alice.rollback(NAME, reason="oops")
    promote_to_production(alice, bob, 1)
    promote_to_production(alice, bob, 2)
    mv = alice.rollback(NAME, reason="v2 drifts")
    assert (mv.version, mv.stage, mv.aliases) == (1, "Production", ("production",))
    assert alice.get(NAME, 2).stage == "Archived"
    last = alice.history(NAME).tail(2)[["version", "from_stage", "to_stage", "reason"]]
    assert last.values.tolist() == [
        [2, "Production", "Archived", "rolled back to v1: v2 drifts"],
        [1, "Archived", "Production", "rollback: v2 drifts"],
    ]


def test_stage_at_answers_from_history(alice, bob, model) -> None:
    register_versions(alice, model, NAME, 2)
    before = datetime.now(UTC)
    time.sleep(0.01)
    promote_to_production(alice, bob, 1)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    promote_to_production(alice, bob, 2)
    assert alice.stage_at(NAME, "production", before) is None
    assert alice.stage_at(NAME, "Production", middle) == 1
    assert alice.stage_at(NAME, "Production", datetime.now(UTC).isoformat()) == 2
    assert alice.stage_at(NAME, "Staging", middle) is None


def test_compare_marks_fields_that_differ(alice, model) -> None:
    alice.register(model, NAME, metrics={"val": {"auc": 0.8}, "test": {"auc": 0.7}})
    alice.register(model, NAME, metrics={"val": {"auc": 0.9}, "test": {"auc": 0.7}})
    frame = alice.compare(NAME)
    assert list(frame.columns) == [1, 2, "differs"]
    assert frame.loc["metrics.val.auc"].tolist() == [0.8, 0.9, True]
    assert frame.loc["metrics.test.auc"].tolist() == [0.7, 0.7, False]
    assert frame.loc["params.C", "differs"] == False  # noqa: E712
    assert list(alice.compare(NAME, [2]).columns) == [2, "differs"]
    with pytest.raises(NotFound, match="no version 5"):
        alice.compare(NAME, [1, 5])


def test_check_finds_and_repairs_out_of_band_changes(alice, bob, model, sqlite_uri) -> None:
    register_versions(alice, model, NAME, 3)
    promote_to_production(alice, bob, 1)
    assert alice.check().empty
    client = MlflowClient(sqlite_uri, sqlite_uri)
    client.set_registered_model_alias(NAME, "production", "2")  # alias moved by hand
    client.transition_model_version_stage(NAME, "3", "Staging")  # plain MLflow stage
    client.set_model_version_tag(NAME, "1", "jupyreg.stage", "Archived")  # tag edited
    problems = alice.check(NAME)
    assert sorted(problems["problem"]) == [
        "alias 'production' points at 2, should be 1",
        "alias 'staging' points at None, should be 3",
        "in Staging without any history event",
        "stage tag says Archived, history says Production",
    ]
    alice.check(NAME, repair=True)
    assert alice.check(NAME).empty
    assert client.get_registered_model(NAME).aliases == {"production": 1, "staging": 3}
    adopted = alice.history(NAME, 3)
    assert adopted["reason"].tolist() == [
        "adopted a move made outside jupyreg (by unknown): MLflow's stage None -> Staging"
    ]
    assert adopted[["author", "repaired_by"]].values.tolist() == [
        ["unknown (outside jupyreg)", "alice"]
    ]


def test_repair_adopts_a_production_change_made_by_plain_mlflow(alice, bob, model, sqlite_uri):
    register_versions(alice, model, NAME, 2)
    promote_to_production(alice, bob, 1)
    client = MlflowClient(sqlite_uri, sqlite_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage(NAME, "2", "Production", True)
    assert sorted(alice.check(NAME)["problem"]) == [
        "MLflow stage says Archived, history says Production: changed outside jupyreg",
        "alias 'production' points at 1, should be 2",
        "in Production without any history event",
    ]
    alice.check(NAME, repair=True)
    assert alice.check(NAME).empty
    assert [(mv.version, mv.stage) for mv in alice.version_records(NAME)] == [
        (1, "Archived"),
        (2, "Production"),
    ]
    assert client.get_registered_model(NAME).aliases == {"production": 2}
    outside = alice.history(NAME).iloc[-2:]
    assert outside["to_stage"].tolist() in (["Archived", "Production"], ["Production", "Archived"])
    assert all("outside jupyreg" in reason for reason in outside["reason"])


def test_identity_comes_from_argument_then_environment(sqlite_uri, monkeypatch) -> None:
    assert Registry(sqlite_uri, user="dana").user == "dana"
    monkeypatch.setenv("JUPYREG_USER", "erin")
    assert Registry(sqlite_uri).user == "erin"


def test_default_uri_is_mlflow_default_in_cwd(workdir, monkeypatch) -> None:
    assert Registry().registry_uri == f"sqlite:///{workdir / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///other.db")
    assert Registry().tracking_uri == f"sqlite:///{workdir / 'other.db'}"


def test_register_into_a_registry_outside_the_current_directory(tmp_path, model, monkeypatch):
    elsewhere = tmp_path / "registry"
    elsewhere.mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    registry = Registry(f"sqlite:///{elsewhere / 'mlflow.db'}", user="alice")
    assert registry.register(model, NAME).version == 1
    assert not (tmp_path / "work" / "mlflow.db").exists()
    assert len(registry.load(NAME, version=1).predict(model.sample_input)) == 3


def _ensemble():
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    y = (x[:, 0] > 0).astype(int)
    boosted = HistGradientBoostingClassifier(max_iter=5).fit(x, y)
    with_lambda = make_pipeline(FunctionTransformer(lambda v: v * 2), boosted).fit(x, y)
    return x, boosted, with_lambda


def test_tree_ensembles_and_custom_pipelines_register_and_load(alice) -> None:
    x, boosted, with_lambda = _ensemble()
    for model in (boosted, with_lambda):
        mv = alice.register(model, NAME)
        loaded = alice.load(NAME, version=mv.version)
        assert list(loaded.predict(x[:5])) == list(model.predict(x[:5]))


def test_a_server_authenticated_user_wins_over_a_declared_one(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    assert Registry("http://127.0.0.1:1", user="mallory").user == "alice"
    assert Registry(f"sqlite:///{'/tmp/x.db'}", user="mallory").user == "mallory"


def test_steps_queued_past_the_bound_are_refused_busy(alice, model, monkeypatch) -> None:
    from jupyreg import store
    from jupyreg.errors import RegistryBusy, http_status

    register_versions(alice, model, NAME, 1)
    monkeypatch.setattr(store, "QUEUE_BOUND", 1)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with alice._store.lock(NAME):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        with pytest.raises(RegistryBusy, match="retry in a second") as busy:
            alice.transition(NAME, 1, "Staging", reason="while busy")
        assert (busy.value.retry_after, http_status(busy.value)) == (1, 503)
    finally:
        release.set()
        holder.join()
    assert alice.transition(NAME, 1, "Staging", reason="after").stage == "Staging"


def test_a_servers_roles_are_judged_under_the_lock_from_the_stage_then(
    alice, bob, model, sqlite_uri
) -> None:
    """A server's roles see the stage a version has when its step runs: a version that
    reached Production after the caller looked cannot be demoted by an EDIT user."""
    seen: list[tuple[int, str, str]] = []

    def edit_only(name: str, version: int, current: str, target: str) -> None:
        seen.append((version, current, target))
        if "Production" in (current, target):
            raise PermissionDenied(f"carol has EDIT on {name}; moving v{version} needs MANAGE")

    carol = Registry(sqlite_uri, user="carol", authorise=edit_only)
    register_versions(alice, model, NAME, 1)
    carol.transition(NAME, 1, "Staging", reason="candidate")
    request = carol.request(NAME, 1, "Production", reason="ship")
    with pytest.raises(PermissionDenied):
        carol.approve(request.id)
    bob.approve(request.id)
    before = snapshot(sqlite_uri)
    with pytest.raises(PermissionDenied, match="needs MANAGE"):
        carol.transition(NAME, 1, "Archived", reason="demote")
    assert snapshot(sqlite_uri) == before
    assert seen == [
        (1, "None", "Staging"),
        (1, "Staging", "Production"),
        (1, "Production", "Archived"),
    ]


def test_a_step_is_one_transaction_on_a_sql_registry(alice, model, sqlite_uri) -> None:
    """A write that fails inside a step's batch leaves none of the step's writes behind."""
    register_versions(alice, model, NAME, 1)
    before = snapshot(sqlite_uri)
    store = alice._store
    with pytest.raises(NotFound), store.batch():
        store.set_version_tag(NAME, 1, "jupyreg.stage", "Staging")
        store.set_legacy_stage(NAME, 1, "Staging")
        store.point_alias(NAME, "staging", 1)
        store.set_version_tag(NAME, 99, "jupyreg.stage", "Staging")  # no such version
    assert snapshot(sqlite_uri) == before


def test_a_step_left_half_done_is_finished_forward_by_the_next_call(
    alice, bob, model, sqlite_uri
) -> None:
    """Over a plain MLflow server a step's writes go one by one: a client killed after
    recording its intent and writing part of it leaves the rest to whoever comes next."""
    from jupyreg import lifecycle, tags

    register_versions(alice, model, NAME, 3)
    promote_to_production(alice, bob, 1)
    alice.transition(NAME, 2, "Staging", reason="candidate")
    stages = {mv.version: mv.stage for mv in alice.version_records(NAME)}
    moves = lifecycle.plan_transition(
        NAME, 2, "Production", stages, alice.policy(NAME), "approved elsewhere"
    )
    step = lifecycle.Step.new(NAME, lifecycle.Actor("bob"), moves, preferred=2).on(stages)
    client = MlflowClient(sqlite_uri, sqlite_uri)  # what the killed client had written:
    client.set_registered_model_tag(NAME, tags.STEP_TAG, tags.step_value(step))
    first = step.events()[0]  # v1's archiving event, nothing else
    client.set_model_version_tag(NAME, "1", tags.event_key(first), tags.event_value(first))

    alice.transition(NAME, 3, "Staging", reason="next candidate")  # finishes it first

    assert [(mv.version, mv.stage) for mv in alice.version_records(NAME)] == [
        (1, "Archived"),
        (2, "Production"),
        (3, "Staging"),
    ]
    assert alice.check(NAME, repo_path=None).empty  # tags, MLflow stages, aliases agree
    assert client.get_registered_model(NAME).aliases == {"production": 2, "staging": 3}
    moves_seen = [(e.version, e.to_stage) for e in alice.history_records(NAME)]
    assert moves_seen.count((1, "Archived")) == 1  # the event already written: not again
    assert moves_seen.count((2, "Production")) == 1


def test_a_batch_holds_only_its_own_threads_writes(alice, model, sqlite_uri) -> None:
    """One Store shared by two threads: a write from the second while the first has a batch
    open is applied at once, not swept into (or lost with) the first thread's batch."""
    register_versions(alice, model, NAME, 1)
    store, client = alice._store, MlflowClient(sqlite_uri, sqlite_uri)
    opened, written = threading.Event(), threading.Event()

    def other_thread() -> None:
        opened.wait(30)
        store.set_version_tag(NAME, 1, "other", "now")
        written.set()

    helper = threading.Thread(target=other_thread)
    helper.start()
    with pytest.raises(RuntimeError), store.batch():
        store.set_version_tag(NAME, 1, "mine", "dropped with my batch")
        opened.set()
        assert written.wait(30)
        assert client.get_model_version(NAME, "1").tags.get("other") == "now"
        raise RuntimeError("this batch fails")
    helper.join()
    tags = client.get_model_version(NAME, "1").tags
    assert tags.get("other") == "now" and "mine" not in tags


def test_one_run_is_read_as_the_search_reads_it(alice, model, sqlite_uri) -> None:
    """``runs`` of one id (one ``get_run``) answers as the batched search does: the run
    while it is active, nothing once it is deleted or for an unknown id."""
    register_versions(alice, model, NAME, 2)
    first, second = (alice.get(NAME, v).run_id for v in (1, 2))
    store = alice._store
    assert set(store.runs([first])) == {first} and set(store.runs([first, second])) == {
        first,
        second,
    }
    MlflowClient(sqlite_uri, sqlite_uri).delete_run(first)
    assert store.runs([first]) == {} and set(store.runs([first, second])) == {second}
    assert store.runs(["0" * 32]) == {}
