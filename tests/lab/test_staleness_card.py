"""Issue 15 in the sidebar's API: Production's staleness in the model listing (against the
server's root directory), the model card, and each version's reproduction status."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lineage.lineage_helpers import commit_all
from tests.registered_project import NAME, promote, register
from tests.widgets.panel_helpers import promote as promote_v
from tests.widgets.panel_helpers import record_reproduction


@pytest.fixture
def project(git_dvc_project: Path) -> Path:
    """The git + DVC project as the working directory; the registry's mlflow.db in it."""
    return git_dvc_project


def by_name(body: dict) -> dict:
    return {m["name"]: m for m in body["models"]}


class TestStalenessInTheListing:
    @pytest.fixture
    def jp_root_dir(self, project: Path) -> Path:
        """The server serves the project: its root directory is the repository."""
        return project

    async def test_production_is_measured_against_the_servers_root(
        self, project, alice, bob, model, api
    ):
        version = register(alice, model)
        register(alice, model)  # v2, never in Production
        status, body = await api("GET", "models")
        assert status == 200 and by_name(body)[NAME]["staleness"] is None  # no Production

        promote(alice, bob, version)
        fresh = by_name((await api("GET", "models"))[1])[NAME]["staleness"]
        assert (fresh["stale"], fresh["version"], fresh["commits_behind"]) == (False, 1, 0)
        assert fresh["changed_data"] == [] and 0 <= fresh["age_days"] < 0.01
        assert "up to date" in fresh["summary"]

        (project / "features.py").write_text("SCALE = 2\n")
        commit_all(project, "rescale")
        stale = by_name((await api("GET", "models"))[1])[NAME]["staleness"]
        assert (stale["stale"], stale["commits_behind"]) == (True, 1)
        assert "may be stale: 1 commit touching code since training" in stale["summary"]


async def test_outside_a_git_repository_the_listing_still_answers(seeded, bob, api):
    """The default server root is no repository: code changes are unknown, with a warning."""
    bob.approve(seeded["request_id"], comment="ok")
    status, body = await api("GET", "models")
    assert status == 200
    found = by_name(body)[seeded["name"]]["staleness"]
    assert (found["stale"], found["commits_behind"], found["version"]) == (False, None, 1)
    assert "code: unknown" in found["summary"]
    assert any(w.startswith("git:") for w in found["warnings"])


async def test_a_failure_to_measure_never_fails_the_listing(seeded, bob, api, monkeypatch):
    import jupyreg.staleness

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jupyreg.staleness, "staleness", broken)
    bob.approve(seeded["request_id"], comment="ok")
    status, body = await api("GET", "models")
    assert status == 200
    found = by_name(body)[seeded["name"]]["staleness"]
    assert found["stale"] is None and found["commits_behind"] is None
    assert found["summary"] == "staleness unknown: RuntimeError: disk on fire"


async def test_the_card_comes_whole_and_split_from_its_front_matter(seeded, bob, api):
    status, body = await api("GET", "models", seeded["name"], "card", params={"version": "2"})
    assert status == 200
    assert body["card"].startswith("---\n")
    assert "library_name: sklearn" in body["front_matter"]
    assert body["body"].startswith(f"# {seeded['name']} v2\n")
    assert "## Reproduction" in body["body"] and "---\nlicense" not in body["body"]

    # without a version: Production's, and a refusal in GUI words when there is none
    status, body = await api("GET", "models", seeded["name"], "card")
    assert (status, body["error"]) == (404, "NotFound")
    assert "reg.model_card" not in body["message"]
    bob.approve(seeded["request_id"], comment="ok")
    status, body = await api("GET", "models", seeded["name"], "card")
    assert status == 200 and body["body"].startswith(f"# {seeded['name']} v1\n")


async def test_versions_carry_their_reproduction_status(seeded, alice, api):
    record_reproduction(alice, seeded["name"], 1, ok=False)
    record_reproduction(alice, seeded["name"], 2, ok=True)
    status, body = await api("GET", "models", seeded["name"], "versions")
    assert status == 200
    assert [v["reproduced"] for v in body["versions"]] == ["failed", "passed"]


async def test_the_listing_reuses_a_measurement_until_production_changes(
    seeded, alice, bob, api, monkeypatch
):
    import jupyreg.staleness

    measured = []
    real = jupyreg.staleness.staleness

    def counting(registry, name, root):
        measured.append(name)
        return real(registry, name, root)

    monkeypatch.setattr(jupyreg.staleness, "staleness", counting)
    bob.approve(seeded["request_id"], comment="ok")
    for _ in range(2):
        assert (await api("GET", "models"))[0] == 200
    assert measured == [seeded["name"]]  # the sidebar polls: measured once

    promote_v(alice, bob, 2)
    found = by_name((await api("GET", "models"))[1])[seeded["name"]]["staleness"]
    assert found["version"] == 2 and len(measured) == 2
