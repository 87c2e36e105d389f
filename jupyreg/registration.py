"""Registering a model: one MLflow run with its metrics, params and lineage artifacts, a
logged model, and a new model version carrying the lineage tags and the metrics as
registered (``jupyreg.metrics``, the record the policy gates judge; the run's metrics stay
for MLflow's UI but may be logged again later).

Only MLflow's public client API is used, on this registry's own URIs (no process-wide
tracking URI is switched), so several registries can live in one process.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle, schema, tags
from jupyreg.errors import DuplicateVersion, InvalidArgument
from jupyreg.flavors import Flavor, choose_flavor
from jupyreg.metrics import flatten_metrics, model_params
from jupyreg.store import Store, VersionState, experiment_id

if TYPE_CHECKING:
    from jupyreg.lineage import Lineage


@dataclass(frozen=True)
class Registration:
    """A registration validated in full before anything is written."""

    name: str
    flavor: Flavor
    metrics: dict[str, float]
    metrics_record: str
    """``metrics`` as the version's ``jupyreg.metrics`` tag (checked to fit MLflow's limit)."""
    params: dict[str, str]
    tags: dict[str, str]
    description: str | None
    input_example: Any = None
    """Stored with the logged model; MLflow infers the signature from it."""


def prepare(
    model: Any,
    name: str,
    metrics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    user_tags: Mapping[str, Any] | None,
    description: str | None,
    input_example: Any = None,
) -> Registration:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument("a registered model needs a non-empty name")
    version_tags = {str(k): str(v) for k, v in (user_tags or {}).items()}
    reserved = next((k for k in version_tags if tags.is_reserved(k)), None)
    if reserved is not None:
        raise InvalidArgument(
            f"the tag {reserved!r} reads as jupyreg's: tags starting with 'jupyreg.', "
            "in any spelling, are reserved for jupyreg"
        )
    flat = flatten_metrics(metrics)
    return Registration(
        name=name.strip(),
        flavor=choose_flavor(model),
        metrics=flat,
        metrics_record=tags.metrics_value(flat),
        params=model_params(model, params),
        tags=version_tags,
        description=description,
        input_example=input_example,
    )


def fingerprinted(
    store: Store, model: Any, registration: Registration, lineage: Lineage, force: bool
) -> Registration:
    """The registration with its ``jupyreg.fingerprint`` tag; unless ``force``, a
    DuplicateVersion when a version of the model has the same fingerprint. The lineage
    counts without its capture time and warnings, and the notebook without its hash (its
    outputs change each time the cell runs)."""
    try:
        digest = hashlib.sha256()
        pickle.Pickler(_Sink(digest), protocol=5).dump(model)  # streamed, never held whole
    except Exception:  # an object pickle cannot write: no fingerprint, nothing compared
        return registration
    record = {k: v for k, v in lineage.record.items() if k not in ("captured_at", "warnings")}
    record["notebook"] = {**(record.get("notebook") or {}), "sha256": None}
    content = [digest.hexdigest(), registration.metrics, registration.params, record]
    content += [registration.tags, registration.description]
    text = json.dumps(content, sort_keys=True, default=str)
    fingerprint = hashlib.sha256(text.encode()).hexdigest()
    if not force:
        same = store.versions(registration.name, f"tags.`{tags.FINGERPRINT_TAG}` = '{fingerprint}'")
        if same:
            number = same[-1].version
            raise DuplicateVersion(
                f"{registration.name}: identical to v{number} (same model bytes, metrics, "
                "params and lineage); nothing registered",
                number,
            )
    return replace(registration, tags={**registration.tags, tags.FINGERPRINT_TAG: fingerprint})


class _Sink:
    def __init__(self, digest: Any) -> None:
        self.write = digest.update


def log_and_register(
    store: Store, model: Any, registration: Registration, lineage: Lineage, user: str
) -> VersionState:
    """Write the run, the logged model and the new version; a failure marks the run FAILED."""
    from mlflow.entities import LoggedModelOutput, Metric, Param, RunStatus
    from mlflow.models import Model

    client = store.client
    name = registration.name
    git = lineage.record.get("git") or {}
    notebook = (lineage.record.get("notebook") or {}).get("path")
    run_tags = {
        "mlflow.user": user,
        "mlflow.runName": f"register {name}",
        tags.REGISTERED_MODEL_RUN_TAG: name,
        **({"mlflow.source.git.commit": git["commit"]} if git.get("commit") else {}),
        **({"mlflow.source.name": notebook} if notebook else {}),
    }
    with store.translated(f"registering {name}"):
        experiment = _experiment_for(store, name)
        run_id = client.create_run(experiment, tags=run_tags).info.run_id
        try:
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now_ms, 0) for k, v in registration.metrics.items()],
                params=[Param(k, v) for k, v in registration.params.items()],
            )
            _log_artifacts(store, run_id, lineage.artifacts)
            logged = client.create_logged_model(
                experiment, name="model", source_run_id=run_id, model_type=registration.flavor.name
            )
            with tempfile.TemporaryDirectory(prefix="jupyreg-model-") as tmp:
                path = os.path.join(tmp, "model")
                description = Model(
                    artifact_path=logged.artifact_location,
                    run_id=run_id,
                    model_id=logged.model_id,
                    model_uuid=logged.model_id,
                )
                registration.flavor.save_model(
                    model,
                    path,
                    list(lineage.requirements),
                    description,
                    signature=None,  # MLflow infers it from the input example, if any
                    input_example=registration.input_example,
                )
                # without an example the inputs' names are known but not their types: kept
                # for compare and the schema gate, never enforced by MLflow on callers (an
                # int column sent to a "double" input would be refused)
                schema_tags = _schema_tags(path, signature_from_features(model))
                client.log_model_artifacts(logged.model_id, path)
            client.finalize_logged_model(logged.model_id, "READY")
            client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
            _ensure_registered_model(store, name)
            record = {
                **tags.lineage_tags(lineage.record),
                **registration.tags,
                **schema_tags,
                tags.METRICS_TAG: registration.metrics_record,
                tags.STAGE_TAG: lifecycle.NONE,
                tags.AUTHOR_TAG: user,
            }
            mv = client.create_model_version(
                name,
                logged.artifact_location,
                run_id=run_id,
                tags={**record, tags.SEAL_TAG: tags.seal(record)},
                description=registration.description,
                model_id=logged.model_id,
            )
        except BaseException:
            with suppress(Exception):  # the store may be the very thing that failed
                client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        client.set_terminated(run_id)
        return VersionState.of(mv)


def signature_from_features(model: Any) -> Any:
    """An MLflow signature from what a fitted model says about its inputs (scikit-learn's
    ``feature_names_in_``: one double column each; ``n_features_in_``: a float64 tensor),
    else None."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return ModelSignature(inputs=Schema([ColSpec("double", str(n)) for n in names]))
    count = getattr(model, "n_features_in_", None)
    if isinstance(count, int) and count > 0:
        import numpy as np

        return ModelSignature(inputs=Schema([TensorSpec(np.dtype("float64"), (-1, count))]))
    return None


def _schema_tags(path: str, inferred: Any) -> dict[str, str]:
    """The ``jupyreg.schema`` record of the saved model's input signature, else of the one
    ``inferred`` from the model (none without either, or when it would not fit in a tag)."""
    from mlflow.models import Model

    signature = Model.load(os.path.join(path, "MLmodel")).signature or inferred
    if signature is None or signature.inputs is None:
        return {}
    value = schema.record(schema.from_signature_inputs(signature.inputs))
    return {tags.SCHEMA_TAG: value} if len(value) <= tags.MAX_TAG_LENGTH else {}


def _experiment_for(store: Store, name: str) -> str:
    """MLFLOW_EXPERIMENT_ID / _NAME when set, else an experiment named after the model."""
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or name
    return experiment_id(store.client, experiment, store.artifact_location)


def _ensure_registered_model(store: Store, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        store.client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _log_artifacts(store: Store, run_id: str, artifacts: Mapping[str, bytes]) -> None:
    if not artifacts:
        return
    with tempfile.TemporaryDirectory(prefix="jupyreg-") as tmp:
        for relative, content in artifacts.items():
            path = Path(tmp, relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        store.client.log_artifacts(run_id, tmp)
