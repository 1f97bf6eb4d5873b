"""The layers point one way: base <- storage <- tasks <- worker <- api <- cli.

Every import of the project's own modules is read from the source, at the top
of a module or inside a function alike; an import that points up a layer, or
a loop of imports, fails here with the modules that make it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ("errors", "config", "contract", "catalog", "candidates", "channel")
# Floors, lowest first: a module may import its own floor and those below.
FLOORS = ["base", "storage", "tasks", "worker", "api", "cli"]


def _modules() -> dict[str, Path]:
    found = {}
    for folder in ("storage", "tasks", "worker", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(("genejobs", *parts)).removesuffix(".__init__")] = path
    for path in (ROOT / "genejobs").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


def floor(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "genejobs":
        return None
    if parts[1] in BASE:
        return "base"
    if parts[1] in ("storage", "tasks", "worker", "cli", "api"):
        return parts[1]
    return None


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, anywhere in it."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in named:
        # The longest prefix that is a module of the project.
        parts = name.split(".")
        for end in range(len(parts), 1, -1):
            candidate = ".".join(parts[:end])
            if candidate in modules:
                found.add(candidate)
                break
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


def test_every_import_points_down_or_sideways():
    graph = _graph()
    upward = []
    for source, targets in graph.items():
        if source == "genejobs":
            continue  # the package's lazy front: names from the API on first use
        here = floor(source)
        for target in targets:
            there = floor(target)
            if here and there and FLOORS.index(there) > FLOORS.index(here):
                upward.append(f"{source} ({here}) imports {target} ({there})")
    assert not upward, "imports that point up a layer:\n" + "\n".join(sorted(upward))


def test_no_loops_of_imports():
    graph = _graph()
    loops, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target == "genejobs":
                continue
            if state.get(target) == "open":
                loops.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not loops, "loops of imports:\n" + "\n".join(loops)


def test_the_checker_sees_an_upward_import(tmp_path):
    """A module of storage that imports the worker layer inside a function is caught."""
    module = tmp_path / "example.py"
    module.write_text("def f():\n    from genejobs.worker import inbox\n")
    found = imports(module, {"genejobs.worker.inbox": module})
    assert found == {"genejobs.worker.inbox"}
    assert FLOORS.index(floor("genejobs.worker.inbox")) > FLOORS.index(floor("genejobs.storage.db"))
