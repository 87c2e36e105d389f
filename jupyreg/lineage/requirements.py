"""Pinned requirements for a model, inferred in-process in milliseconds.

MLflow infers requirements by loading the model in a subprocess (~2 s). Here we pickle
the model into a sink that discards the bytes, note the module of every class and
function the pickle refers to, and map those modules to installed distributions by
reading the distributions' RECORD files (cached for the life of the process).
"""

from __future__ import annotations

import pickle
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import importlib.metadata as metadata

_IGNORED_TOP_LEVEL = frozenset({"__main__", "builtins", "jupyreg", "mlflow"})
_IGNORED_DISTRIBUTIONS = frozenset({"mlflow", "mlflow-skinny", "mlflow-tracing", "jupyreg"})

# Import path ("sklearn", "google.protobuf") -> names of the distributions that install it.
_providers: dict[str, frozenset[str]] = {}


def pinned_requirements(model: Any) -> list[str]:
    """``dist==version`` for every installed distribution needed to unpickle ``model``.

    Sorted and deduplicated; stdlib, ``__main__``, jupyreg and MLflow are left out
    (MLflow adds itself). A model that cannot be pickled falls back to the modules of
    its class hierarchy, plus whatever was seen before pickling failed.
    """
    if model is None:
        return []
    dists = _distributions(referenced_modules(model))
    pins = (_pin(dist) for dist in dists if _normalise(dist) not in _IGNORED_DISTRIBUTIONS)
    return sorted({pin for pin in pins if pin is not None})


def referenced_modules(model: Any) -> set[str]:
    """Dotted names of the third-party modules whose classes/functions ``model`` uses."""
    recorder = _ModuleRecorder()
    try:
        recorder.dump(model)
    except Exception:  # unpicklable models (hooks, open handles) are normal
        recorder.modules.update(_module_of(cls) for cls in type(model).__mro__)
    return {m for m in recorder.modules if m and _is_third_party(m)}


class _Discard:
    """A file-like sink: we only want the references, not the pickle bytes."""

    def write(self, data: bytes) -> int:
        return len(data)


class _ModuleRecorder(pickle.Pickler):
    """A pickler that records the module of every object's type and every global."""

    def __init__(self) -> None:
        # Protocol 5 with a buffer callback keeps large array buffers out of band: no copy.
        super().__init__(_Discard(), protocol=5, buffer_callback=lambda _buffer: None)
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        self.modules.add(_module_of(type(obj)))
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(qualname, str):  # a class or function, pickled by reference
            self.modules.add(_module_of(obj))
            if "<" in qualname:  # a lambda or local function: record it and keep walking
                return int, ()
        if _is_torch_tensor(obj):
            # A tensor's reduction serialises its whole storage; its type is all we need.
            return int, ()
        return NotImplemented


def _module_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else ""


def _is_torch_tensor(obj: Any) -> bool:
    return _module_of(type(obj)).startswith("torch") and hasattr(obj, "untyped_storage")


def _is_third_party(module: str) -> bool:
    top = module.partition(".")[0]
    return top not in _IGNORED_TOP_LEVEL and top not in sys.stdlib_module_names


def _distributions(modules: Iterable[str]) -> set[str]:
    """Distributions installing ``modules``: a name lookup first, one RECORD scan for the rest."""
    paths = {path for path in map(_import_path, modules) if path is not None}
    pending = {path for path in paths - _providers.keys() if not _resolve_by_name(path)}
    if pending:
        _resolve_by_scan(pending)
    return {dist for path in paths for dist in _providers[path]}


def _import_path(module: str) -> str | None:
    """The importable unit a distribution installs: the top-level package, or for a
    namespace package (``google``) its first subpackage. None for synthetic modules."""
    parts = module.split(".")
    top = sys.modules.get(parts[0])
    if top is None:
        return None
    if getattr(top, "__file__", None):
        return parts[0]
    if hasattr(top, "__path__") and len(parts) > 1:
        return ".".join(parts[:2])
    return None


def _resolve_by_name(path: str) -> bool:
    import importlib.metadata as metadata  # lazily: it costs ~15 ms to import

    name = path.rpartition(".")[2]
    for candidate in dict.fromkeys((name, name.replace("_", "-"))):
        try:
            dist = metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            continue
        if _installs(dist, path):
            _providers[path] = frozenset({dist.metadata["Name"]})
            return True
    return False


def _resolve_by_scan(paths: set[str]) -> None:
    import importlib.metadata as metadata

    found: dict[str, set[str]] = {path: set() for path in paths}
    for dist in metadata.distributions():
        for path in paths:
            if _installs(dist, path):
                found[path].add(dist.metadata["Name"])
    _providers.update((path, frozenset(dists)) for path, dists in found.items())


def _installs(dist: metadata.Distribution, path: str) -> bool:
    """Whether ``dist``'s RECORD lists the package dir or module file for ``path``."""
    record = dist.read_text("RECORD")
    if record is None:
        return False
    prefix = re.escape(path.replace(".", "/"))
    return re.search(rf"^{prefix}[/.]", record, re.MULTILINE) is not None


def _pin(dist_name: str) -> str | None:
    import importlib.metadata as metadata

    try:
        return f"{dist_name}=={metadata.version(dist_name)}"
    except metadata.PackageNotFoundError:
        return None


def _normalise(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()
