"""Benchmark seeded importance runs: the service against a serial loop, its overhead, gene counts.

Three measurements from one run, printed side by side and written to
bench/out/importance.json:

1. N seeded runs per model (lr, ada) on the tissue data through the service
   (2 compute workers; wall from planning until every run is recorded), against
   the same seeds fitted in a serial loop in this process with a CSV append per
   run, the way the seeds' pipeline worked.
2. The service's own cost per run with the `dummy` model: the latency of one
   run enqueued alone, and the throughput of a burst of runs in one job.
3. `genes count` over 10 million stored importance rows, in-process and as
   the CLI.

The stack runs in a temporary GENEJOBS_HOME on free ports, started with
`genejobs up` and always stopped with `genejobs down`. See bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from threadpoolctl import threadpool_info, threadpool_limits

from cli.runs import enqueue_runs
from storage import queries
from storage.datasets import ExpressionMatrix, load_matrix
from storage.db import connect, reading
from storage.store import create_schema
from worker import inbox

TISSUE_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "tissue_gene_expression.csv"
OUT_JSON = Path(__file__).resolve().parent / "out" / "importance.json"
DATASET = "tissue"
TEST_SIZE = 0.3
WORKERS = 2

TARGET_SPEEDUP = 1.7
TARGET_LATENCY_MS = 20.0
TARGET_GENE_COUNT_S = 0.5


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def p90(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def genejobs_command() -> str:
    """The `genejobs` script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "genejobs"
    found = str(beside) if beside.exists() else shutil.which("genejobs")
    if found is None:
        sys.exit("cannot find the `genejobs` command; install the project (pip install -e .)")
    return found


def genejobs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI; stop the benchmark with its stderr if it fails."""
    done = subprocess.run(
        [genejobs_command(), *args], env=env or dict(os.environ), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"`genejobs {' '.join(args)}` failed:\n{done.stderr.strip()}")
    return done


@contextmanager
def local_stack(home: Path, workers: int) -> Iterator[None]:
    """Point this process at a fresh home on free ports, bring the stack up, always take it down.

    The environment is set before anything imports `worker.app`, which reads
    the Redis URL when it is imported.
    """
    os.environ.pop("GENEJOBS_DB", None)
    os.environ.update(
        {
            "GENEJOBS_HOME": str(home),
            "GENEJOBS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "GENEJOBS_FLOWER_PORT": str(free_port()),
        }
    )
    log(f"starting the stack in {home} at {os.environ['GENEJOBS_REDIS_URL']}")
    try:
        genejobs("up", "--workers", str(workers), "--no-flower", "--detach")
        yield
    finally:
        log("stopping the stack")
        down = subprocess.run(
            [genejobs_command(), "down"], env=dict(os.environ), capture_output=True, text=True
        )
        if down.returncode != 0:
            log(f"`genejobs down` failed: {down.stderr.strip()}")


# the service --------------------------------------------------------------------


def plan_job(model: str, runs: int) -> dict:
    """Reserve `runs` fresh seeds for a new job, as `genejobs importance --runs` does."""
    return inbox.request(
        {
            "op": "plan_importance",
            "job_id": "bench-" + uuid.uuid4().hex[:10],
            "dataset": DATASET,
            "model": model,
            "runs": runs,
            "test_size": TEST_SIZE,
            "seed_max": 4_000_000_000,
            "seeds": None,
        }
    )


def wait_recorded(job_id: str, done: int, poll: float) -> dict[str, int]:
    """Poll the job's progress until `done` runs are recorded and none is pending."""
    while True:
        counts = inbox.progress(job_id)
        if counts.get("failed", 0):
            raise RuntimeError(f"job {job_id}: {counts['failed']} runs failed")
        if counts.get("done", 0) >= done and counts.get("pending", 1) == 0:
            return counts
        time.sleep(poll)


def service_job(model: str, runs: int, poll: float = 0.01) -> dict:
    """One job through the service: plan, enqueue, wait until every run is in DuckDB."""
    started = time.perf_counter()
    plan = plan_job(model, runs)
    planned = time.perf_counter()
    enqueue_runs(plan)
    enqueued = time.perf_counter()
    wait_recorded(plan["job_id"], runs, poll)
    finished = time.perf_counter()
    return {
        "job_id": plan["job_id"],
        "seeds": plan["seeds"],
        "dataset_path": plan["dataset_path"],
        "plan_s": planned - started,
        "enqueue_s": enqueued - planned,
        "wall_s": finished - started,
    }


# the seeds' way: a serial loop -----------------------------------------------------


def serial_loop(matrix: ExpressionMatrix, model: str, seeds: list[int], csv_dir: Path) -> float:
    """Fit each seed in turn and append its rows to CSV files; return the wall time.

    One row per run to the used-seeds file and one row per selected gene to the
    genes file, opened for each run, as the seeds' scripts did. BLAS and OpenMP
    are held to one thread: on this machine that was the faster setting, so the
    baseline gets its best case.
    """
    # Imported here: it imports worker.app, which reads the Redis URL on import.
    from tasks.importance import fit_run

    used_csv = csv_dir / f"rnd_used_{model}.csv"
    genes_csv = csv_dir / f"genes_{model}.csv"
    with threadpool_limits(1):
        started = time.perf_counter()
        for seed in seeds:
            result = fit_run(matrix, model, seed, TEST_SIZE)
            with used_csv.open("a", newline="") as handle:
                csv.writer(handle).writerow([seed, model, result.accuracy, result.n_selected])
            with genes_csv.open("a", newline="") as handle:
                writer = csv.writer(handle)
                for klass, gene, importance, rank in zip(
                    result.class_index,
                    result.gene_index,
                    result.importance,
                    result.rank,
                    strict=True,
                ):
                    if klass == -1:
                        writer.writerow([seed, matrix.genes[gene], importance, rank])
        return time.perf_counter() - started


def bench_runs(model: str, runs: int, repeats: int, home: Path, csv_dir: Path) -> dict:
    """Service against serial loop for one model, on the same seeds, `repeats` times."""
    from tasks.importance import fit_run

    log(f"{model}: warm-up (worker processes import scikit-learn on their first fit)")
    warm = service_job(model, 2 * WORKERS)
    matrix = load_matrix(home / warm["dataset_path"])
    with threadpool_limits(1):
        fit_run(matrix, model, warm["seeds"][0], TEST_SIZE)
    service, serial, jobs = [], [], []
    for repeat in range(repeats):
        job = service_job(model, runs)
        log(f"{model} #{repeat + 1}: service {job['wall_s']:.2f} s (job {job['job_id']})")
        loop = serial_loop(matrix, model, job["seeds"], csv_dir)
        log(f"{model} #{repeat + 1}: serial  {loop:.2f} s")
        service.append(job)
        serial.append(loop)
        jobs.append(job["job_id"])
    service_s = median([job["wall_s"] for job in service])
    serial_s = median(serial)
    return {
        "runs": runs,
        "repeats": repeats,
        "jobs": jobs,
        "service_wall_s": service_s,
        "serial_wall_s": serial_s,
        "service_ms_per_run": 1000 * service_s / runs,
        "serial_ms_per_run": 1000 * serial_s / runs,
        "speedup": serial_s / service_s,
        "service_plan_s": median([job["plan_s"] for job in service]),
        "service_enqueue_s": median([job["enqueue_s"] for job in service]),
        "service_wall_s_all": [job["wall_s"] for job in service],
        "serial_wall_s_all": serial,
    }


def check_recorded(job_ids: list[str], runs: dict[str, int]) -> None:
    """Confirm from DuckDB that every benchmarked job has all its runs done."""
    with reading() as con:
        rows = con.execute(
            f"SELECT job_id, count(*) FILTER (WHERE status = 'done'), count(*) FROM runs "
            f"WHERE job_id IN ({', '.join('?' * len(job_ids))}) GROUP BY job_id",
            job_ids,
        ).fetchall()
    found = {job_id: (done, total) for job_id, done, total in rows}
    for job_id in job_ids:
        done, total = found.get(job_id, (0, 0))
        if done != total or total != runs[job_id]:
            raise RuntimeError(
                f"job {job_id}: {done} of {total} runs done, expected {runs[job_id]}"
            )


# the service's own overhead ----------------------------------------------------------


def bench_latency(samples: int, warmup: int = 5) -> dict:
    """Enqueue one dummy run at a time and time it until the writer has recorded it."""
    plan = plan_job("dummy", samples + warmup)
    latencies = []
    for position, seed in enumerate(plan["seeds"]):
        started = time.perf_counter()
        enqueue_runs({**plan, "seeds": [seed]})
        while inbox.progress(plan["job_id"]).get("done", 0) <= position:
            time.sleep(0.001)
        if position >= warmup:
            latencies.append(1000 * (time.perf_counter() - started))
    return {
        "job_id": plan["job_id"],
        "samples": samples,
        "median_ms": median(latencies),
        "p90_ms": p90(latencies),
        "min_ms": min(latencies),
        "max_ms": max(latencies),
    }


def bench_burst(runs: int) -> dict:
    """One job of `runs` dummy runs: enqueue them all and wait until all are recorded."""
    job = service_job("dummy", runs)
    return {
        "job_id": job["job_id"],
        "runs": runs,
        "wall_s": job["wall_s"],
        "plan_s": job["plan_s"],
        "enqueue_s": job["enqueue_s"],
        "ms_per_run": 1000 * job["wall_s"] / runs,
    }


# gene counts at scale ------------------------------------------------------------------


def build_gene_store(path: Path, runs: int, genes: int, jobs: int) -> dict:
    """Write a results file with the project's schema and runs x genes importance rows.

    One dataset and model; `jobs` jobs of equal size; every run done and every
    gene selected in every run (summary rows), so the dataset scope counts all rows.
    """
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        create_schema(con)
        con.execute(
            """INSERT INTO datasets (dataset_id, name, path, label_col, id_col, n_samples,
                   n_genes, classes, class_counts, genes, source)
               SELECT 'benchgenes000000', 'bench', 'datasets/benchgenes000000.parquet',
                      'tissue', 'sample_id', 189, ?, ['a', 'b'], [95, 94],
                      list('GENE' || lpad((g + 1)::VARCHAR, 5, '0') ORDER BY g), 'synthetic'
               FROM range(?) t(g)""",
            [genes, genes],
        )
        per_job = -(-runs // jobs)
        con.execute(
            """INSERT INTO jobs (job_id, kind, dataset_id, model, params, n_runs)
               SELECT 'bench-job-' || lpad(j::VARCHAR, 3, '0'), 'importance',
                      'benchgenes000000', 'lr', '{}', ? FROM range(?) t(j)""",
            [per_job, jobs],
        )
        con.execute(
            """INSERT INTO runs (dataset_id, model, seed, job_id, status, test_size, accuracy,
                   n_selected, attempts, finished_at)
               SELECT 'benchgenes000000', 'lr', r + 1,
                      'bench-job-' || lpad((r // ?)::VARCHAR, 3, '0'), 'done', 0.3,
                      0.5 + random() / 2, ?, 1, now()
               FROM range(?) t(r)""",
            [per_job, genes, runs],
        )
        con.execute(
            """INSERT INTO importances
               SELECT 'bench-job-' || lpad((r // ?)::VARCHAR, 3, '0'), 'benchgenes000000', 'lr',
                      r + 1, NULL, 'GENE' || lpad((g + 1)::VARCHAR, 5, '0'),
                      random(), random() - 0.5, ((g * 7 + r) % ?) + 1
               FROM range(?) t(r), range(?) u(g)
               ORDER BY r, g""",
            [per_job, genes, runs, genes],
        )
        rows = con.execute("SELECT count(*) FROM importances").fetchone()[0]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {
        "runs": runs,
        "genes": genes,
        "jobs": jobs,
        "importance_rows": rows,
        "build_s": time.perf_counter() - started,
        "file_mb": path.stat().st_size / 2**20,
    }


def timed(work: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times


def bench_gene_counts(path: Path, home: Path, repeats: int, cli_repeats: int) -> dict:
    """Time `gene_counts` for a dataset+model scope and a job scope, then the CLI."""
    con = connect(path, read_only=True, wait=5)
    results: dict = {}
    try:
        # (job, dataset, model) as `genes count` takes them
        scopes = {"dataset_model": (None, "bench", "lr"), "job": ("bench-job-000", None, None)}
        for name, scope in scopes.items():

            def count(scope=scope):
                total, table = queries.gene_counts(con, queries.scope(con, *scope))
                return total, len(table)

            total, n_genes = count()
            times = timed(count, repeats)
            results[name] = {
                "runs_counted": total,
                "genes": n_genes,
                "median_s": median(times),
                "max_s": max(times),
                "all_s": times,
            }
    finally:
        con.close()
    env = {**os.environ, "GENEJOBS_HOME": str(home), "GENEJOBS_DB": str(path)}
    command = ("genes", "count", "--dataset", "bench", "--model", "lr", "--limit", "20")
    output = genejobs(*command, env=env).stdout
    cli = timed(lambda: genejobs(*command, env=env), cli_repeats)
    startup = timed(lambda: genejobs("--help", env=env), cli_repeats)
    results["cli"] = {
        "command": "genejobs " + " ".join(command),
        "median_s": median(cli),
        "all_s": cli,
        "startup_median_s": median(startup),
        "first_line": output.splitlines()[0] if output else "",
    }
    return results


# report ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def summary(report: dict) -> str:
    lines = [
        "genejobs importance benchmark",
        f"  {report['machine']['cpus']} cores, Python {report['machine']['python']}, "
        f"{WORKERS} compute workers, tissue data, test size {TEST_SIZE}",
        "",
        "1. seeded runs: service (plan + enqueue + until recorded) vs serial loop (fit + CSV)",
        f"   medians of {report['config']['repeats']} repeats",
        f"   {'model':<6}{'runs':>6}{'service s':>11}{'serial s':>10}"
        f"{'service ms/run':>16}{'serial ms/run':>15}{'speedup':>9}  target >= {TARGET_SPEEDUP}x",
    ]
    for model, row in report["runs"].items():
        lines.append(
            f"   {model:<6}{row['runs']:>6}{row['service_wall_s']:>11.2f}"
            f"{row['serial_wall_s']:>10.2f}{row['service_ms_per_run']:>16.1f}"
            f"{row['serial_ms_per_run']:>15.1f}{row['speedup']:>8.2f}x  "
            f"{verdict(row['speedup'] >= TARGET_SPEEDUP)}"
        )
    latency, burst = report["overhead"]["latency"], report["overhead"]["burst"]
    lines += [
        "",
        "2. service overhead per run (model dummy: no work)",
        f"   one run at a time, enqueue -> recorded ({latency['samples']} samples): "
        f"median {latency['median_ms']:.1f} ms, p90 {latency['p90_ms']:.1f} ms, "
        f"max {latency['max_ms']:.1f} ms  target median < {TARGET_LATENCY_MS:.0f} ms "
        f"{verdict(latency['median_ms'] < TARGET_LATENCY_MS)}",
        f"   burst of {burst['runs']} runs in one job: {burst['wall_s']:.2f} s wall "
        f"(plan {burst['plan_s']:.2f} s, enqueue {burst['enqueue_s']:.2f} s), "
        f"{burst['ms_per_run']:.2f} ms/run",
    ]
    genes = report["gene_counts"]
    store = genes["store"]
    lines += [
        "",
        f"3. genes count over {store['importance_rows']:,} importance rows "
        f"({store['runs']:,} runs x {store['genes']} genes, {store['file_mb']:.0f} MB, "
        f"built in {store['build_s']:.1f} s)",
    ]
    for name, label in (("dataset_model", "--dataset --model"), ("job", "--job")):
        row = genes[name]
        lines.append(
            f"   gene_counts {label:<18} {row['runs_counted']:>6} runs: "
            f"median {row['median_s']:.3f} s, max {row['max_s']:.3f} s "
            f"(of {len(row['all_s'])})  target < {TARGET_GENE_COUNT_S} s "
            f"{verdict(row['median_s'] < TARGET_GENE_COUNT_S)}"
        )
    cli = genes["cli"]
    lines.append(
        f"   CLI `{cli['command']}`: median {cli['median_s']:.2f} s "
        f"(of {len(cli['all_s'])}); `genejobs --help` alone {cli['startup_median_s']:.2f} s"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr-runs", type=int, default=200, help="runs per repeat for lr")
    parser.add_argument("--ada-runs", type=int, default=60, help="runs per repeat for ada")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of part 1 (medians)")
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--burst", type=int, default=1000, help="dummy runs in the burst job")
    parser.add_argument("--gene-runs", type=int, default=20_000, help="runs in the gene store")
    parser.add_argument("--genes", type=int, default=500, help="genes per run in the gene store")
    parser.add_argument("--out", type=Path, default=OUT_JSON, help="where to write the JSON")
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 repeat: a smoke check")
    args = parser.parse_args(argv)
    if args.quick:
        args.lr_runs, args.ada_runs, args.repeats = 20, 6, 1
        args.latency_samples, args.burst, args.gene_runs = 10, 100, 1_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not TISSUE_CSV.exists():
        sys.exit(f"the tissue data is missing: {TISSUE_CSV}")
    started = time.perf_counter()
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {key: value for key, value in vars(args).items() if key not in ("out",)},
    }
    with tempfile.TemporaryDirectory(prefix="genejobs-bench-") as temp:
        temp_dir = Path(temp)
        home, csv_dir = temp_dir / "home", temp_dir / "csv"
        csv_dir.mkdir()
        with local_stack(home, WORKERS):
            genejobs(
                "datasets", "add", str(TISSUE_CSV),
                "--label", "tissue", "--id-col", "sample_id", "--name", DATASET,
            )  # fmt: skip
            report["runs"] = {
                "lr": bench_runs("lr", args.lr_runs, args.repeats, home, csv_dir),
                "ada": bench_runs("ada", args.ada_runs, args.repeats, home, csv_dir),
            }
            log("dummy: sequential latency and burst")
            bench_burst(2 * WORKERS)  # warm-up
            report["overhead"] = {
                "latency": bench_latency(args.latency_samples),
                "burst": bench_burst(args.burst),
            }
            expected = {job: row["runs"] for row in report["runs"].values() for job in row["jobs"]}
            expected[report["overhead"]["burst"]["job_id"]] = args.burst
            check_recorded(list(expected), expected)
            report["serial_thread_pools"] = [
                {"api": pool["internal_api"], "default_threads": pool["num_threads"]}
                for pool in threadpool_info()
            ]
        log(f"building a results file of {args.gene_runs * args.genes:,} importance rows")
        gene_db = temp_dir / "genes.duckdb"
        store = build_gene_store(gene_db, args.gene_runs, args.genes, jobs=10)
        report["gene_counts"] = {
            "store": store,
            **bench_gene_counts(gene_db, temp_dir / "genes-home", repeats=5, cli_repeats=3),
        }
    report["total_s"] = time.perf_counter() - started
    text = summary(report)
    print(text)
    print(f"\n(total {report['total_s']:.0f} s; JSON in {args.out})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**report, "summary": text}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
