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
import psutil
from threadpoolctl import threadpool_limits

from genejobs.config import settings
from genejobs.contract import PlanImportance
from genejobs.storage import queries
from genejobs.storage.datasets import ExpressionMatrix, load_matrix
from genejobs.storage.db import connect, reading
from genejobs.storage.store import create_schema
from genejobs.worker import inbox
from genejobs.worker.stack import running

TISSUE_CSV = Path(__file__).resolve().parents[1] / "tests/data/tissue_gene_expression.csv.gz"
OUT_JSON = Path(__file__).resolve().parent / "out" / "importance.json"
DATASET = "tissue"
TEST_SIZE = 0.3
WORKERS = 2

TARGET_SPEEDUP = 1.7
TARGET_LATENCY_MS = 20.0
TARGET_GENE_COUNT_S = 0.5

# Where CPU time goes while the service works: the fits (Celery pool
# processes), the Celery parent that hands them tasks, the writer, Redis, this
# process (planning, enqueueing, polling; the whole serial loop), and every
# other process on the machine, whose load skews the comparison.
CPU_PARTS = ("pool", "celery_parent", "writer", "redis", "bench", "others")
BUSY_OTHERS = 0.15  # cores used by other processes above which a result is flagged


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def median_parts(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: median([row[key] for row in rows]) for key in rows[0]}


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

    The environment is set before anything imports `genejobs.worker.app`, which reads
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
        genejobs("up", "--workers", str(workers), "--no-flower", "--no-explorer", "--detach")
        yield
    finally:
        log("stopping the stack")
        down = subprocess.run(
            [genejobs_command(), "down"], env=dict(os.environ), capture_output=True, text=True
        )
        if down.returncode != 0:
            log(f"`genejobs down` failed: {down.stderr.strip()}")


# CPU accounting -----------------------------------------------------------------


def _cpu_of(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds used so far by each part of the stack, this process, and the whole machine."""
    config = settings()
    used = dict.fromkeys(CPU_PARTS, 0.0)
    used["bench"] = _cpu_of(psutil.Process())
    for name, part in (("redis", "redis"), ("writer", "writer"), ("compute", "celery_parent")):
        proc = running(config, name)
        if proc is None:
            continue
        root = psutil.Process(proc.pid)
        used[part] = _cpu_of(root)
        if name == "compute":
            used["pool"] = sum(_cpu_of(child) for child in root.children(recursive=True))
    machine = psutil.cpu_times()
    used["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    return used


def cpu_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per part between two snapshots; `others` is the machine's busy time left over."""
    spent = {part: after[part] - before[part] for part in CPU_PARTS if part != "others"}
    spent["others"] = max(0.0, after["machine"] - before["machine"] - sum(spent.values()))
    return spent


@contextmanager
def metered() -> Iterator[dict[str, float]]:
    """Measure the wall and CPU time of a block; the dict is filled when the block ends."""
    measured: dict[str, float] = {}
    before, started = cpu_snapshot(), time.perf_counter()
    yield measured
    measured["wall_s"] = time.perf_counter() - started
    measured.update(cpu_between(before, cpu_snapshot()))


def per_run_ms(measured: dict[str, float], runs: int) -> dict[str, float]:
    return {part: 1000 * measured[part] / runs for part in CPU_PARTS}


class QuietGate:
    """Before each measurement, wait for other processes to go quiet, within a total budget.

    Other sessions may share this machine; their load takes cores from the
    service and not from the one-process loop. Each measurement records that
    load anyway (`others`), and the summary flags the loaded ones.
    """

    def __init__(self, budget: float, sample: float = 1.0):
        self.budget = budget
        self.sample = sample

    def wait(self) -> None:
        if self.budget <= 0:
            return
        started = time.monotonic()
        while True:
            with metered() as measured:
                time.sleep(self.sample)
            load = measured["others"] / measured["wall_s"]
            waited = time.monotonic() - started
            if load < BUSY_OTHERS or waited >= self.budget:
                break
        self.budget = max(0.0, self.budget - waited)
        if load >= BUSY_OTHERS:
            log(f"other processes use {load:.2f} cores; measuring anyway")
        elif waited > 1.5 * self.sample:
            log(f"waited {waited:.0f} s for other processes to go quiet")


# the service --------------------------------------------------------------------


def plan_job(model: str, runs: int) -> dict:
    """Reserve `runs` fresh seeds for a new job, as `genejobs importance --runs` does."""
    return inbox.request(
        PlanImportance(
            job_id="bench-" + uuid.uuid4().hex[:10],
            dataset=DATASET,
            model=model,
            runs=runs,
            test_size=TEST_SIZE,
            seed_max=4_000_000_000,
            seeds=None,
        )
    )


def wait_recorded(job_id: str, done: int, poll: float) -> None:
    """Poll the job's progress until `done` runs are recorded and none is pending."""
    while True:
        counts = inbox.progress(job_id)
        if counts.get("failed", 0):
            raise RuntimeError(f"job {job_id}: {counts['failed']} runs failed")
        if counts.get("done", 0) >= done and counts.get("pending", 1) == 0:
            return
        time.sleep(poll)


def service_job(model: str, runs: int, poll: float = 0.05) -> dict:
    """One job through the service: plan (the writer enqueues), wait until every run is stored."""
    with metered() as measured:
        started = time.perf_counter()
        plan = plan_job(model, runs)
        planned = enqueued = time.perf_counter()
        wait_recorded(plan["job_id"], runs, poll)
    return {
        "job_id": plan["job_id"],
        "seeds": plan["seeds"],
        "dataset_path": plan["dataset_path"],
        "wall_s": measured["wall_s"],
        "plan_s": planned - started,
        "enqueue_s": enqueued - planned,
        "others_cores": measured["others"] / measured["wall_s"],
        "cpu_ms_per_run": per_run_ms(measured, runs),
    }


# the seeds' way: a serial loop -----------------------------------------------------


def serial_loop(matrix: ExpressionMatrix, model: str, seeds: list[int], csv_dir: Path) -> None:
    """Fit each seed in turn and append its rows to CSV files, as the seeds' scripts did.

    One row per run to the used-seeds file and one row per selected gene to the
    genes file, each opened for the run. BLAS and OpenMP are held to one
    thread: on this machine that was as fast or faster, so the baseline gets
    its best case.
    """
    # Imported here: it imports worker.app, which reads the Redis URL on import.
    from genejobs.tasks.fit import fit_run

    used_csv = csv_dir / f"rnd_used_{model}.csv"
    genes_csv = csv_dir / f"genes_{model}.csv"
    with threadpool_limits(1):
        for seed in seeds:
            result = fit_run(matrix, model, seed, TEST_SIZE)
            with used_csv.open("a", newline="") as handle:
                csv.writer(handle).writerow([seed, model, result.accuracy, result.n_selected])
            with genes_csv.open("a", newline="") as handle:
                writer = csv.writer(handle)
                chosen = result.selection
                for rank, (gene, importance) in enumerate(
                    zip(chosen.gene_index, chosen.importance, strict=True), start=1
                ):
                    writer.writerow([seed, matrix.genes[gene], importance, rank])


def bench_runs(
    model: str, runs: int, repeats: int, paths: dict[str, Path], quiet: QuietGate
) -> dict:
    """Service against serial loop for one model, on the same seeds, `repeats` times."""
    from genejobs.tasks.fit import fit_run

    log(f"{model}: warm-up (worker processes import scikit-learn on their first fit)")
    warm = service_job(model, 2 * WORKERS)
    matrix = load_matrix(paths["home"] / warm["dataset_path"])
    with threadpool_limits(1):
        fit_run(matrix, model, warm["seeds"][0], TEST_SIZE)
    service, serial = [], []
    for repeat in range(repeats):
        quiet.wait()
        job = service_job(model, runs)
        log(f"{model} #{repeat + 1}: service {job['wall_s']:.2f} s (job {job['job_id']})")
        quiet.wait()
        with metered() as loop:
            serial_loop(matrix, model, job["seeds"], paths["csv"])
        log(f"{model} #{repeat + 1}: serial  {loop['wall_s']:.2f} s")
        service.append(job)
        serial.append(loop)
    service_s = median([job["wall_s"] for job in service])
    serial_s = median([loop["wall_s"] for loop in serial])
    service_cpu = median_parts([job["cpu_ms_per_run"] for job in service])
    serial_cpu = median_parts([per_run_ms(loop, runs) for loop in serial])
    return {
        "runs": runs,
        "repeats": repeats,
        "jobs": [job["job_id"] for job in service],
        "service_wall_s": service_s,
        "serial_wall_s": serial_s,
        "service_ms_per_run": 1000 * service_s / runs,
        "serial_ms_per_run": 1000 * serial_s / runs,
        "speedup": serial_s / service_s,
        "service_plan_s": median([job["plan_s"] for job in service]),
        "service_enqueue_s": median([job["enqueue_s"] for job in service]),
        "service_cpu_ms_per_run": service_cpu,
        "serial_cpu_ms_per_run": serial_cpu,
        "cpu_bound_speedup": cpu_bound_speedup(service_cpu, serial_cpu),
        "service_others_cores": max(job["others_cores"] for job in service),
        "serial_others_cores": max(loop["others"] / loop["wall_s"] for loop in serial),
        "service_wall_s_all": [job["wall_s"] for job in service],
        "serial_wall_s_all": [loop["wall_s"] for loop in serial],
    }


def cpu_bound_speedup(service: dict[str, float], serial: dict[str, float]) -> float:
    """The speedup the CPU times allow on this machine's cores with nothing else running.

    The service cannot beat its CPU per run spread over all cores, nor its fits
    spread over the workers; the loop cannot beat its own CPU per run.
    """
    own = sum(ms for part, ms in service.items() if part != "others")
    fastest = max(own / (os.cpu_count() or 1), service["pool"] / WORKERS)
    return serial["bench"] / fastest


def check_recorded(expected: dict[str, int]) -> None:
    """Confirm from DuckDB that every benchmarked job has all its runs done."""
    job_ids = list(expected)
    with reading() as con:
        rows = con.execute(
            f"SELECT job_id, count(*) FILTER (WHERE status = 'done'), count(*) FROM runs "
            f"WHERE job_id IN ({', '.join('?' * len(job_ids))}) GROUP BY job_id",
            job_ids,
        ).fetchall()
    found = {job_id: (done, total) for job_id, done, total in rows}
    for job_id, runs in expected.items():
        done, total = found.get(job_id, (0, 0))
        if done != runs or total != runs:
            raise RuntimeError(f"job {job_id}: {done} of {total} runs done, expected {runs}")


# the service's own overhead ----------------------------------------------------------


def bench_latency(samples: int, warmup: int = 5) -> dict:
    """Request one dummy run at a time and time it until the writer has recorded it.

    Each sample is a job of one run: the request to the writer, which plans
    it and enqueues its task, the run, and the writer recording it.
    """
    latencies = []
    with metered() as measured:
        for position in range(samples + warmup):
            started = time.perf_counter()
            plan = plan_job("dummy", 1)
            while inbox.progress(plan["job_id"]).get("done", 0) < 1:
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
        "others_cores": measured["others"] / measured["wall_s"],
        "all_ms": latencies,
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
        "others_cores": job["others_cores"],
        "cpu_ms_per_run": job["cpu_ms_per_run"],
    }


# gene counts at scale ------------------------------------------------------------------


def build_gene_store(path: Path, runs: int, genes: int, jobs: int) -> dict:
    """Write a results file with the project's schema and runs x genes importance rows.

    One dataset and model; `jobs` jobs of equal size; every run done and every
    gene selected in every run (summary rows), so the dataset scope counts
    every row. Rows lie in run order, as the writer appends them.
    """
    started = time.perf_counter()
    per_job = -(-runs // jobs)
    job_of_run = "'bench-job-' || lpad((r // $per_job)::VARCHAR, 3, '0')"
    gene_name = "'GENE' || lpad((g + 1)::VARCHAR, 5, '0')"
    con = duckdb.connect(str(path))
    try:
        create_schema(con)
        con.execute(
            f"""INSERT INTO datasets (dataset_id, name, path, label_col, id_col, n_samples,
                    n_genes, classes, class_counts, genes, source)
                SELECT 'benchgenes000000', 'bench', 'datasets/benchgenes000000.parquet',
                       'tissue', 'sample_id', 189, $genes, ['a', 'b'], [95, 94],
                       list({gene_name} ORDER BY g), 'synthetic'
                FROM range($genes) t(g)""",
            {"genes": genes},
        )
        con.execute(
            """INSERT INTO jobs (job_id, kind, dataset_id, model, params, n_runs)
               SELECT 'bench-job-' || lpad(j::VARCHAR, 3, '0'), 'importance',
                      'benchgenes000000', 'lr', '{}', $per_job
               FROM range($jobs) t(j)""",
            {"per_job": per_job, "jobs": jobs},
        )
        con.execute(
            f"""INSERT INTO runs (dataset_id, model, seed, job_id, status, test_size, accuracy,
                    n_selected, attempts, finished_at)
                SELECT 'benchgenes000000', 'lr', r + 1, {job_of_run}, 'done', {TEST_SIZE},
                       0.5 + random() / 2, $genes, 1, now()
                FROM range($runs) t(r)""",
            {"per_job": per_job, "genes": genes, "runs": runs},
        )
        con.execute(
            f"""INSERT INTO importances
                    (job_id, dataset_id, model, seed, gene, importance, coef, rank)
                SELECT {job_of_run}, 'benchgenes000000', 'lr', r + 1, {gene_name},
                       random(), random() - 0.5, ((g * 7 + r) % $genes) + 1
                FROM range($runs) t(r), range($genes) u(g)
                ORDER BY r, g""",
            {"per_job": per_job, "genes": genes, "runs": runs},
        )
        rows = con.execute("SELECT count(*) FROM importances").fetchone()[0]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {
        "runs": runs,
        "genes": genes,
        "jobs": jobs,
        "runs_per_job": per_job,
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
    """Time `gene_counts` (with its scope lookup) for two scopes, then the whole CLI."""
    # (job, dataset, model), as `genes count` takes them
    scopes = {"dataset_model": (None, "bench", "lr"), "job": ("bench-job-000", None, None)}
    results: dict = {}
    con = connect(path, read_only=True, wait=5)
    try:
        for name, scope in scopes.items():

            def count(scope=scope):
                return queries.gene_counts(con, queries.scope(con, *scope))

            total, table = count()  # the first query also reads the file into DuckDB's cache
            times = timed(count, repeats)
            results[name] = {
                "runs_counted": total,
                "genes": len(table),
                "median_s": median(times),
                "max_s": max(times),
                "all_s": times,
            }
    finally:
        con.close()
    env = {**os.environ, "GENEJOBS_HOME": str(home), "GENEJOBS_DB": str(path)}
    command = ("genes", "count", "--dataset", "bench", "--model", "lr", "--limit", "20")
    first_line = genejobs(*command, env=env).stdout.partition("\n")[0]
    cli = timed(lambda: genejobs(*command, env=env), cli_repeats)
    startup = timed(lambda: genejobs("--help", env=env), cli_repeats)
    results["cli"] = {
        "command": "genejobs " + " ".join(command),
        "first_line": first_line,
        "median_s": median(cli),
        "all_s": cli,
        "help_median_s": median(startup),
    }
    return results


# report ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _runs_lines(report: dict) -> list[str]:
    lines = [
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
    burst = report["overhead"]["burst"]
    rows = []
    for model, row in report["runs"].items():
        rows.append((f"{model} service", row["service_cpu_ms_per_run"]))
        rows.append((f"{model} serial", row["serial_cpu_ms_per_run"]))
    rows.append(("dummy burst", burst["cpu_ms_per_run"]))
    lines += [
        "",
        "   CPU ms per run, by process (medians; `others` is load from outside the benchmark)",
        f"   {'':<12}" + "".join(f"{part:>14}" for part in CPU_PARTS),
    ]
    for label, parts in rows:
        lines.append(f"   {label:<12}" + "".join(f"{parts[part]:>14.1f}" for part in CPU_PARTS))
    ceilings = ", ".join(
        f"{model} {row['cpu_bound_speedup']:.2f}x" for model, row in report["runs"].items()
    )
    lines.append(
        f"   speedup the CPU times allow on {report['machine']['cpus']} idle cores "
        f"(serial CPU / service CPU spread over the cores): {ceilings}"
    )
    return lines


def _overhead_lines(report: dict) -> list[str]:
    latency, burst = report["overhead"]["latency"], report["overhead"]["burst"]
    return [
        "2. service overhead per run (model dummy: no work)",
        f"   one run at a time, enqueue -> recorded ({latency['samples']} samples): "
        f"median {latency['median_ms']:.1f} ms, p90 {latency['p90_ms']:.1f} ms, "
        f"max {latency['max_ms']:.1f} ms   target median < {TARGET_LATENCY_MS:.0f} ms "
        f"{verdict(latency['median_ms'] < TARGET_LATENCY_MS)}",
        f"   burst of {burst['runs']} runs in one job: {burst['wall_s']:.2f} s wall "
        f"(plan {burst['plan_s']:.2f} s, enqueue {burst['enqueue_s']:.2f} s), "
        f"{burst['ms_per_run']:.2f} ms/run",
    ]


def _gene_lines(report: dict) -> list[str]:
    genes = report["gene_counts"]
    store = genes["store"]
    lines = [
        f"3. genes count over {store['importance_rows']:,} importance rows "
        f"({store['runs']:,} runs x {store['genes']} genes, {store['file_mb']:.0f} MB, "
        f"built in {store['build_s']:.1f} s)",
    ]
    for name, label in (("dataset_model", "--dataset --model"), ("job", "--job")):
        row = genes[name]
        lines.append(
            f"   gene_counts {label:<18}{row['runs_counted']:>7} runs: "
            f"median {row['median_s']:.3f} s, max {row['max_s']:.3f} s "
            f"(of {len(row['all_s'])})   target < {TARGET_GENE_COUNT_S} s "
            f"{verdict(row['median_s'] < TARGET_GENE_COUNT_S)}"
        )
    cli = genes["cli"]
    lines.append(
        f"   CLI `{cli['command']}`: median {cli['median_s']:.2f} s "
        f"(of {len(cli['all_s'])}); `genejobs --help` alone {cli['help_median_s']:.2f} s"
    )
    return lines


def _load_warnings(report: dict) -> list[str]:
    loads = {f"{model} {side}": row[f"{side}_others_cores"] for model, row in report["runs"].items()
             for side in ("service", "serial")}  # fmt: skip
    loads["latency"] = report["overhead"]["latency"]["others_cores"]
    loads["burst"] = report["overhead"]["burst"]["others_cores"]
    busy = {label: load for label, load in loads.items() if load >= BUSY_OTHERS}
    if not busy:
        return []
    shown = ", ".join(f"{label} {load:.2f}" for label, load in busy.items())
    return [
        "",
        f"WARNING: other processes loaded the machine (cores, worst repeat): {shown}.",
        "         The service needs both cores and the serial loop one: rerun on a quiet machine.",
    ]


def summary(report: dict) -> str:
    head = [
        "genejobs importance benchmark",
        f"  {report['machine']['cpus']} cores, Python {report['machine']['python']}, "
        f"{WORKERS} compute workers, tissue data, test size {TEST_SIZE}",
    ]
    sections = [head, _runs_lines(report), _overhead_lines(report), _gene_lines(report)]
    lines = [line for section in sections for line in [*section, ""]][:-1]
    return "\n".join(lines + _load_warnings(report))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr-runs", type=int, default=200, help="runs per repeat for lr")
    parser.add_argument("--ada-runs", type=int, default=60, help="runs per repeat for ada")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of part 1 (medians)")
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--burst", type=int, default=1000, help="dummy runs in the burst job")
    parser.add_argument("--gene-runs", type=int, default=20_000, help="runs in the gene store")
    parser.add_argument("--genes", type=int, default=500, help="genes per run in the gene store")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds in all that the run may wait for other processes to go quiet",
    )
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
        "config": {key: value for key, value in vars(args).items() if key != "out"},
    }
    with tempfile.TemporaryDirectory(prefix="genejobs-bench-") as temp:
        temp_dir = Path(temp)
        paths = {"home": temp_dir / "home", "csv": temp_dir / "csv"}
        paths["csv"].mkdir()
        quiet = QuietGate(args.quiet_wait)
        with local_stack(paths["home"], WORKERS):
            genejobs(
                "datasets", "add", str(TISSUE_CSV),
                "--label", "tissue", "--id-col", "sample_id", "--name", DATASET,
            )  # fmt: skip
            report["runs"] = {
                "lr": bench_runs("lr", args.lr_runs, args.repeats, paths, quiet),
                "ada": bench_runs("ada", args.ada_runs, args.repeats, paths, quiet),
            }
            log("dummy: sequential latency and burst")
            bench_burst(2 * WORKERS)  # warm-up
            quiet.wait()
            latency = bench_latency(args.latency_samples)
            quiet.wait()
            report["overhead"] = {"latency": latency, "burst": bench_burst(args.burst)}
            expected = {job: row["runs"] for row in report["runs"].values() for job in row["jobs"]}
            expected[report["overhead"]["burst"]["job_id"]] = args.burst
            check_recorded(expected)
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
