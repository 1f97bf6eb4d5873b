"""How fast the explorer's pages answer on an L2G-size SHAP job.

One stack with 2 workers: an L2G-like table (`datasets synth-l2g`, 53
features, five chromosome-partitioned XGBoost models of 100 trees of depth 5),
one SHAP job over every row with the study, locus and gene as ids (and, with
`--groups`, the table's feature groups), then `genejobs serve`; each page is
fetched 5 times, and the first time and the median are printed. The server
computes a finished job's first pages ahead (cli/explorer/summaries.py): the
first fetch of the job's page may still wait for that.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_importance import free_port, genejobs, local_stack  # noqa: E402


def fetch_times(url: str, repeats: int = 5) -> tuple[float, float]:
    """Seconds to fetch `url`: the first time, and the median of `repeats` times."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
        seconds.append(time.perf_counter() - started)
    return seconds[0], statistics.median(seconds)


def main() -> None:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=323_604)
    parser.add_argument(
        "--groups", action="store_true", help="run the SHAP job with the feature groups"
    )
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="genejobs-bench-explorer-")
    with tmp, local_stack(Path(tmp.name), workers=2):
        home = Path(tmp.name)
        genejobs(
            "datasets", "synth-l2g", "--rows", str(args.rows), "--out", str(home / "l2g.parquet"),
            "--train-models", str(home / "models"), "--trees", "100", "--depth", "5",
        )  # fmt: skip
        groups = ["--groups", str(home / "l2g.groups.tsv")] if args.groups else []
        out = genejobs(
            "shap", "run", str(home / "l2g.parquet"), "--partition-col", "chrom",
            "--manifest", str(home / "models" / "models.tsv"),
            "--id-cols", "study_id,locus_id,gene_id", *groups, "--wait",
        ).stdout  # fmt: skip
        job = out.split("job ")[1].split(":")[0]
        catalog = home / "views" / "genejobs.duckdb"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until a publication holds the job's values
            try:
                with duckdb.connect(str(catalog), read_only=True) as con:
                    key, row_id = con.execute(
                        "SELECT row_key, row_id FROM shap_rows WHERE job_id = ? "
                        "ORDER BY output DESC LIMIT 1",
                        [job],
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
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            gene = key.rsplit("|", 1)[1]
            pages = {
                "jobs": "/",
                "SHAP job (bars, beeswarm, presence)": f"/job/{job}",
                "per model": f"/job/{job}?by=model",
                "one feature's dependence": f"/job/{job}?feature=dist_tss_min",
                "search a gene id": f"/job/{job}?q={gene}",
                "one prediction and its locus": f"/shap/{job}/row/{row_id}",
            }
            grouped = ", feature groups" if args.groups else ""
            print(f"explorer on a SHAP job of {args.rows} rows x 53 features{grouped}")
            print(f"  {'page':36s} {'first':>9s} {'median of 5':>12s}")
            for name, path in pages.items():
                first, median = fetch_times(base + path)
                print(f"  {name:36s} {first * 1000:6.0f} ms {median * 1000:9.0f} ms")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
