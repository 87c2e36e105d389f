"""The promotion panel: a thin ipywidgets view over ``PromotionController``."""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as w

from jupyreg.widgets import markup
from jupyreg.widgets.promotion import PendingRequest, PromotionController

TIMELINE_ROWS = 200
HOLDERS_SHOWN = 6


class PendingRow(w.HBox):
    """One pending request: what it asks, a comment box, Approve and Reject."""

    def __init__(self, panel: PromotionPanel, pending: PendingRequest) -> None:
        r = pending.request
        self.request_id = pending.id
        self.comment = w.Text(placeholder="comment", layout=w.Layout(width="14em"))
        self.approve_button = w.Button(description="Approve", button_style="success")
        self.reject_button = w.Button(description="Reject", button_style="danger")
        self.approve_button.disabled = pending.approve_blocked is not None
        self.approve_button.tooltip = pending.approve_blocked or ""
        self.note = w.HTML(
            f"<small style='color:#6b7280'>{escape(pending.approve_blocked)}</small>"
            if pending.approve_blocked
            else ""
        )
        approvals = ", ".join(a.by for a in r.approvals)
        summary = (
            f"<b>v{r.version} → {escape(r.to_stage)}</b> by {escape(r.requested_by)}: "
            f"{escape(r.reason)} <small>(request {r.id}; "
            f"{len(r.approvals)}/{pending.approvals_needed} approvals"
            + (f": {escape(approvals)}" if approvals else "")
            + ")</small>"
        )
        self.approve_button.on_click(
            lambda _: panel.act(panel.controller.approve, self.request_id, self.comment.value)
        )
        self.reject_button.on_click(
            lambda _: panel.act(panel.controller.reject, self.request_id, self.comment.value)
        )
        super().__init__(
            [
                w.HTML(summary),
                self.comment,
                self.approve_button,
                self.reject_button,
                self.note,
            ]
        )

    def close_all(self) -> None:
        """Close the row and its widgets, so re-rendering leaks no widget in the kernel."""
        for child in self.children:
            child.close()
        self.close()


class PromotionPanel(w.VBox):
    """Stage holders, a request form, pending requests and the history timeline."""

    def __init__(self, controller: PromotionController) -> None:
        self.controller = controller
        self.holders = w.HTML()
        self.version = w.Dropdown(description="version")
        self.stage = w.Dropdown(description="to stage")
        self.reason = w.Text(description="reason", placeholder="why (required)")
        self.request_button = w.Button(description="Request", button_style="primary")
        self.move_button = w.Button(
            description="Move now", tooltip="for moves the policy lets go without approval"
        )
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.status = w.HTML()
        self.pending = w.VBox()
        self.pending_rows: list[PendingRow] = []
        self.timeline = w.HTML()
        super().__init__(
            [
                w.HBox(
                    [
                        w.HTML(f"<b>Promotions of {escape(controller.name)}</b>"),
                        self.refresh_button,
                    ]
                ),
                self.holders,
                w.HBox([self.version, self.stage]),
                w.HBox([self.reason, self.request_button, self.move_button]),
                self.status,
                w.HTML("<b>pending requests</b>"),
                self.pending,
                w.HTML("<b>history</b>"),
                self.timeline,
            ]
        )
        self.version.observe(self._on_version, names="value")
        self.request_button.on_click(lambda _: self._file(controller.request))
        self.move_button.on_click(lambda _: self._file(controller.transition))
        self.refresh_button.on_click(lambda _: self.act(controller.reload))
        self.render()

    def act(self, action: Any, *args: Any) -> None:
        """Run a controller action; it records its outcome and refreshes itself."""
        action(*args)
        self.render()

    def render(self) -> None:
        c = self.controller
        outcome = c.outcome
        self.status.value = markup.message(outcome.ok, outcome.text) if outcome else ""
        self.holders.value = " · ".join(
            f"{markup.stage_badge(stage)} {_listing(versions)}"
            for stage, versions in c.holders().items()
        )
        chosen = self.version.value
        self.version.options = [(f"v{v} ({c.stages[v]})", v) for v in c.versions]
        if chosen in c.stages:
            self.version.value = chosen
        self._on_version()
        for row in self.pending_rows:
            row.close_all()
        self.pending_rows = [PendingRow(self, p) for p in c.pending]
        self.pending.children = self.pending_rows or [w.HTML("<i>none</i>")]
        self.timeline.value = (
            markup.table(
                ["when (UTC)", "version", "who", "from → to", "reason"],
                [
                    [
                        e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "?",
                        f"v{e.version}",
                        e.author,
                        f"{e.from_stage} → {e.to_stage}",
                        e.reason + (f" (request {e.request_id})" if e.request_id else ""),
                    ]
                    for e in c.timeline[:TIMELINE_ROWS]
                ],
            )
            + (
                f"<small>newest {TIMELINE_ROWS} of {len(c.timeline)} changes; "
                f"reg.history({c.name!r}) has them all</small>"
                if len(c.timeline) > TIMELINE_ROWS
                else ""
            )
            if c.timeline
            else "<i>no stage changes yet</i>"
        )

    def _on_version(self, _: Any = None) -> None:
        targets = self.controller.targets(self.version.value) if self.version.value else ()
        chosen = self.stage.value
        self.stage.options = targets
        if chosen in targets:
            self.stage.value = chosen

    def _file(self, action: Any) -> None:
        if action(self.version.value, self.stage.value, self.reason.value):
            self.reason.value = ""
        self.render()


def _listing(versions: list[int]) -> str:
    """``v1, v2`` — or the newest few and a count, for stages holding many versions."""
    if not versions:
        return "—"
    shown = ", ".join(f"v{v}" for v in versions[-HOLDERS_SHOWN:])
    hidden = len(versions) - HOLDERS_SHOWN
    return f"{shown} (+{hidden} older)" if hidden > 0 else shown
