"""Reproducing a registered version: re-run what produced it and compare its metrics.

0. What will run is said first: who registered the version, its commit, its entry (the
   notebook, the transcript's cells) and how it is sandboxed; with ``confirm`` (the
   default) it runs only once a person answers yes (a terminal, or a notebook's input box).
1. A temporary git worktree at the recorded commit, with the recorded uncommitted diff
   (the run artifact ``jupyreg/git.diff``) applied.
2. The recorded datasets materialised there by DVC (``checkout`` from the repository's
   cache, else ``fetch`` from its remote first), then checked against the recorded md5.
3. The version's entry run again, in the directory it ran in, with ``JUPYREG_REPRODUCE``
   set: there ``register`` appends what it would have registered to that file and
   registers nothing (``record_instead``), and no lifecycle step runs.
   - A notebook: the kernel's transcript (``jupyreg/transcript.json``; the notebook
     snapshot where a version has none) run cell by cell in a fresh kernel (nbclient).
   - A script or a command of ``jupyreg run``: the recorded argv replayed as a child
     process (``python`` being this interpreter); a DVC stage: ``dvc repro --force
     --single-item STAGE``. Their own MLflow runs land in the throwaway registry (with
     jupyreg's capture off), and the run they registered the model from (else the last
     they started) gives the reproduced metrics.
   The code is the registrant's, run by the reproducer, so it gets none of the
   reproducer's credentials: its environment is built from ``ALLOWED`` (never a
   secret-named variable) and what the caller passes, with an empty ``HOME`` (where
   ``~/.mlflow/credentials``, ``~/.netrc``, ``~/.aws`` ... live) and a throwaway MLflow
   registry; ``network=False`` starts it in a new, empty network namespace.
4. Recorded and reproduced metrics compared within an absolute tolerance, environments
   (Python, packages, GPU) compared, and the outcome kept on the version
   (``jupyreg.reproduction.<id>``), a notebook's executed copy as a run artifact.

The sandbox is the environment and the network, not the file system: the kernel runs as
the reproducer's OS user and can read what that user can by absolute path. Reproduce code
you would not run yourself in a container or as another user.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shlex
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyreg import lifecycle, tags
from jupyreg.errors import InvalidArgument, NotReproducible, RegistryError, hint
from jupyreg.lineage.entry import COMMAND, DVC_STAGE, SCRIPT
from jupyreg.settings import CAPTURE_ENV

if TYPE_CHECKING:
    import git

    from jupyreg.entities import ModelVersion
    from jupyreg.registration import Registration
    from jupyreg.registry import Registry
    from jupyreg.store import Store

REPRODUCE_ENV = "JUPYREG_REPRODUCE"
"""Set in a reproducing kernel: the file ``register`` appends its records to."""
VERSION_ENV = "JUPYREG_REPRODUCE_VERSION"
ARTIFACT_DIR = "jupyreg/reproductions"
Progress = Callable[[int, int], None]
_LISTED = 8  # package differences named before "and N more"
_SHOWN_CELLS = 10  # cells previewed before asking, one line each
_LOG_TAIL = 20  # lines of a failing replay's output named in the warnings
_PYTHON = re.compile(r"python(3(\.\d+)?)?")

ALLOWED: dict[str, str] = {
    "PATH": "finds the programs the code starts (git, dvc, a compiler)",
    "LANG LANGUAGE LC_* TZ": "text encoding, sorting and dates",
    "TMPDIR TEMP TMP": "where temporary files go (a small /tmp, a scratch disk)",
    "USER LOGNAME": "who runs it, for libraries that ask (getpass); not a credential",
    "VIRTUAL_ENV CONDA_PREFIX CONDA_DEFAULT_ENV": "the active environment, for tools the code "
    "starts",
    "CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES CUDA_HOME LD_LIBRARY_PATH": "which GPUs and "
    "their libraries (the GPUs seen are compared with the recorded ones)",
    "PYTHONHASHSEED OMP_NUM_THREADS MKL_NUM_THREADS OPENBLAS_NUM_THREADS "
    "CUBLAS_WORKSPACE_CONFIG": "they change numeric results",
    "HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy SSL_CERT_FILE "
    "SSL_CERT_DIR REQUESTS_CA_BUNDLE": "the way out to the network and the certificate "
    "authorities to trust (a proxy URL with credentials in it is left out)",
    "SYSTEMROOT WINDIR COMSPEC PATHEXT": "Windows: Python needs them to start",
    "DVC_NO_ANALYTICS": "the reproducer's opt-out of DVC's usage reports",
}
"""The reproducer's variables a reproducing kernel inherits, and why. Not ``PYTHONPATH``
(it could import the reproducer's checkout instead of the recorded commit), nor ``HOME``
and ``XDG_*`` (credential files), nor anything else: pass what a reproduction needs with
``env=`` / ``--env NAME``. Besides, reproduce sets ``HOME`` (an empty directory),
``PYTHONUSERBASE`` (the reproducer's: ``pip install --user`` packages still import),
``MLFLOW_TRACKING_URI`` (a throwaway registry: the code's own MLflow calls land there) and
``JUPYREG_REPRODUCE*`` (where ``register`` records)."""
_ALLOWED_NAMES = frozenset(n for names in ALLOWED for n in names.split() if n != "LC_*")
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|PASS(PHRASE|FILE)|ASKPASS|KEY|CREDENTIAL|AUTH(?!OR)|COOKIE|SESSION"
    r"|PRIVATE|CLIENT_CERT|DSN|NETRC|KRB5|^(AWS|AZURE|DATABRICKS)_"
    r"|^MLFLOW_TRACKING_(USERNAME|AWS_SIGV4)$",
    re.IGNORECASE,
)
"""Names a reproducing kernel never gets, inherited or passed: registry credentials
(``MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN``), cloud ones (``AWS_*``), tokens
(``GITHUB_TOKEN``, ``JUPYREG_OIDC_TOKEN``), and whatever looks secret."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Reproduction:
    """The outcome of re-running a version: ``ok`` when every recorded metric came back
    within ``tolerance``; ``deltas`` are reproduced minus recorded (None: missing)."""

    ok: bool
    recorded: dict[str, float]
    reproduced: dict[str, float]
    deltas: dict[str, float | None]
    warnings: list[str] = field(default_factory=list)
    notebook_uri: str | None = None
    name: str = ""
    version: int = 0
    tolerance: float = 0.0
    environment: list[str] = field(default_factory=list)
    """What differed between the recorded and the reproducing environment."""
    id: str = ""
    sandbox: str = ""
    """How the code ran: the environment it got (variable names), and whether it had network."""

    def rows(self) -> list[tuple[str, float | None, float | None, float | None, bool]]:
        """(metric, recorded, reproduced, delta, within tolerance), one per metric."""
        return [
            (
                metric,
                self.recorded.get(metric),
                self.reproduced.get(metric),
                delta,
                delta is not None and abs(delta) <= self.tolerance,
            )
            for metric, delta in self.deltas.items()
        ]

    def summary(self) -> str:
        verdict = "reproduced" if self.ok else "did NOT reproduce"
        return f"{self.name} v{self.version} {verdict} (tolerance {self.tolerance:g})"

    def text(self) -> str:
        """The summary, a metrics table, environment differences and warnings."""
        lines = [self.summary(), ""]
        table = [("metric", "recorded", "reproduced", "delta", "")]
        table += [
            (m, _num(r), _num(p), _num(d), "ok" if within else "FAIL")
            for m, r, p, d, within in self.rows()
        ]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
        lines += [f"environment: {d}" for d in self.environment]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.sandbox:
            lines.append(f"sandbox: {self.sandbox}")
        if self.notebook_uri:
            lines.append(f"executed notebook: {self.notebook_uri}")
        return "\n".join(line.rstrip() for line in lines)

    __str__ = __repr__ = text

    def _repr_html_(self) -> str:
        colour = "#047857" if self.ok else "#b91c1c"
        head = "".join(f"<th>{h}</th>" for h in ("metric", "recorded", "reproduced", "delta", ""))
        body = "".join(
            f"<tr><td>{escape(m)}</td><td>{_num(r)}</td><td>{_num(p)}</td><td>{_num(d)}</td>"
            f"<td style='color:{'#047857' if within else '#b91c1c'}'>"
            f"{'ok' if within else 'FAIL'}</td></tr>"
            for m, r, p, d, within in self.rows()
        )
        notes = "".join(f"<li>environment: {escape(d)}</li>" for d in self.environment)
        notes += "".join(f"<li>{escape(w)}</li>" for w in self.warnings)
        notes += f"<li>sandbox: {escape(self.sandbox)}</li>" if self.sandbox else ""
        link = f"<p>executed notebook: {escape(self.notebook_uri)}</p>" if self.notebook_uri else ""
        return (
            f"<div><p style='color:{colour}'><b>{escape(self.summary())}</b></p>"
            f"<table><tr>{head}</tr>{body}</table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + link
            + "</div>"
        )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


# in the reproducing kernel ------------------------------------------------------------


def reproducing() -> bool:
    """Whether this process is a kernel that ``reproduce`` runs."""
    return bool(os.environ.get(REPRODUCE_ENV))


def record_instead(registration: Registration) -> ModelVersion:
    """What ``register`` does in a reproducing kernel: append the metrics (and this
    environment) to ``$JUPYREG_REPRODUCE`` and register nothing. The version being
    reproduced is returned, with the reproduced metrics, for the cell to show."""
    from jupyreg.entities import ModelVersion

    record = {"name": registration.name, "metrics": registration.metrics, **_this_environment()}
    with open(os.environ[REPRODUCE_ENV], "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    return ModelVersion(
        name=registration.name,
        version=int(os.environ.get(VERSION_ENV) or 0),
        stage=lifecycle.NONE,
        run_id=None,
        metrics=dict(registration.metrics),
        params=dict(registration.params),
        warnings=("reproduction: nothing was registered; these metrics are compared",),
    )


def _this_environment() -> dict[str, Any]:
    """This process's Python, packages and GPU, as a reproduction's record has them."""
    from jupyreg.lineage.environment import installed_packages
    from jupyreg.lineage.hardware import read_gpus

    gpus, _ = read_gpus()
    return {
        "python": platform.python_version(),
        "packages": installed_packages(),
        "gpu": _gpu(gpus),
    }


def refuse_lifecycle() -> None:
    """A reproducing kernel re-runs cells, never a lifecycle step they once took."""
    if reproducing():
        raise NotReproducible(
            "this kernel re-runs a version for `jupyreg reproduce`: lifecycle steps "
            "(transitions, requests, policies) are not applied here"
        )


# reproducing ----------------------------------------------------------------------------


def reproduce(
    registry: Registry,
    store: Store,
    name: str,
    version: int | str,
    tolerance: float = 1e-6,
    progress: Progress | None = None,
    repo_path: str | os.PathLike[str] = ".",
    confirm: bool = True,
    env: Mapping[str, str] | None = None,
    network: bool = True,
) -> Reproduction:
    """Re-run version ``version`` of ``name`` from the git repository at ``repo_path`` and
    keep the outcome on the version. Says what will run first and, with ``confirm``, asks
    (InvalidArgument where nobody can answer). The kernel gets ``ALLOWED`` and ``env``,
    never a secret; ``network=False``: no network. Raises ``NotReproducible`` when it
    cannot be re-run (no commit, a diff that does not apply, a dataset that cannot be had,
    no network namespace for ``network=False``, a no to the question)."""
    tolerance = _tolerance(tolerance)
    ask = _flag(confirm, "confirm")
    passed = _passed(env)
    launcher = _launcher(_flag(network, "network"))
    here = Path(os.path.abspath(repo_path))
    mv = registry.get(name, version)
    commit = str((mv.lineage.get("git") or {}).get("commit") or "")
    if not commit or mv.run_id is None:
        raise NotReproducible(
            f"{mv.name} v{mv.version} recorded no git commit, so its code cannot be had: "
            "register it from a git repository (reg.register / %%register) to reproduce it"
        )
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="jupyreg-reproduce-") as tmp:
        scratch = Path(tmp)
        artifacts = _download(store, mv.run_id, scratch / "artifacts")
        program = _program(mv, artifacts, warnings)
        records, executed = scratch / "records.jsonl", scratch / "executed.ipynb"
        child = _sandbox(scratch, passed, launcher, records, mv.version)
        plan = _plan(mv, commit, program, child.description)
        _confirm(mv, plan, ask)
        diff = _recorded_diff(store, mv, artifacts)
        with _worktree(mv, here, commit, scratch / "tree") as (tree, root):
            _apply_diff(mv, diff, tree, commit, warnings)
            _materialise(mv, here, root, tree, program.where, warnings)
            if program.argv:
                _replay(mv, program, tree / program.where, child, scratch / "replay.log", warnings)
            else:
                run = _Run(
                    program.cells, tree / program.where, records, program.whole, executed, child
                )
                _execute(mv, run, progress, warnings)
        found = _record_of(records, mv.name)
        if found is None and program.argv:
            found = _replayed(child, mv.name, warnings)
        recorded = tags.recorded_metrics(mv.tags) or dict(mv.metrics)
        reproduced = dict((found or {}).get("metrics") or {})
        deltas, ok = _compare(recorded, reproduced, tolerance, warnings)
        if found is None:
            ok = False
            warnings.append(f"the run registered nothing as {mv.name}: no metrics to compare")
        environment = _environment_changes(mv, artifacts, found) if found else []
        reproduction_id = lifecycle.sortable_id(lifecycle.now())
        uri = (
            None if program.argv else _keep_notebook(store, mv, executed, reproduction_id, warnings)
        )
    result = Reproduction(
        ok=ok,
        recorded=recorded,
        reproduced=reproduced,
        deltas=deltas,
        warnings=warnings,
        notebook_uri=uri,
        name=mv.name,
        version=mv.version,
        tolerance=tolerance,
        environment=environment,
        id=reproduction_id,
        sandbox=child.description,
    )
    kept = _keep_outcome(registry, result, program.ran)
    return replace(result, id=kept) if kept else result


def _tolerance(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise InvalidArgument(f"tolerance must be a number >= 0, not {value!r}")
    return number


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be True or False, not {value!r}")
    return value


# the sandbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sandbox:
    env: dict[str, str]
    """The reproducing kernel's whole environment."""
    launcher: tuple[str, ...]
    """What the kernel's command is started under (``unshare --net``), else nothing."""
    sockets: Path
    """Where the kernel's unix sockets go when it has no network (no TCP port to reach)."""
    description: str


def _passed(env: Mapping[str, str] | None) -> dict[str, str]:
    """What the caller passes to the kernel, checked: never a secret-named variable, a
    value with credentials in a URL, nor reproduce's own ``JUPYREG_REPRODUCE*``."""
    from jupyreg.lineage.scrub import scrub_urls_in

    passed = dict(env or {})
    for name, value in passed.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise InvalidArgument(f"env: {name!r} is not a variable name")
        if not isinstance(value, str):
            raise InvalidArgument(f"env: {name}'s value must be a string, not {value!r}")
        if SECRET_NAME.search(name) or scrub_urls_in(value) != value:
            raise InvalidArgument(
                f"env: {name} looks like a credential: reproduce never hands one to the code "
                "it re-runs (it could act as you); nothing ran"
            )
        if name.startswith(REPRODUCE_ENV):
            raise InvalidArgument(f"env: {name} is reproduce's own; nothing ran")
    return passed


def _launcher(network: bool) -> tuple[str, ...]:
    """Nothing, or (``network=False``) ``unshare`` making the kernel a new, empty network
    namespace (not even loopback); as a user that is not root, in a user namespace too."""
    if network:
        return ()
    unshare = shutil.which("unshare") if sys.platform.startswith("linux") else None
    reason = "it needs Linux network namespaces (`unshare --net`), which this machine lacks"
    if unshare:
        root = os.geteuid() == 0
        launcher = (unshare, "--net") if root else (unshare, "--map-root-user", "--net")
        probe = subprocess.run([*launcher, "true"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return launcher
        said = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
        reason = f"`unshare {' '.join(launcher[1:])}` fails here ({said})"
    raise NotReproducible(
        f"cannot reproduce without network (network=False, --no-network): {reason}; nothing ran"
    )


def _sandbox(
    scratch: Path, passed: dict[str, str], launcher: tuple[str, ...], records: Path, version: int
) -> _Sandbox:
    """The kernel's environment: ``ALLOWED`` of this one, what the caller passed, an empty
    HOME and a throwaway registry; never a secret-named variable (see ``SECRET_NAME``)."""
    from jupyreg.lineage.scrub import scrub_urls_in

    inherited = {
        name: value
        for name, value in os.environ.items()
        if (name in _ALLOWED_NAMES or name.startswith("LC_"))
        and not SECRET_NAME.search(name)
        and scrub_urls_in(value) == value
    }
    home, throwaway = scratch / "home", scratch / "throwaway-registry"
    home.mkdir()
    throwaway.mkdir()
    env = inherited | {
        "HOME": str(home),
        "PYTHONUSERBASE": os.environ.get("PYTHONUSERBASE") or site.getuserbase(),
        "MLFLOW_TRACKING_URI": f"sqlite:///{(throwaway / 'mlflow.db').as_posix()}",
    }
    env |= passed | {REPRODUCE_ENV: str(records), VERSION_ENV: str(version)}
    names = ", ".join(sorted(inherited)) or "none"
    given = f"; passed: {', '.join(sorted(passed))}" if passed else ""
    description = (
        f"environment allow-listed ({names}{given}), an empty HOME, a throwaway MLflow "
        "registry, no credentials; network "
        + (f"off (unshare {' '.join(launcher[1:])})" if launcher else "on")
    )
    return _Sandbox(env, launcher, scratch / "k", description)


def _plan(mv: ModelVersion, commit: str, program: _Program, sandbox: str) -> str:
    """What will run, said before it runs: whose code, at which commit, from which entry."""
    from jupyreg.lineage.capturing import NOTEBOOK_ARTIFACT, TRANSCRIPT_ARTIFACT

    git = mv.lineage.get("git") or {}
    entry = mv.lineage.get("entry") or {}
    when = f" on {mv.created:%Y-%m-%d %H:%M}" if mv.created else ""
    place = (
        "the root" if program.where == "." else program.where
    ) + " of a worktree at that commit"
    lines = [
        f"reproduce {mv.name} v{mv.version} runs code that {mv.author or 'an unknown author'} "
        f"registered{when}, as you:",
        f"  commit   {commit[:12]}"
        + (" with its recorded uncommitted diff" if git.get("dirty") else ""),
    ]
    if program.argv:
        what = entry.get("stage") or entry.get("path") or "(no path recorded)"
        lines += [
            f"  entry    {program.ran} {what}, run in {place}",
            f"  runs     {shlex.join(program.argv)}",
            f"  sandbox  {sandbox}",
        ]
        return "\n".join(lines)
    notebook = (mv.lineage.get("notebook") or {}).get("path") or "(no notebook recorded)"
    source = "the kernel's transcript" if program.whole else "the notebook snapshot"
    artifact = TRANSCRIPT_ARTIFACT if program.whole else NOTEBOOK_ARTIFACT
    cells = program.cells
    lines += [
        f"  entry    {notebook}: {source}, {len(cells)} cell(s), run in {place}",
        f"  sandbox  {sandbox}",
    ]
    for number, cell in enumerate(cells[:_SHOWN_CELLS], 1):
        first = next((line for line in cell.splitlines() if line.strip()), "")
        lines.append(f"  [{number}] {first[:100]}")
    if len(cells) > _SHOWN_CELLS:
        lines.append(f"  ... and {len(cells) - _SHOWN_CELLS} more cell(s)")
    lines.append(f"  all of it: runs:/{mv.run_id}/{artifact}")
    return "\n".join(lines)


def _confirm(mv: ModelVersion, plan: str, confirm: bool) -> None:
    """Say what will run; with ``confirm``, go on only on a yes from a person."""
    print(plan, file=sys.stderr, flush=True)
    if not confirm:
        return
    answer = _ask("run it? [y/N] ") if _can_ask() else None
    if answer is None:
        how = hint("pass confirm=False", "reproduce", mv.name, str(mv.version), "--yes")
        raise InvalidArgument(
            f"{mv.name} v{mv.version}: reproduce asks before running the code "
            f"{mv.author or 'its author'} registered, but nobody can answer here (no "
            f"terminal): to run it without asking, {how}; nothing ran"
        )
    if answer.strip().lower() not in ("y", "yes"):
        raise NotReproducible(
            f"{mv.name} v{mv.version} was not reproduced: you said no; nothing ran"
        )


def _can_ask() -> bool:
    """Whether a person can answer: stdin is a terminal, or this is a Jupyter kernel (its
    front end asks; one that takes no input makes ``input()`` raise)."""
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            return True
    except ValueError:  # closed
        pass
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython.get_ipython(), "kernel", None) is not None


def _ask(question: str) -> str | None:
    """The answer (the question on stderr: stdout may be JSON), else None."""
    print(question, end="", file=sys.stderr, flush=True)
    try:
        return input()
    except (EOFError, OSError, NotImplementedError):  # IPython's StdinNotImplementedError
        print(file=sys.stderr)
        return None


# reproducing, step by step ----------------------------------------------------------------


def _download(store: Store, run_id: str, into: Path) -> dict[str, bytes]:
    """The version's ``jupyreg/`` run artifacts (diff, transcript, notebook, packages),
    without MLflow's download progress bar (a tqdm widget in a notebook, which would only
    interleave with reproduce's own progress; only the environment turns it off, which
    library code leaves alone)."""
    from jupyreg.compat import download_run_files

    into.mkdir(parents=True)
    with store.translated(f"downloading the artifacts of run {run_id}"):
        listed = store.client.list_artifacts(run_id, "jupyreg")
        files = [f.path for f in listed if not f.is_dir]
        download_run_files(store.client, run_id, files, into)
    return {f"jupyreg/{Path(path).name}": (into / path).read_bytes() for path in files}


@dataclass(frozen=True)
class _Program:
    """What reproduce runs, in ``where`` (a directory from the git root): a notebook's
    ``cells``, else the command ``argv``."""

    ran: str
    """What the outcome says ran: transcript, notebook, or the entry kind of a command."""
    where: str
    cells: list[str] = field(default_factory=list)
    argv: tuple[str, ...] = ()

    @property
    def whole(self) -> bool:
        """Run every cell (a transcript), else up to the first registering the model."""
        return self.ran == "transcript"


def _program(mv: ModelVersion, artifacts: dict[str, bytes], warnings: list[str]) -> _Program:
    """What to run: the recorded command of a script, a ``jupyreg run`` command or a DVC
    stage; else the kernel's transcript, else the notebook snapshot."""
    from jupyreg.lineage.capturing import NOTEBOOK_ARTIFACT, TRANSCRIPT_ARTIFACT
    from jupyreg.lineage.transcript import read_transcript

    entry = mv.lineage.get("entry") or {}
    if entry.get("kind") in (SCRIPT, COMMAND, DVC_STAGE):
        return _command(mv, entry, warnings)
    notebook_path = (mv.lineage.get("notebook") or {}).get("path")
    notebook_dir = Path(notebook_path).parent.as_posix() if notebook_path else "."
    if TRANSCRIPT_ARTIFACT in artifacts:
        cells, where = read_transcript(artifacts[TRANSCRIPT_ARTIFACT])
        if where is None:
            warnings.append(
                "transcript: the kernel ran outside the git repository; run from "
                f"{notebook_dir} of the worktree"
            )
        return _Program("transcript", where or notebook_dir, cells)
    if NOTEBOOK_ARTIFACT in artifacts:
        import nbformat

        nb = nbformat.reads(artifacts[NOTEBOOK_ARTIFACT].decode(), as_version=4)
        warnings.append(
            "transcript: none was recorded (registered before jupyreg kept one): the "
            f"notebook snapshot {notebook_path} ran up to its first cell registering {mv.name}"
        )
        cells = [c.source for c in nb.cells if c.cell_type == "code"]
        return _Program("notebook", notebook_dir, cells)
    raise NotReproducible(
        f"{mv.name} v{mv.version} recorded neither the kernel's transcript nor a notebook "
        "snapshot, so what produced it is unknown: register it again from a notebook "
        "(%%register) to reproduce it"
    )


def _command(mv: ModelVersion, entry: dict[str, Any], warnings: list[str]) -> _Program:
    """The command replaying a script (``python`` + its argv), a ``jupyreg run`` command
    (its argv, ``python`` being this interpreter) or a DVC stage (``dvc repro``)."""
    kind, argv = entry["kind"], [str(a) for a in entry.get("argv") or []]
    if kind == DVC_STAGE:
        if not entry.get("stage"):
            raise NotReproducible(f"{mv.name} v{mv.version} recorded no DVC stage to reproduce")
        where = Path(str(entry.get("path") or "dvc.yaml")).parent.as_posix()
        dvc = (sys.executable, "-m", "dvc", "repro", "--force", "--single-item")
        return _Program(kind, where, argv=(*dvc, str(entry["stage"])))
    if not argv or argv[0] in ("", "-c", "-"):
        raise NotReproducible(
            f"{mv.name} v{mv.version} was trained by code given inline ({kind} argv "
            f"{argv!r}), so there is no command to run again: train it from a file"
        )
    where = str(entry.get("cwd") or ".")
    if os.path.isabs(where):
        warnings.append(f"entry: it ran outside the git repository ({where}); ran in its root")
        where = "."
    path = str(entry.get("path") or "")
    if kind == SCRIPT and os.path.isabs(argv[0]) and path and not os.path.isabs(path):
        argv[0] = os.path.relpath(path, where)  # `python -m`: the worktree's file, not ours
    if kind == SCRIPT and argv[0].endswith(".py"):
        argv = [sys.executable, *argv]
    elif kind == COMMAND and _PYTHON.fullmatch(argv[0]):
        argv[0] = sys.executable
    return _Program(kind, where, argv=tuple(argv))


@contextmanager
def _worktree(mv: ModelVersion, here: Path, commit: str, path: Path) -> Iterator[tuple[Path, Path]]:
    """A detached worktree of the repository at ``here`` at ``commit``: (worktree, the
    main checkout's root); removed afterwards."""
    import git

    try:
        repo = git.Repo(here, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise NotReproducible(
            f"{here} is not in a git repository: run reproduce from a clone of the "
            f"repository {mv.name} v{mv.version} was trained in"
        ) from None
    with repo:
        root = Path(str(repo.working_tree_dir))
        try:
            repo.git.worktree("add", "--detach", "--quiet", str(path), commit)
        except git.GitCommandError as exc:
            raise NotReproducible(
                f"{mv.name} v{mv.version}'s commit {commit[:12]} cannot be checked out in "
                f"{root} ({_git_reason(exc)}): `git fetch` it, or run reproduce from the "
                "clone it was trained in"
            ) from None
        try:
            yield path, root
        finally:
            with suppress(git.GitCommandError):
                repo.git.worktree("remove", "--force", str(path))
            with suppress(git.GitCommandError):
                repo.git.worktree("prune")


def _git_reason(exc: git.GitCommandError) -> str:
    lines = str(exc.stderr or exc).strip().strip("'").strip().splitlines()
    return lines[-1].strip().removeprefix("stderr: ").strip("'") if lines else "git failed"


def _recorded_diff(store: Store, mv: ModelVersion, artifacts: dict[str, bytes]) -> bytes | None:
    """The uncommitted diff: the run artifact ``jupyreg/git.diff`` (jupyreg's registration),
    else the run's ``jupyreg.git.diff.<n>`` tags (a run of any code, through the run-context
    provider); None where the tree was clean."""
    from jupyreg.lineage.capturing import DIFF_ARTIFACT

    diff = artifacts.get(DIFF_ARTIFACT)
    if diff is not None or not (mv.lineage.get("git") or {}).get("dirty"):
        return diff
    run = store.runs([str(mv.run_id)]).get(str(mv.run_id))
    return tags.diff_from_tags(run.data.tags) if run is not None else None


def _apply_diff(
    mv: ModelVersion, diff: bytes | None, tree: Path, commit: str, warnings: list[str]
) -> None:
    import git

    recorded = mv.lineage.get("git") or {}
    if recorded.get("untracked"):
        warnings.append(
            f"git: {recorded['untracked']} untracked file(s) were not part of the recorded "
            "diff and are missing from the reproduction"
        )
    if diff is None:
        if recorded.get("dirty"):
            warnings.append("git: the tree was dirty but no diff was stored; ran the commit")
        return
    patch = tree.parent / "recorded.diff"
    patch.write_bytes(diff)
    try:
        git.Git(tree).apply("--binary", "--whitespace=nowarn", str(patch))
    except git.GitCommandError as exc:
        raise NotReproducible(
            f"{mv.name} v{mv.version}'s recorded uncommitted diff does not apply on "
            f"{commit[:12]} ({_git_reason(exc)})"
        ) from None


def _materialise(
    mv: ModelVersion, here: Path, root: Path, tree: Path, where: str, warnings: list[str]
) -> None:
    """Check the recorded datasets out into the worktree and verify their md5."""
    from jupyreg.lineage import dvcfiles

    wanted = {
        str(e["path"]): str(e["md5"])
        for e in mv.lineage.get("data") or []
        if isinstance(e, dict) and e.get("path") and e.get("md5")
    }
    main_dvc = dvcfiles.find_root(here)
    if main_dvc is not None and main_dvc.is_relative_to(root):
        base = tree / main_dvc.relative_to(root)
        if wanted:
            _dvc_checkout(mv, main_dvc, base, wanted, warnings)
    else:
        base = tree / where
    if wanted:
        stale = {str(e["path"]) for e in mv.lineage.get("data") or [] if e.get("stale")}
        _verify(mv, base, wanted, stale)


def _dvc_checkout(
    mv: ModelVersion, main_dvc: Path, base: Path, wanted: dict[str, str], warnings: list[str]
) -> None:
    """``dvc checkout`` of the datasets from the main checkout's cache; ``dvc fetch`` first
    from the repository's remote when the cache lacks one."""
    from dvc.exceptions import CheckoutError, DvcException
    from dvc.repo import Repo
    from dvc.scm import NoSCM

    from jupyreg.lineage import dvcfiles

    main = dvcfiles.open_repo(main_dvc, warnings)
    if main is None or not (base / ".dvc").is_dir():
        return
    cache = main.cache.local_cache_dir
    targets = [str(base / path) for path in wanted]
    with Repo(str(base), scm=NoSCM(str(base)), config={"cache": {"dir": cache}}) as repo:
        try:
            repo.checkout(targets=targets, force=True)
            return
        except CheckoutError:
            pass
        except DvcException as exc:
            warnings.append(f"data: dvc checkout failed ({exc}); fetching")
        try:
            repo.fetch(targets=targets)
        except DvcException as exc:
            warnings.append(f"data: dvc fetch failed ({exc})")
        with suppress(DvcException):
            repo.checkout(targets=targets, force=True)


def _verify(mv: ModelVersion, base: Path, wanted: dict[str, str], stale: set[str]) -> None:
    """Raise NotReproducible naming every dataset (path, md5) the worktree lacks; one that
    was stale at registration was trained on bytes DVC may never have stored."""
    from jupyreg.lineage.capturing import cache_dir
    from jupyreg.lineage.data import capture_data

    found = capture_data(list(wanted), base, cache_dir())
    hashed = {str(e["path"]): e.get("md5") for e in found.entries}
    never = "; stale at registration: trained on bytes DVC never recorded"
    missing = [
        f"{path} (md5 {md5}{never if path in stale else ''})"
        for path, md5 in wanted.items()
        if hashed.get(path) != md5
    ]
    if missing:
        raise NotReproducible(
            f"{mv.name} v{mv.version} cannot be reproduced: dataset(s) {', '.join(missing)} "
            "are neither in DVC's cache nor on the repository's DVC remote: `dvc push` them "
            "from where the model was trained (or restore DVC's cache), then reproduce again"
        )


@dataclass(frozen=True)
class _Run:
    cells: list[str]
    cwd: Path
    records: Path
    """Where ``register`` in the kernel appends its records."""
    whole: bool
    """Run every cell (a transcript), else up to the first registering the model."""
    executed: Path
    """Where the executed notebook is written."""
    sandbox: _Sandbox


def _execute(mv: ModelVersion, run: _Run, progress: Progress | None, warnings: list[str]) -> None:
    """Run the cells one by one in a fresh kernel; a cell that raises is named in the
    warnings and the run goes on, as the original session did."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in run.cells]
    nb.metadata["jupyreg"] = {"reproduces": {"name": mv.name, "version": mv.version}}
    run.cwd.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        nb,
        timeout=None,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(run.cwd)}},
        **_offline_kernel(run.sandbox),
    )
    report = progress or _print_progress(mv)
    total = len(nb.cells)
    try:
        with client.setup_kernel(env=run.sandbox.env):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                report(index + 1, total)
                for output in cell.outputs:
                    if output.get("output_type") == "error":
                        warnings.append(
                            f"cell {index + 1} raised {output.get('ename')}: "
                            f"{str(output.get('evalue'))[:200]}"
                        )
                if not run.whole and _record_of(run.records, mv.name) is not None:
                    nb.cells = nb.cells[: index + 1]
                    break
    except (DeadKernelError, CellTimeoutError, RuntimeError) as exc:
        warnings.append(f"the kernel stopped: {type(exc).__name__}: {exc}")
    nbformat.write(nb, run.executed)


def _replay(
    mv: ModelVersion,
    program: _Program,
    cwd: Path,
    sandbox: _Sandbox,
    log: Path,
    warnings: list[str],
) -> None:
    """Run the recorded command in ``cwd`` in the sandbox, its output kept in ``log`` (stdout
    may be JSON); a failing one is named in the warnings with the end of its output. Its
    MLflow runs land in the sandbox's throwaway registry, without jupyreg's capture, and
    ``python`` on its PATH is this interpreter (a DVC stage's command runs in a shell)."""
    path = os.pathsep.join(
        p for p in (os.path.dirname(sys.executable), sandbox.env.get("PATH")) if p
    )
    env = sandbox.env | {CAPTURE_ENV: "0", "PATH": path}
    print(f"reproducing {mv.name} v{mv.version}: {shlex.join(program.argv)}", file=sys.stderr)
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        try:
            code = subprocess.call(
                [*sandbox.launcher, *program.argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise NotReproducible(
                f"{mv.name} v{mv.version}: {program.argv[0]} could not be started ({exc})"
            ) from None
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-_LOG_TAIL:]
        warnings.append(f"the command exited with {code}: " + "\n".join(tail))


def _replayed(sandbox: _Sandbox, name: str, warnings: list[str]) -> dict[str, Any] | None:
    """What a replay reproduced, read from the sandbox's throwaway registry: the metrics of
    the run it registered ``name`` from, else of the last run it started, with this
    environment (the replay ran this interpreter); None where it started no run."""
    from jupyreg.store import Store, sqlite_path

    uri = sandbox.env["MLFLOW_TRACKING_URI"]
    database = sqlite_path(uri)
    if database is None or not database.exists():
        return None
    throwaway = Store(uri, uri)
    runs = throwaway.runs_where("")
    if not runs:
        return None
    registered = [v.run_id for v in throwaway.versions(name) if v.run_id in runs]
    if registered:
        run = runs[registered[-1]]
    else:
        run = max(runs.values(), key=lambda r: r.info.start_time or 0)
        warnings.append(
            f"the run registered no {name}: compared the metrics of the last of its "
            f"{len(runs)} MLflow run(s)"
        )
    return {"name": name, "metrics": dict(run.data.metrics), **_this_environment()}


def _offline_kernel(sandbox: _Sandbox) -> dict[str, Any]:
    """NotebookClient's options for a kernel started under ``sandbox.launcher``: it talks
    over unix sockets, as no TCP port is reachable from its empty network namespace."""
    if not sandbox.launcher:
        return {}
    from jupyter_client.manager import AsyncKernelManager
    from traitlets.config import Config

    launcher = sandbox.launcher

    class OfflineKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [*launcher, *super().format_kernel_cmd(extra_arguments)]

    settings = {"transport": "ipc", "ip": str(sandbox.sockets)}
    return {"kernel_manager_class": OfflineKernelManager, "config": Config(KernelManager=settings)}


def _print_progress(mv: ModelVersion) -> Progress:
    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        line = f"\rreproducing {mv.name} v{mv.version}: cell {done}/{total}"
        print(line, end=end, file=sys.stderr, flush=True)

    return report


def _record_of(records: Path, name: str) -> dict[str, Any] | None:
    """The last record ``register`` wrote for ``name`` in the reproducing kernel."""
    if not records.exists():
        return None
    found = None
    for line in records.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("name") == name:
            found = record
    return found


def _compare(
    recorded: dict[str, float],
    reproduced: dict[str, float],
    tolerance: float,
    warnings: list[str],
) -> tuple[dict[str, float | None], bool]:
    """Reproduced minus recorded per metric, and whether all recorded ones are within
    ``tolerance`` (absolute); metrics only the reproduction has are named, not judged."""
    deltas: dict[str, float | None] = {}
    ok = True
    for metric in sorted(recorded.keys() | reproduced.keys()):
        before, after = recorded.get(metric), reproduced.get(metric)
        if before is None:
            warnings.append(f"metric {metric} was reproduced but not recorded")
            deltas[metric] = None
            continue
        if after is None:
            deltas[metric] = None
            ok = False
            continue
        both_nan = math.isnan(before) and math.isnan(after)
        deltas[metric] = 0.0 if both_nan else after - before
        if not both_nan and not abs(after - before) <= tolerance:
            ok = False
    if not recorded:
        warnings.append("no metrics were recorded: only that the code runs was checked")
    return deltas, ok


def _environment_changes(
    mv: ModelVersion, artifacts: dict[str, bytes], found: dict[str, Any]
) -> list[str]:
    from jupyreg.lineage.capturing import PACKAGES_ARTIFACT

    changes = []
    python = (mv.lineage.get("environment") or {}).get("python")
    if python and python != found.get("python"):
        changes.append(f"python {python} -> {found.get('python')}")
    if PACKAGES_ARTIFACT in artifacts:
        before = _pins(artifacts[PACKAGES_ARTIFACT].decode().splitlines())
        after = _pins(found.get("packages") or [])
        differ = sorted(
            f"{n} {before.get(n) or '(none)'} -> {after.get(n) or '(none)'}"
            for n in before.keys() | after.keys()
            if before.get(n) != after.get(n)
        )
        if differ:
            more = f", and {len(differ) - _LISTED} more" if len(differ) > _LISTED else ""
            changes.append("packages: " + ", ".join(differ[:_LISTED]) + more)
    gpu = _gpu(mv.lineage.get("hardware") or {})
    if gpu != found.get("gpu"):
        changes.append(f"gpu {gpu} -> {found.get('gpu')}")
    return changes


def _pins(lines: list[str]) -> dict[str, str]:
    return {n: v for n, _, v in (line.partition("==") for line in lines) if n.strip()}


def _gpu(hardware: dict[str, Any]) -> str | None:
    names = sorted({g.get("name") for g in hardware.get("gpus") or () if g.get("name")})
    fields = {"gpu.count": hardware.get("gpu_count"), "gpu.name": ", ".join(names) or None}
    return tags.gpu_summary(fields)


def _keep_notebook(
    store: Store, mv: ModelVersion, executed: Path, reproduction_id: str, warnings: list[str]
) -> str | None:
    """The executed notebook as a run artifact; its ``runs:/`` URI."""
    named = executed.with_name(f"{reproduction_id}.ipynb")
    executed.rename(named)
    try:
        with store.translated(f"keeping the executed notebook of {mv.name} v{mv.version}"):
            store.client.log_artifact(str(mv.run_id), str(named), ARTIFACT_DIR)
    except RegistryError as exc:
        warnings.append(f"the executed notebook was not kept: {exc}")
        return None
    return f"runs:/{mv.run_id}/{ARTIFACT_DIR}/{named.name}"


def _keep_outcome(registry: Registry, result: Reproduction, ran: str) -> str | None:
    """The reproduction kept on the version (stamped with who kept it, and when, where it
    is written: by a jupyreg server, the authenticated user); its id, or None and a
    warning where it could not be kept."""
    record = {
        "ok": result.ok,
        "tolerance": result.tolerance,
        "recorded": result.recorded,
        "reproduced": result.reproduced,
        "deltas": result.deltas,
        "environment": result.environment,
        "warnings": result.warnings,
        "notebook_uri": result.notebook_uri,
        "ran": ran,
        "sandbox": result.sandbox,
    }
    try:
        return registry.keep_reproduction(result.name, result.version, record)
    except RegistryError as exc:
        result.warnings.append(f"the outcome was not kept on the version: {exc}")
        return None
