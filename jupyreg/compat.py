"""Every call jupyreg makes into MLflow beyond its public client API, in one place.

Each is pinned by a contract test (tests/contract), which CI runs on the oldest and the
newest supported MLflow, so an MLflow release that moves one fails there, not in a user's
server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def http_request(uri: str, endpoint: str, method: str, **kwargs: Any) -> Any:
    """An HTTP request to a tracking server with MLflow's own credentials, retries and
    TLS settings (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``/``_TOKEN``, ...)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request as mlflow_http_request

    return mlflow_http_request(get_default_host_creds(uri), endpoint, method, **kwargs)


FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
"""MLflow's HTTP retry settings that the CLI's ``main`` sets for its process, unless the user
chose them: MLflow's defaults retry an unreachable server for minutes; these give up in
seconds. MLflow's client reads them from the environment at each request, with no knob per
client or per call; library code never sets them (the environment is the whole process's,
and a lab server or a kernel runs requests on threads): ``reach`` fails fast instead."""


def reach(uri: str, timeout: float = 10.0) -> None:
    """One request to the tracking server at ``uri`` that does not retry: raises what MLflow
    raises (a refused or timed-out connection) when the server cannot be reached. Whatever
    it answers (even 401 or 404) means it is there."""
    http_request(uri, "/health", "GET", max_retries=0, timeout=timeout, raise_on_status=False)


def download_run_files(client: Any, run_id: str, paths: Iterable[str], into: Any) -> None:
    """Each artifact file of run ``run_id`` in ``paths`` to the same relative path under
    ``into``, one file at a time from the run's artifact repository: unlike
    ``MlflowClient.download_artifacts``, with no progress bar (which only the environment
    turns off)."""
    from pathlib import Path

    repo = client._tracking_client._get_artifact_repo(run_id)
    for path in paths:
        local = Path(into) / path
        local.parent.mkdir(parents=True, exist_ok=True)
        repo._download_file(path, str(local))


def server_store_uris(default: str) -> tuple[str, str]:
    """The backend and registry store URIs ``mlflow server`` hands its app (environment)."""
    import os

    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    backend = os.environ.get(BACKEND_STORE_URI_ENV_VAR) or default
    return backend, os.environ.get(REGISTRY_STORE_URI_ENV_VAR) or backend


def model_permission(name: str) -> Any:
    """The basic-auth permission of the current request's user on registered model ``name``."""
    from mlflow.server import auth

    return auth._get_registered_model_permission(name)


def static_prefix() -> str:
    """The path ``mlflow server --static-prefix`` serves everything under ('' for none)."""
    import os

    from mlflow.server.handlers import STATIC_PREFIX_ENV_VAR

    return os.environ.get(STATIC_PREFIX_ENV_VAR, "").rstrip("/")


def explicit_model_permission(name: str, username: str) -> str | None:
    """The permission ``username`` was granted on registered model ``name`` (None: none)."""
    from mlflow.exceptions import MlflowException
    from mlflow.server import auth

    try:
        return str(auth.store.get_registered_model_permission(name, username).permission)
    except MlflowException:
        return None


def decide_creator_grant(decide: Callable[[str, str], str | None]) -> None:
    """Make basic-auth's grant to a new registered model's creator one write of the
    permission ``decide(username, name)`` returns (None: MLflow's own MANAGE). MANAGE
    followed by a second write would leave MANAGE behind a server killed between the two."""
    from flask import request
    from mlflow.server import auth

    original = auth.set_can_manage_registered_model_permission

    def grant(response: Any) -> None:
        login = request.authorization
        name = (response.json or {}).get("registered_model", {}).get("name")
        permission = decide(login.username, name) if login and name else None
        if permission is None:
            original(response)
        else:
            auth.store.grant_user_permission(login.username, "registered_model", name, permission)

    for table in (auth.AFTER_REQUEST_HANDLERS, auth.PARAMETERIZED_AFTER_REQUEST_HANDLERS):
        for key, handler in table.items():
            if handler is original:
                table[key] = grant


def authenticate_once_per_request() -> None:
    """Check a request's password once. Basic-auth re-authenticates on every permission
    lookup of a request (each a ~0.15 s password hash); a request's credentials cannot
    change while it runs, so the first answer is kept on the request (``flask.g``)."""
    from flask import g, has_request_context
    from mlflow.server import auth

    original = auth.authenticate_request
    if getattr(original, "once_per_request", False):
        return

    def authenticate() -> Any:
        if not has_request_context():  # FastAPI's own routes: no Flask request to keep it on
            return original()
        if "jupyreg_authentication" not in g:
            g.jupyreg_authentication = original()
        return g.jupyreg_authentication

    authenticate.once_per_request = True  # type: ignore[attr-defined]
    auth.authenticate_request = authenticate


def act_as(username: str) -> None:
    """For the rest of the request, basic-auth's permission lookups (``model_permission``,
    ``sender_is_admin``) answer for ``username``: the user a verified workload identity is
    linked to, not the service account that relayed its token."""
    from flask import g
    from werkzeug.datastructures import Authorization

    g.jupyreg_authentication = Authorization("basic", {"username": username})


def user_exists(username: str) -> bool:
    from mlflow.server import auth

    return bool(auth.store.has_user(username))


def sender_is_admin() -> bool:
    from mlflow.server import auth

    return bool(auth.sender_is_admin())


def authorise_routes(routes: Iterable[tuple[str, str]], validator: Callable[[], bool]) -> None:
    """Let basic-auth pass ``(path, method)`` routes it has no validator for (it fails
    closed on unknown routes); the routes authorise per action themselves."""
    from mlflow.server import auth

    for route in routes:
        auth.BEFORE_REQUEST_VALIDATORS[route] = validator


def fire_webhook(entity: str, action: str, payload: dict[str, str]) -> None:
    """Deliver MLflow's webhook event ``entity.action`` from inside a tracking server, as its
    own REST handler for the same write does (signed, MLflow's headers, its delivery pool)."""
    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent
    from mlflow.server.handlers import _get_model_registry_store
    from mlflow.webhooks.delivery import deliver_webhook

    event = WebhookEvent(WebhookEntity(entity), WebhookAction(action))
    deliver_webhook(event=event, payload=payload, store=_get_model_registry_store())


def check_webhook_url(url: str) -> None:
    """Raise MLflow's error for a webhook URL MLflow would not deliver to (scheme, private
    addresses: ``MLFLOW_WEBHOOK_ALLOWED_SCHEMES``, ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS``)."""
    from mlflow.utils.validation import _validate_webhook_url

    _validate_webhook_url(url)


def webhook_or_none(store: Any, hook_id: str) -> Any:
    """MLflow's webhook ``hook_id`` (url, secret, status), None where it was deleted."""
    from mlflow.exceptions import MlflowException

    try:
        return store.get_webhook(hook_id)
    except MlflowException:
        return None


def subscribed_webhooks(
    store: Any, events: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[str]]:
    """For each (entity, action), the ids of the active webhooks of MLflow's SQL registry
    ``store`` subscribed to it, oldest first. Reads ids and states only: a webhook whose
    secret this process cannot decrypt (another encryption key) still gets its deliveries,
    and never fails the step that causes them."""
    from mlflow.store.model_registry.dbmodels.models import SqlWebhook, SqlWebhookEvent

    wanted = set(events)
    found: dict[tuple[str, str], list[str]] = {pair: [] for pair in wanted}
    if not wanted:
        return found
    with store.ManagedSessionMaker() as session:
        rows = (
            session.query(SqlWebhookEvent.entity, SqlWebhookEvent.action, SqlWebhook.webhook_id)
            .join(SqlWebhook, SqlWebhook.webhook_id == SqlWebhookEvent.webhook_id)
            .filter(SqlWebhook.status == "ACTIVE", SqlWebhook.deleted_timestamp.is_(None))
            .order_by(SqlWebhook.creation_timestamp)
            .all()
        )
    for entity, action, hook in rows:
        if (entity, action) in wanted:
            found[entity, action].append(hook)
    return found


PROXIED_ARTIFACT_ROOT = "mlflow-artifacts:/"
"""The default artifact root of a server that proxies artifacts (``--artifacts-destination``)."""


def log_text_on_server(artifact_uri: str, text: str, path: str) -> None:
    """Write ``text`` as ``path`` under a run's artifact root from inside a tracking server.
    A proxied root (``mlflow-artifacts:/``) is resolved to ``--artifacts-destination`` as
    the server's own upload handler resolves it; any other root is written directly."""
    import posixpath
    import tempfile
    from pathlib import Path

    from mlflow.server import handlers
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if artifact_uri.startswith(PROXIED_ARTIFACT_ROOT.rstrip("/")):
        path = handlers._get_proxied_run_artifact_destination_path(artifact_uri, path)
        repository = handlers._get_artifact_repo_mlflow_artifacts()
    else:
        repository = get_artifact_repository(artifact_uri)
    folder, file_name = posixpath.split(path)
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch, file_name)
        local.write_text(text, encoding="utf-8")
        repository.log_artifact(str(local), folder or None)


def migrate_server_stores(backend_store_uri: str, auth_uri: str) -> None:
    """Bring MLflow's tracking and auth databases to its current schema once, before a
    server's workers start: workers racing the same migrations on a first start die
    (duplicate alembic rows, tables that already exist)."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as AuthStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(backend_store_uri, PROXIED_ARTIFACT_ROOT)
    AuthStore().init_db(auth_uri)


def default_auth_database_uri() -> str:
    """The users database MLflow's basic-auth uses when the operator names none."""
    from mlflow.server.auth.config import read_auth_config

    return read_auth_config().database_uri


def score(data: bytes, content_type: str, model: Any) -> Any:
    """One ``/invocations`` request as ``mlflow models serve`` answers it: MLflow's own input
    parsing (JSON ``dataframe_split`` / ``dataframe_records`` / ``instances`` / ``inputs``,
    CSV, Parquet), prediction and output; returns its ``(response, status, mimetype)``
    tuple, raises ``MlflowException`` for bad input as MLflow's app does."""
    from mlflow.pyfunc import scoring_server

    schema = model.metadata.get_input_schema()
    return scoring_server.invocations(data, content_type, model, schema)


def sql_registry_store(client: Any) -> Any | None:
    """MLflow's SQL registry store behind ``client`` (a SQL URI, as in an embedded registry or
    inside a server); None for any other store, or where MLflow's store has another shape."""
    try:
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

        store = client._get_registry_client().store
    except (ImportError, AttributeError):
        return None
    return store if isinstance(store, SqlAlchemyStore) else None


def sql_tracking_store(client: Any) -> Any | None:
    """MLflow's SQL tracking store behind ``client``; None for any other store."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = client._tracking_client.store
    except (ImportError, AttributeError):
        return None
    return store if isinstance(store, SqlAlchemyStore) else None


@dataclass(frozen=True)
class LoggedModelRow:
    """An MLflow logged model as read from its table, with the attribute names of MLflow's
    ``LoggedModel`` entity (what jupyreg reads of it)."""

    model_id: str
    model_type: str | None
    artifact_location: str | None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"


def sql_read_run(client: Any, run_id: str) -> tuple[Any, list[LoggedModelRow]] | None:
    """A run (MLflow's ``Run`` with its metrics, params, tags and model outputs, without its
    dataset inputs) and the (not deleted) logged models it output, in one read session of
    MLflow's SQL tracking store (``get_run`` and a ``get_logged_model`` for each output take
    a session each, ~10 queries more); None for any other store. An unknown run raises
    MLflow's RESOURCE_DOES_NOT_EXIST."""
    store = sql_tracking_store(client)
    if store is None:
        return None
    from mlflow.entities import LifecycleStage, Run, RunOutputs
    from mlflow.store.tracking.dbmodels.models import SqlLoggedModel

    with store.ManagedSessionMaker() as session:
        found = store._get_run(session=session, run_uuid=run_id, eager=True).to_mlflow_entity()
        outputs = store._get_model_outputs(run_id, session)
        model = SqlLoggedModel
        query = store._get_query(session, model).filter(
            model.model_id.in_([o.model_id for o in outputs]),
            model.lifecycle_stage != LifecycleStage.DELETED,
        )
        rows = query.with_entities(model.model_id, model.model_type, model.artifact_location)
        logged = {row[0]: LoggedModelRow(*row) for row in rows.all()}
    run = Run(found.info, found.data, run_outputs=RunOutputs(outputs))
    return run, [logged[o.model_id] for o in outputs if o.model_id in logged]


@dataclass(frozen=True)
class RegisteredFiles:
    """Where a registered version's files live: the artifact URIs of its model and of its
    run (what the server must never let anyone rewrite), and their experiments."""

    name: str
    version: int
    roots: tuple[str, ...]
    run_ids: tuple[str, ...]
    model_ids: tuple[str, ...]
    experiment_ids: tuple[str, ...]


_CHUNK = 500
"""Ids per ``IN (...)`` clause (SQLite allows a few thousand bound parameters)."""


def sql_registered_files(client: Any) -> list[RegisteredFiles] | None:
    """Every registered version's files, read from MLflow's SQL tables in three queries
    (a version's run, or its logged model's run, holds its lineage artifacts; MLflow 3's
    ``log_model(registered_model_name=)`` leaves the version's own ``run_id`` empty); None
    for any other store."""
    registry, tracking = sql_registry_store(client), sql_tracking_store(client)
    if registry is None or tracking is None:
        return None
    from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion as Version
    from mlflow.store.tracking.dbmodels.models import SqlLoggedModel, SqlRun

    with registry.ManagedSessionMaker() as session:
        versions = (
            registry._get_query(session, Version)
            .filter(Version.current_stage != STAGE_DELETED_INTERNAL)
            .with_entities(
                Version.name,
                Version.version,
                Version.source,
                Version.storage_location,
                Version.run_id,
            )
            .all()
        )
    model_ids = {_logged_model_id(v.source) for v in versions} - {None}
    with tracking.ManagedSessionMaker() as session:
        logged = {
            row.model_id: row
            for ids in _chunks(model_ids)
            for row in tracking._get_query(session, SqlLoggedModel)
            .filter(SqlLoggedModel.model_id.in_(ids))
            .with_entities(
                SqlLoggedModel.model_id,
                SqlLoggedModel.artifact_location,
                SqlLoggedModel.experiment_id,
                SqlLoggedModel.source_run_id,
            )
        }
        run_ids = {v.run_id for v in versions} | {m.source_run_id for m in logged.values()}
        runs = {
            row.run_uuid: row
            for ids in _chunks(run_ids - {None, ""})
            for row in tracking._get_query(session, SqlRun)
            .filter(SqlRun.run_uuid.in_(ids))
            .with_entities(SqlRun.run_uuid, SqlRun.artifact_uri, SqlRun.experiment_id)
        }
    found = []
    for v in versions:
        model = logged.get(_logged_model_id(v.source))
        run = runs.get(v.run_id or (model.source_run_id if model else None) or "")
        parts = [p for p in (model, run) if p is not None]
        roots = [v.storage_location, model and model.artifact_location, run and run.artifact_uri]
        found.append(
            RegisteredFiles(
                name=v.name,
                version=int(v.version),
                roots=tuple(r for r in roots if r),
                run_ids=(run.run_uuid,) if run else (),
                model_ids=(model.model_id,) if model else (),
                experiment_ids=tuple(str(p.experiment_id) for p in parts),
            )
        )
    return found


def sql_model_versions_changed(client: Any) -> tuple[int, int, int] | None:
    """A mark of the model_versions table that changes whenever a version is created,
    updated or deleted (count, newest creation and update times), in one aggregate query:
    what ``sql_registered_files`` answers can be kept until it changes (a version's run,
    logged model and their locations never change). None for any other store."""
    registry = sql_registry_store(client)
    if registry is None:
        return None
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion as Version
    from sqlalchemy import func

    with registry.ManagedSessionMaker() as session:
        row = (
            registry._get_query(session, Version)
            .with_entities(
                func.count(), func.max(Version.creation_time), func.max(Version.last_updated_time)
            )
            .one()
        )
    return int(row[0]), int(row[1] or 0), int(row[2] or 0)


def _logged_model_id(source: str | None) -> str | None:
    if source and source.startswith("models:/m-"):
        return source[len("models:/") :].strip("/").split("/")[0]
    return None


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(ids)
    return (ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK))


def artifacts_destination() -> str | None:
    """Where ``mlflow server --artifacts-destination`` keeps the files it serves."""
    import os

    from mlflow.server.constants import ARTIFACTS_DESTINATION_ENV_VAR

    return os.environ.get(ARTIFACTS_DESTINATION_ENV_VAR)


def webhook_event_problem(entity: str, action: str) -> str | None:
    """Why MLflow would not take ``entity``/``action`` (as its JSON names them, e.g.
    ``MODEL_VERSION``/``CREATED``) as a webhook event; None when it would."""
    from mlflow.entities.webhook import WebhookEvent
    from mlflow.exceptions import MlflowException

    try:
        WebhookEvent(entity.lower(), action.lower())
    except ValueError as exc:
        return f"unknown webhook event {entity}.{action}: {exc}"
    except MlflowException as exc:
        return exc.message
    return None


def search_filter_problem(kind: str, text: str) -> str | None:
    """Why MLflow's registry search cannot take ``text`` as a filter of registered models
    (``kind`` "models") or model versions; None when it can. Some filters MLflow's parser
    does not refuse but crashes on (3.17: ``name IS NULL``, a ValueError)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils

    utils = SearchModelUtils if kind == "models" else SearchModelVersionUtils
    try:
        utils.parse_search_filter(text)
    except MlflowException as exc:
        return exc.message
    except Exception:  # noqa: BLE001 - whatever the parser trips on, the handler would too
        return f"the filter {text[:200]!r} cannot be parsed"
    return None


def native_caller_is_admin(request: Any) -> bool:
    """Whether the basic-auth credentials of a request to one of MLflow's FastAPI routes
    name an admin (False: none, wrong, or not an admin)."""
    from mlflow.server import auth

    user = auth._authenticate_fastapi_request(request)
    return bool(user is not None and user.is_admin)


def sql_model_aliases(client: Any, names: Iterable[str]) -> dict[str, dict[str, int]] | None:
    """The aliases of registered models ``names`` in one query of MLflow's SQL registry
    store (``get_registered_model`` loads every version of the model with its tags to
    build ``latest_versions``: ~0.1 s for 100 versions); None for any other store (the
    caller then asks MLflow's API)."""
    store = sql_registry_store(client)
    if store is None:
        return None
    from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModelAlias

    found: dict[str, dict[str, int]] = {name: {} for name in names}
    with store.ManagedSessionMaker() as session:
        rows = store._get_query(session, SqlRegisteredModelAlias).filter(
            SqlRegisteredModelAlias.name.in_(list(found))
        )
        for row in rows:
            found[row.name][row.alias] = int(row.version)
    return found


@dataclass(frozen=True)
class VersionRow:
    """A model version as read from MLflow's tables, with the attribute names of MLflow's
    ``ModelVersion`` entity (what jupyreg reads of it)."""

    name: str
    version: int
    current_stage: str
    run_id: str | None
    source: str | None
    description: str | None
    creation_timestamp: int | None
    user_id: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class ModelRead:
    """A registered model as one read session saw it: its versions (``VersionRow``, or
    ``ModelVersion`` entities from MLflow's API), tags and aliases."""

    versions: list[Any]
    tags: dict[str, str]
    aliases: dict[str, int]


def sql_read_model(client: Any, name: str, version: int | None = None) -> ModelRead | None:
    """A registered model's versions (all, or just ``version``), tags and aliases in one
    read session of MLflow's SQL registry store, as rows (``search_model_versions`` +
    ``get_registered_model`` load every version twice, as ORM objects); None for any other
    store. An unknown model raises MLflow's RESOURCE_DOES_NOT_EXIST."""
    store = sql_registry_store(client)
    if store is None:
        return None
    from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModelAlias,
        SqlRegisteredModelTag,
    )

    def rows(table: Any, *columns: Any, where: tuple[Any, ...] = ()) -> list[Any]:
        query = store._get_query(session, table).filter(table.name == name, *where)
        return query.with_entities(*columns).all()

    def of_version(table: Any) -> tuple[Any, ...]:
        return () if version is None else (table.version == version,)

    mv = SqlModelVersion
    with store.ManagedSessionMaker() as session:
        found = rows(
            mv,
            *(mv.version, mv.current_stage, mv.run_id, mv.source, mv.description),
            *(mv.creation_time, mv.user_id),
            where=(mv.current_stage != STAGE_DELETED_INTERNAL, *of_version(mv)),
        )
        if not found:  # a version is a model's: else ask, RESOURCE_DOES_NOT_EXIST if none
            store._get_registered_model(session, name)
        version_tags: dict[int, dict[str, str]] = {int(row[0]): {} for row in found}
        tag = SqlModelVersionTag
        for number, key, value in rows(tag, tag.version, tag.key, tag.value, where=of_version(tag)):
            if int(number) in version_tags:
                version_tags[int(number)][key] = value
        model_tags = rows(
            SqlRegisteredModelTag, SqlRegisteredModelTag.key, SqlRegisteredModelTag.value
        )
        alias = SqlRegisteredModelAlias
        aliases = rows(alias, alias.alias, alias.version)
    return ModelRead(
        versions=[
            VersionRow(name, int(row[0]), *row[1:], tags=version_tags[int(row[0])]) for row in found
        ],
        tags=dict(model_tags),
        aliases={key: int(version) for key, version in aliases},
    )


def sql_models_with_version_tag(client: Any, key: str) -> list[str] | None:
    """The names of the models one of whose (not deleted) versions has tag ``key``, in one
    query of MLflow's SQL registry store; None for any other store."""
    store = sql_registry_store(client)
    if store is None:
        return None
    from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlModelVersionTag

    tag, mv = SqlModelVersionTag, SqlModelVersion
    with store.ManagedSessionMaker() as session:
        query = (
            store._get_query(session, tag)
            .join(
                mv,
                (mv.workspace == tag.workspace)
                & (mv.name == tag.name)
                & (mv.version == tag.version),
            )
            .filter(tag.key == key, mv.current_stage != STAGE_DELETED_INTERNAL)
        )
        return sorted({row[0] for row in query.with_entities(tag.name).all()})


@dataclass(frozen=True)
class Write:
    """One registry write: a version's tag (``key`` = ``value``), a model's tag (``version``
    None), MLflow's legacy stage (``key`` "stage", ``value`` the stage) or an alias (``key``
    "alias", ``value`` its name, pointing at ``version``, or removed where ``version`` is
    None)."""

    kind: str  # "version_tag" | "model_tag" | "stage" | "alias"
    name: str
    version: int | None
    key: str
    value: str


def sql_write(
    client: Any,
    writes: Sequence[Write],
    also: Callable[[Any, Any, list[Write]], None] | None = None,
) -> list[Write] | None:
    """Apply ``writes`` in one transaction of MLflow's SQL registry store, each as MLflow's
    own store method for it does (same rows, validation and timestamps), so a crash leaves
    all of them or none; None for any other store. Returns the writes that changed
    something (removing an alias that is not there changes nothing). ``also(store,
    session, changed)`` adds its own rows to the same transaction (the webhook outbox)."""
    store = sql_registry_store(client)
    if store is None:
        return None
    from mlflow.utils import validation
    from mlflow.utils.time import get_current_time_millis

    validate_alias = (  # MLflow 3.18 renamed it
        getattr(validation, "_validate_alias_name", None) or validation._validate_model_alias_name
    )
    for write in writes:
        validation._validate_model_name(write.name)
        if write.kind == "version_tag":
            validation._validate_model_version_tag(write.key, write.value)
        elif write.kind == "model_tag":
            validation._validate_registered_model_tag(write.key, write.value)
        elif write.kind == "alias":
            validate_alias(write.value)
    with store.ManagedSessionMaker(read_only=False) as session:
        rows, now = _SessionRows(store, session, writes), get_current_time_millis()
        changed = [write for write in writes if rows.apply(write, now)]
        if also is not None:
            also(store, session, changed)
        return changed


class _SessionRows:
    """The rows a batch of writes touches, read inside its session in a few queries (not
    one per write): the models (a prompt refused as MlflowClient does), their tags and
    aliases, the versions written (a missing one raises MLflow's RESOURCE_DOES_NOT_EXIST)
    and their tags. A write then changes a loaded row or adds one, as the ``session.merge``
    of MLflow's store methods does, without a query per row."""

    def __init__(self, store: Any, session: Any, writes: Sequence[Write]) -> None:
        from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
        from mlflow.prompt.registry_utils import has_prompt_tag
        from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlModelVersionTag
        from mlflow.tracking.client import _model_not_found
        from sqlalchemy import and_, or_

        self.session = session
        names = sorted({w.name for w in writes})
        self.models = {name: store._get_registered_model(session, name) for name in names}
        self.model_tags: dict[tuple[Any, ...], Any] = {}
        self.aliases: dict[tuple[Any, ...], Any] = {}
        for name, model in self.models.items():
            if has_prompt_tag(model.registered_model_tags):
                raise _model_not_found(name)
            self.model_tags.update(((name, t.key), t) for t in model.registered_model_tags)
            if any(w.kind == "alias" and w.name == name for w in writes):
                self.aliases.update(((name, a.alias), a) for a in model.registered_model_aliases)
        numbers: dict[str, set[int]] = {}
        for w in writes:
            if w.kind != "model_tag" and w.version is not None:
                numbers.setdefault(w.name, set()).add(int(w.version))

        def rows_of(table: Any, *where: Any) -> list[Any]:
            if not numbers:
                return []
            wanted = (
                and_(table.name == n, table.version.in_(sorted(v))) for n, v in numbers.items()
            )
            return store._get_query(session, table).filter(or_(*wanted), *where).all()

        versions = rows_of(SqlModelVersion, SqlModelVersion.current_stage != STAGE_DELETED_INTERNAL)
        self.versions = {(r.name, int(r.version)): r for r in versions}
        for name, wanted in numbers.items():
            for number in sorted(wanted - {v for n, v in self.versions if n == name}):
                store._get_sql_model_version(session, name, number)  # raises MLflow's error
        tags = rows_of(SqlModelVersionTag)
        self.version_tags = {(t.name, int(t.version), t.key): t for t in tags}

    def apply(self, write: Write, now: int) -> bool:
        """Write it; False where it changes nothing (removing an alias that is not there)."""
        from mlflow.entities.model_registry.model_version_stages import get_canonical_stage
        from mlflow.store.model_registry.dbmodels.models import (
            SqlModelVersionTag,
            SqlRegisteredModelAlias,
            SqlRegisteredModelTag,
        )

        name, version, key, value = write.name, write.version, write.key, write.value
        if write.kind == "model_tag":
            found, table, row = self.model_tags, SqlRegisteredModelTag, {"key": key, "value": value}
            self._upsert(found, (name, key), table, name, row)
        elif write.kind == "version_tag":
            found, table, row = self.version_tags, SqlModelVersionTag, {"key": key, "value": value}
            self._upsert(found, (name, version, key), table, name, {"version": version, **row})
        elif write.kind == "stage":
            moved = self.versions[(name, version)]
            moved.current_stage = get_canonical_stage(value)
            moved.last_updated_time = self.models[name].last_updated_time = now
        elif version is not None:  # an alias pointed at the version
            row = {"alias": value, "version": version}
            self._upsert(self.aliases, (name, value), SqlRegisteredModelAlias, name, row)
        else:  # an alias removed
            found = self.aliases.pop((name, value), None)
            if found is None:
                return False
            self.session.delete(found)
        return True

    def _upsert(
        self,
        found: dict[tuple[Any, ...], Any],
        key: tuple[Any, ...],
        table: Any,
        name: str,
        row: dict[str, Any],
    ) -> None:
        """Set the row's fields; add it where ``found`` has none of its primary ``key``."""
        existing = found.get(key)
        if existing is None:
            found[key] = existing = table(workspace=self.models[name].workspace, name=name, **row)
            self.session.add(existing)
            return
        for field, value in row.items():
            if getattr(existing, field) != value:
                setattr(existing, field, value)
