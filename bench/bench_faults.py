"""Soak the service under faults: the fault suite's scenarios, repeated, with the default timeouts.

For each round, job kind (importance, search, evaluate, SHAP) and fault
(SIGKILL of a compute pool process, of the compute worker parent, of the
writer, of redis-server), one job is started from the CLI, the process is
killed mid-job, `genejobs up --detach` restarts what died, and the job is
followed until every unit is final. Printed per kind and fault: rounds, units,
recovery time (median and max, from the restart, or from the kill where
nothing needed one), and units lost (not done), recorded twice, or left
pending after the limit. Unlike `tests/test_faults.py` (visibility timeout 6 s),
the stack runs with the defaults a user gets (30 s).

    .venv/bin/python bench/bench_faults.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_importance import local_stack, log  # noqa: E402

from tests.conftest import sql  # noqa: E402
from tests.test_faults import (  # noqa: E402
    FAULTS,
    KINDS,
    assert_recorded_once,
    final,
    prepare,
    progress,
    start,
    up,
)

OUT_JSON = Path(__file__).resolve().parent / "out" / "faults.json"
LIMIT_S = 180.0  # a unit still pending this long after the restart counts as stranded


def one_fault(kind: str, fault: str, setup: dict) -> dict:
    kill, restart = FAULTS[fault]
    job_id = start(kind, setup)
    total = sum(dict(sql(_units_sql(job_id))).values())
    deadline = time.monotonic() + 120
    while sum(progress(job_id).get(k, 0) for k in ("done", "spooled")) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not start")
        time.sleep(0.05)
    mid_job = progress(job_id).get("pending", 0) > 0
    kill()
    recovered_from = up() if restart else time.monotonic()
    counts = None
    while counts is None and time.monotonic() - recovered_from < LIMIT_S:
        counts = final(job_id)
        time.sleep(0.25)
    recovery = time.monotonic() - recovered_from
    states = dict(sql(_units_sql(job_id)))
    try:
        assert_recorded_once(job_id, total)
        twice = 0
    except AssertionError:
        twice = 1
    return {
        "kind": kind,
        "fault": fault,
        "job_id": job_id,
        "units": total,
        "mid_job": mid_job,
        "recovery_s": recovery,
        "lost": total - states.get("done", 0) - states.get("pending", 0),
        "stranded": states.get("pending", 0),
        "recorded_twice": twice,
    }


def _units_sql(job_id: str) -> str:
    table = {"imp": "runs", "srch": "search_folds", "eval": "test_results", "shap": "shap_shards"}
    name = table[job_id.split("-")[0]]
    return f"SELECT status, count(*) FROM {name} WHERE job_id = '{job_id}' GROUP BY 1"


def summary(results: list[dict]) -> str:
    lines = [
        "genejobs fault soak (default timeouts: visibility 30 s)",
        f"  {'kind':10s} {'fault':13s} {'rounds':>6s} {'units':>6s} {'median s':>9s} "
        f"{'max s':>7s} {'lost':>5s} {'twice':>6s} {'stranded':>9s}",
    ]
    for kind in KINDS:
        for fault in FAULTS:
            rows = [r for r in results if r["kind"] == kind and r["fault"] == fault]
            if not rows:
                continue
            times = [r["recovery_s"] for r in rows]
            lines.append(
                f"  {kind:10s} {fault:13s} {len(rows):6d} {rows[0]['units']:6d} "
                f"{statistics.median(times):9.1f} {max(times):7.1f} "
                f"{sum(r['lost'] for r in rows):5d} {sum(r['recorded_twice'] for r in rows):6d} "
                f"{sum(r['stranded'] for r in rows):9d}"
            )
    early = [r for r in results if not r["mid_job"]]
    if early:
        lines.append(f"  note: {len(early)} faults landed after the job's last unit started")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--out", type=Path, default=OUT_JSON)
    args = parser.parse_args(argv)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="genejobs-faults-") as temp:
        home = Path(temp) / "home"
        with local_stack(home, 2):
            setup = prepare(home)
            for round_ in range(args.rounds):
                for kind in args.kinds.split(","):
                    for fault in args.faults.split(","):
                        log(f"round {round_ + 1}: {kind}, kill {fault}")
                        results.append(one_fault(kind, fault, setup))
                        log(f"  recovered in {results[-1]['recovery_s']:.1f} s")
    text = summary(results)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "summary": text}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
