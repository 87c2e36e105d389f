"""The sidebar's model listing says when a stage changed outside jupyreg split
``models:/NAME/Production`` from ``models:/NAME@production`` (``split``), until repaired."""

from __future__ import annotations

import warnings

from mlflow import MlflowClient


async def test_the_listing_carries_the_split_until_check_repairs_it(seeded, alice, bob, api):
    name = seeded["name"]
    status, body = await api("GET", "models")
    assert status == 200 and body["models"][0]["split"] is None
    bob.approve(seeded["request_id"])  # v1 into Production
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MLflow deprecates stages
        MlflowClient().transition_model_version_stage(
            name, 2, "Production", archive_existing_versions=True
        )
    status, body = await api("GET", "models")
    assert status == 200
    [listed] = body["models"]
    assert listed["split"] == (
        f"{name}: models:/{name}/Production is v2 but models:/{name}@production is v1 "
        f"(a stage was changed outside jupyreg); run reg.check({name!r}, repair=True)"
    )
    assert listed["production"] == 1  # the alias, as plain MLflow's @production loads
    alice.check(name, repair=True)
    status, body = await api("GET", "models")
    assert body["models"][0]["split"] is None and body["models"][0]["production"] == 2
