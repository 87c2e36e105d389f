"""The registry's verbs, shared by the ``jupyreg`` CLI and the ``%registry`` magic.

Each front end builds its own parser (its error handling differs) from ``add_verbs`` and
hands the parsed arguments to ``run_verb``, which only translates them to Registry calls.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jupyreg.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

    from jupyreg.registry import Registry

REQUEST_STATUSES = ["pending", "approved", "rejected", "cancelled", "all"]


def add_verbs(verbs: Any, formats: bool) -> None:
    """Add every registry verb to ``verbs`` (an argparse subparsers action).

    ``formats`` adds ``--format`` (table/json for reads, text/json for actions) for the CLI.
    """

    def verb(name: str, help_text: str, output: list[str] | None = None) -> Any:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        if formats and output:
            sub.add_argument("--format", choices=output, default=output[0])
        return sub

    def read(name: str, help_text: str) -> Any:
        return verb(name, help_text, ["table", "json"])

    def action(name: str, help_text: str) -> Any:
        return verb(name, help_text, ["text", "json"])

    read("list", "registered models with their Production and Staging versions")
    read("versions", "versions of a model with stage, metrics and lineage").add_argument("name")
    sub = read("compare", "versions side by side, field by field")
    sub.add_argument("name")
    sub.add_argument("versions", nargs="*", type=int)
    sub = read("history", "stage changes, oldest first")
    sub.add_argument("name")
    sub.add_argument("version", nargs="?", type=int)
    sub = read("requests", "promotion requests (pending unless --status says otherwise)")
    sub.add_argument("name", nargs="?")
    sub.add_argument("--status", default="pending", choices=REQUEST_STATUSES)
    sub = verb("card", "the model card (Hugging Face Hub Markdown); Production by default")
    sub.add_argument("name")
    sub.add_argument("version", nargs="?", type=int)
    read("status", "is Production stale? commits touching code, changed data, age").add_argument(
        "name"
    )
    read(
        "search",
        'versions of every model matching a filter, e.g. "test.auc > 0.9 and '
        "stage = 'Production'\" (AND only; metrics, stage, git.dirty, gpu.count, data.N.md5)",
    ).add_argument("expr", nargs="+", help="one argument, or several joined by spaces")
    sub = read(
        "reproduce",
        "re-run a version (its notebook, script, `jupyreg run` command or DVC stage) "
        "sandboxed and compare its metrics",
    )
    sub.add_argument("name")
    sub.add_argument("version", type=int)
    sub.add_argument("--tolerance", type=float, default=1e-6, help="absolute (default 1e-6)")
    sub.add_argument(
        "--yes", "-y", action="store_true", help="run without asking (what runs is still shown)"
    )
    sub.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="pass this variable to the code (repeatable); never a secret-named one",
    )
    sub.add_argument(
        "--no-network", action="store_true", help="run the code with no network (Linux)"
    )
    sub = read("check", "find (and --repair) disagreements between stages, aliases, history")
    sub.add_argument("name", nargs="?")
    sub.add_argument("--repair", action="store_true")
    for name, help_text in (
        ("request", "ask for a stage change"),
        ("promote", "apply a stage change the policy allows without approval"),
    ):
        sub = action(name, help_text)
        sub.add_argument("name")
        sub.add_argument("version", type=int)
        sub.add_argument("stage")
        sub.add_argument("--reason", required=True)
    for name, help_text in (
        ("approve", "approve a pending request (applies it once approved)"),
        ("reject", "reject a pending request"),
    ):
        sub = action(name, help_text)
        sub.add_argument("request_id")
        sub.add_argument("--comment", default="")
    action("cancel", "withdraw your own pending request").add_argument("request_id")
    sub = action("rollback", "put the previous Production version back")
    sub.add_argument("name")
    sub.add_argument("--reason", required=True)
    policy = verb("policy", "show or change a model's promotion policy")
    which = policy.add_subparsers(dest="policy_verb", required=True)
    for name, help_text in (
        ("show", "the policy in force"),
        ("history", "every policy change: who, why, which policy"),
    ):
        sub = which.add_parser(name, help=help_text)
        sub.add_argument("name")
        if formats:
            sub.add_argument("--format", choices=["table", "json"], default="table")
    change = which.add_parser("set", help="change settings of the policy in force")
    change.add_argument("name")
    change.add_argument("--reason", help="why (kept with the change)")
    change.add_argument(
        "--approvals",
        action="append",
        metavar="STAGE=N",
        default=[],
        help="approvals needed to enter STAGE (repeatable)",
    )
    change.add_argument(
        "--approvers",
        action="append",
        metavar="STAGE=WHO[,WHO]",
        default=[],
        help="who alone may decide moves into STAGE: users and group:NAME (repeatable)",
    )
    for flag in (
        "allow-self-approval",
        "require-clean-git",
        "require-data-hashes",
        "require-test-metrics",
        "require-reproduced",
        "require-compatible-schema",
    ):
        change.add_argument(f"--{flag}", choices=["true", "false"])
    change.add_argument(
        "--threshold",
        action="append",
        metavar="'METRIC OP NUMBER'",
        dest="thresholds",
        help="e.g. 'test.auc >= 0.85' (repeatable; replaces)",
    )
    change.add_argument(
        "--not-worse",
        action="append",
        metavar="METRIC",
        dest="not_worse_than_production",
        help="must not be worse than the current Production on METRIC",
    )


def run_verb(registry: Registry, args: argparse.Namespace) -> Any:
    """The Registry call for a parsed verb; returns what the call returned (records for
    the reads; ``as_frame`` makes them a table)."""
    match args.verb:
        case "list":
            return registry.model_records()
        case "versions":
            return registry.version_records(args.name)
        case "compare":
            return registry.compare(args.name, args.versions or None)
        case "history":
            return registry.history_records(args.name, args.version)
        case "requests":
            wanted = None if args.status == "all" else args.status
            return registry.request_records(args.name, wanted)
        case "check":
            return registry.check(args.name, repair=args.repair)
        case "card":
            return registry.model_card(args.name, args.version)
        case "status":
            return registry.staleness(args.name)
        case "reproduce":
            return registry.reproduce(
                args.name,
                args.version,
                args.tolerance,
                confirm=not args.yes,
                env=passed_env(args.env),
                network=not args.no_network,
            )
        case "search":
            return registry.search(" ".join(args.expr))
        case "request":
            return registry.request(args.name, args.version, args.stage, reason=args.reason)
        case "promote":
            return registry.transition(args.name, args.version, args.stage, reason=args.reason)
        case "approve":
            return registry.approve(args.request_id, comment=args.comment)
        case "reject":
            return registry.reject(args.request_id, comment=args.comment)
        case "cancel":
            return registry.cancel(args.request_id)
        case "rollback":
            return registry.rollback(args.name, reason=args.reason)
        case "policy" if args.policy_verb == "show":
            return registry.policy(args.name)
        case "policy" if args.policy_verb == "history":
            return registry.policy_history(args.name)
        case "policy":
            return registry.set_policy(args.name, reason=args.reason, **policy_changes(args))
    raise ValueError(f"unknown verb {args.verb!r}")


def read_warnings(verb: str, result: Any) -> list[str]:
    """What a read found amiss beside its records: each listed model whose stage
    references disagree (``models:/NAME/STAGE`` and ``@alias`` name different versions)."""
    return [model.split for model in result if model.split] if verb == "list" else []


def as_frame(verb: str, result: Any) -> Any:
    """A read's records as the DataFrame a terminal or notebook shows; others unchanged."""
    from jupyreg import frames

    views = {
        "list": frames.models_frame,
        "versions": frames.versions_frame,
        "history": frames.history_frame,
        "requests": frames.requests_frame,
    }
    return views[verb](result) if verb in views else result


def plain_table(frame: pd.DataFrame) -> str:
    """A table as a terminal shows it: a missing value is "-" (``None``/``NaN`` would read
    like the stage None or a number), times are UTC to the second, and numbers have 4
    significant digits (``--format json`` keeps every digit)."""
    import pandas as pd

    def cell(value: Any) -> Any:
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return "-"
        if isinstance(value, datetime):
            moment = value.astimezone(UTC) if value.tzinfo else value
            return moment.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if value.tzinfo else "")
        if isinstance(value, float):
            return f"{value:.4g}"
        return value

    return "(none)" if frame.empty else frame.astype(object).map(cell).to_string(index=False)


def policy_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``policy set`` changes, in Policy's terms."""
    changes: dict[str, Any] = {}
    if args.approvals:
        approvals = {}
        for item in args.approvals:
            stage, _, count = item.partition("=")
            if not count.strip().isdigit():
                raise InvalidArgument(f"--approvals {item!r}: use STAGE=N, e.g. Production=2")
            approvals[stage] = int(count)
        changes["approvals"] = approvals
    if args.approvers:
        approvers: dict[str, list[str]] = {}
        for item in args.approvers:
            stage, _, who = item.partition("=")
            if not who.strip():
                raise InvalidArgument(
                    f"--approvers {item!r}: use STAGE=WHO[,WHO], e.g. Production=group:risk"
                )
            approvers.setdefault(stage, []).extend(w.strip() for w in who.split(","))
        changes["approvers"] = approvers
    for key in (
        "allow_self_approval",
        "require_clean_git",
        "require_data_hashes",
        "require_test_metrics",
        "require_reproduced",
        "require_compatible_schema",
    ):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key) == "true"
    for key in ("thresholds", "not_worse_than_production"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    return changes


def passed_env(items: list[str]) -> dict[str, str]:
    """``--env NAME`` (its value here) and ``--env NAME=VALUE``, as a mapping."""
    passed = {}
    for item in items:
        name, given, value = item.partition("=")
        if not given and name not in os.environ:
            raise InvalidArgument(f"--env {name}: not set here; use --env {name}=VALUE")
        passed[name] = value if given else os.environ[name]
    return passed


def describe(result: Any) -> str:
    """One line saying what an action did (a Request decided, a version moved)."""
    from jupyreg.lifecycle import Request

    if isinstance(result, Request):
        by = f" (by {result.decided_by})" if result.decided_by else ""
        return (
            f"request {result.id}: {result.name} v{result.version} -> {result.to_stage} "
            f"is {result.status}{by}"
        )
    return f"{result.name} v{result.version} is now in {result.stage}"
