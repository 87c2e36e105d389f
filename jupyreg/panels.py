"""``jupyreg.Registry``: the registry facade plus its ipywidgets panels (DESIGN.md §2).

The panels are a front end; they live here, above the facade, so that ``jupyreg.registry``
never imports a front end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jupyreg import registry


class Registry(registry.Registry):
    __doc__ = registry.Registry.__doc__

    def compare_panel(self, name: str, versions: Iterable[int | str] | None = None) -> Any:
        """An ipywidgets panel comparing versions side by side (see ``jupyreg.widgets``)."""
        from jupyreg.widgets import compare_panel

        return compare_panel(self, name, versions)

    def promotion_panel(self, name: str) -> Any:
        """An ipywidgets panel to request, approve and reject promotions of ``name``."""
        from jupyreg.widgets import promotion_panel

        return promotion_panel(self, name)
