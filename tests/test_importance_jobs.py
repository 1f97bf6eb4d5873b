"""Seeded importance jobs through the real stack: Redis, compute workers, the writer, DuckDB."""

from __future__ import annotations

import json
import os
import signal
import threading

import pandas as pd

from genejobs.config import settings
from genejobs.contract import Ping
from genejobs.worker import inbox
from genejobs.worker.stack import running
from tests.conftest import (
    add_tissue,
    frame_of,
    job_done,
    refused,
    run,
    run_subprocess,
    sql,
    wait_until,
)


def start_job(*args: str) -> str:
    return run("importance", *args, "--no-wait").output.strip().splitlines()[-1]


def wait_job(job_id: str, timeout: float = 180) -> dict:
    return wait_until(lambda: job_done(job_id), timeout, what=f"job {job_id}")


def test_a_job_records_distinct_seeds_and_its_gene_counts_match_the_rows(tissue):
    result = run("importance", tissue, "--model", "lr", "--runs", "30", "--wait")
    job_id = result.output.split("job ")[1].split(":")[0]
    assert "30 done, 0 failed" in result.output

    seeds = [
        r[0] for r in sql(f"SELECT seed FROM runs WHERE job_id = '{job_id}' AND status = 'done'")
    ]
    assert len(seeds) == 30 == len(set(seeds))
    assert all(1 <= s <= 4_000_000_000 for s in seeds)

    accuracy = sql(f"SELECT min(accuracy), max(accuracy) FROM runs WHERE job_id = '{job_id}'")
    assert 0.5 < accuracy[0][0] <= accuracy[0][1] <= 1

    rows = pd.DataFrame(
        sql(
            f"SELECT seed, gene, importance, coef, rank FROM importances WHERE job_id = '{job_id}'"
        ),
        columns=["seed", "gene", "importance", "coef", "rank"],
    )
    assert not rows.duplicated(["seed", "gene"]).any()
    expected = rows.groupby("gene").agg(
        runs=("seed", "nunique"),
        mean_importance=("importance", "mean"),
        mean_rank=("rank", "mean"),
        positive=("coef", lambda c: (c > 0).mean()),
    )

    counted = frame_of(run("genes", "count", "--job", job_id, "--format", "json"))
    counted = counted.set_index("gene").loc[expected.index]
    assert (counted["runs"] == expected["runs"]).all()
    assert (counted["fraction"] - expected["runs"] / 30).abs().max() < 1e-12
    assert (counted["mean_importance"] - expected["mean_importance"]).abs().max() < 1e-9
    assert (counted["mean_rank"] - expected["mean_rank"]).abs().max() < 1e-9
    assert (counted["positive_fraction"] - expected["positive"]).abs().max() < 1e-9

    top = frame_of(run("genes", "count", "--job", job_id, "--top", "5", "--format", "json"))
    assert top["runs"].sum() == 30 * 5
    # per class: every row keeps the 7 signed coefficients; one class counted directly
    classes = sql("SELECT classes FROM datasets WHERE name = 'tissue'")[0][0]
    coefs = pd.DataFrame(
        sql(f"SELECT seed, gene, class_coefs FROM importances WHERE job_id = '{job_id}'"),
        columns=["seed", "gene", "class_coefs"],
    )
    assert coefs["class_coefs"].map(len).eq(7).all()
    coefs["magnitude"] = coefs["class_coefs"].map(lambda c: abs(c[2]))
    top3 = coefs.sort_values("magnitude", ascending=False).groupby("seed").head(3)
    expected_top3 = top3["gene"].value_counts()
    counted = frame_of(
        run(
            "genes",
            "count",
            "--job",
            job_id,
            "--class",
            classes[2],
            "--top",
            "3",
            "--format",
            "json",
        )
    ).set_index("gene")["runs"]
    assert counted.sort_index().to_dict() == expected_top3.sort_index().to_dict()
    wrong = run("genes", "count", "--job", job_id, "--class", "no_such_class", ok=False)
    assert wrong.exit_code == 2 and "unknown class" in wrong.stderr


def test_explicit_seeds_are_used_once_and_refused_after(tissue):
    run("importance", tissue, "--model", "dt", "--seeds", "11,42,7", "--wait")
    again = run("importance", tissue, "--model", "dt", "--seeds", "5,42,7", "--no-wait", ok=False)
    assert again.exit_code != 0
    assert "already used" in again.stderr and "7, 42" in again.stderr
    assert sql("SELECT count(*) FROM runs WHERE model = 'dt' AND seed = 5")[0][0] == 0
    # another model on the same dataset may use the same seeds
    run("importance", tissue, "--model", "ridge", "--seeds", "42", "--wait")


def test_two_jobs_at_once_never_share_a_seed(tissue):
    # 2 x 40 seeds out of 100: without the database's guard they would collide.
    job_ids: list[str] = []

    def enqueue():
        result = run_subprocess(
            "importance", tissue, "--model", "svm", "--runs", "40", "--seed-max", "100", "--no-wait"
        )
        assert result.returncode == 0, result.stderr
        job_ids.append(result.stdout.strip().splitlines()[-1])

    threads = [threading.Thread(target=enqueue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for job_id in job_ids:
        wait_job(job_id)
    seeds = sql("SELECT seed, job_id FROM runs WHERE model = 'svm' AND status = 'done'")
    assert len(seeds) == 80
    assert len({s for s, _ in seeds}) == 80
    assert {j for _, j in seeds} == set(job_ids)
    full = run(
        "importance", tissue, "--model", "svm", "--runs", "21", "--seed-max", "100", ok=False
    )
    assert full.exit_code != 0 and "only 20 unused seeds remain" in full.stderr


def test_a_killed_worker_still_ends_with_every_seed_recorded_once(tissue):
    job_id = start_job(tissue, "--model", "ada", "--runs", "40")
    wait_until(lambda: inbox.progress(job_id).get("done", 0) >= 4, 120, 0.05, "the first runs")
    compute = running(settings(), "compute")
    os.killpg(compute.pid, signal.SIGKILL)
    wait_until(lambda: not compute.alive(), 10, what="the worker to die")
    done_at_kill = inbox.progress(job_id)["done"]
    assert done_at_kill < 40, "the job finished before the kill; make it longer"
    restarted = run_subprocess("up", "--workers", "2", "--no-flower", "--detach")
    assert restarted.returncode == 0, restarted.stderr
    counts = wait_job(job_id, timeout=240)
    assert counts["done"] == 40 and counts["failed"] == 0
    per_seed = sql(f"""SELECT r.seed, count(i.gene), count(DISTINCT i.gene)
                       FROM runs r JOIN importances i USING (dataset_id, model, seed)
                       WHERE r.job_id = '{job_id}' GROUP BY r.seed""")
    assert len(per_seed) == 40
    assert all(n == distinct for _, n, distinct in per_seed)


def test_a_repeated_result_changes_nothing_alone_or_in_a_batch(tissue):
    # Redelivery hands the writer copies of results it has recorded: one at a
    # time (a statement with parameters) or several at once (a joined frame).
    from genejobs.storage.datasets import load_matrix
    from genejobs.tasks.fit import fit_run, run_message

    result = run("importance", tissue, "--model", "lr", "--runs", "3", "--wait")
    job_id = result.output.split("job ")[1].split(":")[0]
    dataset_id, path = sql(
        f"SELECT dataset_id, d.path FROM jobs JOIN datasets d USING (dataset_id) "
        f"WHERE job_id = '{job_id}'"
    )[0]
    runs = sql(f"SELECT seed, test_size FROM runs WHERE job_id = '{job_id}' ORDER BY seed")
    matrix = load_matrix(settings().home / path)
    copies = [
        run_message(job_id, dataset_id, "lr", fit_run(matrix, "lr", seed, test_size)).encode()
        for seed, test_size in runs
    ]

    def state():
        return (
            sql(f"SELECT seed, status, attempts, accuracy FROM runs WHERE job_id = '{job_id}' "
                "ORDER BY seed"),
            sql(f"SELECT count(*), sum(importance) FROM importances WHERE job_id = '{job_id}'"),
        )  # fmt: skip

    before = state()
    assert [status for _, status, _, _ in before[0]] == ["done"] * 3 and before[1][0][0] > 0
    conn = inbox.client()
    conn.lpush(inbox.INBOX, copies[0])
    inbox.request(Ping())  # answered after every message pushed before it
    conn.lpush(inbox.INBOX, *copies, *copies)
    inbox.request(Ping())
    assert state() == before
    assert conn.llen(inbox.DEAD_LETTERS) == 0


def test_sql_reads_while_a_job_runs(tissue):
    # A job of several writer holds (the writer keeps the file up to 2 s at a time).
    job_id = start_job(tissue, "--model", "ada", "--runs", "60")
    seen = []
    while True:
        result = run(
            "sql",
            f"SELECT count(*) AS done FROM runs WHERE job_id = '{job_id}' AND status = 'done'",
            "--format",
            "csv",
        )
        seen.append(int(result.output.splitlines()[1]))
        if seen[-1] == 60 or len(seen) > 2000:
            break
    assert seen == sorted(seen) and seen[-1] == 60
    assert len(set(seen)) > 2, f"reads did not overlap the job: {seen}"


def test_failed_runs_are_recorded_and_retried(tissue, tmp_path):
    from tests.conftest import TISSUE

    table = pd.read_csv(TISSUE).iloc[:, :60]
    table["tissue"] = pd.read_csv(TISSUE, usecols=["tissue"])["tissue"]
    source = tmp_path / "small.csv"
    table.to_csv(source, index=False)
    run(
        "datasets",
        "add",
        str(source),
        "--label",
        "tissue",
        "--id-col",
        "sample_id",
        "--name",
        "small",
    )
    path = settings().home / sql("SELECT path FROM datasets WHERE name = 'small'")[0][0]
    hidden = path.with_suffix(".hidden")
    path.rename(hidden)  # as if the shared volume lost the file
    try:
        job_id = start_job("small", "--model", "et", "--runs", "6")
        counts = wait_job(job_id)
    finally:
        hidden.rename(path)
    assert counts["failed"] == 6
    shown = run("jobs", "show", job_id, "--format", "json").output
    assert "FileNotFoundError" in shown and '"status": "failed"' in shown
    retried = run("jobs", "retry", job_id, "--wait")
    assert "sent 6 units again" in retried.output and "6 done, 0 failed" in retried.output
    assert sql(
        f"SELECT count(*), min(attempts) FROM runs WHERE job_id = '{job_id}' AND status = 'done'"
    )[0] == (6, 2)
    assert "nothing to retry" in run("jobs", "retry", job_id).output


def test_cancel_stops_pending_runs_and_keeps_finished_ones(tissue):
    job_id = start_job(tissue, "--model", "gbc", "--runs", "30")
    wait_until(lambda: inbox.progress(job_id).get("done", 0) >= 1, 120, 0.1, "a first run")
    result = run("jobs", "cancel", job_id)
    assert "cancelled" in result.output
    wait_until(lambda: inbox.client().llen(inbox.COMPUTE_QUEUE) == 0, 60, what="the queue")
    counts = wait_job(job_id)
    assert counts["cancelled"] > 0 and counts["done"] + counts["cancelled"] == 30
    listed = run("jobs", "list", "--format", "json").output
    assert f'"job_id":"{job_id}"' in listed and '"status":"cancelled"' in listed


def test_filter_registers_a_reduced_dataset_that_jobs_can_use(tissue, tmp_path):
    job_id = start_job(tissue, "--model", "rf", "--runs", "8")
    wait_job(job_id)
    counts = frame_of(run("genes", "count", "--job", job_id, "--top", "20", "--format", "json"))
    expected = set(counts.loc[counts["runs"] >= 4, "gene"])
    result = run(
        "genes",
        "filter",
        "--job",
        job_id,
        "--top",
        "20",
        "--min-count",
        "4",
        "--name",
        "tissue_rf_top",
    )
    assert f"with {len(expected)} genes" in result.output
    genes = sql("SELECT genes, parent_id FROM datasets WHERE name = 'tissue_rf_top'")[0]
    assert set(genes[0]) == expected
    reduced = start_job("tissue_rf_top", "--model", "lr", "--runs", "3")
    assert wait_job(reduced)["done"] == 3
    plot = tmp_path / "genes.png"
    run("genes", "count", "--dataset", "tissue_rf_top", "--model", "lr", "--plot", str(plot))
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_same_content_is_one_dataset(tissue):
    again = add_tissue("tissue_again")
    assert "already registered as 'tissue'" in again.output
    assert sql("SELECT count(*) FROM datasets WHERE name = 'tissue_again'")[0][0] == 0


def test_status_reports_the_stack(stack):
    result = run("status", "--format", "json")
    report = json.loads(result.output)
    assert report["redis"] and report["writer"] and report["compute_workers"]
    assert report["database"] == str(settings().db_path)
    assert report["queue_compute"] >= 0


def test_shap_explains_a_run_model_fitted_again(tissue):
    """`genejobs:JOB:SEED`: a seeded run's model, fitted again as the run fitted it."""
    import numpy as np
    import shap

    from genejobs.storage.datasets import load_matrix
    from genejobs.tasks.fit import fit_estimator

    result = run("importance", tissue, "--model", "dt", "--seeds", "77", "--wait")
    job_id = result.output.split("job ")[1].split(":")[0]
    shap_job = run("shap", "run", tissue, "--model", f"genejobs:{job_id}:77", "--wait")
    shap_id = shap_job.output.split("job ")[1].split(":")[0]

    path, test_size = sql(
        f"SELECT d.path, r.test_size FROM runs r JOIN datasets d USING (dataset_id) "
        f"WHERE r.job_id = '{job_id}'"
    )[0]
    matrix = load_matrix(settings().home / path)
    estimator = fit_estimator(matrix, "dt", 77, test_size)[0]
    reference = np.asarray(shap.TreeExplainer(estimator).shap_values(matrix.X))
    assert reference.shape == (len(matrix.sample_ids), len(matrix.genes), len(matrix.classes))
    stored = np.zeros_like(reference)
    samples, genes = list(matrix.sample_ids), list(matrix.genes)
    for key, cls, gene, value in sql(
        f"SELECT r.row_key, v.class, f.feature, v.shap FROM shap_values v "
        f"JOIN shap_rows r USING (job_id, row_id, class) "
        f"JOIN shap_features f USING (job_id, feature_id) WHERE v.job_id = '{shap_id}'"
    ):
        stored[samples.index(key), genes.index(gene), cls] = value
    assert np.abs(stored - reference).max() < 1e-4

    refused("shap", "run", tissue, "--model", f"genejobs:{job_id}:78", expect="no run with seed")
    refused("shap", "run", tissue, "--model", f"genejobs:{job_id}:x", expect="whole-number seed")
    linear = run("importance", tissue, "--model", "ridge", "--seeds", "77", "--wait")
    linear_id = linear.output.split("job ")[1].split(":")[0]
    refused("shap", "run", tissue, "--model", f"genejobs:{linear_id}:77", expect="not a tree")
