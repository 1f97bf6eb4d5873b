"""Flower, started by `genejobs up`, lists a job's tasks through its HTTP API."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest

from genejobs.config import settings
from genejobs.worker.stack import running, stop
from tests.conftest import job_done, run, run_subprocess, wait_until


def flower_tasks(port: int) -> dict:
    from genejobs.worker.stack import _flower_request

    url = f"http://127.0.0.1:{port}/api/tasks?limit=5000"
    with urllib.request.urlopen(_flower_request(url), timeout=5) as response:
        return json.load(response)


def _assert_flower_asks_for_credentials(port: int) -> None:
    credentials = settings().flower_credentials_file
    assert credentials.stat().st_mode & 0o777 == 0o600
    for path in ("/", "/api/tasks", "/api/workers", "/metrics"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert refused.value.code == 401, path
    # With the credentials the metrics answer (Prometheus text).
    from genejobs.worker.stack import _flower_request

    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(_flower_request(url), timeout=5) as response:
        assert response.status == 200 and b"flower_" in response.read()


def test_flower_lists_the_tasks_of_a_job(tissue):
    port = int(os.environ["GENEJOBS_FLOWER_PORT"])
    started = run_subprocess("up", "--workers", "2", "--detach")
    assert started.returncode == 0, started.stderr
    assert "started Flower" in started.stdout and "redis" not in started.stdout
    assert str(settings().flower_credentials_file) in started.stdout
    try:
        _assert_flower_asks_for_credentials(port)
        assert json.loads(run("status", "--format", "json").output)["flower"]
        result = run("importance", tissue, "--model", "lr", "--seeds", "101,202,303", "--no-wait")
        job_id = result.output.strip().splitlines()[-1]
        wait_until(lambda: job_done(job_id), 120, what="the job")

        def listed():
            tasks = [
                t
                for t in flower_tasks(port).values()
                if job_id in str(t.get("kwargs") or "") and t.get("state") == "SUCCESS"
            ]
            return tasks if len(tasks) == 3 else None

        try:
            tasks = wait_until(listed, 120, 0.5, "Flower to list the job's three tasks")
        except AssertionError as exc:
            seen = {k: (t.get("name"), t.get("state")) for k, t in flower_tasks(port).items()}
            log = (settings().logs_dir / "flower.log").read_text()[-3000:]
            raise AssertionError(f"{exc}; Flower lists {seen}; its log ends:\n{log}") from None
        # Every task carries its job id and seed; its name is the readable one the client
        # sent, or, when Flower took the worker's event first (seen under load), the
        # registered task name.
        by_seed = {s: [t for t in tasks if f"'seed': {s}" in t["kwargs"]] for s in (101, 202, 303)}
        assert all(len(found) == 1 for found in by_seed.values()), by_seed
        for seed, (task,) in by_seed.items():
            assert task["name"] in (
                f"importance lr seed={seed} job={job_id}",
                "genejobs.importance_run",
            )
        assert any(t["name"].startswith("importance lr seed=") for t in tasks)
    finally:
        stop(["flower"])
    assert running(settings(), "flower") is None
