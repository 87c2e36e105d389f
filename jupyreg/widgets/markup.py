"""Small text and HTML pieces the panels share: refusals as one line, escaped tables,
stage badges, the message line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

STAGE_COLOURS = {
    "None": "#6b7280",
    "Staging": "#b45309",
    "Production": "#047857",
    "Archived": "#4b5563",
}
DIFFERS_STYLE = "background:#fef3c7"
BETTER_COLOUR, WORSE_COLOUR = "#047857", "#b91c1c"
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #e5e7eb"


def stage_badge(stage: str) -> str:
    colour = STAGE_COLOURS.get(stage, "#6b7280")
    return (
        f"<span style='color:white;background:{colour};border-radius:3px;"
        f"padding:0 4px;font-size:90%'>{escape(stage)}</span>"
    )


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
    """The one-line result of an action: green when done, red when refused."""
    colour = BETTER_COLOUR if ok else WORSE_COLOUR
    return f"<span style='color:{colour}'>{escape(text)}</span>"


def one_line(exc: BaseException) -> str:
    """An error as one line of text (never a traceback): its kind and its message's first
    line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'refused'}"


def _cell(content: str, raw: bool) -> str:
    if raw and content.startswith("<td"):
        return content
    return f"<td style='{_CELL}'>{content if raw else escape(content)}</td>"
