"""A job as large as a user may ask: the writer's memory, a cancel, a delete, the next job.

On a fresh stack (2 compute processes, the tissue data): a request of
10,000,000 runs (refused: over GENEJOBS_MAX_RUNS), then a job of the limit
(100,000 `dummy` runs) that runs for `--run-seconds`, is cancelled, then
deleted; then a 3-run job. The writer's resident memory is sampled every
0.1 s throughout. Printed: the writer's RSS before, its peak during each phase
and after; how long the refusal, the plan, the cancel and the delete took;
tasks that reached the queue after the cancel; and the small job's time from
request to done.

    .venv/bin/python bench/bench_job_size.py --run-seconds 20
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_importance import local_stack, log  # noqa: E402

from genejobs import api  # noqa: E402
from genejobs.config import settings  # noqa: E402
from genejobs.errors import InputError  # noqa: E402
from genejobs.worker import inbox  # noqa: E402
from genejobs.worker.processes import recorded  # noqa: E402

TISSUE = Path(__file__).resolve().parents[1] / "tests" / "data" / "tissue_gene_expression.csv.gz"


class MemoryWatch:
    """Samples a process's resident memory in a thread; peaks per named phase."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.phase = "before"
        self.peaks: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            rss = self.proc.memory_info().rss / 2**20
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            time.sleep(0.1)

    def enter(self, phase: str) -> None:
        time.sleep(0.3)
        self.phase = phase


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    outcome = action()
    return time.perf_counter() - started, outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-seconds", type=float, default=20.0)
    args = parser.parse_args()
    figures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as home, local_stack(Path(home), workers=2):
        api.add_dataset(TISSUE, label="tissue", id_col="sample_id", name="tissue")
        watch = MemoryWatch(recorded(settings(), "writer").pid)
        time.sleep(2)
        watch.enter("refusal")
        try:
            api.importance("tissue", "dummy", runs=10_000_000)
            figures["10,000,000 runs"] = "accepted (unexpected)"
        except InputError as exc:
            figures["10,000,000 runs"] = f"refused: {exc}"
        limit = settings().max_runs
        watch.enter("plan")
        seconds, job = timed(lambda: api.importance("tissue", "dummy", runs=limit))
        figures[f"plan of {limit:,} runs"] = f"{seconds:.2f} s"
        watch.enter("running")
        time.sleep(args.run_seconds)
        done_before = job.progress().get("done", 0)
        watch.enter("cancel")
        seconds, cancelled = timed(job.cancel)
        figures["cancel"] = f"{seconds:.2f} s ({cancelled:,} units cancelled, {done_before:,} done)"
        queued = inbox.client().llen(inbox.COMPUTE_QUEUE)
        time.sleep(3)
        later = inbox.client().llen(inbox.COMPUTE_QUEUE)
        figures["queue after the cancel"] = f"{queued} tasks, 3 s later {later}"
        job.wait(timeout=120, progress=False)
        watch.enter("delete")
        seconds, removed = timed(job.delete)
        figures["delete"] = f"{seconds:.2f} s ({sum(removed.values()):,} rows)"
        watch.enter("after")
        try:
            seconds, _ = timed(lambda: api.importance("tissue", "dummy", runs=3).wait(120, False))
            figures["next 3-run job, request to done"] = f"{seconds:.2f} s"
        except TimeoutError as exc:
            queued = inbox.client().llen(inbox.COMPUTE_QUEUE)
            figures["next 3-run job, request to done"] = f"{exc} ({queued} tasks queued)"
            kept = Path(tempfile.mkdtemp(prefix="bench-job-size-logs-"))
            shutil.copytree(settings().logs_dir, kept, dirs_exist_ok=True)
            log(f"the stack's logs are in {kept}")
        time.sleep(2)
        watch.stop.set()
    log("done")
    print("| step | figure |\n| --- | --- |")
    for step, figure in figures.items():
        print(f"| {step} | {figure} |")
    print("\n| writer RSS (MiB) | " + " | ".join(watch.peaks) + " |")
    print("| --- |" + " --- |" * len(watch.peaks))
    print("| peak | " + " | ".join(f"{v:.0f}" for v in watch.peaks.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
