"""Validation of the metrics and params a user registers with a version."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from jupyreg.errors import InvalidArgument

_PARAM_MAX = 6000  # MLflow's limit for a param value


def flatten_metrics(metrics: Mapping[str, Any] | None, prefix: str = "") -> dict[str, float]:
    """``{"val": {"auc": 0.9}}`` -> ``{"val.auc": 0.9}``; every leaf a finite number."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidArgument(
            "metrics must be a dict such as {'val': {'auc': 0.91}}, "
            f"not {type(metrics).__name__}"
        )
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, f"{name}."))
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidArgument(
                f"metric {name!r} must be a number, got {type(value).__name__} {value!r}"
            )
        number = float(value)
        if not math.isfinite(number):
            raise InvalidArgument(f"metric {name!r} is {number}: metrics must be finite numbers")
        flat[name] = number
    return flat


def model_params(model: Any, params: Mapping[str, Any] | None) -> dict[str, str]:
    """Explicit params, else the model's own ``get_params()`` (scalar values only)."""
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgument(f"params must be a dict, not {type(params).__name__}")
    if params is None:
        get_params = getattr(model, "get_params", None)
        try:
            params = get_params() if callable(get_params) else {}
        except Exception:  # a third-party get_params may fail; params are optional
            params = {}
        params = {
            k: v for k, v in params.items() if v is None or isinstance(v, str | numbers.Number)
        }
    return {str(k): str(v)[:_PARAM_MAX] for k, v in params.items()}
