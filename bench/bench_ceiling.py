"""The ceiling of one stack: how many results one writer takes, and how many units it dispatches.

Ingest, per model (default lr and ada on the tissue data, 500 genes, 7 classes):
a job of N runs is planned with the compute workers stopped, so its units wait
in the queue; the writer is suspended (SIGSTOP) while the inbox is filled with N
real results, each the message one real fit of that model produced (the same
importances under each planned seed, so every message has the real size and
shape); then it resumes and drains them. Timed: wall time from the resume until
the last result is recorded, and the CPU seconds of the writer and of Redis
meanwhile. One writer on one core: results/s, importance rows/s, and how many
workers of that model it keeps busy (results/s x the model's seconds per fit).

Dispatch: with `--dispatch-workers` compute processes, a job of `dummy` runs
(fits nothing) from the request (the Python API, in this process) until every
run is recorded: units/s through enqueue -> worker -> inbox -> writer.

SHAP ingest: an L2G-like table of `--shap-rows` rows (53 features, five
models) explained by 2 workers while the writer is suspended; timed from its
resume until every shard is recorded: values/s one writer takes in.

    .venv/bin/python bench/bench_ceiling.py --runs 4000 --dispatch-runs 3000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_importance import genejobs, local_stack, log  # noqa: E402

OUT_JSON = Path(__file__).resolve().parent / "out" / "ceiling.json"
TISSUE = Path(__file__).resolve().parents[1] / "tests" / "data" / "tissue_gene_expression.csv.gz"


def _process(name: str):
    import psutil

    from genejobs.config import settings
    from genejobs.worker.stack import running

    found = running(settings(), name)
    return psutil.Process(found.pid) if found else None


def _cpu(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def one_fit(model: str) -> tuple:
    """A real fit of `model` on the registered tissue data: its result, seconds per fit (median
    of 3)."""
    from genejobs.api import reading
    from genejobs.config import settings
    from genejobs.storage.datasets import load_matrix
    from genejobs.tasks.fit import fit_run

    with reading() as con:
        (path,) = con.execute("SELECT path FROM datasets WHERE name = 'tissue'").fetchone()
    matrix = load_matrix(settings().home / path)
    results = [fit_run(matrix, model, seed, 0.3) for seed in (1, 2, 3)]
    return results[0], statistics.median(r.fit_seconds for r in results)


def ingest(model: str, runs: int) -> dict:
    """Fill the inbox with `runs` real results of `model`; time a fresh writer draining them."""
    from genejobs.api import reading
    from genejobs.tasks.fit import run_message
    from genejobs.worker import inbox

    result, fit_seconds = one_fit(model)
    job_id = genejobs(
        "importance", "tissue", "--model", model, "--runs", str(runs), "--no-wait"
    ).stdout.strip()
    with reading() as con:
        dataset_id, seeds = con.execute(
            "SELECT any_value(dataset_id), list(seed) FROM runs WHERE job_id = ?", [job_id]
        ).fetchone()
    bodies = [
        run_message(job_id, dataset_id, model, replace(result, seed=int(seed))).encode()
        for seed in seeds
    ]
    # The writer waits, stopped, while the inbox fills (its lock outlives a few seconds).
    writer = _process("writer")
    writer.suspend()
    try:
        conn = inbox.client()
        for start in range(0, len(bodies), 500):
            conn.lpush(inbox.INBOX, *bodies[start : start + 500])
        redis_process = _process("redis")
        redis_before, writer_before = _cpu(redis_process), _cpu(writer)
        started = time.monotonic()
    finally:
        writer.resume()
    while inbox.progress(job_id).get("done", 0) < runs:
        time.sleep(0.01)
    wall = time.monotonic() - started
    writer_cpu = _cpu(writer) - writer_before
    redis_cpu = _cpu(redis_process) - redis_before
    size = sum(len(b) for b in bodies)
    # The job's tasks, still queued for the stopped workers, are done already.
    conn.delete(inbox.COMPUTE_QUEUE)
    genes = len(result.selection.gene_index)
    return {
        "model": model,
        "runs": runs,
        "genes_per_result": genes,
        "message_bytes": size / runs,
        "wall_s": wall,
        "writer_cpu_s": writer_cpu,
        "redis_cpu_s": redis_cpu,
        "results_per_s": runs / wall,
        "results_per_writer_cpu_s": runs / writer_cpu,
        "rows_per_s": runs * genes / wall,
        "fit_seconds": fit_seconds,
        "workers_kept_busy": runs / wall * fit_seconds,
    }


def shap_ingest(folder: Path, rows: int, workers: int) -> dict:
    """A SHAP job's shards computed while the writer is stopped; time the writer ingesting them.

    The job is planned and its shard tasks sent; then the writer is suspended
    (SIGSTOP) while the compute workers explain every shard into the spool and
    report it; it resumes and takes them all in. Timed from the resume until
    the last shard is recorded: SHAP values per second of one writer.
    """
    from genejobs.worker import inbox
    from genejobs.worker.dispatch import broker_units

    genejobs("up", "--workers", str(workers), "--no-flower", "--no-explorer", "--detach")
    table = folder / "l2g.parquet"
    if not table.exists():
        genejobs(
            "datasets", "synth-l2g", "--rows", str(rows), "--out", str(table),
            "--train-models", str(folder / "models"), "--trees", "50", "--depth", "4",
        )  # fmt: skip
    job_id = genejobs(
        "shap", "run", str(table), "--partition-col", "chrom",
        "--manifest", str(folder / "models" / "models.tsv"),
        "--id-cols", "study_id,locus_id,gene_id", "--no-wait",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    conn = inbox.client()
    shards = inbox.progress(job_id)["total"]
    while len(broker_units(conn)) < shards and not inbox.progress(job_id).get("spooled"):
        time.sleep(0.01)
    writer = _process("writer")
    writer.suspend()
    try:
        while conn.llen(inbox.INBOX) < shards - inbox.progress(job_id).get("done", 0):
            time.sleep(0.05)
        already = inbox.progress(job_id).get("done", 0)
        redis_process = _process("redis")
        redis_before, writer_before = _cpu(redis_process), _cpu(writer)
        started = time.monotonic()
    finally:
        writer.resume()
    while inbox.progress(job_id).get("done", 0) < shards:
        time.sleep(0.01)
    wall = time.monotonic() - started
    from genejobs.api import reading

    with reading() as con:
        features, done_rows = con.execute(
            "SELECT any_value(j.n_features), sum(s.n_rows) FROM shap_jobs j "
            "JOIN shap_shards s USING (job_id) WHERE job_id = ?",
            [job_id],
        ).fetchone()
    values = int(done_rows) * int(features) * (shards - already) / shards
    return {
        "rows": int(done_rows),
        "shards": shards,
        "ingested_shards": shards - already,
        "values": values,
        "wall_s": wall,
        "values_per_s": values / wall,
        "writer_cpu_s": _cpu(writer) - writer_before,
        "redis_cpu_s": _cpu(redis_process) - redis_before,
    }


def dispatch(runs: int, workers: int) -> dict:
    """A job of `runs` dummy runs, from the request (in this process) until all are recorded."""
    import genejobs as api
    from genejobs.worker import inbox

    genejobs("up", "--workers", str(workers), "--no-flower", "--no-explorer", "--detach")
    writer, redis_process, compute = _process("writer"), _process("redis"), _process("compute")
    processes = {
        "writer": [writer],
        "redis": [redis_process],
        "workers": [compute, *compute.children(recursive=True)],
    }
    before = {name: sum(_cpu(p) for p in group) for name, group in processes.items()}
    started = time.monotonic()
    job_id = api.importance("tissue", "dummy", runs=runs).id
    while inbox.progress(job_id).get("done", 0) < runs:
        time.sleep(0.005)
    wall = time.monotonic() - started
    cpu_ms = {
        name: (sum(_cpu(p) for p in group) - before[name]) / runs * 1000
        for name, group in processes.items()
    }
    return {
        "runs": runs,
        "workers": workers,
        "wall_s": wall,
        "units_per_s": runs / wall,
        "writer_cpu_per_unit_ms": cpu_ms["writer"],
        "redis_cpu_per_unit_ms": cpu_ms["redis"],
        "workers_cpu_per_unit_ms": cpu_ms["workers"],
        # What one writer dispatches with a core to itself and the workers elsewhere.
        "writer_bound_units_per_s": 1000 / cpu_ms["writer"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lr,ada")
    parser.add_argument("--runs", type=int, default=4000, help="Results per ingest measurement.")
    parser.add_argument("--dispatch-runs", type=int, default=3000)
    parser.add_argument("--dispatch-workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shap-rows", type=int, default=100_000, help="0: no SHAP ingest")
    args = parser.parse_args()

    rows: dict[str, list[dict]] = {m: [] for m in args.models.split(",")}
    dispatched: list[dict] = []
    shap_rows: list[dict] = []
    tmp = tempfile.TemporaryDirectory(prefix="genejobs-bench-ceiling-")
    with tmp, local_stack(Path(tmp.name), workers=1):
        genejobs(
            "datasets", "add", str(TISSUE), "--label", "tissue", "--id-col", "sample_id",
            "--name", "tissue",
        )  # fmt: skip
        for repeat in range(args.repeats):
            from genejobs.worker.stack import stop

            stop(("compute",), progress=lambda _: None)
            for model in rows:
                row = ingest(model, args.runs)
                log(
                    f"ingest {model} ({repeat + 1}/{args.repeats}): {row['results_per_s']:.0f} "
                    f"results/s, writer {row['writer_cpu_s']:.1f} s CPU"
                )
                rows[model].append(row)
            row = dispatch(args.dispatch_runs, args.dispatch_workers)
            log(f"dispatch ({repeat + 1}/{args.repeats}): {row['units_per_s']:.0f} units/s")
            dispatched.append(row)
            if args.shap_rows:
                row = shap_ingest(Path(tmp.name) / "l2g", args.shap_rows, 2)
                rate = row["values_per_s"]
                log(f"SHAP ingest ({repeat + 1}/{args.repeats}): {rate:.0f} values/s")
                shap_rows.append(row)

    summary = {
        "ingest": {
            model: {
                key: statistics.median(r[key] for r in found) for key in found[0] if key != "model"
            }
            for model, found in rows.items()
        },
        "dispatch": {key: statistics.median(r[key] for r in dispatched) for key in dispatched[0]},
        "shap": {key: statistics.median(r[key] for r in shap_rows) for key in shap_rows[0]}
        if shap_rows
        else None,
        "raw": {"ingest": rows, "dispatch": dispatched, "shap": shap_rows},
    }
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(summary, indent=2))
    print(f"one writer, one Redis; medians of {args.repeats} runs")
    print(
        f"{'model':>6} {'genes':>6} {'KB/msg':>7} {'results/s':>10} {'rows/s':>10} "
        f"{'writer CPU/result':>18} {'Redis CPU/result':>17} {'s/fit':>6} {'workers':>8}"
    )
    for model, m in summary["ingest"].items():
        print(
            f"{model:>6} {m['genes_per_result']:6.0f} {m['message_bytes'] / 1024:7.1f} "
            f"{m['results_per_s']:10.0f} {m['rows_per_s']:10.0f} "
            f"{m['writer_cpu_s'] / m['runs'] * 1000:15.2f} ms "
            f"{m['redis_cpu_s'] / m['runs'] * 1000:14.2f} ms "
            f"{m['fit_seconds']:6.3f} {m['workers_kept_busy']:8.0f}"
        )
    d = summary["dispatch"]
    print(
        f"dispatch: {d['units_per_s']:.0f} units/s end to end here ({d['runs']:.0f} dummy runs, "
        f"{d['workers']:.0f} worker processes on these cores); CPU per unit: writer "
        f"{d['writer_cpu_per_unit_ms']:.2f} ms, Redis {d['redis_cpu_per_unit_ms']:.2f} ms, "
        f"workers {d['workers_cpu_per_unit_ms']:.2f} ms (the dummy fit itself ~0.9 ms); one "
        f"writer on a core of its own: {d['writer_bound_units_per_s']:.0f} units/s"
    )
    if summary["shap"]:
        sh = summary["shap"]
        print(
            f"SHAP ingest: {sh['values_per_s'] / 1e6:.1f} M values/s ({sh['ingested_shards']:.0f} "
            f"shards of {sh['rows'] / sh['shards']:.0f} rows x 53 features), writer "
            f"{sh['writer_cpu_s']:.2f} s CPU, Redis {sh['redis_cpu_s']:.2f} s CPU"
        )
    print(f"written to {OUT_JSON}")


if __name__ == "__main__":
    main()
