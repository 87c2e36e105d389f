"""The layers of DESIGN.md §1 hold: no module imports "up", and there are no import circles
(lazy imports inside functions count; ``if TYPE_CHECKING:`` blocks do not)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jupyreg"
LAYERS = [
    # front ends: parse, call the facade, render
    (
        "front end",
        (
            "cli", "commands", "magics", "panels", "lab", "widgets", "server", "demo", "watch",
            "serving", "alerts", "runcontext", "__main__",
        ),
    ),
    ("facade", ("registry",)),
    (
        "services",
        (
            "backend", "queries", "frames", "registration", "admin", "webhooks", "serialize",
            "store", "compat", "flavors", "metrics", "settings", "identity", "workload",
            "card", "staleness", "search", "reproduce",
        ),
    ),
    ("core", ("lifecycle", "tags", "entities", "display", "errors", "lineage", "schema")),
]  # fmt: skip


def _layer(module: str) -> int:
    top = module.split(".")[1]
    return next(i for i, (_, names) in enumerate(LAYERS) if top in names)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, modules: set[str]) -> set[str]:
    """What a module imports: ``from pkg import sub`` counts as ``pkg.sub`` alone."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in modules else node.module)
    return {n for n in names if n.startswith("jupyreg.")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {i for i in _imports(path, set(modules)) if i in modules and i != name}
        for name, path in modules.items()
        if name != "jupyreg"
    }


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in _graph().items()
        for target in targets
        if target != "jupyreg" and _layer(target) < _layer(module)
    ]
    assert upward == []


def test_there_are_no_import_circles() -> None:
    graph = _graph()
    circles = []

    def visit(module: str, path: list[str]) -> None:
        for target in graph.get(module, ()):
            if target in path:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif len(path) < 12:
                visit(target, [*path, target])

    for module in graph:
        visit(module, [module])
    assert sorted(set(circles)) == []
