"""Notebook panels: compare versions side by side, and carry promotions through approval.

Each panel is a pure-Python controller (state and actions, tested without a browser)
under a thin ipywidgets view. Importing this package loads neither ipywidgets,
matplotlib nor pandas; they load when a panel is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupyreg.registry import Registry
    from jupyreg.widgets.compare_view import ComparePanel
    from jupyreg.widgets.promotion_view import PromotionPanel

__all__ = ["compare_panel", "promotion_panel"]


def compare_panel(
    registry: Registry, name: str, versions: Iterable[int | str] | None = None
) -> ComparePanel:
    """Versions of ``name`` side by side: metrics, params, lineage, a chart, a lineage diff.

    Raises the registry's error (e.g. ``NotFound``) when the model or a version is unknown.
    """
    from jupyreg.widgets.compare_view import ComparePanel
    from jupyreg.widgets.comparison import CompareController

    return ComparePanel(CompareController(registry, name, versions))


def promotion_panel(registry: Registry, name: str) -> PromotionPanel:
    """Stage holders, promotion requests with approve / reject, and the history timeline."""
    from jupyreg.widgets.promotion import PromotionController
    from jupyreg.widgets.promotion_view import PromotionPanel

    return PromotionPanel(PromotionController(registry, name))
