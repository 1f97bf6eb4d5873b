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


def _import_nodes(tree: ast.AST, typing_only: bool):
    """Import statements, each with whether it sits under `if TYPE_CHECKING:` (never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, typing_only
        guarded = (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        )
        yield from _import_nodes(node, typing_only or guarded)


def imports(path: Path, modules: dict[str, Path], run_only: bool = False) -> set[str]:
    """The project modules `path` imports, anywhere in it (`run_only`: not those imported
    for type checking alone). A submodule importing its own package counts for nothing."""
    named: set[str] = set()
    for node, typing_only in _import_nodes(ast.parse(path.read_text()), False):
        if run_only and typing_only:
            continue
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
            # `from package import submodule` imports the submodule; else the module.
            named.update(t for t in targets if t in modules)
            if not all(t in modules for t in targets):
                named.add(node.module)
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


def _graph(run_only: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        found = imports(path, modules, run_only) - {name}
        # A module's own packages load before it whatever it imports: no edge.
        graph[name] = {t for t in found if not name.startswith(t + ".")}
    return graph


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
    graph = _graph(run_only=True)
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
