"""Benchmark model search: the service's search over 2 workers against PyCaret's compare_models.

Both run in one invocation, one after the other, on the tissue data with
PyCaret's default (turbo) candidates, 10 folds and the same session id:

- PyCaret: `compare_models(turbo=True, n_select=1)` in this process, after a
  `setup(n_jobs=1)` that is not timed (BLAS/OpenMP held to one thread, as in
  the workers).
- The service: `genejobs search` planned, enqueued one task per (model, fold)
  and followed until the leaderboard is ranked and the best model finalized
  and saved; the workers' experiment setup is inside the timing. The workers
  have imported PyCaret once before (a warm-up search on another session id),
  as a running service has.

Prints both wall times, their ratio, and whether the leaderboards are equal
(same order, every metric within 1e-6), and writes bench/out/search.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_importance import TISSUE_CSV, genejobs, local_stack, log  # noqa: E402

from genejobs.contract import PlanSearch

OUT_JSON = Path(__file__).resolve().parent / "out" / "search.json"
WORKERS = 2
TARGET_SPEEDUP = 1.8


def service_search(session_id: int, folds: int, models: list[str] | None = None) -> dict:
    """One search through the service; wall time from planning until it is finalized."""
    from genejobs.api import reading
    from genejobs.storage import model_queries
    from genejobs.worker import inbox

    started = time.perf_counter()
    plan = inbox.request(
        PlanSearch(
            job_id="bench-" + uuid.uuid4().hex[:10],
            dataset="tissue",
            include=models,
            exclude=None,
            folds=folds,
            sort="Accuracy",
            session_id=session_id,
            train_size=0.7,
        )
    )
    while True:
        counts = inbox.progress(plan["job_id"])
        if counts and counts.get("pending", 1) == 0:
            break
        time.sleep(0.05)
    wall = time.perf_counter() - started
    with reading() as con:
        board = model_queries.leaderboard(con, plan["job_id"])
    return {"job_id": plan["job_id"], "wall_s": wall, "counts": counts, "board": board}


def pycaret_search(session_id: int, folds: int) -> dict:
    from genejobs.tasks.search import SearchSetup, experiment

    frame = pd.read_csv(TISSUE_CSV).set_index("sample_id")
    with threadpool_limits(1):
        exp = experiment(frame, "tissue", SearchSetup(session_id, 0.7, folds))
        started = time.perf_counter()
        exp.compare_models(turbo=True, n_select=1, errors="ignore", verbose=False)
        wall = time.perf_counter() - started
    return {"wall_s": wall, "board": exp.pull()}


def compare(ours: pd.DataFrame, reference: pd.DataFrame) -> dict:
    from genejobs.candidates import METRICS

    ranked = ours[ours["status"] == "done"]
    same_order = list(ranked["model"]) == list(reference.index)
    worst = 0.0
    if same_order:
        for m in METRICS:
            diff = np.abs(ranked[m.column].to_numpy(float) - reference[m.display].to_numpy(float))
            worst = max(worst, float(diff.max()))
    return {
        "same_order": same_order,
        "max_abs_diff": worst if same_order else None,
        "equal": same_order and worst < 1e-6,
        "ours": list(ranked["model"]),
        "pycaret": list(reference.index),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side (medians)")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--session-id", type=int, default=123)
    parser.add_argument("--out", type=Path, default=OUT_JSON)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {k: str(v) for k, v in vars(args).items()},
        "runs": [],
    }
    temp = tempfile.TemporaryDirectory(prefix="genejobs-bench-")
    with temp, local_stack(Path(temp.name) / "home", WORKERS):
        genejobs("datasets", "add", str(TISSUE_CSV), "--label", "tissue",
                 "--id-col", "sample_id", "--name", "tissue")  # fmt: skip
        log("warm-up search (the workers import PyCaret)")
        service_search(args.session_id + 1, 2, ["lr", "dt"])
        for repeat in range(args.repeats):
            log(f"#{repeat + 1}: PyCaret compare_models in this process")
            baseline = pycaret_search(args.session_id, args.folds)
            log(f"#{repeat + 1}: PyCaret {baseline['wall_s']:.1f} s; now the service")
            ours = service_search(args.session_id, args.folds)
            check = compare(ours["board"], baseline["board"])
            log(f"#{repeat + 1}: service {ours['wall_s']:.1f} s, equal: {check['equal']}")
            report["runs"].append(
                {
                    "pycaret_s": baseline["wall_s"],
                    "service_s": ours["wall_s"],
                    "speedup": baseline["wall_s"] / ours["wall_s"],
                    "job_id": ours["job_id"],
                    "counts": ours["counts"],
                    **check,
                }
            )
    runs = report["runs"]
    pycaret_s = statistics.median(r["pycaret_s"] for r in runs)
    service_s = statistics.median(r["service_s"] for r in runs)
    equal = all(r["equal"] for r in runs)
    speedup = pycaret_s / service_s

    def all_times(key: str) -> str:
        return ", ".join(f"{r[key]:.1f}" for r in runs)

    lines = [
        "genejobs search benchmark: tissue data (189 x 500, 7 classes), turbo candidates, "
        f"{args.folds} folds, session id {args.session_id}",
        f"  {os.cpu_count()} cores, {WORKERS} compute workers, medians of {len(runs)} runs",
        f"  PyCaret compare_models (n_jobs=1, one process): {pycaret_s:8.1f} s   "
        f"(all: {all_times('pycaret_s')})",
        f"  genejobs search (plan -> ranked -> finalized):  {service_s:8.1f} s   "
        f"(all: {all_times('service_s')})",
        f"  speedup {speedup:.2f}x (target >= {TARGET_SPEEDUP}x: "
        f"{'ok' if speedup >= TARGET_SPEEDUP else 'MISSED'}); "
        f"leaderboards equal (order, every metric within 1e-6): {equal}",
    ]
    text = "\n".join(lines)
    print(text)
    report.update({"pycaret_s": pycaret_s, "service_s": service_s, "speedup": speedup,
                   "equal": equal, "summary": text})  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
