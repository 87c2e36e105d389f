"""``jupyreg``: the registry's verbs for terminals and CI/CD.

Exit codes: 0 success, 1 the registry refused the action (policy, approval, permission,
invalid move), 2 bad usage (unknown model/version/request, malformed input),
3 the registry could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from jupyreg.commands import add_verbs, describe, read_warnings, run_verb
from jupyreg.entities import PERMISSIONS
from jupyreg.errors import REFUSALS, RegistryError, RegistryUnavailable, front_end
from jupyreg.server.routes import OPTIONAL

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exits with 2 as well
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"jupyreg: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jupyreg", description="A model registry that lives in the notebook.")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    parser.add_argument("--registry-uri", help="MLflow registry URI (default: the tracking URI)")
    parser.add_argument(
        "--user", help="who is acting (default: JUPYREG_USER, git user.email, OS user)"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    add_verbs(verbs, formats=True)
    about = (
        "run COMMAND (after --) with this terminal; the MLflow runs it starts record it as "
        "their entry point (entry.kind command, its argv), so `reproduce` can run it again"
    )
    sub = verbs.add_parser("run", help=about, description=about)
    sub.add_argument("command", nargs="+", metavar="COMMAND", help="the command and its arguments")
    sub = verbs.add_parser("watch", help="run a command or post a message when a stage changes")
    sub.add_argument("name")
    sub.add_argument("--stage", default="Production")
    target = sub.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--exec",
        dest="command",
        metavar="CMD",
        help="shell command; gets JUPYREG_MODEL, JUPYREG_VERSION, JUPYREG_STAGE, "
        "JUPYREG_PREVIOUS_VERSION",
    )
    target.add_argument(
        "--post",
        "--alert-url",
        metavar="URL",
        help='post a Slack/Teams-compatible {"text": ...} message: the change, who approved '
        "it and why, metric deltas",
    )
    sub.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    sub.add_argument("--count", type=int, help="stop after this many changes")
    sub.add_argument("--state-file", help="remember the last version seen across restarts")
    sub.add_argument(
        "--stale",
        metavar="REPO",
        nargs="?",
        const=".",
        help="also act when Production goes stale against the git/DVC repository REPO "
        "(default: here): code commits or data changed since it was trained",
    )
    sub = verbs.add_parser(
        "serve",
        help="an MLflow-compatible scoring server that follows a stage, swapping versions "
        "without dropping a request",
    )
    sub.add_argument("name")
    followed = sub.add_mutually_exclusive_group()
    followed.add_argument("--stage", help="the stage to serve (default Production)")
    followed.add_argument("--alias", help="serve the version this alias points at instead")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=5001)
    sub.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (one supervisor follows)"
    )
    sub.add_argument(
        "--poll-interval", type=float, default=5.0, help="seconds between registry polls"
    )
    sub.add_argument("--alert-url", metavar="URL", help="post swaps and refusals here")
    sub.add_argument(
        "--webhook-secret",
        default=os.environ.get("JUPYREG_WEBHOOK_SECRET"),
        help="accept signed MLflow webhooks on POST /webhook and look at once on a stage "
        "change (default: JUPYREG_WEBHOOK_SECRET)",
    )
    hooks = verbs.add_parser("webhooks", help="MLflow webhooks for stage changes")
    hook_verbs = hooks.add_subparsers(dest="webhooks_verb", required=True)
    add = hook_verbs.add_parser("add", help="deliver signed stage-change events to URL")
    add.add_argument("url")
    add.add_argument("--secret", help="HMAC secret; verify with jupyreg.webhooks.verify")
    add.add_argument(
        "--events",
        nargs="+",
        help="MLflow events (default: alias created/deleted, version tag set)",
    )
    add.add_argument("--name")
    listing = hook_verbs.add_parser("list", help="registered webhooks")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    sent = hook_verbs.add_parser("deliveries", help="what a jupyreg server delivered (admins)")
    sent.add_argument("--hook", help="one webhook's deliveries")
    sent.add_argument("--status", choices=["pending", "delivered", "failed"])
    sent.add_argument("--format", choices=["table", "json"], default="table")
    again = hook_verbs.add_parser("redeliver", help="send a delivery again (same id)")
    again.add_argument("delivery_id")
    ping = hook_verbs.add_parser("test", help="send a signed test delivery now")
    ping.add_argument("hook")
    sub = verbs.add_parser(
        "server",
        help="start an MLflow tracking server with jupyreg's "
        "lifecycle and authentication (--app-name jupyreg)",
    )
    sub.add_argument("--backend-store-uri", default="sqlite:///mlflow.db")
    sub.add_argument(
        "--artifacts-destination",
        default="./mlartifacts",
        help="local folder or s3://bucket/prefix (MLFLOW_S3_ENDPOINT_URL for S3-compatible stores)",
    )
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=5000)
    sub.add_argument("--workers", type=int, default=2)
    sub.add_argument(
        "--auth-database-uri",
        help="users and permissions database (default: MLflow's sqlite:///basic_auth.db)",
    )
    sub.add_argument("--default-permission", default="READ", choices=PERMISSIONS)
    sub.add_argument(
        "--auth-cache-seconds",
        type=int,
        default=0,
        help="let each worker remember a checked password this long (default 0: hash every "
        "request, MLflow's default; a revoked password works until the cache forgets it)",
    )
    sub.add_argument(
        "--approvers",
        nargs="+",
        metavar="USER",
        help="users who may approve Production changes besides MANAGE holders",
    )
    sub.add_argument(
        "--creator-permission",
        default="EDIT",
        choices=PERMISSIONS,
        help="what a model's creator gets on it unless granted before (default EDIT: "
        "approving and demoting Production stay with MANAGE holders)",
    )
    sub.add_argument(
        "--static-prefix",
        help="serve everything under this path (e.g. /mlflow), jupyreg's endpoints included",
    )
    sub.add_argument(
        "--enable-mlflow-feature",
        action="append",
        default=[],
        metavar="NAME",
        choices=sorted(OPTIONAL),
        help="serve this MLflow feature too, to admins only (repeatable; off by default, each "
        "can run code on the host, call out, keep secrets or configure the server): "
        + ", ".join(sorted(OPTIONAL)),
    )
    sub.add_argument(
        "--trust-oidc-issuer",
        action="append",
        default=[],
        metavar="URL",
        help="accept workload identity tokens (X-Jupyreg-Oidc-Token) from this OIDC issuer, "
        "e.g. https://token.actions.githubusercontent.com (repeatable)",
    )
    sub.add_argument(
        "--oidc-audience",
        default="jupyreg",
        help="the audience those tokens must be for (default: jupyreg)",
    )
    users = verbs.add_parser(
        "users",
        help="manage users of a jupyreg server (as an admin: MLFLOW_TRACKING_USERNAME / _PASSWORD)",
    )
    user_verbs = users.add_subparsers(dest="users_verb", required=True)
    add = user_verbs.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--password", required=True)
    grant = user_verbs.add_parser(
        "grant",
        help="grant a permission on a registered model and on the experiment its runs go to "
        "(created if missing); granting again changes the permission",
    )
    grant.add_argument("username")
    grant.add_argument("model")
    grant.add_argument("permission", type=str.upper, choices=PERMISSIONS)
    link = user_verbs.add_parser(
        "link-identity",
        help="let workload tokens (e.g. GitHub Actions') whose CLAIM is VALUE act as USER",
    )
    link.add_argument("username")
    link.add_argument("--issuer", required=True, help="the OIDC issuer's URL")
    link.add_argument("--claim", required=True, metavar="NAME=VALUE", help="e.g. actor=octocat")
    link.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="CLAIM=VALUE",
        help="also require this claim (repository, ref, environment, workflow; repeatable)",
    )
    user_verbs.add_parser("identities", help="list the identity links")
    groups = verbs.add_parser(
        "groups", help="groups a policy's approvers name as group:NAME (changes: admins)"
    )
    group_verbs = groups.add_subparsers(dest="groups_verb", required=True)
    for name, about in (("add", "add users to a group"), ("remove", "remove users from it")):
        change = group_verbs.add_parser(name, help=about)
        change.add_argument("group")
        change.add_argument("users", nargs="+", metavar="USER")
    group_verbs.add_parser("list", help="every group and its members")
    sub = verbs.add_parser("demo", help="run the end-to-end demo in a fresh directory")
    sub.add_argument("--dir", help="where to keep the demo registry (default: a temp dir)")
    return parser


def _run(args: argparse.Namespace) -> Any:
    if args.verb == "demo":
        from jupyreg.demo import run_demo

        run_demo(args.dir)
        return None
    if args.verb == "server":
        from jupyreg.server.launch import run_server

        run_server(
            args.backend_store_uri,
            args.artifacts_destination,
            args.host,
            args.port,
            args.workers,
            args.auth_database_uri,
            args.default_permission,
            approvers=args.approvers,
            auth_cache_seconds=args.auth_cache_seconds,
            creator_permission=args.creator_permission,
            static_prefix=args.static_prefix,
            mlflow_features=args.enable_mlflow_feature,
            oidc_issuers=args.trust_oidc_issuer,
            oidc_audience=args.oidc_audience,
        )
    from jupyreg.registry import Registry

    registry = Registry(args.tracking_uri, args.registry_uri, user=args.user)
    if args.verb == "users":
        return _users(registry, args)
    if args.verb == "groups":
        return _groups(registry, args)
    if args.verb == "watch":
        return _watch(registry, args)
    if args.verb == "serve":
        return _serve(args)
    if args.verb == "webhooks":
        return _webhooks(registry, args)
    result = run_verb(registry, args)
    return result.reset_index() if args.verb == "compare" else result


def _webhooks(registry: Any, args: argparse.Namespace) -> Any:
    match args.webhooks_verb:
        case "list":
            return registry.webhooks()
        case "deliveries":
            return registry.webhook_deliveries(hook=args.hook, status=args.status)
        case "redeliver":
            delivery = registry.redeliver(args.delivery_id)
            print(f"delivery {delivery['id']} to webhook {delivery['hook']} is pending again")
        case "test":
            sent = registry.test_webhook(args.hook)
            if not sent["ok"]:
                from jupyreg.errors import RegistryUnavailable

                raise RegistryUnavailable(f"test delivery to webhook {args.hook}: {sent['error']}")
            print(f"test delivery to webhook {args.hook}: delivered (HTTP {sent['status_code']})")
        case _:
            hook = registry.add_webhook(
                args.url, secret=args.secret, events=args.events, name=args.name
            )
            events = ", ".join(map(str, hook.events))
            print(f"webhook {hook.webhook_id} delivers {events} to {hook.url}")
    return None


def _users(registry: Any, args: argparse.Namespace) -> None:
    if args.users_verb == "add":
        registry.add_user(args.username, args.password)
        print(f"created user {args.username}")
    elif args.users_verb == "link-identity":
        claim, value = _claim(args.claim, "--claim")
        requires = dict(_claim(item, "--require") for item in args.require)
        registry.link_identity(args.username, args.issuer, claim, value, requires)
        print(f"tokens from {args.issuer} with {claim}={value} act as {args.username}")
    elif args.users_verb == "identities":
        for link in registry.identity_links():
            required = "".join(f" {k}={v}" for k, v in link["requires"].items())
            print(f"{link['username']}: {link['issuer']} {link['claim']}={link['value']}{required}")
    else:
        registry.grant(args.username, args.model, args.permission)
        print(f"{args.username} has {args.permission} on {args.model} and its experiment")


def _claim(item: str, flag: str) -> tuple[str, str]:
    from jupyreg.errors import InvalidArgument

    name, _, value = item.partition("=")
    if not name.strip() or not value.strip():
        raise InvalidArgument(f"{flag} {item!r}: use NAME=VALUE, e.g. actor=octocat")
    return name.strip(), value.strip()


def _groups(registry: Any, args: argparse.Namespace) -> None:
    if args.groups_verb in ("add", "remove"):
        registry.change_group(args.group, **{args.groups_verb: args.users})
    for group, members in registry.groups().items():
        print(f"group:{group}: {', '.join(members)}")


def _watch(registry: Any, args: argparse.Namespace) -> None:
    from jupyreg.lifecycle import normalize_stage
    from jupyreg.watch import post_message, run_command, watch

    stage = normalize_stage(args.stage)
    registry.holder(args.name, stage)  # fail fast on an unknown model
    act = run_command(args.command) if args.command else post_message(args.post, registry)
    with contextlib.suppress(KeyboardInterrupt):
        watch(
            registry,
            args.name,
            stage,
            act,
            interval=args.interval,
            count=args.count,
            state_file=args.state_file,
            stale_against=args.stale,
        )


def _serve(args: argparse.Namespace) -> None:
    from jupyreg.errors import InvalidArgument
    from jupyreg.serving.supervisor import serve

    if args.workers < 1 or args.poll_interval <= 0:
        raise InvalidArgument("--workers must be 1 or more and --poll-interval positive")
    with contextlib.suppress(KeyboardInterrupt):
        serve(
            args.name,
            stage=args.stage or "Production",
            alias=args.alias,
            host=args.host,
            port=args.port,
            workers=args.workers,
            poll_interval=args.poll_interval,
            alert_url=args.alert_url,
            webhook_secret=args.webhook_secret,
            tracking_uri=args.tracking_uri,
            registry_uri=args.registry_uri,
            user=args.user,
        )


def _render(verb: str, result: Any, fmt: str) -> str:
    import pandas as pd

    from jupyreg.commands import as_frame, plain_table
    from jupyreg.lifecycle import Policy
    from jupyreg.reproduce import Reproduction
    from jupyreg.serialize import to_json
    from jupyreg.staleness import Staleness

    if isinstance(result, str):  # a model card
        return result
    if fmt == "json":
        if isinstance(result, pd.DataFrame):
            return result.to_json(orient="records", date_format="iso")
        return json.dumps(to_json(result))
    if isinstance(result, pd.DataFrame | list):
        return plain_table(as_frame(verb, result))
    if isinstance(result, Policy):
        return json.dumps(result.to_dict(), indent=2, sort_keys=True)
    if isinstance(result, Staleness):
        return result.summary()
    if isinstance(result, Reproduction):
        return result.text()
    return describe(result)


def _own_environment(verb: str) -> None:
    """The CLI is a process of its own, so ``main`` sets its environment (library code never
    does: a lab server or a kernel runs requests on threads). The defaults a user has not
    set: MLflow's INFO lines (database migrations...) would drown the CLI's one-line
    output; MLflow's client reads its HTTP retry settings only from the environment, and its
    own would retry an unreachable server for minutes (the watcher retries by itself, and
    MLflow's backoff would hide a restart from it)."""
    from jupyreg.compat import FAIL_FAST

    if verb == "watch":
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    for name, value in FAIL_FAST.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


def run_command(command: Sequence[str]) -> int:
    """``jupyreg run -- COMMAND ...``: COMMAND as a child process with this one's stdio and
    environment, plus ``JUPYREG_ENTRY_ARGV`` (its argv, JSON) telling the MLflow runs it
    starts what their entry point is; it opens no run itself (nor imports MLflow). Returns
    the child's exit status as a shell would: 127 not found, 126 not executable, 128+N
    killed by signal N. SIGTERM, and a Ctrl-C the terminal did not send the child itself,
    are passed on to it."""
    from jupyreg.lineage.entry import ENTRY_ARGV_ENV

    argv = list(command)
    env = os.environ | {ENTRY_ARGV_ENV: json.dumps(argv)}
    try:
        child = subprocess.Popen(argv, env=env)
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError)
        reason = "command not found" if missing and os.sep not in argv[0] else exc.strerror
        print(f"jupyreg: run: {argv[0]}: {reason}", file=sys.stderr)
        return 127 if missing else 126

    def forward(signum: int, _frame: Any) -> None:
        if signum != signal.SIGINT or not _terminal_sent_it():
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


def _terminal_sent_it() -> bool:
    """Whether a Ctrl-C reached the child already: the terminal sends it to its foreground
    process group, which the child shares with this process."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (AttributeError, OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "run":  # the command's environment is the caller's, untouched
        return run_command(args.command)
    _own_environment(args.verb)
    try:
        with front_end("cli"):
            result = _run(args)
    except RegistryUnavailable as exc:
        print(f"jupyreg: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except REFUSALS as exc:
        print(f"jupyreg: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except RegistryError as exc:
        print(f"jupyreg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if result is not None:
        print(_render(args.verb, result, getattr(args, "format", "text")))
        for warning in read_warnings(args.verb, result):
            print(f"jupyreg: warning: {warning}", file=sys.stderr)
    if args.verb == "check" and (result["kind"] == "disagreement").any() and not args.repair:
        return EXIT_REFUSED  # stale Production is a warning
    if args.verb == "reproduce" and not result.ok:
        return EXIT_REFUSED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
