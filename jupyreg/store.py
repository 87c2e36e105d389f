"""The MLflow side of the registry: one client, error translation, batched reads, the lock.

Everything here speaks MLflow; the Registry facade composes it with the lifecycle rules.
"""

from __future__ import annotations

import functools
import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jupyreg import lifecycle, tags
from jupyreg.compat import (
    ModelRead,
    Write,
    sql_models_with_version_tag,
    sql_read_model,
    sql_read_run,
    sql_write,
)
from jupyreg.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RegistryBusy,
    RegistryError,
    RegistryUnavailable,
    hint,
)
from jupyreg.lineage.scrub import scrub_url, scrub_urls_in

_UNREACHABLE = re.compile(
    r"Max retries exceeded|Connection refused|Failed to establish|unable to open database|"
    r"Name or service not known|timed out|RemoteDisconnected|Connection aborted|"
    r"Connection broken|IncompleteRead|Connection reset",
    re.IGNORECASE,
)
_SEARCH_PAGE = 1000


@contextmanager
def translated(what: str, uri: str) -> Iterator[None]:
    """Turn MLflow/SQLAlchemy/HTTP failures into jupyreg errors with a next step."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except RegistryError:
        raise
    except MlflowException as exc:
        message = exc.message.splitlines()[0] if exc.message else str(exc)
        code = exc.error_code
        if _UNREACHABLE.search(exc.message or ""):
            raise RegistryUnavailable(_unreachable(uri, message)) from None
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"{what}: not found ({message})") from None
        if code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            raise PermissionDenied(f"{what}: {message}") from None
        if code == "INVALID_PARAMETER_VALUE":
            raise InvalidArgument(f"{what}: {message}") from None
        raise RegistryError(f"{what}: {message}") from None
    except (OSError, ConnectionError) as exc:
        raise RegistryUnavailable(_unreachable(uri, str(exc))) from None
    except Exception as exc:  # SQLAlchemy's OperationalError and friends
        if type(exc).__module__.startswith(("sqlalchemy", "requests", "urllib3")):
            raise RegistryUnavailable(_unreachable(uri, str(exc).splitlines()[0])) from None
        raise


_REASONS = (
    ("Connection refused", "connection refused"),
    ("Failed to establish", "connection refused"),
    ("timed out", "timed out"),
    ("Name or service not known", "unknown host"),
    ("error responses", "it answered with server errors (HTTP 5xx)"),
    ("unable to open database", "the database file cannot be opened"),
    ("RemoteDisconnected", "the connection was closed"),
    ("Connection aborted", "the connection was closed"),
    ("Connection broken", "the connection was closed mid-answer"),
    ("Connection reset", "the connection was reset"),
)


def _unreachable(uri: str, detail: str) -> str:
    reason = next((why for text, why in _REASONS if text.lower() in detail.lower()), None)
    if uri.startswith(("http://", "https://")):
        check = "check that the tracking server is running and the URI is right"
    elif uri.startswith("sqlite:"):
        check = "check that the URI is right and its file readable"
    else:
        check = "check that the database is running and the URI is right"
    # A URI's password stays out of logs and tracebacks, the driver's own words included.
    why = reason or scrub_urls_in(detail.splitlines()[0])[:300]
    return f"the registry at {scrub_url(uri)} cannot be reached ({why}); {check}, then retry"


def sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :].split("?")[0])
    return None


LOCK_WAIT_SECONDS = 30
"""How long a lifecycle step waits for the model's lock before the caller hears "busy"."""
QUEUE_BOUND = 8
"""Steps of one model that may wait in one process; more are refused at once (busy)."""
LOCK_POOL_SIZE = 8
"""PostgreSQL connections one process holds for advisory locks (each waiting step one)."""

_waiting: dict[str, int] = {}
_waiting_guard = threading.Lock()


@contextmanager
def registry_lock(uri: str, name: str) -> Iterator[None]:
    """The lock that makes each lifecycle step on model ``name`` one serialised step:
    a file lock beside an embedded SQLite registry (processes on one machine), a
    PostgreSQL advisory lock per model (any number of processes and server replicas).
    A remote tracking server serialises on its side instead. Waiting is bounded: past
    ``QUEUE_BOUND`` waiters or ``LOCK_WAIT_SECONDS`` the step raises RegistryBusy."""
    with _queued(name):
        path = sqlite_path(uri)
        if path is not None:
            from filelock import FileLock, Timeout

            try:
                with FileLock(str(path) + ".jupyreg.lock", timeout=LOCK_WAIT_SECONDS):
                    yield
            except Timeout:
                raise _busy(name) from None
        elif uri.startswith(("postgresql", "postgres:")):
            with _advisory_lock(uri, name):
                yield
        else:
            yield


@contextmanager
def _queued(name: str) -> Iterator[None]:
    with _waiting_guard:
        if _waiting.get(name, 0) >= QUEUE_BOUND:
            raise _busy(name)
        _waiting[name] = _waiting.get(name, 0) + 1
    try:
        yield
    finally:
        with _waiting_guard:
            _waiting[name] -= 1


def _busy(name: str) -> RegistryBusy:
    return RegistryBusy(
        f"too many lifecycle steps of {name} are waiting; retry in a second", retry_after=1
    )


@contextmanager
def _advisory_lock(uri: str, name: str) -> Iterator[None]:
    from sqlalchemy import exc, text

    try:
        connection = _engine(uri).connect()
    except exc.TimeoutError:
        raise _busy(name) from None
    with connection, connection.begin():
        try:
            connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"jupyreg:{name}"}
            )
        except exc.OperationalError as error:
            if "lock timeout" in str(error):
                raise _busy(name) from None
            raise
        yield


@functools.cache
def _engine(uri: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(
        uri, pool_pre_ping=True, pool_size=LOCK_POOL_SIZE, max_overflow=0, pool_timeout=5
    )


def _request_key(request_id: str) -> str:
    if not tags.valid_request_id(request_id):
        raise NotFound(
            f"no request {request_id!r} (request ids are 8 hex digits)",
            hint=f"{hint('reg.requests()', 'requests')} lists the pending ones",
        )
    return tags.request_key(request_id)


def _no_such_request(request_id: str) -> NotFound:
    return NotFound(
        f"no request {request_id!r}",
        hint=f"{hint('reg.requests()', 'requests')} lists the pending ones",
    )


def _no_such_model(name: str) -> NotFound:
    return NotFound(
        f"no registered model named {name!r}",
        hint=f"{hint('reg.models()', 'list')} lists the registered models",
    )


def no_such_version(name: str, version: int, known: Iterable[int]) -> NotFound:
    listed = ", ".join(str(v) for v in sorted(known)) or "none yet"
    return NotFound(
        f"{name} has no version {version} (versions: {listed})",
        hint=f"{hint(f'reg.versions({name!r})', 'versions', name)} lists them",
    )


def version_in(name: str, versions: Iterable[VersionState], number: int) -> VersionState:
    """Version ``number`` among ``versions`` of model ``name``; NotFound listing them."""
    found = {state.version: state for state in versions}
    if number not in found:
        raise no_such_version(name, number, found)
    return found[number]


def _local_path(uri: str) -> str | None:
    """The file-system path of a local artifact URI, None for a remote one."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri if parsed.scheme == "" else None


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def experiment_id(client: Any, name: str, artifact_location: str | None = None) -> str:
    """The id of the experiment called ``name``, created (keeping its artifacts at
    ``artifact_location``, when given) if there is none yet."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    from mlflow.exceptions import MlflowException

    try:
        return str(client.create_experiment(name, artifact_location=artifact_location))
    except MlflowException:  # created concurrently by another process
        return str(client.get_experiment_by_name(name).experiment_id)


@dataclass
class VersionState:
    """A model version as read from MLflow, with the jupyreg view of its tags."""

    name: str
    version: int
    stage: str
    tags: dict[str, str]
    run_id: str | None
    source: str | None
    description: str | None
    created_ms: int
    user_id: str | None
    legacy_stage: str
    model_id: str | None = None  # MLflow's logged model, where the registry records it
    lineage_from_run: bool = False
    """The lineage in ``tags`` is its run's, read now (a plain-MLflow version not frozen):
    what the run's tags say, which anyone who may log to the run can change."""

    @classmethod
    def of(cls, mv: Any) -> VersionState:
        version_tags = dict(mv.tags or {})
        legacy = mv.current_stage or lifecycle.NONE
        return cls(
            name=mv.name,
            version=int(mv.version),
            stage=version_tags.get(tags.STAGE_TAG) or legacy,
            tags=version_tags,
            run_id=mv.run_id or None,
            source=mv.source,
            description=mv.description or None,
            created_ms=int(mv.creation_timestamp or 0),
            user_id=mv.user_id or None,
            legacy_stage=legacy,
            model_id=getattr(mv, "model_id", None) or None,
        )

    def events(self) -> list[lifecycle.TransitionEvent]:
        return tags.events(self.name, self.version, self.tags)

    def requests(self) -> list[lifecycle.Request]:
        return tags.requests(self.name, self.version, self.tags)

    def request(self, request_id: str) -> lifecycle.Request:
        key = tags.request_key(request_id)
        return tags.request_from_tag(self.name, self.version, key, self.tags[key])

    def facts(self) -> lifecycle.VersionFacts:
        return lifecycle.VersionFacts(
            self.version, tuple(self.events()), self.tags.get(tags.STAGE_TAG), self.legacy_stage
        )


class Store:
    """Thin wrapper of ``MlflowClient`` with jupyreg's read patterns."""

    def __init__(
        self, tracking_uri: str, registry_uri: str, artifact_location: str | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self.artifact_location = artifact_location
        """Where experiments this store creates keep their artifacts (None: MLflow's default)."""
        self._batches = threading.local()  # each thread's open batch: a Store may be shared

    @functools.cached_property
    def client(self) -> Any:
        """Made on first use: an SQLite store creates its file, which a command refused
        for bad input must not leave behind."""
        from mlflow import MlflowClient

        for uri in {self.tracking_uri, self.registry_uri}:
            path = sqlite_path(uri)
            if path is not None and not path.parent.is_dir():
                raise RegistryUnavailable(
                    f"no registry at {uri}: the folder {path.parent} does not exist (nothing "
                    "was created); create it or fix the URI"
                )
        # MLflow's client retries an unreachable server for minutes, configurable only in the
        # environment, which library code leaves alone (a lab server runs requests on
        # threads): a first request that does not retry makes it fail in seconds instead
        for uri in {self.tracking_uri, self.registry_uri}:
            if uri.startswith(("http://", "https://")):
                from jupyreg.compat import reach

                with translated("connecting", uri):
                    reach(uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def translated(self, what: str) -> AbstractContextManager[None]:
        return translated(what, self.registry_uri)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with self.translated(f"locking {name}"), registry_lock(self.registry_uri, name):
            yield

    # reads -------------------------------------------------------------------------

    def registered_model(self, name: str) -> Any:
        try:
            with self.translated(f"registered model {name!r}"):
                return self.client.get_registered_model(name)
        except NotFound:
            raise _no_such_model(name) from None

    def registered_models(self) -> list[Any]:
        with self.translated("listing registered models"):
            return _all_pages(
                lambda token: self.client.search_registered_models(
                    max_results=_SEARCH_PAGE, page_token=token
                )
            )

    def versions(
        self, name: str | None = None, filter_string: str | None = None
    ) -> list[VersionState]:
        """Every version (of ``name``), tags included, in a few paged round trips."""
        clauses = [c for c in (name and f"name = {quote(name)}", filter_string) if c]
        query = " AND ".join(clauses) or None
        with self.translated(f"versions of {name!r}" if name else "model versions"):
            found = _all_pages(
                lambda token: self.client.search_model_versions(
                    filter_string=query, max_results=_SEARCH_PAGE, page_token=token
                )
            )
        states = self.with_run_lineage([VersionState.of(mv) for mv in found])
        return sorted(states, key=lambda s: (s.name, s.version))

    def model_versions(self, name: str) -> dict[int, VersionState]:
        """All versions of an existing model; NotFound if the model does not exist."""
        found = self._sql_model(name)
        if found is not None:
            return {s.version: s for s in found.versions}
        states = {s.version: s for s in self.versions(name)}
        if not states:
            self.registered_model(name)  # raises NotFound for an unknown model
        return states

    def version(self, name: str, version: int) -> VersionState:
        return version_in(name, self.model_versions(name).values(), version)

    def request_holder(self, request_id: str) -> VersionState:
        """The version carrying request ``request_id``."""
        holders = self.versions(filter_string=f"tags.`{_request_key(request_id)}` LIKE '%'")
        if not holders:
            raise _no_such_request(request_id)
        return holders[0]

    def request_model(self, request_id: str) -> str:
        """The name of the model whose version carries request ``request_id``: one query
        of a SQL registry store."""
        with self.translated("finding a request"):
            names = sql_models_with_version_tag(self.client, _request_key(request_id))
        if names is None:
            return self.request_holder(request_id).name
        if not names:
            raise _no_such_request(request_id)
        return names[0]

    def model(self, name: str, version: int | None = None) -> ModelRead:
        """A model's versions (tags included; all, or only ``version``), tags and aliases:
        one read session of a SQL registry store, else MLflow's API (``search_model_versions``
        + ``get_registered_model``). NotFound for an unknown model or ``version``."""
        found = self._sql_model(name, version)
        if found is not None and (version is None or found.versions):
            return found
        # not a SQL store, or no such version: read them all (NotFound lists them)
        whole = self._api_model(name) if found is None else self.model(name)
        if version is None:
            return whole
        return replace(whole, versions=[version_in(name, whole.versions, version)])

    def _api_model(self, name: str) -> ModelRead:
        registered = self.registered_model(name)
        return ModelRead(
            versions=self.versions(name),
            tags=dict(registered.tags or {}),
            aliases={alias: int(v) for alias, v in (registered.aliases or {}).items()},
        )

    def _sql_model(self, name: str, version: int | None = None) -> ModelRead | None:
        try:
            with self.translated(f"registered model {name!r}"):
                found = sql_read_model(self.client, name, version)
        except NotFound:
            raise _no_such_model(name) from None
        if found is None:
            return None
        return replace(
            found, versions=self.with_run_lineage([VersionState.of(mv) for mv in found.versions])
        )

    def with_run_lineage(self, states: list[VersionState]) -> list[VersionState]:
        """``states``, where a version has no lineage of its own (one registered by plain
        MLflow), with the lineage its run recorded (jupyreg's run-context provider) and that
        run's id: found through the run, else through the logged model (MLflow 3's
        ``log_model(registered_model_name=)`` records no run id). One batched run read, none
        if every version has its lineage."""
        plain = [s for s in states if tags.LINEAGE_TAG not in s.tags and (s.run_id or s.model_id)]
        if not plain:
            return states
        run_of = {id(s): s.run_id or self._source_run(s.model_id) for s in plain}
        runs = self.runs([r for r in run_of.values() if r])
        for state in plain:
            run = runs.get(run_of[id(state)] or "")
            if run is not None:
                state.run_id = run.info.run_id  # its metrics and params are the version's
                lineage = tags.run_lineage(run.data.tags)
                if lineage:  # the model's requirements where its files are at hand
                    pins = self._logged_requirements(state.name, state.version, local_only=True)
                    record = lineage[tags.LINEAGE_TAG]
                    lineage[tags.LINEAGE_TAG] = tags.with_requirements(record, pins)
                state.tags = lineage | state.tags
                state.lineage_from_run = bool(lineage)
        return states

    def freeze_run_lineage(self, name: str, version: int) -> None:
        """Write the lineage of a version's run onto the version, where it has none of its
        own (one registered by plain MLflow): what the gates judge is then frozen at
        registration, as for jupyreg's own registrations, whatever the run's tags become."""
        with self.translated(f"{name} v{version}"):
            mv = self.client.get_model_version(name, str(version))
        if tags.LINEAGE_TAG in (mv.tags or {}):
            return
        run_id = mv.run_id or self._source_run(getattr(mv, "model_id", None))
        run = self.runs([run_id] if run_id else []).get(run_id or "")
        lineage = tags.run_lineage(run.data.tags) if run is not None else {}
        if not lineage:
            return
        requirements = self._logged_requirements(name, version)
        lineage[tags.LINEAGE_TAG] = tags.with_requirements(lineage[tags.LINEAGE_TAG], requirements)
        with self.batch():
            for key, value in lineage.items():
                self.set_version_tag(name, version, key, value)

    def _logged_requirements(self, name: str, version: int, local_only: bool = False) -> list[str]:
        """The pinned requirements MLflow logged with the version's model
        (``requirements.txt``: the run started before the model existed, so its lineage
        has none); read in place where the files are on this machine, else downloaded
        (``local_only``: not). Empty where the file cannot be read."""
        import tempfile

        from mlflow.artifacts import download_artifacts

        try:
            with self.translated(f"requirements of {name} v{version}"):
                location = self.client.get_model_version_download_uri(name, str(version))
            local = _local_path(location)
            if local is not None:
                lines = (Path(local) / "requirements.txt").read_text().splitlines()
            elif local_only:
                return []
            else:
                with tempfile.TemporaryDirectory() as into:
                    path = download_artifacts(
                        artifact_uri=f"{location.rstrip('/')}/requirements.txt",
                        dst_path=into,
                        tracking_uri=self.tracking_uri,
                        registry_uri=self.registry_uri,
                    )
                    lines = Path(path).read_text().splitlines()
        except Exception:  # a model without the file: the lineage stands without it
            return []
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def _source_run(self, model_id: str | None) -> str | None:
        logged = self.logged_model(model_id) if model_id else None
        return getattr(logged, "source_run_id", None) or None

    def aliases(self, name: str) -> dict[str, int]:
        model = self.registered_model(name)
        return {alias: int(v) for alias, v in (model.aliases or {}).items()}

    def many_aliases(self, names: Iterable[str]) -> dict[str, dict[str, int]]:
        """``aliases`` of several models; one query on a SQL registry store."""
        from jupyreg.compat import sql_model_aliases

        wanted = sorted(set(names))
        with self.translated("reading aliases"):
            found = sql_model_aliases(self.client, wanted) if wanted else {}
        return found if found is not None else {name: self.aliases(name) for name in wanted}

    def runs(self, run_ids: list[str]) -> dict[str, Any]:
        """Runs by id in batched searches (not one call per version)."""
        ids = sorted({r for r in run_ids if r})
        if len(ids) == 1:
            return self._run(ids[0])
        if not ids:
            return {}
        with self.translated("reading runs"):
            experiments = [e.experiment_id for e in _all_pages(self._experiments)]
            runs: dict[str, Any] = {}
            for start in range(0, len(ids), 100):
                in_list = ", ".join(quote(r) for r in ids[start : start + 100])
                for exp_start in range(0, len(experiments), 100):
                    query = _RunQuery(
                        self.client,
                        experiments[exp_start : exp_start + 100],
                        f"attributes.run_id IN ({in_list})",
                    )
                    runs.update((run.info.run_id, run) for run in _all_pages(query))
        return runs

    def _run(self, run_id: str) -> dict[str, Any]:
        """``runs([run_id])`` in one call: what the search finds, an active run of an
        experiment the user may read (a search leaves the others out)."""
        try:
            with self.translated(f"reading run {run_id}"):
                run = self.client.get_run(run_id)
        except (NotFound, PermissionDenied):
            return {}
        return {run_id: run} if run.info.lifecycle_stage == "active" else {}

    def run_with_models(self, run_id: str) -> tuple[Any | None, list[Any]]:
        """The run as ``runs([run_id])`` gives it (None where that leaves it out) and the
        logged models it output (MLflow's ``LoggedModel``, or rows with its attribute names):
        one read session of a SQL tracking store, else ``get_run`` and ``logged_model``."""
        try:
            with self.translated(f"reading run {run_id}"):
                found = sql_read_run(self.client, run_id)
        except NotFound:
            return None, []
        if found is None:
            run = self._run(run_id).get(run_id)
            outputs = run.outputs.model_outputs if run is not None and run.outputs else []
            models = [self.logged_model(o.model_id) for o in outputs]
            return run, [m for m in models if m is not None]
        run, models = found
        return (run if run.info.lifecycle_stage == "active" else None), models

    def logged_model(self, model_id: str) -> Any | None:
        """MLflow's logged model ``model_id``; None where there is none (or it is deleted),
        or where the user may not read its experiment (as ``runs`` leaves such a run out)."""
        try:
            with self.translated(f"logged model {model_id}"):
                return self.client.get_logged_model(model_id)
        except (NotFound, PermissionDenied):
            return None

    def runs_where(self, filter_string: str) -> dict[str, Any]:
        """Runs of every experiment that match an MLflow run filter, by id."""
        with self.translated("searching runs"):
            experiments = [e.experiment_id for e in _all_pages(self._experiments)]
            runs: dict[str, Any] = {}
            for start in range(0, len(experiments), 100):
                query = _RunQuery(self.client, experiments[start : start + 100], filter_string)
                runs.update((run.info.run_id, run) for run in _all_pages(query))
        return runs

    def _experiments(self, token: str | None) -> Any:
        return self.client.search_experiments(max_results=_SEARCH_PAGE, page_token=token)

    def model_dir(self, name: str, version: int, into: str | None = None) -> str:
        """The local directory of the version's model files: the artifact store's own where
        it is on this file system, else a download (into ``into``, or a temp directory)."""
        with self.translated(f"fetching the model of {name} v{version}"):
            location = self.client.get_model_version_download_uri(name, str(version))
            local = _local_path(location)
            if local is not None:
                return local
            from mlflow.artifacts import download_artifacts

            return download_artifacts(
                artifact_uri=location,
                dst_path=into,
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
            )

    def load_model(self, name: str, version: int) -> Any:
        """The version as an MLflow pyfunc model, fetched through this store's own URIs."""
        import mlflow.pyfunc

        local = self.model_dir(name, version)
        with self.translated(f"loading {name} v{version}"):
            return mlflow.pyfunc.load_model(local)

    # writes ------------------------------------------------------------------------

    def log_text(self, run_id: str, text: str, path: str) -> None:
        """Write ``text`` as the run's artifact ``path``."""
        with translated(f"writing {path} of run {run_id}", self.tracking_uri):
            self.client.log_text(run_id, text, path)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes made inside are applied together as it ends: in one transaction of a
        SQL registry store (a crash leaves all of them or none), else one by one, in order.
        An exception inside writes none of them."""
        if getattr(self._batches, "open", None) is not None:  # the outer batch applies them
            yield
            return
        self._batches.open = writes = []
        try:
            yield
        finally:
            self._batches.open = None
        self._apply(writes)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self._write(Write("version_tag", name, version, key, value))

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self._write(Write("model_tag", name, None, key, value))

    def set_legacy_stage(self, name: str, version: int, stage: str) -> None:
        """Keep MLflow's deprecated ``current_stage`` in step (``models:/NAME/Production``)."""
        self._write(Write("stage", name, version, "stage", stage))

    def point_alias(self, name: str, alias: str, version: int | None) -> None:
        """Point ``alias`` at ``version`` (None: remove it, if it is there)."""
        self._write(Write("alias", name, version, "alias", alias))

    def _write(self, write: Write) -> None:
        batched = getattr(self._batches, "open", None)
        if batched is not None:
            batched.append(write)
        else:
            self._apply([write])

    def _apply(self, writes: list[Write]) -> None:
        if not writes:
            return
        names = sorted({write.name for write in writes})
        with self.translated(f"writing to {', '.join(names)}"):
            applied = sql_write(self.client, writes, self._in_transaction)
            if applied is None:
                applied = [write for write in writes if self._client_write(write)]
        self._written(applied)

    def _in_transaction(self, store: Any, session: Any, changed: list[Write]) -> None:
        """Rows a subclass adds to the transaction of a batch's writes (a server's outbox)."""

    def _client_write(self, write: Write) -> bool:
        """``write`` through MLflow's client API; whether it changed anything."""
        name, version = write.name, str(write.version)
        if write.kind == "version_tag":
            self.client.set_model_version_tag(name, version, write.key, write.value)
        elif write.kind == "model_tag":
            self.client.set_registered_model_tag(name, write.key, write.value)
        elif write.kind == "stage":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.client.transition_model_version_stage(
                    name, version, write.value, archive_existing_versions=False
                )
        elif write.version is not None:
            self.client.set_registered_model_alias(name, write.value, version)
        else:
            from mlflow.exceptions import MlflowException

            try:
                self.client.delete_registered_model_alias(name, write.value)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return False  # already gone
                raise
        return True

    def _written(self, writes: list[Write]) -> None:
        """Called with what each write call (or batch) changed, once it is stored."""

    def keep_history(self, name: str, version: int) -> None:
        """Copy version ``version``'s history (its ``jupyreg.event.*`` and
        ``jupyreg.request.*`` tags) onto the registered model, where deleting the version
        cannot remove it, then mark it kept (``jupyreg.kept.<N>``; see ``tags.kept_tags``).
        Call it just before MLflow deletes the version, under ``lock(name)`` with the
        delete so that no step writes an event in between. Idempotent: only tags not
        already kept with the same value are written. Raises NotFound when the model or
        version does not exist; RegistryUnavailable and friends when MLflow fails (nothing
        is then deleted by the caller, and a retry completes the copy)."""
        model = self.model(name)
        state = version_in(name, model.versions, version)
        with self.batch():
            for key, value in tags.kept_tags(version, state.stage, state.tags).items():
                if model.tags.get(key) != value:
                    self.set_model_tag(name, key, value)

    def delete_version(self, name: str, version: int) -> None:
        """MLflow's deletion of a version, no more: ``LocalBackend.delete_version`` keeps
        its history and refuses a held stage first."""
        with self.translated(f"deleting {name} v{version}"):
            self.client.delete_model_version(name, str(version))


@dataclass(frozen=True)
class _RunQuery:
    client: Any
    experiment_ids: list[str]
    filter_string: str

    def __call__(self, token: str | None) -> Any:
        return self.client.search_runs(
            experiment_ids=self.experiment_ids,
            filter_string=self.filter_string,
            max_results=_SEARCH_PAGE,
            page_token=token,
        )


def _all_pages(fetch: Any) -> list[Any]:
    results: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        results.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return results
