"""`genejobs up` on a machine that only runs the writer: Redis, the writer and the explorer,
no compute."""

from __future__ import annotations

import json

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
