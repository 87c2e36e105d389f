"""Small text and HTML pieces the panels share: refusals as one line, escaped tables,
stage badges, the message line.

Colours are JupyterLab's ``--jp-*`` CSS variables (with a light fallback for front ends
without them), and highlights are translucent tints over the theme's own background with
the theme's text colour, so the panels read in light and dark themes alike."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

STAGE_COLOURS = {
    "None": "#6b7280",
    "Staging": "#b45309",
    "Production": "#047857",
    "Archived": "#4b5563",
}
DIFFERS_STYLE = (
    "background:color-mix(in srgb, var(--jp-warn-color1, #f59e0b) 22%, transparent);"
    "color:var(--jp-ui-font-color1, inherit)"
)
BETTER_COLOUR = "var(--jp-success-color1, #047857)"
WORSE_COLOUR = "var(--jp-error-color1, #b91c1c)"
MUTED_COLOUR = "var(--jp-ui-font-color2, #6b7280)"
WARN_COLOUR = "var(--jp-warn-color1, #b45309)"
REPRODUCED_TEXT = {"passed": "reproduced", "failed": "reproduction failed"}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid var(--jp-border-color2, #e5e7eb)"


def stage_badge(stage: str) -> str:
    colour = STAGE_COLOURS.get(stage, "#6b7280")
    return (
        f"<span style='color:white;background:{colour};border-radius:3px;"
        f"padding:0 4px;font-size:90%'>{escape(stage)}</span>"
    )


def reproduced_badge(status: str | None) -> str:
    """A version's latest reproduction (``passed`` / ``failed``); empty when never run."""
    if status not in REPRODUCED_TEXT:
        return ""
    colour = BETTER_COLOUR if status == "passed" else WORSE_COLOUR
    return (
        f"<span class='jupyreg-reproduced' data-reproduced='{status}' style='"
        f"border:1px solid {colour};border-radius:3px;padding:0 4px;font-size:90%;"
        f"color:var(--jp-ui-font-color1, inherit)'>{'✓' if status == 'passed' else '✗'} "
        f"{REPRODUCED_TEXT[status]}</span>"
    )


def split_front_matter(card: str) -> tuple[str, str]:
    """A model card's YAML front matter (without its ``---`` fences) and its Markdown body."""
    match = _FRONT_MATTER.match(card)
    if not match:
        return "", card
    return match.group(1), card[match.end() :].lstrip("\r\n")


def table(header: Sequence[str], rows: Iterable[Sequence[str]], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are HTML already)."""
    head = "".join(f"<th style='{_CELL}'>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c, raw) for c in row) + "</tr>" for row in rows)
    return f"<table style='border-collapse:collapse'><tr>{head}</tr>{body}</table>"


def cell(content: str, style: str = "", title: str = "") -> str:
    """A table cell with its own style (for ``table(..., raw=True)``); content is HTML."""
    hover = f" title='{escape(title, quote=True)}'" if title else ""
    return f"<td style='{_CELL};{style}'{hover}>{content}</td>"


def message(ok: bool, text: str) -> str:
    """The one-line result of an action: green when done, red when refused (a tinted
    banner with the theme's text colour, readable in light and dark themes)."""
    colour = BETTER_COLOUR if ok else WORSE_COLOUR
    return (
        f"<div class='jupyreg-message' data-ok='{str(ok).lower()}' style='"
        f"border-left:3px solid {colour};padding:2px 6px;"
        f"background:color-mix(in srgb, {colour} 14%, transparent);"
        f"color:var(--jp-ui-font-color1, inherit)'>{escape(text)}</div>"
    )


def one_line(exc: BaseException) -> str:
    """An error as one line of text (never a traceback): its kind and its message's first
    line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'refused'}"


def _cell(content: str, raw: bool) -> str:
    if raw and content.startswith("<td"):
        return content
    return f"<td style='{_CELL}'>{content if raw else escape(content)}</td>"
