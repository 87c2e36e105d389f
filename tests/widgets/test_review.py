"""What a reviewer sees before deciding (issue 17): the candidate's metrics against
Production, Compare, a confirmation for Production, review comments in the history,
sensible defaults, one number format, colours that follow the JupyterLab theme."""

from __future__ import annotations

import pytest

from jupyreg.widgets import compare_panel, promotion_panel
from jupyreg.widgets.markup import DIFFERS_STYLE
from jupyreg.widgets.numbers import NUMBER_STYLE, fmt, fmt_delta, metric_delta
from tests.widgets.panel_helpers import NAME, promote, register


@pytest.fixture
def candidate(alice, bob, model):
    """v1 in Production (val.auc 0.92655); v2 newer; v3 (0.92741) in Staging, requested
    for Production by alice; v4 newest, not requested."""
    register(alice, model, {"val.auc": 0.92655, "val.loss": 0.30})
    register(alice, model, {"val.auc": 0.90, "val.loss": 0.35})
    register(alice, model, {"val.auc": 0.92741, "val.loss": 0.31})
    register(alice, model, {"val.auc": 0.91, "val.loss": 0.32})
    promote(alice, bob, 1)
    alice.transition(NAME, 3, "Staging", reason="candidate")
    return alice.request(NAME, 3, "Production", reason="auc up")


def test_numbers_have_four_significant_digits_and_signed_deltas():
    assert (fmt(0.92741), fmt(0.92655)) == ("0.9274", "0.9265")
    assert fmt(3) == "3" and fmt(2.0) == "2" and fmt(12345.6) == "1.235e+04"
    assert fmt_delta(0.00086) == "+0.00086" and fmt_delta(0.0) == "±0"
    assert metric_delta("val.loss", 0.31, 0.30).direction == "worse"
    assert metric_delta("val.auc", "n/a", 0.3) is None


def test_compare_opens_on_production_against_the_version_up_for_approval(alice, candidate):
    panel = compare_panel(alice, NAME)
    assert panel.controller.selected == [1, 3]  # not the newest, v4
    assert panel.differences_only.value
    table = panel.table.value
    assert "0.9274" in table and "0.9265" in table
    assert NUMBER_STYLE in table  # right-aligned, tabular figures
    assert ">test.auc</td>" not in table  # only differences: no row without one


def test_highlights_and_messages_use_theme_colours(alice, candidate):
    panel = compare_panel(alice, NAME)
    assert "var(--jp-" in DIFFERS_STYLE and "color:var(--jp-ui-font-color1" in DIFFERS_STYLE
    assert "#fef3c7" not in panel.table.value
    panel.version_select.value = ()
    assert "var(--jp-error-color1" in panel.status.value
    assert panel.chart.value.startswith("<svg") and "var(--jp-ui-font-color1" in panel.chart.value


def test_pending_row_shows_metrics_and_deltas_against_production(bob, candidate):
    panel = promotion_panel(bob, NAME)
    (row,) = panel.pending_rows
    pending = panel.controller.pending[0]
    assert pending.production == 1
    assert pending.deltas["val.auc"].direction == "better"
    assert pending.deltas["val.loss"].direction == "worse"
    html = row.metrics.value
    assert "Production v1" in html and "0.9274" in html and "0.9265" in html
    assert "+0.00086 ▲" in html and NUMBER_STYLE in html


def test_compare_opens_the_candidate_against_production(bob, candidate):
    panel = promotion_panel(bob, NAME)
    panel.pending_rows[0].compare_button.click()
    (shown,) = panel.compare.children
    assert shown.controller.selected == [1, 3]


def test_production_approval_is_confirmed_and_its_comment_is_in_the_history(bob, candidate):
    panel = promotion_panel(bob, NAME)
    (row,) = panel.pending_rows
    row.comment.value = "auc up, loss flat"
    row.approve_button.click()
    assert bob.get(NAME, 3).stage == "Staging"
    assert "Production v1 is archived" in row.confirm_text.value
    row.cancel_button.click()
    assert row.confirm_box.layout.display == "none"
    row.approve_button.click()
    row.confirm_button.click()
    assert bob.get(NAME, 3).stage == "Production"
    latest = panel.controller.timeline[0]
    assert latest.comments == (("bob", "auc up, loss flat"),)
    assert "bob: auc up, loss flat" in panel.timeline.value
    assert "review comments" in panel.timeline.value


def test_form_preselects_a_version_and_target_and_needs_a_reason(alice, model):
    register(alice, model, {"val.auc": 0.8})
    register(alice, model, {"val.auc": 0.9})
    register(alice, model, {"val.auc": 0.85})
    alice.transition(NAME, 2, "Staging", reason="candidate")
    panel = promotion_panel(alice, NAME)
    assert (panel.version.value, panel.stage.value) == (2, "Production")
    assert panel.request_button.disabled
    panel.reason.value = "auc up"
    assert not panel.request_button.disabled
    panel.version.value = 3
    assert panel.stage.value == "Staging"  # forward, never Archived by default


def test_highlighted_cells_keep_the_text_readable():
    """The tint is translucent over the theme's background and the text is the theme's."""
    assert "transparent" in DIFFERS_STYLE and "#fef3c7" not in DIFFERS_STYLE
