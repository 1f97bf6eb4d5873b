"""How fast the explorer's pages answer on an L2G-size SHAP job.

One stack with 2 workers: an L2G-like table (`datasets synth-l2g`, 53
features, five chromosome-partitioned XGBoost models of 100 trees of depth 5),
one SHAP job over every row with the study, locus and gene as ids (and, with
`--groups`, the table's feature groups), and a second SHAP job over the same
rows with other models (60 trees of depth 4: the next "release"), then
`genejobs serve`; each page is fetched 5 times, and the first time and the
median are printed. The server computes a finished job's first pages and its
comparison with the job before it ahead (cli/explorer/summaries.py): the first
fetch of those may still wait for that (`--settle S` waits S seconds first);
the benchmark waits until the comparison is ready (a comparison not ready
within half a second is a page that says it is being computed and reloads
itself), and times comparing the jobs the other way round, not done ahead.

    .venv/bin/python bench/bench_explorer.py --rows 323604 [--groups]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_importance import free_port, genejobs, local_stack  # noqa: E402

COMPUTING = b'class="computing"'  # a comparison's page while it is being computed


def fetch_times(url: str, repeats: int = 5) -> tuple[float, float, bool]:
    """Seconds to fetch `url`: the first time, the median of `repeats` times, and whether
    any of them was a comparison's "being computed" page."""
    seconds, computing = [], False
    for _ in range(repeats):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            computing |= COMPUTING in response.read()
        seconds.append(time.perf_counter() - started)
    return seconds[0], statistics.median(seconds), computing


def ready_after(url: str, since: float, limit: float = 900) -> float:
    """Seconds from `since` until `url` is a comparison's page, not its "being computed" one."""
    while time.perf_counter() - since < limit:
        with urllib.request.urlopen(url, timeout=120) as response:
            if COMPUTING not in response.read():
                return time.perf_counter() - since
        time.sleep(1)
    raise RuntimeError(f"{url} was not ready after {limit} s")


def main() -> None:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=323_604)
    parser.add_argument(
        "--groups", action="store_true", help="run the SHAP jobs with the feature groups"
    )
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds to wait after the server answers"
    )
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="genejobs-bench-explorer-")
    with tmp, local_stack(Path(tmp.name), workers=2):
        home = Path(tmp.name)
        genejobs(
            "datasets", "synth-l2g", "--rows", str(args.rows), "--out", str(home / "l2g.parquet"),
            "--train-models", str(home / "models"), "--trees", "100", "--depth", "5",
        )  # fmt: skip
        second_models(home / "l2g.parquet", home / "models-b")
        groups = ["--groups", str(home / "l2g.groups.tsv")] if args.groups else []
        jobs = []
        for models in ("models", "models-b"):
            out = genejobs(
                "shap", "run", str(home / "l2g.parquet"), "--partition-col", "chrom",
                "--manifest", str(home / models / "models.tsv"),
                "--id-cols", "study_id,locus_id,gene_id", *groups, "--wait",
            ).stdout  # fmt: skip
            jobs.append(out.split("job ")[1].split(":")[0])
        job, job_b = jobs
        catalog = home / "views" / "genejobs.duckdb"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until a publication holds both jobs' values
            try:
                with duckdb.connect(str(catalog), read_only=True) as con:
                    # The top prediction and another candidate of its locus, in both jobs.
                    key, row_id, other = con.execute(
                        """WITH r AS (SELECT row_key, row_id, output,
                                             regexp_replace(row_key, '[^|]*$', '') AS locus
                                      FROM shap_rows WHERE job_id = ?)
                           SELECT r.row_key, r.row_id, o.row_key FROM r
                           JOIN r o ON o.locus = r.locus AND o.row_key <> r.row_key
                           WHERE r.row_key IN (SELECT row_key FROM shap_rows WHERE job_id = ?)
                           ORDER BY r.output DESC, o.row_key LIMIT 1""",
                        [job, job_b],
                    ).fetchone()
                break
            except (duckdb.Error, TypeError):
                time.sleep(0.5)
        port = free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "genejobs"), "serve", "--port", str(port)],
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            time.sleep(args.settle)
            gene = key.rsplit("|", 1)[1]
            pair = urlencode({"a": key, "b": other})
            pages = {
                "jobs": "/",
                "SHAP job (bars, binned beeswarm, presence)": f"/job/{job}",
                "per model": f"/job/{job}?by=model",
                "one feature's dependence (binned)": f"/job/{job}?feature=dist_tss_min",
                "another feature's dependence": f"/job/{job}?feature=pchic_max",
                "search a gene id": f"/job/{job}?q={gene}",
                "one prediction and its locus": f"/shap/{job}/row/{row_id}",
                "pair view (two genes of a locus)": f"/job/{job}/pair?{pair}",
                "the second job's page": f"/job/{job_b}",
                "compare two SHAP jobs": f"/compare?a={job}&b={job_b}",
                "one row's move": f"/compare?{urlencode({'a': job, 'b': job_b, 'row': key})}",
            }
            grouped = ", feature groups" if args.groups else ""
            print(f"explorer on two SHAP jobs of {args.rows} rows x 53 features{grouped}")
            # The server compares the newer job with the one before it ahead (the warmer).
            ahead = ready_after(base + pages["compare two SHAP jobs"], started)
            print(f"  the comparison computed ahead: ready {ahead:.1f} s after the server started")
            print(f"  {'page':44s} {'first':>9s} {'median of 5':>12s}")
            for name, path in pages.items():
                first, median, computing = fetch_times(base + path)
                note = '  (a "being computed" page)' if computing else ""
                print(f"  {name:44s} {first * 1000:6.0f} ms {median * 1000:9.0f} ms{note}")
            # Two jobs the server did not compare ahead: B against A.
            swapped = f"{base}/compare?a={job_b}&b={job}"
            first, _, computing = fetch_times(swapped, repeats=1)
            ready = ready_after(swapped, time.perf_counter())
            print(
                f"  compare, not computed ahead: first answer {first * 1000:.0f} ms "
                f"({'being computed' if computing else 'ready'}), ready {ready:.1f} s later"
            )
            first, median, _ = fetch_times(swapped)
            print(f"  {'... then':44s} {first * 1000:6.0f} ms {median * 1000:9.0f} ms")
        finally:
            server.terminate()
            server.wait(timeout=10)


def second_models(table: Path, out: Path) -> None:
    """The next release: the same five folds' XGBoost models with other trees (60, depth 4)."""
    import pandas as pd

    from genejobs.tasks import synth_l2g

    synth_l2g.train_models(pd.read_parquet(table), out, trees=60, depth=4, seed=8)


if __name__ == "__main__":
    main()
