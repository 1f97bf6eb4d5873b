"""`genejobs up` on a machine that only runs the writer: Redis, the writer and the explorer,
no compute."""

from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import free_port, run_subprocess


def test_up_with_no_workers_starts_the_writer_alone(tmp_path):
    env = {
        "GENEJOBS_HOME": str(tmp_path),
        "GENEJOBS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "GENEJOBS_EXPLORER_PORT": str(free_port()),
    }
    try:
        started = run_subprocess("up", "--workers", "0", "--no-flower", "--detach", env=env)
        assert started.returncode == 0, started.stderr
        report = json.loads(run_subprocess("status", "--format", "json", env=env).stdout)
        assert report["writer"] and report["redis_pid"] and report["writer_pid"]
        assert report["compute_pid"] is None and report["compute_workers"] == []
        assert str(tmp_path / "views" / "genejobs.duckdb") == report["views"]
        # The explorer runs beside the writer, linked from status.
        assert report["explorer"] == f"http://127.0.0.1:{env['GENEJOBS_EXPLORER_PORT']}/"
        assert report["explorer_pid"]
    finally:
        run_subprocess("down", env=env)


def _listening() -> socket.socket:
    """Another program's server: a socket listening on a free port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


@pytest.mark.parametrize("taken", ["explorer", "flower", "redis"])
def test_up_refuses_a_port_another_program_holds_and_starts_nothing(tmp_path, taken):
    other = _listening()
    held = other.getsockname()[1]
    ports = {name: free_port() for name in ("explorer", "flower", "redis")}
    ports[taken] = held
    env = {
        "GENEJOBS_HOME": str(tmp_path),
        "GENEJOBS_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "GENEJOBS_EXPLORER_PORT": str(ports["explorer"]),
        "GENEJOBS_FLOWER_PORT": str(ports["flower"]),
    }
    try:
        started = run_subprocess("up", "--workers", "0", "--detach", env=env, timeout=120)
        lines = started.stderr.strip().splitlines()
        assert started.returncode == 3 and len(lines) == 1, started.stdout + started.stderr
        assert f"port {held}" in lines[0] and "taken by another program" in lines[0]
        assert "started" not in started.stdout
        report = json.loads(run_subprocess("status", "--format", "json", env=env).stdout)
        assert not any(report[f"{name}_pid"] for name in ("redis", "writer", "explorer"))
    finally:
        other.close()
        run_subprocess("down", env=env)
