"""Rich notebook rendering of a registered version: what a ``%%register`` cell shows."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyreg.entities import ModelVersion

_STAGE_COLOURS = {
    "None": "#6b7280",
    "Staging": "#b45309",
    "Production": "#047857",
    "Archived": "#4b5563",
}


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{escape(k)}</th>"
        f"<td style='text-align:left'>{escape(str(v))}</td></tr>"
        for k, v in pairs
    )


def _lineage_pairs(lineage: dict[str, Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    git = lineage.get("git") or {}
    if git.get("commit"):
        state = "dirty" if git.get("dirty") else "clean"
        pairs.append(("git", f"{git['commit'][:10]} on {git.get('branch') or '?'} ({state})"))
    notebook = lineage.get("notebook") or {}
    if notebook.get("path"):
        pairs.append(("notebook", notebook["path"]))
    for item in lineage.get("data") or ():
        md5 = item.get("md5") or "missing"
        notes = [
            n
            for n, flag in (
                ("stale", item.get("stale")),
                ("not under DVC", item.get("dvc") is False),
            )
            if flag
        ]
        pairs.append(
            (f"data {item.get('path')}", md5 + (f" ({', '.join(notes)})" if notes else ""))
        )
    hardware = lineage.get("hardware") or {}
    if "gpu_count" in hardware:
        names = sorted({g.get("name") for g in hardware.get("gpus") or () if g.get("name")})
        pairs.append(("GPU", f"{hardware['gpu_count']} × {', '.join(names)}" if names else "none"))
    environment = lineage.get("environment") or {}
    if environment.get("python"):
        pairs.append(("python", environment["python"]))
    return pairs


def version_html(mv: ModelVersion) -> str:
    """Version, stage, metrics, lineage and every capture warning, as one HTML block."""
    colour = _STAGE_COLOURS.get(mv.stage, "#6b7280")
    header = (
        f"<b>{escape(mv.name)}</b> version <b>{mv.version}</b> "
        f"<span style='background:{colour};color:white;border-radius:3px;padding:0 6px'>"
        f"{escape(mv.stage)}</span>"
    )
    if mv.aliases:
        header += " " + " ".join(f"<code>@{escape(a)}</code>" for a in mv.aliases)
    parts = [f"<div class='jupyreg-version'><p>{header}</p>"]
    if mv.metrics:
        parts.append(
            "<b>metrics</b><table>"
            + _rows([(k, f"{v:.6g}") for k, v in sorted(mv.metrics.items())])
            + "</table>"
        )
    lineage = _lineage_pairs(mv.lineage)
    if lineage:
        parts.append("<b>lineage</b><table>" + _rows(lineage) + "</table>")
    if mv.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in mv.warnings)
        parts.append(f"<b style='color:#b45309'>warnings</b><ul>{items}</ul>")
    parts.append(
        f"<p><code>{escape(mv.uri)}</code> · run <code>{escape(mv.run_id or '')}</code>"
        f" · artifacts <code>{escape(mv.source or '')}</code></p></div>"
    )
    return "".join(parts)


def version_text(mv: ModelVersion) -> str:
    lines = [f"{mv.name} v{mv.version} [{mv.stage}]"]
    lines += [f"  {k} = {v:.6g}" for k, v in sorted(mv.metrics.items())]
    lines += [f"  {k}: {v}" for k, v in _lineage_pairs(mv.lineage)]
    lines += [f"  warning: {w}" for w in mv.warnings]
    lines += [f"  artifacts: {mv.source}"] if mv.source else []
    return "\n".join(lines)
