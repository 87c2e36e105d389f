"""Library code leaves the process environment alone: a lab server or a kernel runs
requests on threads, and the environment is the whole process's. Only a process entry
point sets its own (the CLI's ``main``, a launcher that then becomes the server)."""

from __future__ import annotations

import ast
from pathlib import Path

JUPYREG = Path(__file__).resolve().parents[1] / "jupyreg"
ENTRY_POINTS = {
    "cli.py": "main sets MLflow's retry and logging defaults for its own process",
    "server/launch.py": "hands mlflow's CLI, which it then runs in this process, its settings",
    "serving/supervisor.py": "`jupyreg serve` hands its uvicorn worker processes their config",
}
MUTATORS = {"setdefault", "update", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def _mutations(tree: ast.AST) -> list[int]:
    """Lines that change ``os.environ`` (item assignment or deletion, a mutating method)
    or call ``os.putenv``/``os.unsetenv``."""

    def is_environ(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            if any(isinstance(t, ast.Subscript) and is_environ(t.value) for t in targets):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in MUTATORS and is_environ(node.func.value):
                lines.append(node.lineno)
            if node.func.attr in ("putenv", "unsetenv"):
                lines.append(node.lineno)
    return sorted(lines)


def test_only_process_entry_points_change_the_environment() -> None:
    found = {}
    for path in sorted(JUPYREG.rglob("*.py")):
        relative = path.relative_to(JUPYREG).as_posix()
        lines = _mutations(ast.parse(path.read_text(encoding="utf-8")))
        if lines and relative not in ENTRY_POINTS:
            found[relative] = lines
    assert found == {}, f"library code changes os.environ: {found}"


def test_the_check_finds_each_kind_of_change() -> None:
    code = (
        "import os\nos.environ['A'] = '1'\nos.environ.setdefault('B', '1')\n"
        "del os.environ['C']\nos.putenv('D', '1')\nos.environ.get('E')\n"
    )
    assert _mutations(ast.parse(code)) == [2, 3, 4, 5]
