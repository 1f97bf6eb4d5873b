"""How many runs are enough: a job run `--until-stable` against a large fixed job.

On the tissue data (189 samples x 500 genes) with one model (default `ada`), on
one stack with 2 workers: first a job with `--until-stable` (default rule:
top 20, pi 0.6, tolerance 0.05, at least 100 fits, rounds of 50), then a job of
`--reference-runs` (default 2000) seeded runs. Printed: runs used and wall time
of each, why the until-stable job stopped, both jobs' Nogueira stability with
its 95% interval, and how the two agree: the overlap of their top-20 genes (by
selection frequency, each fit selecting its top 20) and of their stable sets
at pi (`genes compare`).

    .venv/bin/python bench/bench_stability.py --model ada --reference-runs 2000
"""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="genejobs-bench-stability-")
    with tmp, local_stack(Path(tmp.name), workers=2):
        genejobs(
            "datasets", "add", str(TISSUE), "--label", "tissue", "--id-col", "sample_id",
            "--name", "tissue",
        )  # fmt: skip
        log(f"{args.model} until stable")
        stable_job = genejobs(
            "importance", "tissue", "--model", args.model, "--until-stable",
            "--top", str(TOP), "--no-wait",
        ).stdout.strip()  # fmt: skip
        stable_wall = wait_done(stable_job)
        shown = json.loads(genejobs("jobs", "show", stable_job, "--format", "json").stdout)
        rule = shown["params"]["until_stable"]
        stable_runs = int(shown["done"]) + int(shown["failed"])
        log(f"{args.model}: {args.reference_runs} runs")
        reference_job = genejobs(
            "importance", "tissue", "--model", args.model,
            "--runs", str(args.reference_runs), "--no-wait",
        ).stdout.strip()  # fmt: skip
        reference_wall = wait_done(reference_job)
        tops = {job: top_genes(job) for job in (stable_job, reference_job)}
        stabilities = {job: stability_of(job) for job in (stable_job, reference_job)}
        compared = json.loads(
            genejobs(
                "genes", "compare", stable_job, reference_job, "--top", str(TOP),
                "--pi", str(args.pi), "--format", "json",
            ).stdout
        )  # fmt: skip

    overlap = len(set(tops[stable_job]) & set(tops[reference_job]))
    summary = {
        "model": args.model,
        "until_stable": {
            "job": stable_job,
            "runs": stable_runs,
            "wall_s": stable_wall,
            "rounds": rule["rounds"],
            "reason": rule["reason"],
            "stability": stabilities[stable_job],
        },
        "reference": {
            "job": reference_job,
            "runs": args.reference_runs,
            "wall_s": reference_wall,
            "stability": stabilities[reference_job],
        },
        "runs_ratio": stable_runs / args.reference_runs,
        f"top{TOP}_overlap": overlap,
        f"top{TOP}_only_until_stable": sorted(set(tops[stable_job]) - set(tops[reference_job])),
        f"top{TOP}_only_reference": sorted(set(tops[reference_job]) - set(tops[stable_job])),
        "stable_sets": {
            k: compared[k]
            for k in ("pi", "a_stable", "b_stable", "both", "only_a", "only_b", "jaccard")
        },
        "stability_difference_p": compared["difference_p_value"],
    }
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(summary, indent=2, default=float))
    for name in ("until_stable", "reference"):
        part = summary[name]
        st = part["stability"]
        print(
            f"{name.replace('_', ' '):>12}: {part['runs']:5d} runs, {part['wall_s']:7.1f} s, "
            f"stability {st['stability']:.3f} [{st['lo']:.3f}, {st['hi']:.3f}] (top {TOP})"
        )
    print(f"until stable stopped after {rule['rounds']} rounds: {rule['reason']}")
    print(
        f"runs used: {summary['runs_ratio']:.1%} of the reference; top-{TOP} overlap "
        f"{overlap}/{TOP}; stable sets at pi={args.pi}: {len(compared['both'])} shared, "
        f"{len(compared['only_a'])} only until-stable, {len(compared['only_b'])} only reference "
        f"(Jaccard {compared['jaccard']:.2f}); stabilities differ: p = "
        f"{compared['difference_p_value']:.3g}"
    )
    print(f"written to {OUT_JSON}")


if __name__ == "__main__":
    main()
