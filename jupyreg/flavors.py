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

    def log_model(self, model: Any, pip_requirements: list[str]) -> Any:
        import importlib

        flavor = importlib.import_module(self.module)
        if self.name == "pyfunc":
            return flavor.log_model(
                name="model", python_model=model, pip_requirements=pip_requirements
            )
        return flavor.log_model(model, name="model", pip_requirements=pip_requirements)


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
