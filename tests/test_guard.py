"""The server's guard on MLflow's own write routes: lifecycle state is written only by the
lifecycle, whatever the spelling of the key (the guard is a pure function of the request)."""

from __future__ import annotations

import pytest

from jupyreg.server.guard import refusal

FORGED_STEP = '{"id": "x", "moves": [[2, "None", "Production", "forged"]], "done": false}'


@pytest.mark.parametrize(
    "key", ["jupyreg.step", "jupyreg.policy", "JUPYREG.POLICY", " jupyreg.step", "Jupyreg.Step"]
)
@pytest.mark.parametrize("route", ["registered-models/set-tag", "registered-models/delete-tag"])
@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"])
def test_model_tags_of_jupyreg_are_refused_in_any_spelling(prefix, route, key) -> None:
    params = {"name": "m", "key": key, "value": FORGED_STEP}
    assert "managed by jupyreg" in refusal("POST", prefix + route, params, "eve")


@pytest.mark.parametrize(
    "key", ["jupyreg.stage", "JUPYREG.STAGE", " jupyreg.event.x", "jupyreg.git.dirty"]
)
def test_version_tags_of_jupyreg_are_refused_in_any_spelling(key) -> None:
    params = {"name": "m", "version": "1", "key": key, "value": "false"}
    path = "/api/2.0/mlflow/model-versions/set-tag"
    assert "managed by jupyreg" in refusal("POST", path, params, "eve")


def test_registration_may_carry_lineage_but_not_lifecycle_state() -> None:
    path = "/api/2.0/mlflow/model-versions/create"

    def create(*pairs: tuple[str, str]) -> str | None:
        tags = [{"key": k, "value": v} for k, v in pairs]
        return refusal("POST", path, {"name": "m", "tags": tags}, "alice")

    lineage = ("jupyreg.git.dirty", "false"), ("jupyreg.stage", "None")
    assert create(*lineage, ("jupyreg.author", "alice")) is None
    for forged in ("jupyreg.step", "jupyreg.event.1", "JUPYREG.GIT.DIRTY", "jupyreg.policy"):
        assert "cannot be set at creation" in create(*lineage, (forged, "x"))
    assert "authenticated user" in create(("jupyreg.author", "bob"))
    assert "starts in stage None" in create(("jupyreg.stage", "Production"))
    assert (
        refusal("POST", "/api/2.0/mlflow/registered-models/set-tag", {"key": "team"}, "a") is None
    )
