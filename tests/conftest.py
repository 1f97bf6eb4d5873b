"""Shared fixtures: a real stack (bundled redis-server on a free port, a writer, compute
workers) in a temporary data dir, and helpers to run the CLI against it."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from genejobs.cli.main import cli
from genejobs.config import settings

REPO = Path(__file__).resolve().parents[1]
TISSUE = REPO / "tests" / "data" / "tissue_gene_expression.csv.gz"
GENEJOBS = str(Path(sys.executable).parent / "genejobs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str, ok: bool = True):
    """Run the CLI in-process; with ok=True, fail the test on a non-zero exit."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok and result.exit_code != 0:
        raise AssertionError(
            f"genejobs {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        )
    return result


def run_subprocess(*args: str, env: dict | None = None, timeout: float = 180):
    return subprocess.run(
        [GENEJOBS, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def wait_until(check, timeout: float = 120, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def stack_in(home: Path, **extra: str) -> Iterator[Path]:
    """A stack (`genejobs up`) in `home` on free ports, with `extra` settings; always taken down."""
    env = {
        "GENEJOBS_HOME": str(home),
        "GENEJOBS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "GENEJOBS_FLOWER_PORT": str(free_port()),
        "GENEJOBS_EXPLORER_PORT": str(free_port()),
        **extra,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        started = run_subprocess("up", "--workers", "2", "--no-flower", "--detach", timeout=240)
        assert started.returncode == 0, started.stdout + started.stderr
        yield home
    finally:
        run_subprocess("down")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A running stack for the whole session; stopped, by pid, at the end."""
    # A short visibility timeout, so a task of a killed worker comes back within
    # the test; workers renew the leases of the tasks they run.
    with stack_in(
        tmp_path_factory.mktemp("genejobs-home"),
        GENEJOBS_VISIBILITY_TIMEOUT="12",
        GENEJOBS_RESTORE_INTERVAL="1",
        GENEJOBS_LOCK_WAIT="60",
    ) as home:
        yield home


def add_tissue(name: str):
    """Register the tissue expression data (189 samples x 500 genes, 7 classes) as NAME."""
    return run(*f"datasets add {TISSUE} --label tissue --id-col sample_id --name {name}".split())


@pytest.fixture(scope="session")
def tissue(stack):
    """The tissue data, registered once as `tissue`."""
    add_tissue("tissue")
    return "tissue"


def frame_of(result) -> pd.DataFrame:
    """The rows a command printed with --format json."""
    return pd.read_json(io.StringIO(result.output))


def sql(query: str) -> list[tuple]:
    """Query the results file read-only, waiting for the writer like any reader."""
    from genejobs.api import reading

    with reading() as con:
        return con.execute(query).fetchall()


def job_done(job_id: str) -> dict:
    from genejobs.worker import inbox

    counts = inbox.progress(job_id)
    return counts if counts and counts.get("pending", 1) == 0 else {}


# Directories of the data dir that change by themselves (logs, pid files, Redis's log,
# and the views the writer publishes a moment after its commits).
_VOLATILE = {"logs", "run", "redis", "views"}


def snapshot() -> tuple[dict, list]:
    """Everything a command could have written: every table's row count, the data dir's files."""
    from genejobs.api import reading

    with reading() as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "ORDER BY table_name"
            ).fetchall()
        ]
        counts = dict(zip(tables, con.execute(
            "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables)
        ).fetchall()[0], strict=True))  # fmt: skip
    home = settings().home
    files = sorted(
        str(p.relative_to(home)) for p in home.rglob("*")
        if p.is_file() and p.relative_to(home).parts[0] not in _VOLATILE
        and not p.name.endswith(".wal")
    )  # fmt: skip
    return counts, files


def refused(*args: str, expect: str) -> str:
    """Run a command that must fail: one line on stderr, a non-zero exit, nothing written."""
    before = snapshot()
    result = run(*args, ok=False)
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert expect in lines[0], lines[0]
    assert snapshot() == before
    return lines[0]
