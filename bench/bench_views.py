"""What the views cost a job, and what a DuckDB client sees through them.

One stack; jobs of N runs alternate between a writer that publishes the views
(`GENEJOBS_VIEWS_INTERVAL`, default 3 s) and one that does not (0), the writer
restarted between them. During every job a client thread opens
`views/genejobs.duckdb` read-only in its own process-like way (a new DuckDB
connection each time, as the duckdb CLI or a notebook would), every 0.2 s,
and reads the job's finished runs. Printed: job wall time per mode (median),
the cost ratio, opens and failed opens, and staleness (the age of the newest
finished run visible, while runs keep finishing: median, p90, max).

    .venv/bin/python bench/bench_views.py --runs 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_importance import genejobs, local_stack, log, p90  # noqa: E402

OUT_JSON = Path(__file__).resolve().parent / "out" / "views.json"
TISSUE = Path(__file__).resolve().parents[1] / "tests" / "data" / "tissue_gene_expression.csv.gz"


def restart_writer(interval: str | None) -> None:
    """Stop the writer, then let `genejobs up` start one with the views interval given
    (None: the default)."""
    from genejobs.config import settings
    from genejobs.worker import inbox
    from genejobs.worker.stack import running

    proc = running(settings(), "writer")
    if proc is not None:
        os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while inbox.writer_alive(inbox.client()) and time.monotonic() < deadline:
            time.sleep(0.1)
    if interval is None:
        os.environ.pop("GENEJOBS_VIEWS_INTERVAL", None)
    else:
        os.environ["GENEJOBS_VIEWS_INTERVAL"] = interval
    genejobs("up", "--workers", "2", "--no-flower", "--no-explorer", "--detach")


class Client(threading.Thread):
    """Open the catalog read-only every `every` seconds until stopped; record what it saw."""

    def __init__(self, catalog: Path, job_id: str, every: float = 0.2):
        super().__init__(daemon=True)
        self.catalog, self.job_id, self.every = catalog, job_id, every
        self.stop = threading.Event()
        self.opens = 0
        self.failures: list[str] = []
        self.staleness: list[float] = []

    def run(self) -> None:
        import duckdb

        while not self.stop.is_set():
            try:
                with duckdb.connect(str(self.catalog), read_only=True) as con:
                    newest = con.execute(
                        "SELECT epoch(current_localtimestamp()) - epoch(max(finished_at)) "
                        "FROM runs WHERE job_id = ? AND status = 'done'",
                        [self.job_id],
                    ).fetchone()[0]
                self.opens += 1
                if newest is not None and not self.stop.is_set():
                    self.staleness.append(float(newest))
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self.stop.wait(self.every)


def one_job(model: str, runs: int, catalog: Path) -> dict:
    from genejobs.worker import inbox

    job_id = genejobs("importance", "tissue", "--model", model, "--runs", str(runs), "--no-wait")
    job_id = job_id.stdout.strip()
    started = time.monotonic()
    client = Client(catalog, job_id)
    client.start()
    while True:
        counts = inbox.progress(job_id)
        if counts and counts.get("pending", 1) == 0:
            break
        time.sleep(0.05)
    wall = time.monotonic() - started
    client.stop.set()
    client.join()
    return {
        "wall_s": wall,
        "done": counts.get("done", 0),
        "opens": client.opens,
        "failed_opens": len(client.failures),
        "failures": client.failures[:3],
        "staleness": client.staleness,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lr")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="genejobs-bench-views-") as tmp:
        home = Path(tmp)
        with local_stack(home, workers=2):
            genejobs(
                "datasets", "add", str(TISSUE), "--label", "tissue", "--id-col", "sample_id",
                "--name", "tissue",
            )  # fmt: skip
            genejobs("datasets", "list")
            catalog = home / "views" / "genejobs.duckdb"
            rows: dict[str, list[dict]] = {"on": [], "off": []}
            for repeat in range(args.repeats):
                order = ("on", "off") if repeat % 2 == 0 else ("off", "on")
                for mode in order:
                    restart_writer(None if mode == "on" else "0")
                    result = one_job(args.model, args.runs, catalog)
                    log(
                        f"{mode}: {result['wall_s']:.1f} s, {result['opens']} opens, "
                        f"{result['failed_opens']} failed"
                    )
                    rows[mode].append(result)

    on = statistics.median(r["wall_s"] for r in rows["on"])
    off = statistics.median(r["wall_s"] for r in rows["off"])
    stale = [s for r in rows["on"] for s in r["staleness"]]
    summary = {
        "model": args.model,
        "runs": args.runs,
        "repeats": args.repeats,
        "wall_views_on_s": [r["wall_s"] for r in rows["on"]],
        "wall_views_off_s": [r["wall_s"] for r in rows["off"]],
        "median_on_s": on,
        "median_off_s": off,
        "cost": on / off - 1,
        "opens_during_views_on_jobs": sum(r["opens"] for r in rows["on"]),
        "failed_opens": sum(r["failed_opens"] for r in rows["on"] + rows["off"]),
        "failures": [f for r in rows["on"] + rows["off"] for f in r["failures"]][:5],
        "staleness_median_s": statistics.median(stale) if stale else None,
        "staleness_p90_s": p90(stale) if stale else None,
        "staleness_max_s": max(stale) if stale else None,
    }
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(summary, indent=2))
    print(f"views: {args.repeats} jobs each way of {args.runs} {args.model} runs, 2 workers")
    print(f"  job wall time, views on : median {on:6.1f} s  {summary['wall_views_on_s']}")
    print(f"  job wall time, views off: median {off:6.1f} s  {summary['wall_views_off_s']}")
    print(f"  cost of the views: {summary['cost']:+.1%} (target <= 5%)")
    print(
        f"  client opens during the jobs with views: {summary['opens_during_views_on_jobs']}, "
        f"failed opens (all jobs): {summary['failed_opens']}"
    )
    if stale:
        print(
            f"  staleness: median {summary['staleness_median_s']:.2f} s, "
            f"p90 {summary['staleness_p90_s']:.2f} s, max {summary['staleness_max_s']:.2f} s"
        )
    print(f"  written to {OUT_JSON}")


if __name__ == "__main__":
    main()
