"""Issue 15 in the promotion panel: Production's staleness against the kernel's repository,
the model card, and each version's reproduction status."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyreg.widgets import promotion_panel
from tests.lineage.lineage_helpers import commit_all
from tests.registered_project import NAME, promote, register
from tests.widgets.panel_helpers import record_reproduction


@pytest.fixture
def project(git_dvc_project: Path) -> Path:
    """The git + DVC project as the kernel's working directory."""
    return git_dvc_project


def test_production_staleness_is_a_line_under_the_stage_holders(project, alice, bob, model):
    version = register(alice, model)
    panel = promotion_panel(alice, NAME)
    assert panel.controller.staleness is None and panel.staleness.value == ""  # no Production

    promote(alice, bob, version)
    panel.refresh_button.click()
    assert "data-stale='false'" in panel.staleness.value
    assert "up to date: 0 commits touching code" in panel.staleness.value

    (project / "features.py").write_text("SCALE = 2\n")
    commit_all(project, "rescale")
    panel.refresh_button.click()
    assert panel.controller.staleness.commits_behind == 1
    assert "data-stale='true'" in panel.staleness.value
    assert "may be stale: 1 commit touching code since training" in panel.staleness.value
    assert "var(--jp-warn-color1" in panel.staleness.value  # theme colours, not fixed ones


def test_without_a_git_repository_code_changes_are_unknown_not_an_error(workdir, alice, bob, model):
    alice.register(model, NAME, metrics={"val": {"auc": 0.9}}, data=[])
    promote(alice, bob, 1)
    panel = promotion_panel(alice, NAME)
    assert panel.controller.staleness.commits_behind is None
    assert "code: unknown" in panel.staleness.value
    assert "git:" in panel.staleness.value  # the warning, in the line's tooltip


def test_a_failure_to_measure_staleness_is_shown_and_the_panel_opens(
    workdir, alice, bob, model, monkeypatch
):
    import jupyreg.staleness

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    alice.register(model, NAME, metrics={"val": {"auc": 0.9}}, data=[])
    promote(alice, bob, 1)
    monkeypatch.setattr(jupyreg.staleness, "staleness", broken)
    panel = promotion_panel(alice, NAME)
    assert "data-stale='unknown'" in panel.staleness.value
    assert "RuntimeError: disk on fire" in panel.staleness.value


def test_the_model_card_of_the_chosen_version_renders_as_markdown(workdir, alice, model):
    for _ in range(2):
        alice.register(model, NAME, metrics={"val": {"auc": 0.9}}, data=[])
    panel = promotion_panel(alice, NAME)
    assert panel.card.layout.display == "none"
    panel.version.value = 1
    panel.card_button.click()
    (output,) = panel.card.outputs
    markdown = output["data"]["text/markdown"]
    assert markdown.startswith(f"# {NAME} v1\n") and "## Reproduction" in markdown
    assert "<details>" in panel.card_meta.value and "library_name: sklearn" in panel.card_meta.value
    assert f"Model card of {NAME} v1" in panel.card_title.value
    assert panel.card.layout.display == "block"

    panel.card_hide_button.click()
    assert panel.card.outputs == () and panel.card.layout.display == "none"


def test_a_card_that_cannot_be_made_is_a_message_not_a_traceback(workdir, alice, model):
    alice.register(model, NAME, metrics={"val": {"auc": 0.9}}, data=[])
    panel = promotion_panel(alice, NAME)
    panel.show_card(None)  # no Production
    assert "NotFound" in panel.status.value and panel.card.outputs == ()


def test_reproduction_status_shows_on_holders_picker_and_pending_rows(workdir, alice, model):
    for _ in range(3):
        alice.register(model, NAME, metrics={"val": {"auc": 0.9}}, data=[])
    alice.transition(NAME, 1, "Staging", reason="candidate")
    alice.request(NAME, 1, "Production", reason="auc up")
    record_reproduction(alice, NAME, 1, ok=True)
    record_reproduction(alice, NAME, 2, ok=False)
    panel = promotion_panel(alice, NAME)
    assert panel.controller.reproduced == {1: "passed", 2: "failed", 3: None}
    labels = dict((v, label) for label, v in panel.version.options)
    assert labels == {
        3: "v3 (None)",
        2: "v2 (None, reproduction failed)",
        1: "v1 (Staging, reproduced)",
    }
    assert "data-reproduced='passed'" in panel.holders.value
    assert "data-reproduced='failed'" in panel.holders.value
    (row,) = panel.pending_rows
    assert "data-reproduced='passed'" in row.children[0].value
