"""The compare panel's widgets: selections changed, buttons clicked, what it shows."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from jupyreg.errors import NotFound
from jupyreg.widgets import compare_panel
from jupyreg.widgets.markup import DIFFERS_STYLE
from tests.widgets.panel_helpers import NAME, promote, register


def row_html(table: str, field: str) -> str:
    start = table.index(f">{field}</td>")
    return table[start : table.index("</tr>", start)]


def test_panel_shows_production_against_the_newest_with_deltas(alice, bob, model):
    register(alice, model, {"val.auc": 0.80, "val.loss": 0.5})
    register(alice, model, {"val.auc": 0.70, "val.loss": 0.4})
    register(alice, model, {"val.auc": 0.90, "val.loss": 0.6})
    promote(alice, bob, 2)
    panel = alice.compare_panel(NAME)
    assert panel.version_select.value == (2, 3)
    assert "v2 (Production)" in panel.version_select.options[1][0]
    auc, loss = row_html(panel.table.value, "val.auc"), row_html(panel.table.value, "val.loss")
    assert "▲ better" in auc and DIFFERS_STYLE in auc
    assert "▼ worse" in loss  # higher loss is worse
    assert "Production v2" in panel.table.value
    assert panel.chart.value.startswith("<svg")
    assert "var(--jp-ui-font-color1" in panel.chart.value  # follows the theme


def test_selecting_versions_changes_the_columns(alice, model):
    for auc in (0.8, 0.8, 0.9):
        register(alice, model, {"val.auc": auc})
    panel = compare_panel(alice, NAME)
    assert panel.controller.selected == [2, 3]
    assert panel.differences_only.value  # on by default
    panel.differences_only.value = False
    panel.version_select.value = (1, 2)
    assert panel.controller.selected == [1, 2]
    assert "v3" not in panel.table.value
    assert DIFFERS_STYLE not in row_html(panel.table.value, "val.auc")
    panel.version_select.value = (1, 2, 3)
    assert DIFFERS_STYLE in row_html(panel.table.value, "val.auc")
    panel.differences_only.value = True
    assert ">val.auc</td>" in panel.table.value and ">solver</td>" not in panel.table.value
    assert panel.lineage.value.count("against v1") == 2


def test_deselecting_every_version_is_refused_inline(alice, model):
    register(alice, model, {"val.auc": 0.8})
    register(alice, model, {"val.auc": 0.9})
    panel = compare_panel(alice, NAME)
    panel.version_select.value = ()
    assert "at least one version" in panel.status.value
    assert panel.version_select.value == (1, 2)


def test_choosing_chart_metrics_redraws_the_chart(alice, model):
    register(alice, model, {"val.auc": 0.8, "rmse": 3.0})
    register(alice, model, {"val.auc": 0.9, "rmse": 2.0})
    panel = compare_panel(alice, NAME)
    assert panel.metric_select.value == ("rmse", "val.auc")
    before = panel.chart.value
    panel.metric_select.value = ("rmse",)
    assert panel.controller.chart_metrics == ["rmse"]
    assert panel.chart.value != before


def test_refresh_picks_up_new_versions_and_reports_failures(alice, model):
    register(alice, model, {"val.auc": 0.8})
    register(alice, model, {"val.auc": 0.9})
    panel = compare_panel(alice, NAME, versions=[1])
    register(alice, model, {"val.auc": 0.95})
    panel.refresh_button.click()
    assert [v for _, v in panel.version_select.options] == [3, 2, 1]
    assert panel.controller.selected == [1]
    MlflowClient(tracking_uri=alice.tracking_uri).delete_registered_model(NAME)
    panel.refresh_button.click()
    assert "NotFound" in panel.status.value


def test_importing_the_package_loads_no_widget_or_plot_library():
    code = (
        "import sys, jupyreg.widgets; "
        "print([m for m in ('ipywidgets', 'matplotlib', 'pandas', 'mlflow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_panels_of_a_model_without_versions_render(alice, model):
    MlflowClient(tracking_uri=alice.tracking_uri).create_registered_model(NAME)
    panel = compare_panel(alice, NAME)
    assert "no versions" in panel.table.value and panel.lineage.value == ""
    promotion = alice.promotion_panel(NAME)
    assert promotion.version.options == () and promotion.pending_rows == []


def test_unknown_model_raises_for_the_magic_to_report(alice):
    with pytest.raises(NotFound, match="no registered model"):
        alice.compare_panel("nope")
    with pytest.raises(NotFound, match="no registered model"):
        alice.promotion_panel("nope")


def test_registry_magic_returns_the_panels(alice, model, sqlite_uri):
    from IPython.core.interactiveshell import InteractiveShell

    from jupyreg.magics import JupyReg
    from jupyreg.widgets.compare_view import ComparePanel
    from jupyreg.widgets.promotion_view import PromotionPanel

    for auc in (0.8, 0.9, 0.95):
        register(alice, model, {"val.auc": auc})
    shell = InteractiveShell.instance()
    magics = JupyReg(shell)
    shell.register_magics(magics)
    try:
        shell.run_line_magic("config", f"JupyReg.tracking_uri = {sqlite_uri!r}")
        shown = shell.run_line_magic("registry", f"compare {NAME} 1 3")
        assert isinstance(shown, ComparePanel) and shown.controller.selected == [1, 3]
        assert isinstance(shell.run_line_magic("registry", f"panel {NAME}"), PromotionPanel)
    finally:
        shell.configurables.remove(magics)
