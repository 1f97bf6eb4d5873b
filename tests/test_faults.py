"""Faults with real processes: for each job kind, SIGKILL a worker child, the worker
parent, the writer, or Redis mid-job, then `genejobs up --detach` where the fault
killed something, and count units: every unit final exactly once, no manual retry.

The stack here is the module's own (its own Redis, data dir and writer), so the
kills touch nothing the other tests use. Its visibility timeout is 6 s: the
time a dead worker's tasks wait before they run elsewhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from genejobs.config import settings
from genejobs.contract import Ping, PlanImportance
from genejobs.errors import ServiceUnavailable
from genejobs.worker import inbox, writer_lock
from genejobs.worker.stack import running
from tests.conftest import TISSUE, run, run_subprocess, sql, stack_in, wait_until

RECOVERY_LIMIT = 60.0  # seconds from the fault (or the restart) to every unit final
ENV = {
    "GENEJOBS_VISIBILITY_TIMEOUT": "6",
    "GENEJOBS_RESTORE_INTERVAL": "1",
    "GENEJOBS_LOCK_WAIT": "60",
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """A stack of its own, with the tissue data, a search to evaluate, and an L2G table."""
    with stack_in(tmp_path_factory.mktemp("faults-home"), **ENV) as home:
        yield prepare(home)


def prepare(home: Path) -> dict:
    """Register the tissue data, search it (for `evaluate`), make an L2G table and its models."""
    run(*f"datasets add {TISSUE} --label tissue --id-col sample_id --name tissue".split())
    search = run("search", "tissue", "--models", "lr,ada", "--folds", "3", "--wait")
    search_id = search.output.split("job ")[1].split(":")[0]
    folder = home / "l2g"
    run("datasets", "synth-l2g", "--rows", "16000", "--out", str(folder / "l2g.parquet"),
        "--train-models", str(folder / "models"), "--trees", "300", "--depth", "6")  # fmt: skip
    return {"ada_model": f"{search_id}-ada", "l2g": folder}


def up() -> float:
    """`genejobs up --detach` as a user runs it; return when it returned."""
    started = run_subprocess("up", "--workers", "2", "--no-flower", "--detach", timeout=240)
    assert started.returncode == 0, started.stdout + started.stderr
    return time.monotonic()


# one job of each kind, started without waiting ------------------------------------------


def start(kind: str, faulty: dict) -> str:
    if kind == "importance":
        args = ["importance", "tissue", "--model", "ada", "--runs", "40"]
    elif kind == "packed":  # short fits: several runs to a task
        args = ["importance", "tissue", "--model", "lr", "--runs", "300"]
    elif kind == "search":
        args = ["search", "tissue", "--models", "ada,rf,dt,ridge", "--folds", "5"]
    elif kind == "evaluate":
        args = ["evaluate", faulty["ada_model"], "--split-seeds", "40"]
    else:
        folder = faulty["l2g"]
        args = ["shap", "run", str(folder / "l2g.parquet"), "--partition-col", "chrom",
                "--manifest", str(folder / "models" / "models.tsv"),
                "--id-cols", "study_id,locus_id,gene_id", "--shard-rows", "400"]  # fmt: skip
    return run(*args, "--no-wait").output.strip().splitlines()[-1]


def progress(job_id: str) -> dict:
    return inbox.progress(job_id) if _redis_up() else {}


def _redis_up() -> bool:
    try:
        return bool(inbox.client().ping())
    except Exception:
        return False


def units(job_id: str) -> dict[str, int]:
    """The job's units by status, read from the results file."""
    table = {"imp": "runs", "srch": "search_folds", "eval": "test_results", "shap": "shap_shards"}
    name = table[job_id.split("-")[0]]
    return dict(sql(f"SELECT status, count(*) FROM {name} WHERE job_id = '{job_id}' GROUP BY 1"))


def final(job_id: str) -> dict | None:
    counts = units(job_id)
    if counts.get("pending", 0):
        return None
    if job_id.startswith("srch-"):
        # A search ends when its best model is saved (or failed to save).
        saved = sql(
            f"SELECT count(*) FROM model_runs WHERE job_id = '{job_id}' AND best "
            "AND (artifact_sha256 IS NOT NULL OR finalize_error IS NOT NULL)"
        )[0][0]
        if not saved:
            return None
    return counts


# the faults ------------------------------------------------------------------------------


def kill_child() -> None:
    parent = running(settings(), "compute")
    children = psutil.Process(parent.pid).children()
    assert children, "the compute worker has no pool processes"
    os.kill(children[0].pid, signal.SIGKILL)


def kill_component(name: str):
    def kill() -> None:
        proc = running(settings(), name)
        assert proc is not None, f"{name} is not running"
        os.killpg(proc.pid, signal.SIGKILL)
        wait_until(lambda: not proc.alive(), 10, what=f"{name} to die")

    return kill


FAULTS = {
    "worker-child": (kill_child, False),
    "worker-parent": (kill_component("compute"), True),
    "writer": (kill_component("writer"), True),
    "redis": (kill_component("redis"), True),
}
KINDS = ("importance", "packed", "search", "evaluate", "shap")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_unit_ends_once_after_a_fault(faulty, kind, fault, record_property):
    kill, restart = FAULTS[fault]
    job_id = start(kind, faulty)
    total = sum(units(job_id).values())
    # SHAP shards wait in the spool (`spooled`) before they count as done.
    started = lambda: sum(progress(job_id).get(k, 0) for k in ("done", "spooled")) >= 2  # noqa: E731
    wait_until(started, 120, 0.05, "the first units")
    at_kill = progress(job_id)
    kill()
    faulted = time.monotonic()
    assert at_kill.get("pending", 0) > 0, f"the job ended before the fault: {at_kill}"
    recovered_from = up() if restart else faulted
    counts = wait_until(lambda: final(job_id), RECOVERY_LIMIT + 60, 0.25, f"job {job_id}")
    recovery = time.monotonic() - recovered_from
    record_property("recovery_s", round(recovery, 1))
    print(f"\n{kind:10s} {fault:13s} units {total:3d}  recovered in {recovery:5.1f} s", end="")
    assert counts == {"done": total}, counts
    assert recovery < RECOVERY_LIMIT
    assert_recorded_once(job_id, total)
    assert inbox.client().llen(inbox.DEAD_LETTERS) == 0


def assert_recorded_once(job_id: str, total: int) -> None:
    """No unit's results twice: seeds unique, importance rows only of done runs, rows per shard."""
    if job_id.startswith("imp-"):
        seeds = sql(f"SELECT count(*), count(DISTINCT seed) FROM runs WHERE job_id = '{job_id}'")
        assert seeds == [(total, total)]
        rows = sql(f"""SELECT count(*), count(DISTINCT (i.seed, i.gene)),
                              count(*) FILTER (WHERE r.status <> 'done')
                       FROM importances i JOIN runs r USING (dataset_id, model, seed)
                       WHERE i.job_id = '{job_id}'""")[0]  # fmt: skip
        assert rows[0] == rows[1] and rows[2] == 0, rows
    elif job_id.startswith("srch-"):
        ranked = sql(f"SELECT count(*), count(DISTINCT rank) FROM model_runs "
                     f"WHERE job_id = '{job_id}' AND status = 'done'")[0]  # fmt: skip
        assert ranked[0] == ranked[1] == 4
    elif job_id.startswith("eval-"):
        tests = sql(f"SELECT count(*), count(DISTINCT split_seed) FROM test_results "
                    f"WHERE job_id = '{job_id}'")  # fmt: skip
        assert tests == [(total, total)]
    else:
        n_rows, n_features = sql(
            f"SELECT n_rows, n_features FROM shap_jobs WHERE job_id = '{job_id}'"
        )[0]
        stored = sql(
            f"SELECT (SELECT count(*) FROM shap_rows WHERE job_id = '{job_id}'), "
            f"(SELECT count(*) FROM shap_values WHERE job_id = '{job_id}'), "
            f"(SELECT count(DISTINCT row_id) FROM shap_rows WHERE job_id = '{job_id}')"
        )
        assert stored == [(n_rows, n_rows * n_features, n_rows)]  # fmt: skip


# the writer and its lock -----------------------------------------------------------------


def _jobs_count() -> int:
    return sql("SELECT count(*) FROM jobs")[0][0]


def test_a_request_while_the_writer_is_dead_fails_at_once_and_leaves_no_job(faulty):
    kill_component("writer")()
    status = json.loads(run("status", "--format", "json").output)
    assert status["writer"] is False and status["writer_pid"] is None
    before = _jobs_count()
    started = time.monotonic()
    result = run("importance", "tissue", "--model", "lr", "--runs", "5", "--no-wait", ok=False)
    assert result.exit_code == 3 and "writer is not running" in result.stderr
    assert time.monotonic() - started < 5
    up()
    assert inbox.request(Ping())["writer"]
    assert _jobs_count() == before


def _writer_connections() -> list:
    return [c for c in inbox.client().client_list() if c["name"].startswith("genejobs-writer:")]


def test_a_request_no_writer_took_is_withdrawn(faulty):
    # The lock names a writer on another machine (its pid cannot be checked
    # from here) that has stopped: nothing takes the request.
    kill_component("writer")()
    inbox.client().set(writer_lock.WRITER_LOCK, "elsewhere:1:gone", px=writer_lock.LOCK_MS)
    # A killed process's socket can linger a moment; until it closes, Redis may
    # still hand it a message.
    wait_until(lambda: not _writer_connections(), 30, what="the writer's connections to close")
    with pytest.raises(ServiceUnavailable, match="nothing was done"):
        inbox.request(Ping(), timeout=2)
    assert inbox.client().llen(inbox.INBOX) == 0
    inbox.client().delete(writer_lock.WRITER_LOCK)
    up()


def test_a_request_a_stalled_writer_took_is_applied_when_it_resumes(faulty):
    writer = running(settings(), "writer")
    before = _jobs_count()
    os.kill(writer.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ServiceUnavailable, match="will be applied when a writer runs"):
            inbox.request(
                PlanImportance(job_id="imp-stalled", dataset="tissue",
                 model="dummy", runs=3, test_size=0.3, seed_max=10**9),
                timeout=2,
            )  # fmt: skip
    finally:
        os.kill(writer.pid, signal.SIGCONT)
    assert wait_until(lambda: final("imp-stalled"), 60, 0.25, "the job") == {"done": 3}
    assert _jobs_count() == before + 1


def test_a_second_writer_refuses_to_start(faulty):
    second = subprocess.run(
        [sys.executable, "-m", "genejobs.worker.writer"], capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1 and "another writer is running" in second.stderr


def test_a_writer_that_lost_its_lock_stops_and_up_replaces_it(faulty):
    writer = running(settings(), "writer")
    inbox.client().set(writer_lock.WRITER_LOCK, "elsewhere:1:stolen", px=writer_lock.LOCK_MS)
    wait_until(lambda: not writer.alive(), 15, what="the writer to stop")
    log = (settings().logs_dir / "writer.log").read_text()
    assert "the writer lock is held by elsewhere:1:stolen now" in log
    inbox.client().delete(writer_lock.WRITER_LOCK)
    up()
    job_id = start("importance", faulty)
    assert wait_until(lambda: final(job_id), 120, 0.25, f"job {job_id}") == {"done": 40}


def test_a_writer_named_out_of_the_results_file_commits_nothing(faulty):
    # As if a second writer had claimed the file while this one stalled: the
    # fence row names another writer, and this one's next transaction refuses.
    from genejobs.storage.db import connect
    from genejobs.worker.writer import LockLost, Writer

    writer = Writer()
    writer.lock.identity = writer.identity  # never acquired: only the fence is tested
    kill_component("writer")()
    writer._open()
    try:
        writer._claim_fence()
        writer.con.execute("UPDATE writer_fence SET holder = 'elsewhere:1:newer'")
        with pytest.raises(LockLost, match="names another writer"):
            writer._transaction(lambda: writer.con.execute("DELETE FROM runs"))
    finally:
        writer._close()
    with connect(settings().db_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    up()


def test_a_unit_whose_worker_dies_every_time_ends_failed(faulty):
    from genejobs.worker.tasks import MAX_DELIVERIES

    output = run("importance", "tissue", "--model", "ada", "--seeds", "4242", "--no-wait").output
    job_id = output.strip().splitlines()[-1]
    deliveries = inbox.DELIVERIES_PREFIX + f"{job_id}-4242"
    for attempt in range(1, MAX_DELIVERIES + 1):
        wait_until(
            lambda n=attempt: int(inbox.client().get(deliveries) or 0) >= n, 60, 0.01, "a delivery"
        )
        parent = running(settings(), "compute")
        for child in psutil.Process(parent.pid).children():
            os.kill(child.pid, signal.SIGKILL)
    assert wait_until(lambda: final(job_id), 60, 0.25, f"job {job_id}") == {"failed": 1}
    error = sql(f"SELECT error FROM runs WHERE job_id = '{job_id}'")[0][0]
    assert error.startswith("WorkerLost: the worker process running this unit died 5 times")


def test_units_the_broker_lost_are_sent_again(faulty):
    # As if Redis had lost its last writes: the job's tasks vanish from the
    # queue while no worker runs. The writer finds its pending units held
    # nowhere and sends them again; nobody retries by hand.
    from genejobs.worker.dispatch import broker_units
    from genejobs.worker.stack import stop

    stop(["compute"], progress=lambda _: None)
    job_id = run("importance", "tissue", "--model", "lr", "--runs", "12", "--no-wait").output
    job_id = job_id.strip().splitlines()[-1]
    # Short fits go out several to a task: count the units the queued tasks carry.
    queued = lambda: len(broker_units(inbox.client())) == 12  # noqa: E731
    wait_until(queued, 10, 0.05, "the tasks")
    inbox.client().delete(inbox.COMPUTE_QUEUE)
    up()
    assert wait_until(lambda: final(job_id), 60, 0.25, f"job {job_id}") == {"done": 12}
    log = (settings().logs_dir / "writer.log").read_text()
    assert "pending units were held nowhere by the broker; sending them again" in log


# runs several to a task ------------------------------------------------------------------


def queued_tasks() -> list[dict]:
    """The headers of the tasks waiting in the compute queue."""
    return [json.loads(raw)["headers"] for raw in inbox.client().lrange(inbox.COMPUTE_QUEUE, 0, -1)]


def all_queued(units: int) -> list[dict] | None:
    """The queued tasks' headers once they carry `units` units."""
    tasks = queued_tasks()
    return tasks if sum(len(t.get("units") or [t["id"]]) for t in tasks) == units else None


def plan_while_stopped(*args: str) -> str:
    """Stop the compute workers and plan a job: its tasks wait in the queue."""
    from genejobs.worker.stack import stop

    stop(["compute"], progress=lambda _: None)
    output = run(*args, "--no-wait").output
    return output.strip().splitlines()[-1]


def test_short_runs_go_out_several_to_a_task(faulty):
    job_id = plan_while_stopped("importance", "tissue", "--model", "dummy", "--runs", "64")
    seeds = sql(f"SELECT seed FROM runs WHERE job_id = '{job_id}'")
    wanted = {f"{job_id}-{seed}" for (seed,) in seeds}
    tasks = wait_until(lambda: all_queued(64), 10, 0.05, "the tasks")
    carried = [unit for task in tasks for unit in task.get("units") or [task["id"]]]
    assert sorted(carried) == sorted(wanted)
    # Packs of at most 1/16 of the runs waiting, shrinking to single runs at the end.
    # (The broker's list takes tasks in at its head: the first sent is last in it.)
    sent = [len(task.get("units") or [task["id"]]) for task in reversed(tasks)]
    assert sent[0] == 4 and sent[-1] == 1 and sent == sorted(sent, reverse=True)
    up()
    assert wait_until(lambda: final(job_id), 60, 0.25, f"job {job_id}") == {"done": 64}
    assert_recorded_once(job_id, 64)


def test_a_task_of_several_runs_delivered_again_sends_each_alone(faulty):
    # As if the task's process had died once: its next delivery splits it, so a
    # run that kills its process would fail alone, not take the others with it.
    job_id = plan_while_stopped("importance", "tissue", "--model", "dummy", "--runs", "64")
    tasks = wait_until(lambda: all_queued(64), 10, 0.05, "the tasks")
    task = max(tasks, key=lambda t: len(t.get("units") or []))
    inbox.client().set(inbox.DELIVERIES_PREFIX + task["id"], 1)
    up()
    assert wait_until(lambda: final(job_id), 60, 0.25, f"job {job_id}") == {"done": 64}
    assert_recorded_once(job_id, 64)
    alone = {
        key.decode().split(inbox.DELIVERIES_PREFIX, 1)[1].split("~")[0]
        for key in inbox.client().scan_iter(inbox.DELIVERIES_PREFIX + job_id + "-*~*")
    }
    assert set(task["units"]) <= alone


def test_a_task_of_runs_that_takes_long_hands_the_rest_back(faulty, monkeypatch):
    from genejobs.tasks import importance
    from genejobs.worker.tasks import CHANNEL

    job_id = plan_while_stopped("importance", "tissue", "--model", "dummy", "--runs", "24")
    tasks = wait_until(lambda: all_queued(24), 10, 0.05, "the tasks")
    dataset_id, path, test_size = sql(
        f"SELECT r.dataset_id, d.path, r.test_size FROM runs r JOIN datasets d "
        f"USING (dataset_id) WHERE r.job_id = '{job_id}' LIMIT 1"
    )[0]
    seeds = sorted(s for (s,) in sql(f"SELECT seed FROM runs WHERE job_id = '{job_id}'"))
    monkeypatch.setattr(importance, "HAND_BACK_FACTOR", 0.0)
    said = importance.execute_many(CHANNEL, job_id, dataset_id, path, "dummy", seeds, test_size)
    assert said == "1 runs done, 23 handed back"
    back = [t for t in queued_tasks() if t["id"] not in {task["id"] for task in tasks}]
    assert sorted(len(t["units"]) for t in back) == [11, 12]
    assert sorted(u for t in back for u in t["units"]) == sorted(f"{job_id}-{s}" for s in seeds[1:])
    up()
    assert wait_until(lambda: final(job_id), 60, 0.25, f"job {job_id}") == {"done": 24}
    assert_recorded_once(job_id, 24)
