"""How many runs are enough: a job run `--until-stable` against a large fixed job.

On the tissue data (189 samples x 500 genes) with one model (default `ada`), on
one stack with 2 workers: first a job with `--until-stable` (default rule:
top 20, pi 0.6, tolerance 0.05, at least 100 fits, rounds of 50), then a job of
`--reference-runs` (default 2000) seeded runs. Printed: runs used and wall time
of each, why the until-stable job stopped, both jobs' Nogueira stability with
its 95% interval, and how the two agree: the overlap of their top-20 genes (by
selection frequency, each fit selecting its top 20) and of their stable sets
at pi (`genes compare`).

    .venv/bin/python bench/bench_stability.py --model ada --reference-runs 2000 --repeats 5
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

from bench_importance import genejobs, local_stack, log  # noqa: E402

OUT_JSON = Path(__file__).resolve().parent / "out" / "stability.json"
TISSUE = Path(__file__).resolve().parents[1] / "tests" / "data" / "tissue_gene_expression.csv.gz"
TOP = 20


def wait_done(job_id: str) -> float:
    """Seconds until the job has no pending unit (a job run until stable may grow meanwhile)."""
    from genejobs.worker import inbox

    started = time.monotonic()
    while True:
        counts = inbox.progress(job_id)
        if counts and counts.get("pending", 1) == 0:
            return time.monotonic() - started
        time.sleep(0.2)


def top_genes(job_id: str) -> list[str]:
    counts = json.loads(
        genejobs("genes", "count", "--job", job_id, "--top", str(TOP), "--format", "json").stdout
    )
    return [row["gene"] for row in counts[:TOP]]


def stability_of(job_id: str) -> dict:
    args = ("genes", "stability", "--job", job_id, "--top", str(TOP), "--format", "json")
    return json.loads(genejobs(*args).stdout)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ada")
    parser.add_argument("--reference-runs", type=int, default=2000)
    parser.add_argument("--pi", type=float, default=0.6)
    parser.add_argument(
        "--repeats", type=int, default=1, help="Until-stable jobs (each on new seeds)."
    )
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="genejobs-bench-stability-")
    with tmp, local_stack(Path(tmp.name), workers=2):
        genejobs(
            "datasets", "add", str(TISSUE), "--label", "tissue", "--id-col", "sample_id",
            "--name", "tissue",
        )  # fmt: skip
        stable_jobs = []
        for repeat in range(args.repeats):
            log(f"{args.model} until stable ({repeat + 1} of {args.repeats})")
            job = genejobs(
                "importance", "tissue", "--model", args.model, "--until-stable",
                "--top", str(TOP), "--no-wait",
            ).stdout.strip()  # fmt: skip
            wall = wait_done(job)
            shown = json.loads(genejobs("jobs", "show", job, "--format", "json").stdout)
            stable_jobs.append(
                {
                    "job": job,
                    "wall_s": wall,
                    "runs": int(shown["done"]) + int(shown["failed"]),
                    "rule": shown["params"]["until_stable"],
                }
            )
        log(f"{args.model}: {args.reference_runs} runs")
        reference_job = genejobs(
            "importance", "tissue", "--model", args.model,
            "--runs", str(args.reference_runs), "--no-wait",
        ).stdout.strip()  # fmt: skip
        reference_wall = wait_done(reference_job)
        reference_top = set(top_genes(reference_job))
        reference_stability = stability_of(reference_job)
        for entry in stable_jobs:
            entry["stability"] = stability_of(entry["job"])
            entry["top_overlap"] = len(set(top_genes(entry["job"])) & reference_top)
            entry["compared"] = json.loads(
                genejobs(
                    "genes", "compare", entry["job"], reference_job, "--top", str(TOP),
                    "--pi", str(args.pi), "--format", "json",
                ).stdout
            )  # fmt: skip

    runs = [e["runs"] for e in stable_jobs]
    summary = {
        "model": args.model,
        "reference": {
            "job": reference_job,
            "runs": args.reference_runs,
            "wall_s": reference_wall,
            "stability": reference_stability,
        },
        "until_stable": [
            {
                **{k: e[k] for k in ("job", "runs", "wall_s", "stability", "top_overlap")},
                "rounds": e["rule"]["rounds"],
                "reason": e["rule"]["reason"],
                "stable_sets": {
                    k: e["compared"][k]
                    for k in ("pi", "a_stable", "b_stable", "both", "only_a", "only_b", "jaccard")
                },
                "stability_difference_p": e["compared"]["difference_p_value"],
            }
            for e in stable_jobs
        ],
        "median_runs": statistics.median(runs),
        "median_runs_ratio": statistics.median(runs) / args.reference_runs,
        "median_wall_s": statistics.median(e["wall_s"] for e in stable_jobs),
    }
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(summary, indent=2, default=float))
    ref = reference_stability
    print(
        f"reference: {args.reference_runs} runs, {reference_wall:.1f} s, stability "
        f"{ref['stability']:.3f} [{ref['lo']:.3f}, {ref['hi']:.3f}] (top {TOP})"
    )
    for e in summary["until_stable"]:
        st, sets = e["stability"], e["stable_sets"]
        print(
            f"until stable: {e['runs']:4d} runs, {e['wall_s']:6.1f} s, stability "
            f"{st['stability']:.3f} [{st['lo']:.3f}, {st['hi']:.3f}]; top-{TOP} overlap "
            f"{e['top_overlap']}/{TOP}; stable at pi={args.pi}: {len(sets['both'])} shared, "
            f"{len(sets['only_a'])} only here, {len(sets['only_b'])} only in the reference; "
            f"stabilities differ p = {e['stability_difference_p']:.3g}"
        )
        print(f"    {e['reason']}")
    print(
        f"median: {summary['median_runs']:.0f} runs ({summary['median_runs_ratio']:.1%} of the "
        f"reference), {summary['median_wall_s']:.1f} s (reference {reference_wall:.1f} s)"
    )
    print(f"written to {OUT_JSON}")


if __name__ == "__main__":
    main()
