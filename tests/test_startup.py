"""Trivial commands start fast: `--version`, `--help` and `status` import no pandas, numpy,
DuckDB or Celery; commands are imported when they run."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from genejobs.cli.main import COMMANDS, cli
from tests.conftest import GENEJOBS, run

HEAVY = ("pandas", "numpy", "celery", "duckdb", "pyarrow", "sklearn", "scipy")


def imported_by(*args: str, env: dict | None = None) -> set[str]:
    """The top-level modules the installed `genejobs ARGS` imports (python -X importtime)."""
    result = subprocess.run(
        [GENEJOBS, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1", **(env or {})},
        timeout=60,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert lines, result.stderr
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("status", "--help")])
def test_trivial_commands_import_nothing_heavy(args):
    modules = imported_by(*args)
    assert "click" in modules
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_status_imports_nothing_heavy_before_it_finds_the_stack(tmp_path):
    from tests.conftest import free_port

    env = {
        "GENEJOBS_HOME": str(tmp_path),
        "GENEJOBS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "GENEJOBS_FLOWER_PORT": str(free_port()),
        "GENEJOBS_EXPLORER_PORT": str(free_port()),
    }
    modules = imported_by("status", env=env)
    assert "redis" in modules and not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_only_the_command_that_runs_is_imported():
    code = (
        "import sys; from genejobs.cli.main import cli; cli(['status', '--help'], "
        "prog_name='genejobs', standalone_mode=False); "
        "print(sorted(m for m in sys.modules if m.startswith('genejobs.cli.')))"
    )
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    expected = ["genejobs.cli.main", "genejobs.cli.output", "genejobs.cli.stack"]
    assert printed.strip().splitlines()[-1] == repr(expected)


def test_the_listed_help_is_each_commands_own():
    ctx = click.Context(cli)
    for name, (module, short_help) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.callback.__module__ == f"genejobs.cli.{module}"
        assert command.get_short_help_str(limit=10_000) == short_help, name
    every = {command.name for command in cli.commands.values()}
    assert every == set(COMMANDS)


def test_an_unknown_command_is_one_line():
    result = run("nosuch", ok=False)
    assert result.exit_code == 2 and "No such command 'nosuch'" in result.stderr
