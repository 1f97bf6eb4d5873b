"""One job model: list, show, watch, cancel and retry work alike for every kind; a cancel
is durable and a retry never brings back cancelled units unless asked."""

from __future__ import annotations

import json

from genejobs.worker import inbox
from tests.conftest import run, sql, wait_until
from tests.test_importance_jobs import start_job, wait_job


def test_a_cancelled_job_stays_cancelled_unless_asked(tissue):
    job_id = start_job(tissue, "--model", "ada", "--runs", "40")
    wait_until(lambda: inbox.progress(job_id).get("done", 0) >= 1, 120, 0.1, "a first run")
    assert "cancelled" in run("jobs", "cancel", job_id).output
    # The cancel is in the results file, not only a Redis flag: even with the
    # flag gone, tasks still queued record nothing.
    inbox.client().delete(inbox.CANCEL_PREFIX + job_id)
    refused = run("jobs", "retry", job_id, ok=False)
    assert refused.exit_code == 2 and "--cancelled" in refused.stderr
    wait_until(lambda: inbox.client().llen(inbox.COMPUTE_QUEUE) == 0, 120, what="the queue")
    wait_until(lambda: not sql(f"SELECT 1 FROM runs WHERE job_id = '{job_id}' "
                               "AND status = 'pending'"), 60, what="no pending run")  # fmt: skip
    counts = dict(sql(f"SELECT status, count(*) FROM runs WHERE job_id = '{job_id}' GROUP BY 1"))
    assert counts.get("cancelled", 0) > 0 and sum(counts.values()) == 40
    shown = json.loads(run("jobs", "show", job_id, "--format", "json").output)
    assert shown["status"] == "cancelled" and shown["cancelled"] == counts["cancelled"]

    again = run("jobs", "retry", job_id, "--cancelled", "--wait")
    assert f"sent {counts['cancelled']} units again" in again.output
    assert "40 done, 0 failed, 0 cancelled" in again.output


def test_cancel_and_retry_a_shap_job(stack, tmp_path):
    table = tmp_path / "l2g.parquet"
    run("datasets", "synth-l2g", "--rows", "6000", "--out", str(table),
        "--train-models", str(tmp_path / "models"), "--trees", "200", "--depth", "6")  # fmt: skip
    job_id = run(
        "shap", "run", str(table), "--partition-col", "chrom",
        "--manifest", str(tmp_path / "models" / "models.tsv"), "--shard-rows", "100", "--no-wait",
    ).output.strip().splitlines()[-1]  # fmt: skip
    assert "cancelled" in run("jobs", "cancel", job_id).output
    watched = run("jobs", "watch", job_id)
    assert f"job {job_id}:" in watched.output and " cancelled" in watched.output
    listed = {j["job_id"]: j for j in json.loads(run("jobs", "list", "--format", "json").output)}
    assert listed[job_id]["kind"] == "shap" and listed[job_id]["status"] == "cancelled"
    done = sql(f"SELECT count(*) FILTER (WHERE status = 'done'), count(*) FROM shap_shards "
               f"WHERE job_id = '{job_id}'")[0]  # fmt: skip
    # Shards computed before the cancel are ingested, each row once.
    rows = sql(f"SELECT count(*), count(DISTINCT row_id) FROM shap_rows WHERE job_id = '{job_id}'")
    assert rows[0][0] == rows[0][1]
    again = run("jobs", "retry", job_id, "--cancelled", "--wait")
    assert f"{done[1]} done, 0 failed, 0 cancelled" in again.output
    n_rows = sql(f"SELECT n_rows FROM shap_jobs WHERE job_id = '{job_id}'")[0][0]
    assert sql(f"SELECT count(*) FROM shap_rows WHERE job_id = '{job_id}'")[0][0] == n_rows


def test_show_and_watch_a_finished_search_and_evaluation(stack, tissue):
    search = run("search", tissue, "--models", "lr,dt", "--folds", "2", "--wait")
    search_id = search.output.split("job ")[1].split(":")[0]
    shown = json.loads(run("jobs", "show", search_id, "--format", "json").output)
    assert shown["kind"] == "search" and shown["units"] == 4 and shown["done"] == 4
    assert [m["rank"] for m in shown["leaderboard_top"]] == [1, 2]
    assert "saved as models/" in shown["best_model"]
    evaluation = run("evaluate", f"{search_id}-dt", "--split-seeds", "3", "--no-wait")
    eval_id = evaluation.output.strip().splitlines()[-1]
    assert "3 done, 0 failed" in run("jobs", "watch", eval_id).output
    shown = json.loads(run("jobs", "show", eval_id, "--format", "json").output)
    assert shown["kind"] == "evaluate" and 0 < shown["mean_accuracy"] <= 1


def test_cancel_of_a_search_cancels_its_folds_and_models(stack, tissue):
    search_id = (
        run("search", tissue, "--models", "gbc,ada", "--folds", "3", "--no-wait")
        .output.strip()
        .splitlines()[-1]
    )
    wait_until(lambda: inbox.progress(search_id).get("done", 0) >= 1, 120, 0.1, "a first fold")
    run("jobs", "cancel", search_id)
    counts = wait_job(search_id)
    assert counts["cancelled"] > 0 and counts["pending"] == 0
    models = dict(sql(f"SELECT model, status FROM model_runs WHERE job_id = '{search_id}'"))
    assert set(models.values()) == {"cancelled"}


def test_unknown_job(stack):
    for verb in ("show", "watch", "cancel", "retry"):
        result = run("jobs", verb, "imp-nosuchjob", ok=False)
        assert result.exit_code == 2 and "unknown job 'imp-nosuchjob'" in result.stderr
        assert "Traceback" not in result.output


def test_retry_of_a_cancelled_job_runs_its_cancelled_units(tissue):
    job_id = start_job(tissue, "--model", "ada", "--runs", "30")
    wait_until(lambda: inbox.progress(job_id).get("done", 0) >= 1, 120, 0.1, "a first run")
    run("jobs", "cancel", job_id)
    wait_job(job_id)
    cancelled = sql(f"SELECT count(*) FROM runs WHERE job_id = '{job_id}' AND status = 'cancelled'")
    assert cancelled[0][0] > 0
    # The cancel flag in Redis is lifted with the file's: the units run, and the job ends.
    again = run("jobs", "retry", job_id, "--cancelled", "--wait")
    assert "30 done, 0 failed, 0 cancelled" in again.output
    assert not inbox.client().exists(inbox.CANCEL_PREFIX + job_id)
    shown = json.loads(run("jobs", "show", job_id, "--format", "json").output)
    assert shown["status"] == "done"


def test_cancelling_a_finished_job_leaves_it_done(tissue):
    from genejobs import api

    job_id = run("importance", tissue, "--model", "lr", "--runs", "3", "--wait").output
    job_id = job_id.split("job ")[1].split(":")[0]
    assert "already finished, nothing to cancel" in run("jobs", "cancel", job_id).output
    assert api.job(job_id).cancel() == 0
    shown = json.loads(run("jobs", "show", job_id, "--format", "json").output)
    assert shown["status"] == "done" and shown["done"] == 3
    assert not inbox.client().exists(inbox.CANCEL_PREFIX + job_id)


def test_delete_refuses_a_running_job_then_removes_every_row(tissue):
    job_id = start_job(tissue, "--model", "ada", "--runs", "20")
    refused = run("jobs", "delete", job_id, ok=False)
    assert refused.exit_code == 2 and "cancel it first" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    run("jobs", "cancel", job_id)
    wait_job(job_id)
    assert "deleted" in run("jobs", "delete", job_id).output
    for table in ("jobs", "runs", "importances"):
        assert sql(f"SELECT count(*) FROM {table} WHERE job_id = '{job_id}'") == [(0,)], table
    gone = run("jobs", "show", job_id, ok=False)
    assert gone.exit_code == 2 and f"unknown job '{job_id}'" in gone.stderr
    assert not inbox.client().exists(inbox.PROGRESS_PREFIX + job_id)
    assert run("jobs", "delete", job_id, ok=False).exit_code == 2


def test_a_deleted_jobs_seeds_may_be_used_again(tissue):
    first = run("importance", tissue, "--model", "dt", "--seeds", "71,72", "--wait").output
    first_id = first.split("job ")[1].split(":")[0]
    reused = run("importance", tissue, "--model", "dt", "--seeds", "71", "--no-wait", ok=False)
    assert reused.exit_code == 2
    run("jobs", "delete", first_id)
    again = run("importance", tissue, "--model", "dt", "--seeds", "71,72", "--wait")
    assert "2 done, 0 failed" in again.output
    assert sql("SELECT count(*) FROM runs WHERE model = 'dt' AND seed IN (71, 72)") == [(2,)]


def test_a_cancel_forgets_the_units_not_sent_yet():
    from genejobs.units import run_unit
    from genejobs.worker.dispatch import Dispatcher

    dispatcher = Dispatcher(None, 5.0)
    units = [run_unit("imp-a", "d", "p", "lr", s, 0.3, "split", 1) for s in range(1, 301)]
    units += [run_unit("imp-b", "d", "p", "lr", s, 0.3, "split", 1) for s in range(1, 4)]
    assert dispatcher.send_new(units) == 303
    assert dispatcher.drop("imp-a") == 300
    assert [u.job_id for u in dispatcher.outbox] == ["imp-b"] * 3
    assert dict(dispatcher.waiting) == {"imp-b": 3}
    # A new job's runs wait as seeds, made into units only as they are sent.
    made = []

    def make(seeds):
        made.extend(seeds)
        return [run_unit("imp-c", "d", "p", "lr", s, 0.3, "split", 1) for s in seeds]

    assert dispatcher.send_later("imp-c", list(range(1, 100_001)), make) == 100_000
    assert dispatcher.queued == 100_003 and not made
    assert dispatcher.drop("imp-c") == 100_000
    assert dispatcher.queued == 3 and dict(dispatcher.waiting) == {"imp-b": 3} and not made
