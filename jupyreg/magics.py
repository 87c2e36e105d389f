"""``%%register`` / ``%register`` / ``%registry``: thin IPython front ends over Registry.

Settings are traits of the ``JupyReg`` class: ``%config JupyReg.tracking_uri = "..."``;
``jupyreg.settings`` resolves the rest (environment > ``[tool.jupyreg]`` > MLflow's default).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Unicode, observe
from traitlets.config import Configurable

from jupyreg.commands import add_verbs, as_frame, describe, read_warnings, run_verb
from jupyreg.errors import DuplicateVersion, RegistryError, RegistryUnavailable, front_end

if TYPE_CHECKING:
    from jupyreg.panels import Registry


@dataclass
class _Failed:
    """A registration that failed after its lineage was captured, kept for its retry
    (``%register NAME --model VAR``): what it was given and the lineage of its cell."""

    model: Any  # the object itself: another object in the variable is another model
    digest: str | None  # its pickled bytes then: a refit in place changes them
    lineage: Any
    options: dict[str, Any]  # metrics, params, data, description, stage, ...


def _digest(model: Any) -> str | None:
    """sha256 of the model's pickled bytes (streamed); None where pickle cannot write it."""
    digest = hashlib.sha256()

    class _Sink:
        write = digest.update

    try:
        pickle.Pickler(_Sink(), protocol=5).dump(model)
    except Exception:
        return None
    return digest.hexdigest()


class _HelpShown(Exception):
    """argparse printed help (``-h``); nothing else to do."""


class _MagicParser(argparse.ArgumentParser):
    """argparse whose errors are IPython UsageErrors (one line, no traceback)."""

    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:
        if message:
            raise UsageError(message.strip())
        raise _HelpShown


def _registry_parser() -> argparse.ArgumentParser:
    parser = _MagicParser(prog="%registry", description="The model registry's verbs.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_MagicParser)
    add_verbs(verbs, formats=False)
    verbs.add_parser("panel", help="the promotion panel of a model").add_argument("name")
    return parser


def usage_error(exc: RegistryError) -> UsageError:
    """A registry error as a one-line message the notebook shows without a traceback."""
    return UsageError(f"{type(exc).__name__}: {exc}")


@magics_class
class JupyReg(Magics, Configurable):
    """jupyreg's magics and their settings."""

    tracking_uri = Unicode(
        None, allow_none=True, help="MLflow tracking URI (default: MLflow's)"
    ).tag(config=True)
    registry_uri = Unicode(
        None, allow_none=True, help="MLflow registry URI (default: the tracking URI)"
    ).tag(config=True)
    user = Unicode(
        None, allow_none=True, help="who acts (default: JUPYREG_USER, git user.email, OS user)"
    ).tag(config=True)

    def __init__(self, shell: Any) -> None:
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        shell.configurables.append(self)
        self._registry: Registry | None = None
        self._failed: dict[str, _Failed] = {}  # by model name

    @observe("tracking_uri", "registry_uri", "user")
    def _settings_changed(self, change: Any) -> None:
        self._registry = None

    def get_registry(self) -> Registry:
        """The Registry these settings point at (built once, rebuilt when they change)."""
        if self._registry is None:
            from jupyreg.panels import Registry

            try:
                self._registry = Registry(self.tracking_uri, self.registry_uri, user=self.user)
            except RegistryError as exc:
                raise usage_error(exc) from None
        return self._registry

    @magic_arguments()
    @argument("name", help="registered model name, e.g. fraud-detector")
    @argument("--model", default="model", help="variable holding the model (default: model)")
    @argument("--metrics", help="variable holding a metrics dict, e.g. {'val': {'auc': 0.9}}")
    @argument("--params", help="variable holding a params dict (default: model.get_params())")
    @argument(
        "--input-example",
        metavar="VAR",
        help="variable holding a few input rows: stored with the model, with the signature "
        "MLflow infers from it",
    )
    @argument("--data", nargs="+", metavar="PATH", help="datasets (default: every DVC output)")
    @argument("--stage", help="stage to move the new version to, e.g. Staging")
    @argument("--reason", help="why (recorded with the stage change)")
    @argument("--description", help="description of the version")
    @argument("--notebook", help="this notebook's path, when jupyreg cannot find it")
    @argument(
        "--force",
        action="store_true",
        help="register even when identical to an existing version (same model and lineage)",
    )
    @line_cell_magic("register")
    def register_magic(self, line: str, cell: str | None = None) -> Any:
        """Register a model as a new version, with its lineage.

        As a cell magic, runs the cell first, then registers the variable named by
        --model; if the cell raises, nothing is registered. As a line magic, registers an
        existing variable. Captures git commit and diff, notebook, DVC dataset hashes,
        GPU and environment, and shows a summary with every capture warning.

        If writing fails (an unreachable registry), ``%register NAME --model VAR`` retries
        with the failed cell's lineage, metrics, params, data, description and stage (options
        given on the retry line replace them), provided VAR still holds that model unchanged;
        a model fitted again in place is refused once, then registered as it is now.
        """
        try:  # split as a shell would, so --reason "rf model" is rf model, quotes removed
            args = self.register_magic.parser.parse_args(shlex.split(line))
        except (ValueError, UsageError) as exc:  # unbalanced quotes, argparse's errors
            raise UsageError(f"%register: {exc}") from None
        if cell is not None:
            self._failed.pop(args.name, None)  # the cell trains afresh: nothing to retry
            self._run_cell(cell)
        model = self._variable(args.model, "--model")
        given = {
            "metrics": self._variable(args.metrics, "--metrics") if args.metrics else None,
            "params": self._variable(args.params, "--params") if args.params else None,
            "input_example": (
                self._variable(args.input_example, "--input-example")
                if args.input_example
                else None
            ),
            "data": args.data,
            "description": args.description,
            "stage": args.stage,
            "reason": args.reason,
            "notebook": args.notebook,
        }
        options, lineage = self._retry(args.name, args.model, model, given)
        try:
            with front_end("magic"):  # next steps worded as %registry's and the CLI's are
                version = self.get_registry().register(
                    model,
                    args.name,
                    **options,
                    lineage=lineage,
                    user_ns=self.shell.user_ns,
                    force=args.force,
                )
        except DuplicateVersion as exc:  # a re-run of an unchanged cell: say so, show it
            print(f"{exc}; add --force to register it anyway")
            return self.get_registry().get(args.name, exc.version)
        except RegistryError as exc:
            kept = getattr(exc, "lineage", None)
            if kept is not None:  # written nothing, after capture: keep all for the retry
                self._failed[args.name] = _Failed(model, _digest(model), kept, options)
            if isinstance(exc, RegistryUnavailable):
                raise UsageError(
                    f"RegistryUnavailable: {exc}. Nothing was registered; the model is still "
                    f"in `{args.model}`: run `%register {args.name} --model {args.model}` to retry "
                    "(with this cell's lineage and metrics)"
                ) from None
            raise usage_error(exc) from None
        self._failed.pop(args.name, None)
        return version

    def _retry(
        self, name: str, variable: str, model: Any, given: dict[str, Any]
    ) -> tuple[dict[str, Any], Any]:
        """The options and lineage to register ``model`` with: a failed registration's
        (with ``given``'s options on top) when ``model`` is its model, unchanged since."""
        failed = self._failed.get(name)
        if failed is None or failed.model is not model:  # another model: its own lineage
            return given, None
        if failed.digest is None or _digest(model) != failed.digest:
            del self._failed[name]
            raise UsageError(
                f"%register: `{variable}` changed (fitted again?) since the registration of "
                f"{name} that failed; its lineage and metrics describe the model as it was, so "
                "they were dropped and nothing was registered: re-run the %%register cell, "
                "or run this line again to register the model as it is now, with fresh lineage"
            )
        options = {**failed.options, **{k: v for k, v in given.items() if v is not None}}
        print(f"retrying the registration of {name} with the lineage and metrics of its cell")
        return options, failed.lineage

    @line_magic("registry")
    def registry_magic(self, line: str) -> Any:
        """The registry's verbs in the notebook.

        %registry list | versions NAME | compare NAME [V ...] | history NAME [V]
        %registry requests [NAME] [--status pending|approved|rejected|cancelled|all]
        %registry request NAME V STAGE --reason TEXT
        %registry approve ID [--comment TEXT] | reject ID [--comment TEXT] | cancel ID
        %registry promote NAME V STAGE --reason TEXT | rollback NAME --reason TEXT
        %registry check [NAME] [--repair] | panel NAME
        %registry search "test.auc > 0.9 and stage = 'Production'"
        %registry reproduce NAME V [--tolerance T] [--yes] [--env NAME[=VALUE]] [--no-network]
          (shows whose code runs, then asks in an input box; --yes: runs without asking)
        """
        try:
            args = _registry_parser().parse_args(shlex.split(line))
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"%registry: {exc}") from None
        except _HelpShown:
            return None
        registry = self.get_registry()
        try:
            if args.verb == "panel":
                return registry.promotion_panel(args.name)
            if args.verb == "compare":
                return registry.compare_panel(args.name, args.versions or None)
            with front_end("magic"):
                result = run_verb(registry, args)
        except RegistryError as exc:
            raise usage_error(exc) from None
        if args.verb in ("request", "approve", "reject", "cancel", "promote", "rollback"):
            print(describe(result))
            return None
        if args.verb == "card":
            from IPython.display import Markdown

            return Markdown(result)
        for warning in read_warnings(args.verb, result):
            print(f"warning: {warning}")
        return as_frame(args.verb, result)

    def _run_cell(self, cell: str) -> None:
        """Run the training code as the shell runs a cell (its traceback shows the user's
        lines, its last value is displayed, magics such as %time work). If it raises, the
        shell has shown the traceback; the cell then fails (and "Run all" stops) with
        one line more and nothing registered."""
        result = self.shell.run_cell(cell, store_history=False)
        if not result.success:
            error = result.error_in_exec or result.error_before_exec
            raise UsageError(
                f"%%register: the cell raised {type(error).__name__}; nothing was registered"
            )

    def _variable(self, name: str, option: str) -> Any:
        if not name.isidentifier():
            raise UsageError(f"{option}: {name!r} is not a variable name")
        if name not in self.shell.user_ns:
            raise UsageError(
                f"{option}: no variable {name!r} in the notebook; "
                f"assign it in the cell or pass {option} NAME"
            )
        return self.shell.user_ns[name]


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(JupyReg(ipython))
