"""The promotion panel: a thin ipywidgets view over ``PromotionController``."""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as w

from jupyreg import lifecycle
from jupyreg.errors import RegistryError
from jupyreg.widgets import markup
from jupyreg.widgets.numbers import NUMBER_STYLE, fmt, fmt_delta
from jupyreg.widgets.promotion import PendingRequest, PromotionController

TIMELINE_ROWS = 200
HOLDERS_SHOWN = 6


class PendingRow(w.VBox):
    """One pending request: what it asks, the candidate's metrics against Production, a
    comment box, Approve (confirmed first when it moves a version into Production), Reject
    and Compare."""

    def __init__(self, panel: PromotionPanel, pending: PendingRequest) -> None:
        r = pending.request
        self.request_id = pending.id
        self.comment = w.Text(placeholder="comment", layout=w.Layout(width="14em"))
        self.approve_button = w.Button(description="Approve", button_style="success")
        self.reject_button = w.Button(description="Reject", button_style="danger")
        self.compare_button = w.Button(
            description="Compare",
            icon="columns",
            tooltip=f"v{r.version} side by side with Production",
        )
        self.approve_button.disabled = pending.approve_blocked is not None
        self.approve_button.tooltip = pending.approve_blocked or ""
        self.note = w.HTML(
            f"<small style='color:{markup.MUTED_COLOUR}'>{escape(pending.approve_blocked)}</small>"
            if pending.approve_blocked
            else ""
        )
        approvals = ", ".join(a.by for a in r.approvals)
        reproduced = markup.reproduced_badge(panel.controller.reproduced.get(r.version))
        summary = (
            f"<b>v{r.version} → {escape(r.to_stage)}</b> {reproduced}"
            f" by {escape(r.requested_by)}: "
            f"{escape(r.reason)} <small>(request {r.id}; "
            f"{len(r.approvals)}/{pending.approvals_needed} approvals"
            + (f": {escape(approvals)}" if approvals else "")
            + ")</small>"
        )
        self.metrics = w.HTML(metrics_table(pending))
        replaces = (
            f"; Production v{pending.production} is archived"
            if pending.production not in (None, r.version)
            else ""
        )
        self.confirm_text = w.HTML(
            f"<b>Approve v{r.version} into {escape(r.to_stage)}?</b> "
            f"Services loading {escape(panel.controller.name)}/{escape(r.to_stage)} "
            f"switch to it{replaces}."
        )
        self.confirm_button = w.Button(description="Confirm approval", button_style="warning")
        self.cancel_button = w.Button(description="Cancel")
        self.confirm_box = w.HBox(
            [self.confirm_text, self.confirm_button, self.cancel_button],
            layout=w.Layout(display="none"),
        )
        needs_confirmation = r.to_stage == lifecycle.PRODUCTION

        def approve(_: Any) -> None:
            if needs_confirmation:
                self.confirm_box.layout.display = "flex"
            else:
                panel.act(panel.controller.approve, self.request_id, self.comment.value)

        self.approve_button.on_click(approve)
        self.confirm_button.on_click(
            lambda _: panel.act(panel.controller.approve, self.request_id, self.comment.value)
        )
        self.cancel_button.on_click(lambda _: setattr(self.confirm_box.layout, "display", "none"))
        self.reject_button.on_click(
            lambda _: panel.act(panel.controller.reject, self.request_id, self.comment.value)
        )
        self.compare_button.on_click(lambda _: panel.show_compare(pending))
        super().__init__(
            [
                w.HTML(summary),
                self.metrics,
                w.HBox(
                    [
                        self.comment,
                        self.approve_button,
                        self.reject_button,
                        self.compare_button,
                        self.note,
                    ]
                ),
                self.confirm_box,
            ],
            layout=w.Layout(
                border="1px solid var(--jp-border-color2, #e5e7eb)",
                padding="4px",
                margin="0 0 4px 0",
            ),
        )

    def close_all(self) -> None:
        """Close the row and its widgets, so re-rendering leaks no widget in the kernel."""
        for child in (*self.children, *self.confirm_box.children):
            if isinstance(child, w.HBox) and child is not self.confirm_box:
                for grandchild in child.children:
                    grandchild.close()
            child.close()
        self.close()


def metrics_table(pending: PendingRequest) -> str:
    """The candidate's metrics, one per row, with Production's and the delta."""
    metrics = pending.metrics
    if not metrics:
        return f"<small style='color:{markup.MUTED_COLOUR}'>no metrics recorded</small>"
    production = pending.production
    against = production is not None and production != pending.request.version
    header = ["metric", f"v{pending.request.version}"]
    if against:
        header += [f"Production v{production}", "delta"]
    rows = []
    for metric in sorted(metrics):
        row = [escape(metric), _number_cell(fmt(metrics[metric]))]
        if against:
            delta = pending.deltas.get(metric)
            if delta is None:
                row += [_number_cell("—"), _number_cell("—")]
            else:
                colour = {
                    "better": markup.BETTER_COLOUR,
                    "worse": markup.WORSE_COLOUR,
                }.get(delta.direction, markup.MUTED_COLOUR)
                arrow = {"better": "▲", "worse": "▼"}.get(delta.direction, "=")
                row += [
                    _number_cell(fmt(delta.baseline)),
                    _number_cell(
                        f"<span style='color:{colour}' title='{delta.direction}'>"
                        f"{fmt_delta(delta.difference)} {arrow}</span>"
                    ),
                ]
        rows.append(row)
    return markup.table(header, rows, raw=True)


def _number_cell(content: str) -> str:
    return markup.cell(content, NUMBER_STYLE)


class PromotionPanel(w.VBox):
    """Stage holders, a request form, pending requests and the history timeline."""

    def __init__(self, controller: PromotionController) -> None:
        self.controller = controller
        self.holders = w.HTML()
        self.version = w.Dropdown(description="version")
        self.stage = w.Dropdown(description="to stage")
        self.reason = w.Text(description="reason", placeholder="why (required)")
        self.request_button = w.Button(
            description="Request", button_style="primary", disabled=True, tooltip="give a reason"
        )
        self.move_button = w.Button(
            description="Move now", tooltip="for moves the policy lets go without approval"
        )
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.staleness = w.HTML()
        self.card_button = w.Button(
            description="Model card",
            icon="file-text",
            tooltip="the model card of the version chosen above",
            layout=w.Layout(width="auto"),
        )
        self.card_hide_button = w.Button(
            description="Hide card", layout=w.Layout(width="auto", display="none")
        )
        self.card_title = w.HTML()
        self.card_meta = w.HTML()
        self.card = w.Output(layout=w.Layout(display="none"))
        self.status = w.HTML()
        self.pending = w.VBox()
        self.pending_rows: list[PendingRow] = []
        self.compare = w.VBox()  # the compare panel a pending row's Compare opens
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
                self.staleness,
                w.HBox([self.version, self.stage]),
                w.HBox([self.reason, self.request_button, self.move_button]),
                self.status,
                w.HBox([self.card_button, self.card_hide_button, self.card_title]),
                self.card_meta,
                self.card,
                w.HTML("<b>pending requests</b>"),
                self.pending,
                self.compare,
                w.HTML("<b>history</b>"),
                self.timeline,
            ]
        )
        self.version.observe(self._on_version, names="value")
        self.reason.observe(self._on_reason, names="value")
        self.request_button.on_click(lambda _: self._file(controller.request))
        self.move_button.on_click(lambda _: self._file(controller.transition))
        self.refresh_button.on_click(lambda _: self.act(controller.reload))
        self.card_button.on_click(lambda _: self.show_card(self.version.value))
        self.card_hide_button.on_click(lambda _: self.hide_card())
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
            f"{markup.stage_badge(stage)} {_listing(versions, c.reproduced)}"
            for stage, versions in c.holders().items()
        )
        self.staleness.value = staleness_line(c)
        chosen = self.version.value
        self.version.options = [(_option(v, c), v) for v in c.versions]
        if chosen in c.stages:
            self.version.value = chosen
        elif c.versions:
            self.version.value = c.default_version()
        self._on_version()
        self._on_reason()
        for row in self.pending_rows:
            row.close_all()
        self.pending_rows = [PendingRow(self, p) for p in c.pending]
        self.pending.children = self.pending_rows or [w.HTML("<i>none</i>")]
        self.timeline.value = (
            markup.table(
                ["when (UTC)", "version", "who", "from → to", "reason", "review comments"],
                [
                    [
                        e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "?",
                        f"v{e.version}",
                        e.author,
                        f"{e.from_stage} → {e.to_stage}",
                        e.reason + (f" (request {e.request_id})" if e.request_id else ""),
                        "; ".join(f"{by}: {comment}" for by, comment in e.comments),
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

    def show_card(self, version: int | None = None) -> None:
        """The model card of ``version`` (Production's by default), its Markdown rendered
        by the front end (an Output of ``text/markdown``), its YAML front matter folded."""
        try:
            card = self.controller.card(version)
        except RegistryError as exc:
            self.status.value = markup.message(False, markup.one_line(exc))
            return
        front_matter, body = markup.split_front_matter(card)
        shown = version if version is not None else self.controller.production
        self.card_title.value = (
            f"<b>Model card of {escape(self.controller.name)} v{shown}</b> "
            f"<small style='color:{markup.MUTED_COLOUR}'>"
            f"(reg.model_card({self.controller.name!r}, {shown}))</small>"
        )
        self.card_meta.value = (
            "<details><summary><small>front matter (YAML)</small></summary>"
            f"<pre style='font-size:85%'>{escape(front_matter)}</pre></details>"
            if front_matter
            else ""
        )
        self.card.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/markdown": body, "text/plain": body},
                "metadata": {},
            },
        )
        self.card.layout.display = "block"
        self.card_hide_button.layout.display = "inline-flex"

    def hide_card(self) -> None:
        self.card.outputs = ()
        self.card.layout.display = "none"
        self.card_hide_button.layout.display = "none"
        self.card_title.value = self.card_meta.value = ""

    def show_compare(self, pending: PendingRequest) -> None:
        """The candidate side by side with Production (the candidate alone without one)."""
        from jupyreg.widgets.compare_view import ComparePanel
        from jupyreg.widgets.comparison import CompareController

        versions = {pending.request.version}
        if pending.production is not None:
            versions.add(pending.production)
        for old in self.compare.children:
            old.close()
        try:
            shown = ComparePanel(
                CompareController(self.controller.registry, self.controller.name, versions)
            )
        except RegistryError as exc:
            self.status.value = markup.message(False, markup.one_line(exc))
            return
        self.compare.children = [shown]

    def _on_version(self, _: Any = None) -> None:
        version = self.version.value
        targets = self.controller.targets(version) if version else ()
        chosen = self.stage.value
        self.stage.options = targets
        if chosen in targets:
            self.stage.value = chosen
        elif targets:
            self.stage.value = self.controller.default_target(version)

    def _on_reason(self, _: Any = None) -> None:
        missing = not self.reason.value.strip()
        for button in (self.request_button, self.move_button):
            button.disabled = missing or not self.stage.value
        self.request_button.tooltip = "give a reason" if missing else ""

    def _file(self, action: Any) -> None:
        if action(self.version.value, self.stage.value, self.reason.value):
            self.reason.value = ""
        self.render()


def staleness_line(c: PromotionController) -> str:
    """Whether Production is stale against the kernel's repository: a warning line when
    code or data changed since training, a muted one when up to date; its warnings (no git
    repository, say) in the tooltip."""
    if c.staleness_error:
        return (
            "<div class='jupyreg-staleness' data-stale='unknown' "
            f"style='color:{markup.MUTED_COLOUR}'>"
            f"staleness of Production unknown: {escape(c.staleness_error)}</div>"
        )
    found = c.staleness
    if found is None:
        return ""
    tip = escape("\n".join(found.warnings), quote=True)
    if found.stale:
        return (
            f"<div class='jupyreg-staleness' data-stale='true' title='{tip}' style='"
            f"border-left:3px solid {markup.WARN_COLOUR};padding:2px 6px;"
            f"background:color-mix(in srgb, {markup.WARN_COLOUR} 14%, transparent);"
            f"color:var(--jp-ui-font-color1, inherit)'>⚠ <b>stale</b>: "
            f"{escape(found.summary())}</div>"
        )
    return (
        f"<div class='jupyreg-staleness' data-stale='false' title='{tip}' "
        f"style='color:{markup.MUTED_COLOUR}'><small>{escape(found.summary())}</small></div>"
    )


def _option(version: int, c: PromotionController) -> str:
    """A version picker's label: ``v3 (Staging, reproduced)``."""
    reproduced = markup.REPRODUCED_TEXT.get(c.reproduced.get(version) or "")
    return f"v{version} ({c.stages[version]}{', ' + reproduced if reproduced else ''})"


def _listing(versions: list[int], reproduced: dict[int, str | None] | None = None) -> str:
    """``v1, v2`` — or the newest few and a count, for stages holding many versions; each
    with its reproduction badge where one was recorded."""
    if not versions:
        return "—"
    marks = reproduced or {}
    shown = ", ".join(
        f"v{v}" + (f" {markup.reproduced_badge(marks.get(v))}" if marks.get(v) else "")
        for v in versions[-HOLDERS_SHOWN:]
    )
    hidden = len(versions) - HOLDERS_SHOWN
    return f"{shown} (+{hidden} older)" if hidden > 0 else shown
