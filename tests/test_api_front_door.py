"""One front door: the CLI reaches the service only through `genejobs.api`.

The CLI parses and prints; checking arguments, requests to the writer,
queries and waiting live in the api, once. These tests keep it so: no CLI
module imports the worker, storage or tasks layers, and the api's names,
its definition of a finished job and its bad-input lines hold without a stack.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from genejobs.api import Progress
from tests.conftest import REPO, run_subprocess

LAYERS = ("genejobs.worker", "genejobs.storage", "genejobs.tasks")
# The explorer is rewritten on its own; it moves behind the api in that work.
NOT_YET = {"explorer.py", "explorer_plots.py", "explorer"}


def cli_modules() -> list[Path]:
    cli = REPO / "cli"
    return sorted(
        path
        for path in cli.rglob("*.py")
        if path.relative_to(cli).parts[0] not in NOT_YET and "__pycache__" not in path.parts
    )


def imported(source: str, package: str) -> list[tuple[int, str]]:
    """Every module a module of `package` imports, at any depth (functions too): (line, name)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's own package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def package_of(path: Path) -> str:
    """cli/x.py is genejobs.cli's, cli/sub/x.py genejobs.cli.sub's."""
    return "genejobs." + ".".join(path.relative_to(REPO).parent.parts)


def test_the_cli_imports_no_layer_below_the_api():
    modules = cli_modules()
    assert {p.name for p in modules} >= {"main.py", "jobs.py", "shap.py", "runs.py"}
    crossing = [
        f"cli/{path.relative_to(REPO / 'cli')}:{line} imports {name}"
        for path in modules
        for line, name in imported(path.read_text(encoding="utf-8"), package_of(path))
        if name.startswith(LAYERS)
    ]
    assert not crossing, "\n".join(crossing)


def test_the_import_reader_sees_every_kind_of_import():
    source = (
        "import genejobs.worker.inbox\n"
        "from genejobs.storage import queries\n"
        "def f():\n"
        "    from ..tasks import shap_input\n"
        "    importlib.import_module('genejobs.worker.stack')\n"
    )
    names = {name for _, name in imported(source, "genejobs.cli")}
    assert names >= {
        "genejobs.worker.inbox",
        "genejobs.storage.queries",
        "genejobs.tasks.shap_input",
        "genejobs.worker.stack",
    }


def test_every_package_of_the_source_tree_is_installed():
    """A package that pyproject.toml does not list is missing from the wheel (Docker's install)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        "genejobs." + ".".join(init.parent.relative_to(REPO / "genejobs").parts)
        for init in (REPO / "genejobs").rglob("__init__.py")
        if init.parent != REPO / "genejobs"
    }
    assert on_disk <= listed, sorted(on_disk - listed)


def test_every_api_name_resolves_and_the_notebook_names_are_the_apis():
    import genejobs
    from genejobs import api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    for name in genejobs._API:
        assert getattr(genejobs, name) is getattr(api, name), name
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018


def test_importing_the_api_imports_nothing_heavy():
    code = (
        "import sys, genejobs.api as api; api.Progress; api.up; api.reading; "
        "print(sorted(m for m in ('pandas', 'numpy', 'duckdb', 'celery') if m in sys.modules))"
    )
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert printed.strip() == "[]"


@pytest.mark.parametrize(
    ("counts", "finished", "completed", "total"),
    [
        ({}, False, 0, 0),  # nothing published yet
        ({"pending": 3, "done": 1, "total": 4}, False, 1, 4),
        ({"pending": 0, "done": 2, "failed": 1, "cancelled": 1, "total": 4}, True, 4, 4),
        # computed SHAP shards wait in the spool: not stored yet, so not finished
        ({"pending": 0, "spooled": 2, "done": 1, "total": 3}, False, 3, 3),
        # a job run until stable grows by rounds
        ({"pending": 5, "done": 10, "total": 12}, False, 10, 15),
    ],
)
def test_one_definition_of_a_finished_job(counts, finished, completed, total):
    progress = Progress(counts)
    assert progress.finished is finished
    assert progress.completed == completed
    assert progress.total == total


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("search", "tissue", "--folds", "1"),
            "Invalid value for --folds: must be at least 2, got 1 (see `genejobs search --help`)",
        ),
        (
            ("search", "tissue", "--train-size", "1.5"),
            "Invalid value for --train-size: must be between 0 and 1, got 1.5 "
            "(see `genejobs search --help`)",
        ),
        (
            ("search", "tissue", "--models", "lr", "--exclude", "rf"),
            "Invalid value for --models/--exclude: give --models or --exclude, not both "
            "(see `genejobs search --help`)",
        ),
        (
            ("evaluate", "srch-x-lr", "--split-seed", "1", "--split-seeds", "3"),
            "give --split-seed or --split-seeds, not both (see `genejobs evaluate --help`)",
        ),
        (
            ("evaluate", "srch-x-lr", "--split-seeds", "0"),
            "Invalid value for --split-seeds: must be at least 1, got 0 "
            "(see `genejobs evaluate --help`)",
        ),
        (
            ("genes", "filter", "--dataset", "tissue", "--name", "x", "--min-count", "2"),
            "give --job, or both --dataset and --model (see `genejobs genes filter --help`)",
        ),
    ],
)
def test_the_apis_checks_read_as_clicks_own(tmp_path, args, line):
    """Checked by the api before any request: one line naming the option, no stack needed."""
    nowhere = {"GENEJOBS_HOME": str(tmp_path), "GENEJOBS_REDIS_URL": "redis://127.0.0.1:9/0"}
    result = run_subprocess(*args, env=nowhere)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"Error: {line}"]


def test_the_api_names_the_option_for_notebooks_too():
    from genejobs import api
    from genejobs.errors import InputError

    with pytest.raises(InputError, match=r"^--folds: must be at least 2, got 1$"):
        api.plan_search("tissue", folds=1)
