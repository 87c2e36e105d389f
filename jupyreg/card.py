"""The model card of a version: Markdown with YAML front matter in the Hugging Face Hub
model-card format (``huggingface_hub``'s ``ModelCard``), written from what jupyreg recorded.

Everything comes from the registry (lineage, registered metrics, history, requests), never
from the workspace now. A card is published, so every value goes through the capture's
scrubber again (secret environment values, credentials in URLs), whatever was stored.
``huggingface_hub`` is imported when a card is made, never by ``import jupyreg``; no call
reaches the Hub.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle, tags
from jupyreg.errors import NotFound, hint
from jupyreg.lineage.scrub import Scrubber, scrub_url

if TYPE_CHECKING:
    from huggingface_hub import EvalResult

    from jupyreg.entities import ModelVersion
    from jupyreg.queries import VersionRecord
    from jupyreg.registry import Registry
    from jupyreg.store import Store

CARD_ARTIFACT = "model_card.md"
"""Where ``publish_card`` writes the card among the version's run artifacts."""
NOT_REPRODUCED = "not reproduced"
"""``jupyreg.reproduction.status`` of a version no reproduction was recorded for."""
TASK_TYPE = "other"
"""The model-index task: jupyreg does not know a model's task (a Hub pipeline type)."""
_SPLIT_PREFIXES = ("val", "valid", "validation", "test", "train", "eval", "holdout")
_PLAIN = re.compile(r"^[\w.:/@+~-]*$")


def model_card(registry: Registry, name: str, version: int | str | None = None) -> str:
    """The card of ``version`` of ``name`` (the Production version by default)."""
    return _card(_record(registry, name, version))


def _card(record: VersionRecord) -> str:
    return render_card(record.version, record.events, record.requests, record.flavor)


def publish_card(
    registry: Registry, name: str, version: int | str | None = None, *, store: Store | None = None
) -> str:
    """Write the card as the artifact ``model_card.md`` of the version's MLflow run (the
    Production version by default), through ``store`` where given (a server's writes into
    its own artifact store); returns its ``runs:/`` URI."""
    from jupyreg.store import Store

    record = _record(registry, name, version)
    mv = record.version
    if not mv.run_id:
        raise NotFound(
            f"{name} v{mv.version} has no MLflow run to hold {CARD_ARTIFACT} (it was "
            f"registered from a bare model URI); print it with `jupyreg card {name} "
            f"{mv.version}` instead"
        )
    store = store or Store(registry.tracking_uri, registry.registry_uri)
    store.log_text(mv.run_id, _card(record), CARD_ARTIFACT)
    return f"runs:/{mv.run_id}/{CARD_ARTIFACT}"


def reproduction(mv: ModelVersion) -> dict[str, Any]:
    """The card's reproduction status: the latest reproduction (``passed`` / ``failed``, who
    ran it, when, the tolerance and the largest metric delta), else ``not reproduced``."""
    from jupyreg.tags import reproductions

    found = reproductions(mv.tags)
    if not found:
        return {"status": NOT_REPRODUCED}
    latest = found[-1]
    deltas = [abs(d) for d in (latest.get("deltas") or {}).values() if isinstance(d, int | float)]
    return {
        "status": "passed" if latest.get("ok") is True else "failed",
        "by": latest.get("author"),
        "at": latest.get("at"),
        "tolerance": latest.get("tolerance"),
        "largest_delta": max(deltas, default=None),
        "runs": len(found),
    }


def render_card(
    mv: ModelVersion,
    events: Sequence[lifecycle.TransitionEvent],
    requests: Sequence[lifecycle.Request],
    flavor: str | None = None,
) -> str:
    """The card from a version's records (pure: no registry call)."""
    from huggingface_hub import ModelCardData

    facts = _facts(mv, events, requests, flavor)
    data = ModelCardData(
        model_name=facts["name"],
        library_name=facts["flavor"],
        tags=_hub_tags(facts),
        datasets=[d["path"] for d in facts["datasets"]] or None,
        metrics=sorted({_split_metric(k)[1] for k in facts["metrics"]}) or None,
        eval_results=_eval_results(facts) or None,
        jupyreg=_summary(facts),
    )
    return f"---\n{data.to_yaml()}\n---\n\n{_body(facts)}"  # what ModelCard(...) prints


# gathering -----------------------------------------------------------------------------


def _record(registry: Registry, name: str, version: int | str | None) -> VersionRecord:
    if version is None:
        number = registry.holder(name, lifecycle.PRODUCTION)
        if number is None:
            raise NotFound(
                f"{name} has no version in Production",
                hint="name one ("
                + hint(f"reg.model_card({name!r}, VERSION)", "card", name, "VERSION")
                + ")",
            )
        version = number
    return registry.version_record(name, version)


def _facts(
    mv: ModelVersion,
    events: Sequence[lifecycle.TransitionEvent],
    requests: Sequence[lifecycle.Request],
    flavor: str | None,
) -> dict[str, Any]:
    """Everything the card shows, as JSON-like values with secrets scrubbed."""
    lineage = mv.lineage or {}
    git = dict(lineage.get("git") or {})
    if git.get("remote"):
        git["remote"] = scrub_url(str(git["remote"]))
    facts = {
        "name": mv.name,
        "version": mv.version,
        "stage": mv.stage,
        "aliases": list(mv.aliases),
        "created": _when(mv.created),
        "author": mv.author,
        "description": mv.description or "",
        "uri": mv.uri,
        "run_id": mv.run_id,
        "flavor": flavor,
        "metrics": dict(mv.metrics),
        "params": dict(mv.params),
        "datasets": [d for d in lineage.get("data") or [] if isinstance(d, Mapping)],
        "git": git,
        "notebook": dict(lineage.get("notebook") or {}),
        "hardware": dict(lineage.get("hardware") or {}),
        "environment": dict(lineage.get("environment") or {}),
        "captured_at": lineage.get("captured_at"),
        "user_tags": {k: v for k, v in mv.tags.items() if not _system_tag(k)},
        "events": [asdict(e) for e in events],
        "requests": [asdict(r) for r in requests],
        "reproduction": reproduction(mv),
        "warnings": list(mv.warnings),
    }
    return Scrubber.from_environ().record(facts)


def _system_tag(key: str) -> bool:
    return tags.is_reserved(key) or key.startswith("mlflow.")


# metadata ------------------------------------------------------------------------------


def _split_metric(key: str) -> tuple[str | None, str]:
    """``val.auc`` -> ("val", "auc"); a key without a split prefix has no split."""
    split, _, metric = key.partition(".")
    if metric and split.lower() in _SPLIT_PREFIXES:
        return split, metric
    return None, key


def _eval_results(facts: Mapping[str, Any]) -> list[EvalResult]:
    """One model-index result per registered metric, on the recorded data (its md5 as the
    dataset revision when there is exactly one dataset)."""
    from huggingface_hub import EvalResult

    datasets = facts["datasets"]
    only = datasets[0] if len(datasets) == 1 else None
    results = []
    for key, value in sorted(facts["metrics"].items()):
        split, metric = _split_metric(key)
        results.append(
            EvalResult(
                task_type=TASK_TYPE,
                dataset_type="local",
                dataset_name=", ".join(str(d.get("path")) for d in datasets) or "not recorded",
                dataset_revision=str(only["md5"]) if only and only.get("md5") else None,
                dataset_split=split,
                metric_type=metric,
                metric_name=key,
                metric_value=value,
            )
        )
    return results


def _hub_tags(facts: Mapping[str, Any]) -> list[str]:
    found = ["jupyreg", "mlflow", f"stage:{facts['stage']}"]
    found += [f"{k}:{v}" for k, v in sorted(facts["user_tags"].items())]
    return found


def _summary(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The front matter's ``jupyreg`` key: the recorded facts a program would read."""
    git, hardware = facts["git"], facts["hardware"]
    return {
        "name": facts["name"],
        "version": facts["version"],
        "stage": facts["stage"],
        "uri": facts["uri"],
        "run_id": facts["run_id"],
        "author": facts["author"],
        "git": {k: git.get(k) for k in ("commit", "branch", "dirty", "remote")},
        "datasets": [
            {"path": d.get("path"), "md5": d.get("md5"), "dvc": d.get("dvc")}
            for d in facts["datasets"]
        ],
        "hardware": {"gpu_count": hardware.get("gpu_count"), "gpus": _gpu_names(hardware)},
        "python": facts["environment"].get("python"),
        "reproduction": facts["reproduction"],
    }


# body ----------------------------------------------------------------------------------


def _body(facts: Mapping[str, Any]) -> str:
    sections = [
        _overview(facts),
        _training_data(facts),
        _code(facts),
        _hardware(facts),
        _environment(facts),
        _evaluation(facts),
        _promotion(facts),
        _reproduction(facts),
        _warnings(facts),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _overview(facts: Mapping[str, Any]) -> str:
    rows = [
        ("Stage", _cell(facts["stage"])),
        ("Aliases", _cell(", ".join(facts["aliases"]) or "none")),
        ("Registered", _cell(f"{facts['created'] or 'unknown'} by {facts['author'] or 'unknown'}")),
        ("MLflow model", _code_span(facts["uri"])),
        ("MLflow run", _code_span(facts["run_id"]) if facts["run_id"] else "none"),
        ("Library (MLflow flavor)", _cell(facts["flavor"] or "unknown")),
    ]
    description = facts["description"].strip()
    return "\n".join(
        [
            f"# {_cell(facts['name'])} v{facts['version']}",
            "",
            html.escape(description, quote=False) or "_No description was recorded._",
            "",
            "| | |",
            "|---|---|",
            *(f"| {label} | {value} |" for label, value in rows),
        ]
    )


def _training_data(facts: Mapping[str, Any]) -> str:
    datasets = facts["datasets"]
    if not datasets:
        return "## Training data\n\nNo dataset was recorded."
    rows = [
        "| Dataset | md5 | Size | Files | Tracked by |",
        "|---|---|---|---|---|",
    ]
    for d in datasets:
        tracked = _cell(d.get("source")) if d.get("dvc") else "not DVC (md5 as DVC computes it)"
        if d.get("stale"):
            tracked += " (the workspace differed from DVC's record at registration)"
        rows.append(
            f"| {_cell(d.get('path'))} | {_code_span(d.get('md5') or 'not hashed')} | "
            f"{_size(d.get('size'))} | {_cell(d.get('nfiles') or '')} | {tracked} |"
        )
    return "## Training data\n\n" + "\n".join(rows)


def _code(facts: Mapping[str, Any]) -> str:
    git, notebook = facts["git"], facts["notebook"]
    lines = []
    if git.get("commit"):
        branch = f" on branch {_code_span(git['branch'])}" if git.get("branch") else ""
        lines.append(f"- Commit: {_code_span(git['commit'])}{branch}")
    else:
        lines.append("- Commit: not recorded")
    if git.get("dirty"):
        count = len(git.get("modified") or [])
        diff = f", diff sha256 {_code_span(git['diff_sha256'])}" if git.get("diff_sha256") else ""
        lines.append(
            f"- Working tree: uncommitted changes in {count} file(s){diff}; the diff is the "
            "run artifact `jupyreg/git.diff`"
        )
    elif git.get("dirty") is False:
        lines.append("- Working tree: clean")
    lines.append(f"- Repository: {_cell(git.get('remote') or 'no remote recorded')}")
    if notebook.get("path"):
        state = {True: ", committed as is", False: ", not committed as is"}.get(
            git.get("notebook_committed"), ""
        )
        sha = f" (sha256 {_code_span(notebook['sha256'])}{state})" if notebook.get("sha256") else ""
        lines.append(f"- Notebook: {_cell(notebook['path'])}{sha}")
    else:
        lines.append("- Notebook: path not recorded")
    return "## Code\n\n" + "\n".join(lines)


def _hardware(facts: Mapping[str, Any]) -> str:
    hardware = facts["hardware"]
    if not hardware:
        return "## Hardware\n\nNot recorded."
    count = hardware.get("gpu_count")
    gpus = hardware.get("gpus") or []
    if count:
        described = ", ".join(
            f"{_cell(g.get('name'))}" + (f" ({g['memory_mib']} MiB)" if g.get("memory_mib") else "")
            for g in gpus
        )
        lines = [f"- GPU: {count} × {described or 'GPU'}"]
    else:
        lines = ["- GPU: none" if count == 0 else "- GPU: not recorded"]
    if hardware.get("driver_version"):
        lines.append(
            f"- NVIDIA driver {_cell(hardware['driver_version'])}, "
            f"CUDA {_cell(hardware.get('cuda_driver_version') or '?')}"
        )
    if hardware.get("cuda_visible_devices") is not None:
        lines.append(f"- CUDA_VISIBLE_DEVICES: {_cell(hardware['cuda_visible_devices'])}")
    cpu = [
        _cell(hardware.get("cpu_model") or "CPU"),
        f"{hardware['cpu_count']} cores" if hardware.get("cpu_count") else "",
        f"{hardware['ram_total_mib']} MiB RAM" if hardware.get("ram_total_mib") else "",
    ]
    lines.append("- CPU: " + ", ".join(p for p in cpu if p))
    return "## Hardware\n\n" + "\n".join(lines)


def _environment(facts: Mapping[str, Any]) -> str:
    environment = facts["environment"]
    if not environment:
        return "## Environment\n\nNot recorded."
    lines = [
        f"- Python {_cell(environment.get('python') or '?')} "
        f"({_cell(environment.get('implementation') or '?')}) on "
        f"{_cell(environment.get('platform') or '?')}"
    ]
    if environment.get("installed_packages") is not None:
        lines.append(
            f"- {environment['installed_packages']} packages installed; the list is the run "
            "artifact `jupyreg/installed-packages.txt`"
        )
    requirements = environment.get("requirements") or []
    text = "## Environment\n\n" + "\n".join(lines)
    if requirements:
        text += "\n\nRequirements pinned with the model:\n\n```text\n"
        text += "\n".join(str(r).replace("`", "'") for r in requirements) + "\n```"
    return text


def _evaluation(facts: Mapping[str, Any]) -> str:
    metrics, params = facts["metrics"], facts["params"]
    parts = ["## Evaluation"]
    if metrics:
        rows = ["| Split | Metric | Value |", "|---|---|---|"]
        for key, value in sorted(metrics.items()):
            split, metric = _split_metric(key)
            rows.append(f"| {_cell(split or '')} | {_cell(metric)} | {value!r} |")
        parts.append(
            "Metrics as registered (what the promotion gates judge):\n\n" + "\n".join(rows)
        )
    else:
        parts.append("No metric was registered.")
    if params:
        rows = ["| Parameter | Value |", "|---|---|"]
        rows += [f"| {_cell(k)} | {_cell(v)} |" for k, v in sorted(params.items())]
        parts.append("Parameters:\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def _promotion(facts: Mapping[str, Any]) -> str:
    events, requests = facts["events"], facts["requests"]
    by_id = {r["id"]: r for r in requests}
    parts = ["## Promotion history"]
    if events:
        rows = [
            "| When (UTC) | Move | By | Reason | Request | Approved by |",
            "|---|---|---|---|---|---|",
        ]
        for e in events:
            request = by_id.get(e.get("request_id") or "")
            approvers = ", ".join(a["by"] for a in request["approvals"]) if request else ""
            rows.append(
                f"| {_when(e['at'])} | {_cell(e['from_stage'])} → {_cell(e['to_stage'])} | "
                f"{_cell(e['author'])} | {_cell(e['reason'])} | "
                f"{_cell(e.get('request_id') or '')} | {_cell(approvers)} |"
            )
        parts.append("\n".join(rows))
    else:
        parts.append("No stage change yet.")
    if requests:
        rows = [
            "| Request | To | Requested by | At (UTC) | Reason | Status | Approvals | Decided |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in requests:
            approvals = "; ".join(
                f"{a['by']} at {_when(a['at'])}" + (f": {a['comment']}" if a.get("comment") else "")
                for a in r["approvals"]
            )
            decided = ""
            if r.get("decided_by"):
                decided = f"{r['decided_by']} at {_when(r['decided_at'])}"
                if r.get("comment") and r["status"] != lifecycle.APPROVED:  # else an approval's
                    decided += f": {r['comment']}"
            rows.append(
                f"| {_cell(r['id'])} | {_cell(r['to_stage'])} | {_cell(r['requested_by'])} | "
                f"{_when(r['created_at'])} | {_cell(r['reason'])} | {_cell(r['status'])} | "
                f"{_cell(approvals)} | {_cell(decided)} |"
            )
        parts.append("Requests and approvals:\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def _reproduction(facts: Mapping[str, Any]) -> str:
    status = facts["reproduction"]["status"]
    if status == NOT_REPRODUCED:
        return "## Reproduction\n\nStatus: **not reproduced** (no reproduction was recorded)."
    latest = facts["reproduction"]
    return (
        f"## Reproduction\n\nStatus: **{_cell(status)}** (latest of {latest['runs']}: by "
        f"{_cell(latest['by'])} at {_cell(latest['at'])}, tolerance {_cell(latest['tolerance'])}, "
        f"largest metric delta {_cell(latest['largest_delta'])})"
    )


def _warnings(facts: Mapping[str, Any]) -> str:
    warnings = facts["warnings"]
    if not warnings:
        return "## Capture warnings\n\nNone."
    return "## Capture warnings\n\n" + "\n".join(f"- {_cell(w)}" for w in warnings)


# formatting ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no HTML, no column break, one line."""
    text = html.escape(str(value if value is not None else ""), quote=False)
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _code_span(value: Any) -> str:
    text = str(value)
    return f"`{text}`" if _PLAIN.match(text) else _cell(text)


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        try:
            moment = lifecycle.parse_iso(moment)
        except ValueError:
            return _cell(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(size: Any) -> str:
    if not isinstance(size, int | float):
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _gpu_names(hardware: Mapping[str, Any]) -> list[str]:
    return [str(g.get("name")) for g in hardware.get("gpus") or [] if g.get("name")]
