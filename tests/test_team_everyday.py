"""Issue 23: a team member's everyday work still works on the team server.

One real ``jupyreg server`` on SQLite (``tests/attacks_support.py``'s deployment, users
alice, bob and eve, without its seeded model); the admin creates the model ``everyday``
and grants alice EDIT (bob MANAGE) on it. Alice then works with plain MLflow only, as a
data scientist would: experiments, runs, params, metrics, artifacts, ``log_model`` with
``registered_model_name``, aliases, tags, descriptions, searches, downloads,
``pyfunc.load_model``, deleting her scratch work. Every step succeeds, and each refusal
she can meet is a clean 4xx with a message that says what to do instead.

Then Debian's Chromium (``tests/chromium.py``, over the DevTools protocol) logs in as
alice at the basic-auth prompt and walks MLflow's UI: home, experiments, an experiment,
a run and its artifacts, the registered models, a model and a version; at ``/`` and under
``--static-prefix /mlflow``. Each page must show its content and no error, every request
the UI makes must answer (no 5xx but MLflow's own presigned-download fallback), and the
4xx it gets must be the known refusals of features the server does not serve.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attacks_support import (
    PASSWORDS,
    STATIC_PREFIX,
    Deployment,
    credentials,
    deployment,
)
from tests.chromium import Chromium, Request, ensure_chromium

pytestmark = [pytest.mark.server, pytest.mark.e2e]

MODEL = "everyday"
REQUIREMENTS = ["scikit-learn", "numpy"]  # given: no pip-inference subprocess (~2 s)


@pytest.fixture(scope="module", autouse=True)
def _no_lineage_capture() -> Iterator[None]:
    """The runs here are MLflow's own everyday work, without jupyreg's run-context provider:
    lineage values are the user's data and may say anything (NVML's warning here says "Not
    Found"), which the UI tour would read as an error banner. Its own test turns it on."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYREG_CAPTURE", "0")
        yield


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, model: Any) -> Iterator[Deployment]:
    """A deployment's two servers on one SQLite store (the prefixed one boots while the
    first tests run), with alice EDIT and bob MANAGE on ``everyday``, which the admin
    created."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("everyday")
    with deployment("sqlite", root, model, seed=False) as deployed:
        with credentials("admin"):
            MlflowClient(deployed.url, deployed.url).create_registered_model(MODEL)
        deployed.grant(MODEL, {"alice": "EDIT", "bob": "MANAGE"})  # `jupyreg users grant`
        yield deployed


@contextlib.contextmanager
def plain_mlflow(url: str, user: str) -> Iterator[Any]:
    """MLflow's fluent API and a client on ``url``, signed in as ``user``."""
    import mlflow
    from mlflow import MlflowClient

    with credentials(user):
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        try:
            yield MlflowClient()
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


def refused(action: Any, status: int, *words: str) -> str:
    """``action()`` fails with a JSON error of ``status`` in MLflow's shape (``error_code``,
    ``message``) whose message holds every one of ``words`` (case-insensitive); returns the
    message. MLflow's client raises it as a ``RestException``, its artifact uploads as the
    ``requests`` error of the answer."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    with pytest.raises((MlflowException, requests.HTTPError)) as caught:
        action()
    error = caught.value
    if isinstance(error, requests.HTTPError):
        answered, body = error.response.status_code, error.response.json()
        code, message = body["error_code"], body["message"]
    else:
        assert isinstance(error, RestException), f"not a JSON error answer: {error}"
        answered, code, message = error.get_http_status_code(), error.error_code, error.message
    assert answered == status, (answered, code, message)
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"{missing} not in {message!r}"
    return message


class Steps:
    """Times the steps of a test, for the report (``-s``) and a failure's message."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.done: list[tuple[str, float]] = []
        self.failed: list[str] = []

    def attempt(self, what: str, action: Any) -> bool:
        """A step that must work, whose failure is reported with the others at the end
        (rather than hiding the steps after it)."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            self.failed.append(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}")
            return False
        return True

    def needs_manage(self, what: str, action: Any) -> None:
        """MLflow's basic-auth lets only MANAGE delete this (an alias, a version tag, a
        version): the signed-in EDIT user is refused with 403, bob (MANAGE) does it."""
        from mlflow.exceptions import MlflowException

        try:
            action()
        except MlflowException as exc:
            if "403" not in str(exc) and getattr(exc, "get_http_status_code", int)() != 403:
                self.failed.append(f"alice {what}: {' '.join(str(exc).split())[:200]}")
        else:
            self.failed.append(f"alice {what}: MLflow let EDIT do it")
            return
        with credentials("bob"):
            action()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.done.append((name, now - self.last))
        self.last = now

    def report(self) -> str:
        total = time.monotonic() - self.started
        return f"{total:.1f} s: " + ", ".join(f"{n} {s:.1f}" for n, s in self.done)


# -- plain MLflow ------------------------------------------------------------------------


def test_alices_everyday_work_with_plain_mlflow(team: Deployment, model: Any, tmp_path) -> None:
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    step = Steps()
    files = tmp_path / "out"
    (files / "plots").mkdir(parents=True)
    (files / "summary.txt").write_text("auc 0.91\n")
    (files / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    notes = tmp_path / "notes.md"
    notes.write_text("# what I tried\n")
    expected = list(model.predict(model.sample_input))

    with plain_mlflow(team.url, "alice") as client:
        # an experiment of her own, at the server's artifact root
        experiment = mlflow.set_experiment("everyday-work")
        experiment_id = experiment.experiment_id
        assert experiment.artifact_location.startswith("mlflow-artifacts:/")
        mlflow.set_experiment_tag("team", "fraud")
        step("experiment")

        with mlflow.start_run(run_name="baseline") as run:
            run_id = run.info.run_id
            mlflow.log_param("C", 0.5)
            mlflow.log_params({"penalty": "l2", "solver": "lbfgs"})
            for epoch, loss in enumerate((0.9, 0.6, 0.4)):
                mlflow.log_metric("loss", loss, step=epoch)
            mlflow.log_metrics({"auc": 0.91, "f1": 0.84})
            client.log_batch(
                run_id,
                metrics=[Metric("val_auc", 0.9, int(time.time() * 1000), 0)],
                params=[Param("features", "4")],
                tags=[RunTag("batch", "yes")],
            )
            mlflow.set_tag("owner", "alice")
            mlflow.set_tags({"purpose": "everyday", "scratch": "no"})
            client.delete_tag(run_id, "scratch")
            mlflow.log_input(mlflow.data.from_numpy(model.sample_input, name="sample"), "training")
            mlflow.log_artifact(str(notes))
            mlflow.log_artifacts(str(files), artifact_path="reports")
            mlflow.log_dict({"threshold": 0.5}, "config/threshold.json")
            step("run logged")
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=MODEL,
                pip_requirements=REQUIREMENTS,
                input_example=model.sample_input,
            )
            version = int(info.registered_model_version)
            step("log_model + register")
            # the run's files are now a registered version's: a late artifact is refused
            late = refused(
                lambda: mlflow.log_artifact(str(notes), artifact_path="late"),
                403,
                "immutable",
                "register a new version",
            )
        assert client.get_run(run_id).info.status == "FINISHED"
        # the logged model registered again, as after an evaluation
        second = int(mlflow.register_model(f"models:/{info.model_id}", MODEL).version)
        assert second == version + 1
        step("register again")

        # aliases, tags, descriptions
        client.set_registered_model_alias(MODEL, "champion", version)
        assert int(client.get_model_version_by_alias(MODEL, "champion").version) == version
        champion = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        assert list(champion.predict(model.sample_input)) == expected
        step.needs_manage(
            "deletes alias 'champion'",
            lambda: client.delete_registered_model_alias(MODEL, "champion"),
        )
        assert "champion" not in client.get_registered_model(MODEL).aliases
        client.set_model_version_tag(MODEL, str(version), "validated", "yes")
        assert client.get_model_version(MODEL, str(version)).tags["validated"] == "yes"
        step.needs_manage(
            "deletes version tag 'validated'",
            lambda: client.delete_model_version_tag(MODEL, str(version), "validated"),
        )
        assert "validated" not in client.get_model_version(MODEL, str(version)).tags
        client.set_registered_model_tag(MODEL, "domain", "fraud")
        assert client.get_registered_model(MODEL).tags["domain"] == "fraud"
        client.delete_registered_model_tag(MODEL, "domain")
        assert "domain" not in client.get_registered_model(MODEL).tags
        client.update_model_version(MODEL, str(version), description="baseline, C=0.5")
        client.update_registered_model(MODEL, description="everyday fraud model")
        assert client.get_model_version(MODEL, str(version)).description == "baseline, C=0.5"
        assert client.get_registered_model(MODEL).description == "everyday fraud model"
        client.update_run(run_id, name="baseline-v1")
        step("aliases, tags, descriptions")

        # searches
        runs = mlflow.search_runs([experiment_id], filter_string="params.C = '0.5'")
        assert runs["run_id"].tolist() == [run_id]
        assert runs.loc[0, "metrics.auc"] == 0.91
        assert runs.loc[0, "tags.owner"] == "alice"
        assert runs.loc[0, "tags.mlflow.runName"] == "baseline-v1"
        found = mlflow.search_experiments(filter_string="name = 'everyday-work'")
        assert [e.experiment_id for e in found] == [experiment_id]
        versions = client.search_model_versions(f"name = '{MODEL}'")
        assert sorted(int(v.version) for v in versions) == [version, second]
        assert [m.name for m in client.search_registered_models(f"name = '{MODEL}'")] == [MODEL]
        assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.9, 0.6, 0.4]
        step("searches")

        # downloads and loading
        listed = {a.path for a in client.list_artifacts(run_id)}
        assert {"notes.md", "reports", "config"} <= listed, listed
        fetched = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="reports", dst_path=str(tmp_path / "dl")
            )
        )
        assert (fetched / "summary.txt").read_text() == "auc 0.91\n"
        assert (fetched / "plots" / "roc.csv").read_text() == "fpr,tpr\n0,0\n1,1\n"
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
        assert list(loaded.predict(model.sample_input)) == expected
        step("downloads, load_model")

        # her scratch work goes: a run, a version in stage None (which MLflow lets MANAGE
        # delete), and an experiment that holds no registered version
        with mlflow.start_run(run_name="scratch") as scratch:
            mlflow.log_metric("auc", 0.5)
        client.delete_run(scratch.info.run_id)
        assert client.get_run(scratch.info.run_id).info.lifecycle_stage == "deleted"
        step.needs_manage(
            f"deletes her version {second} in stage None",
            lambda: client.delete_model_version(MODEL, str(second)),
        )
        assert [int(v.version) for v in client.search_model_versions(f"name='{MODEL}'")] == [
            version
        ]
        sandbox = client.create_experiment("everyday-sandbox")
        client.rename_experiment(sandbox, "everyday-sandbox-old")
        with mlflow.start_run(experiment_id=sandbox, run_name="try"):
            mlflow.log_param("lr", 0.1)
        client.delete_experiment(sandbox)
        assert client.get_experiment(sandbox).lifecycle_stage == "deleted"
        step("scratch deleted")

        # -- what she is refused: MLflow's JSON error, with what to do instead --
        messages = {"late artifact": late}
        messages["alias production"] = refused(
            lambda: client.set_registered_model_alias(MODEL, "production", version),
            403,
            "reserved",
            "lifecycle",
            "reg.request",
        )
        messages["jupyreg tag"] = refused(
            lambda: client.set_model_version_tag(MODEL, str(version), "jupyreg.stage", "x"),
            403,
            "managed by jupyreg",
        )
        messages["legacy stage"] = refused(
            lambda: client.transition_model_version_stage(MODEL, str(version), "Production"),
            403,
            "stage changes go through the lifecycle",
        )
        messages["artifact_location"] = refused(
            lambda: client.create_experiment("elsewhere", artifact_location="/tmp/elsewhere"),
            403,
            "only an admin",
            "leave it out",
        )
        messages["delete registered run"] = refused(
            lambda: client.delete_run(run_id), 403, "immutable", f"{MODEL} v{version}"
        )
        # traces are off: a search (a read the UI makes on every page) finds none, any
        # other use is not there
        assert len(client.search_traces(locations=[experiment_id])) == 0
        messages["traces"] = refused(
            lambda: client.delete_traces(experiment_id, max_timestamp_millis=1),
            404,
            "does not serve",
            "--enable-mlflow-feature traces",
        )
        step("refusals")

    # in Staging (through jupyreg), her version's experiment stays, under its name
    from jupyreg import Registry

    with credentials("alice"):
        Registry(team.url).transition(MODEL, version, "Staging", reason="everyday check")
    with plain_mlflow(team.url, "alice") as client:
        for what, action in (
            ("delete", lambda: client.delete_experiment(experiment_id)),
            ("rename", lambda: client.rename_experiment(experiment_id, "renamed")),
        ):
            messages[f"{what} experiment of Staging"] = refused(
                action, 403, f"{MODEL} v{version} in Staging", "archived"
            )
        assert client.get_experiment(experiment_id).name == "everyday-work"
        staged = mlflow.pyfunc.load_model(f"models:/{MODEL}@staging")
        assert list(staged.predict(model.sample_input)) == expected
    step("Staging")
    print(f"\neveryday work: {step.report()}")
    for what, message in messages.items():
        print(f"  refused ({what}): {message}")
    assert not step.failed, "steps that failed:\n" + "\n".join(step.failed)


# -- MLflow's UI in Chromium -------------------------------------------------------------

ERROR_TEXT = re.compile(
    r"\bError\b|\bERROR\b|error occurred|Request failed|Permission denied|PERMISSION_DENIED|"
    r"ENDPOINT_NOT_FOUND|RESOURCE_DOES_NOT_EXIST|INTERNAL_ERROR|does not serve|jupyreg:|"
    r"couldn't load|could not load|Something went wrong|Failed to|Not Found|not found|"
    r"Unauthorized|Forbidden"
)
"""What an error banner, toast or empty state says (the pages' own text never does)."""
LOADING = ("Loading",)
"""A page still saying this when its requests are done is stuck (e.g. on a 404)."""

KNOWN_REFUSALS = {
    ("GET", "ajax-api/3.0/mlflow/assistant/config", 404): "assistant",
    ("GET", "ajax-api/3.0/mlflow/assistant/providers", 404): "assistant",
    ("GET", "ajax-api/3.0/mlflow/ui-telemetry", 404): "telemetry",
}
"""4xx the UI gets from features the server does not serve, and shows nothing of: the
assistant's side panel asks for its config, the UI's telemetry whether it may send."""
MLFLOW_FALLBACKS = {
    # MLflow's UI asks for a presigned URL first and falls back to the file when the
    # artifact store has none (a local or proxied store): MLflow's own 501, the same on
    # plain `mlflow server` (mlflow/server/handlers.py, _validate_support_presigned_download)
    ("GET", "model-versions/get-artifact", 501): "presigned",
}


def test_a_plain_mlflow_version_keeps_its_runs_lineage_frozen(
    team: Deployment, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25: the run-context provider's lineage of a run, registered by plain MLflow on
    the team server, is written onto the version at registration; a later change to the
    run's tags changes nothing the gates judge."""
    import mlflow

    from jupyreg import Registry

    monkeypatch.setenv("JUPYREG_CAPTURE", "1")
    with plain_mlflow(team.url, "alice") as client:
        mlflow.set_experiment("everyday-plain")
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name="everyday-plain",
                pip_requirements=REQUIREMENTS,
            )  # fmt: skip
        version = client.get_model_version("everyday-plain", info.registered_model_version)
        recorded = client.get_run(run.info.run_id).data.tags
        assert version.tags["jupyreg.lineage"] == recorded["jupyreg.lineage"]
        assert version.tags["jupyreg.entry.kind"] == recorded["jupyreg.entry.kind"]
        client.set_tag(run.info.run_id, "jupyreg.git.commit", "0" * 40)  # her run: allowed
        with credentials("alice"):
            frozen = Registry(team.url).get("everyday-plain", version.version)
    assert frozen.lineage_fields.get("git.commit") == recorded.get("jupyreg.git.commit")
    assert frozen.lineage == json.loads(recorded["jupyreg.lineage"])


def chromium_or_skip() -> str:
    """Debian's Chromium, installed if missing; skip only where it cannot be (never in CI)."""
    found = ensure_chromium()
    if found is None:
        why = "Chromium is not installed and apt-get cannot install it"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def tour_data(team: Deployment, model: Any, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What the pages show: alice's experiment ``ui-tour`` with a run (params, metrics, a
    tag, a file) whose model is a new version of ``everyday``."""
    import mlflow

    note = tmp_path_factory.mktemp("tour") / "readme.txt"
    note.write_text("read me, from the run\n")
    with plain_mlflow(team.url, "alice"):
        experiment = mlflow.set_experiment("ui-tour").experiment_id
        with mlflow.start_run(run_name="ui-run") as run:
            mlflow.log_params({"C": 0.5, "solver": "lbfgs"})
            mlflow.log_metrics({"auc": 0.91, "f1": 0.84})
            mlflow.set_tag("owner", "alice")
            mlflow.log_artifact(str(note))
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=MODEL, pip_requirements=REQUIREMENTS
            )
    return {
        "experiment": experiment,
        "run": run.info.run_id,
        "version": str(info.registered_model_version),
    }


def pages(data: dict[str, str], full: bool) -> list[tuple[str, str, tuple[str, ...]]]:
    """(label, URL fragment, what the page must show) of alice's walk, in MLflow's default
    (GenAI) view, as a first visit shows it; ``full``: every page, else the main ones."""
    run = f"#/experiments/{data['experiment']}/runs/{data['run']}"
    version = data["version"]
    walk = [
        ("home", "", ("Welcome to MLflow", "ui-tour"), True),
        ("experiments", "#/experiments", ("Experiments", "ui-tour", "Time created"), True),
        ("experiment", f"#/experiments/{data['experiment']}", ("ui-tour", "Overview"), full),
        ("runs", f"#/experiments/{data['experiment']}/runs", ("ui-run", "matching run"), True),
        ("run", run, ("ui-run", "auc", "0.91", "solver", "lbfgs", MODEL), True),
        ("run-artifacts", f"{run}/artifacts", ("readme.txt",), full),
        ("models", "#/models", ("Registered Models", MODEL), True),
        ("model", f"#/models/{MODEL}", (f"Version {version}",), full),
        ("version", f"#/models/{MODEL}/versions/{version}", (f"Version {version}", "ui-run"), True),
    ]
    return [(label, fragment, needles) for label, fragment, needles, keep in walk if keep]


def tour(browser: Chromium, base: str, data: dict, shots: Path, full: bool) -> list[str]:
    """Alice's walk through the UI at ``base``: each page waited for, checked for error
    text, and shot. Returns what went wrong (nothing, when all is well)."""
    problems = []
    for label, fragment, needles in pages(data, full):
        browser.label = label
        browser.open(f"{base}/{fragment}")
        try:
            text = browser.wait_for_text(*needles, absent=LOADING, timeout=60)
            if label == "run-artifacts":  # open the file: its preview is fetched
                browser.click_text("readme.txt")
                text = browser.wait_for_text("read me, from the run", absent=LOADING)
        except TimeoutError as timeout:
            browser.screenshot(shots / f"{label}-timeout.png")
            problems.append(f"{label} ({fragment or '/'}): {timeout}")
            continue
        browser.screenshot(shots / f"{label}.png")
        errors = sorted({m.group(0) for m in ERROR_TEXT.finditer(text)})
        if errors:
            problems.append(f"{label} ({fragment or '/'}): the page says {errors}:\n{text[:1500]}")
    return problems


def route_of(request: Request, base: str) -> str:
    path = urllib.parse.urlsplit(request.url).path
    prefix = urllib.parse.urlsplit(base).path.rstrip("/")
    return path[len(prefix) :].lstrip("/") if path.startswith(prefix) else path.lstrip("/")


def check_requests(browser: Chromium, base: str) -> tuple[list[str], list[str]]:
    """(what is wrong, what was refused as known) of every request the UI made."""
    wrong, known = [], []
    for request in browser.page.failed():
        route = route_of(request, base)
        key = (request.method, route, request.status)
        outcome = request.status or request.error
        line = f"[{request.page}] {request.method} /{route} -> {outcome}: {request.body[:300]}"
        refusal = key in KNOWN_REFUSALS and "does not serve" in request.body
        fallback = key in MLFLOW_FALLBACKS and "NOT_IMPLEMENTED" in request.body
        (known if refusal or fallback else wrong).append(line)
    if not browser.page.challenges:
        wrong.append("the browser was never asked to log in")
    wrong += [f"uncaught exception: {e}" for e in browser.page.exceptions]
    return sorted(set(wrong)), sorted(set(known))


def walk_ui(base: str, data: dict, tmp_path: Path, full: bool) -> None:
    step = Steps()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with Chromium(
        chromium_or_skip(), tmp_path / "profile", login=("alice", PASSWORDS["alice"])
    ) as browser:
        step("browser")
        problems = tour(browser, base, data, shots, full)
        step("pages")
        wrong, known = check_requests(browser, base)
        report = {
            "base": base,
            "requests": [r.describe() for r in browser.page.requests.values()],
            "known": known,
            "console_errors": browser.page.console_errors,
            "problems": problems + wrong,
        }
    (tmp_path / "ui-report.json").write_text(json.dumps(report, indent=1))
    print(f"\nUI at {base}: {step.report()}; screenshots in {shots}")
    for line in known:
        print(f"  known: {line}")
    assert not problems + wrong, "\n".join(problems + wrong)


def test_mlflow_ui_shows_experiments_runs_and_models(
    team: Deployment, tour_data: dict, tmp_path: Path
) -> None:
    walk_ui(team.url, tour_data, tmp_path, full=True)


def test_mlflow_ui_under_a_static_prefix(team: Deployment, tour_data: dict, tmp_path: Path) -> None:
    """The main pages from the server of the same stores under ``--static-prefix``."""
    chromium_or_skip()
    team.wait_for_both()
    walk_ui(team.prefixed.url + STATIC_PREFIX, tour_data, tmp_path, full=False)
