"""Choosing the MLflow flavor that logs a model object, without importing frameworks eagerly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyreg.errors import InvalidArgument

SUPPORTED = (
    "scikit-learn estimators and pipelines, mlflow.pyfunc.PythonModel subclasses, "
    "torch.nn.Module, xgboost and lightgbm models"
)


@dataclass(frozen=True)
class Flavor:
    name: str
    module: str
    """The ``mlflow.<flavor>`` module whose ``log_model`` stores the object."""

    def save_model(
        self,
        model: Any,
        path: str,
        pip_requirements: list[str],
        mlflow_model: Any,
        signature: Any = None,
        input_example: Any = None,
    ) -> None:
        """Write the model's MLflow directory to ``path`` (``mlflow_model`` carries its run
        and logged-model ids); uploading it is the registry's business. Without a
        ``signature``, MLflow infers one from ``input_example`` when given."""
        import importlib

        flavor = importlib.import_module(self.module)
        common = {
            "pip_requirements": pip_requirements,
            "mlflow_model": mlflow_model,
            "signature": signature,
            "input_example": input_example,
        }
        if self.name == "pyfunc":
            flavor.save_model(path, python_model=model, **common)
            return
        options = _sklearn_serialization(model) if self.name == "sklearn" else {}
        if options.get("serialization_format") == "cloudpickle":
            common["pip_requirements"] = [*pip_requirements, _pinned("cloudpickle")]
        flavor.save_model(model, path, **common, **options)


def _sklearn_serialization(model: Any) -> dict[str, Any]:
    """MLflow's default skops format (safe to load) trusting the model's own types, which
    skops otherwise refuses for tree ensembles, MLPs and custom transformers; cloudpickle
    where skops cannot express the model (classes defined in ``__main__``, lambdas)."""
    import skops.io

    try:
        dumped = skops.io.dumps(model)
        untrusted = skops.io.get_untrusted_types(data=dumped)
        if any(name.startswith("__main__.") for name in untrusted):
            raise TypeError("classes defined in __main__ do not load elsewhere")
        skops.io.loads(dumped, trusted=untrusted)  # what MLflow checks before saving
    except Exception:  # skops' own serialisation errors are varied; cloudpickle covers them
        return {"serialization_format": "cloudpickle"}
    return {"skops_trusted_types": untrusted} if untrusted else {}


def _pinned(distribution: str) -> str:
    from importlib.metadata import version

    return f"{distribution}=={version(distribution)}"


def _roots(model: Any) -> list[str]:
    """Top-level packages of the object's class and its bases, most specific first."""
    return [cls.__module__.split(".")[0] for cls in type(model).__mro__]


def choose_flavor(model: Any) -> Flavor:
    """The flavor for ``model``; raises InvalidArgument naming what is supported."""
    roots = _roots(model)
    qualnames = {f"{c.__module__}.{c.__qualname__}" for c in type(model).__mro__}
    if any(q.startswith("mlflow.pyfunc") and q.endswith("PythonModel") for q in qualnames):
        return Flavor("pyfunc", "mlflow.pyfunc")
    for root in roots:
        if root == "xgboost":
            return Flavor("xgboost", "mlflow.xgboost")
        if root == "lightgbm":
            return Flavor("lightgbm", "mlflow.lightgbm")
        if root == "torch":
            return Flavor("pytorch", "mlflow.pytorch")
        if root == "sklearn":
            return Flavor("sklearn", "mlflow.sklearn")
    raise InvalidArgument(
        f"cannot register an object of type {type(model).__module__}.{type(model).__qualname__}: "
        f"supported are {SUPPORTED}"
    )
