"""MLflow's scoring function that ``jupyreg serve`` answers ``/invocations`` with."""

from __future__ import annotations

import json

import pytest

from jupyreg import compat


def test_score_answers_as_mlflow_models_serve(alice, model) -> None:
    from mlflow.exceptions import MlflowException

    version = alice.register(model, "m").version
    loaded = alice.load("m", version=version)
    body = json.dumps({"inputs": model.sample_input.tolist()}).encode()
    result = compat.score(body, "application/json", loaded)
    assert (result.status, result.mimetype) == (200, "application/json")
    assert json.loads(result.response) == {
        "predictions": model.predict(model.sample_input).tolist()
    }
    unsupported = compat.score(b"x", "text/plain", loaded)
    assert unsupported.status == 415
    with pytest.raises(MlflowException):
        compat.score(b"{not json", "application/json", loaded)
