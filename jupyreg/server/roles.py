"""What a model's creator gets on it.

MLflow's basic-auth grants a registered model's creator MANAGE (mlflow#11497): on a
jupyreg server that would let anyone who registers first approve and demote Production.
The creator gets ``JUPYREG_CREATOR_PERMISSION`` (EDIT unless the operator says otherwise)
instead, or what an admin granted on that name before it existed, so the order of
``jupyreg users grant`` and the first registration does not matter.
"""

from __future__ import annotations

import os

CREATOR_PERMISSION_ENV = "JUPYREG_CREATOR_PERMISSION"
DEFAULT_CREATOR_PERMISSION = "EDIT"


def creator_permission(prior: str | None) -> str:
    """The permission the creator keeps: an earlier grant, else the configured default."""
    return prior or os.environ.get(CREATOR_PERMISSION_ENV, DEFAULT_CREATOR_PERMISSION)
