"""Benchmark SHAP at L2G size: the seeds' way against a genejobs job, its overhead, bytes, views.

All figures come from one run, printed side by side and written to
bench/out/shap.json:

1. The seeds' way: `shap.TreeExplainer` per fold model over the rows of its
   chromosomes, each `Explanation` pickled; against `genejobs shap run` with
   2 compute workers, from the command's start until every value is
   committed (queryable). `--job-repeats` alternates them (5 with `--quick`),
   each job on a fresh stack as the first after `genejobs up`; medians.
2. The engines `auto` picks per model (checked on 200 of its rows as a plan does)
   over the same rows in this one process, nothing stored: the job's overhead is
   its wall time against that split over the 2 workers. Beside it pred_contribs,
   fast and woodelf alone on one core, one fold model, with their differences.
3. Stored bytes: the results file against the pickles.
4. `shap global` and `shap presence` over every row: in-process query time.

The table (323,604 rows, 53 features) and the five models (300 trees, depth 6)
are generated once and cached in bench/out/l2g/. Run it alone on the machine
(`flock /tmp/genejobs-bench.lock python bench/bench_shap.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_importance import genejobs_command, local_stack, log  # noqa: E402
from genejobs.tasks import synth_l2g  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
CACHE = OUT / "l2g"
WORKERS = 2
TARGET_SPEEDUP = 6.0  # the issue: ten times the seeds' way on the same cores, 6x at least
TARGET_QUICK_SPEEDUP = 1.5  # a small job (--quick) must not be slower than the seeds' way
TARGET_OVERHEAD = 0.15
TARGET_BYTES = 0.5
TARGET_QUERY_S = 1.0


def prepare(rows: int, trees: int, depth: int) -> tuple[Path, Path]:
    """The table and the fold models, generated once per size and cached."""
    folder = CACHE if (rows, trees, depth) == (323_604, 300, 6) else OUT / f"l2g-{rows}-{trees}"
    table, manifest = folder / "l2g.parquet", folder / "models.tsv"
    if not (table.exists() and manifest.exists()):
        log(f"generating {rows} rows and training five models of {trees} trees into {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        frame = synth_l2g.table(rows)
        frame.to_parquet(table, index=False)
        synth_l2g.train_models(frame, folder, trees=trees, depth=depth)
    return table, manifest


def folds(manifest: Path) -> list[tuple[list[str], Path]]:
    lines = manifest.read_text().splitlines()
    return [
        (line.split("\t")[0].split(","), manifest.parent / line.split("\t")[1]) for line in lines
    ]


def seeds_way(table: Path, manifest: Path, out_dir: Path) -> dict:
    """shap.TreeExplainer per model over its rows, each Explanation pickled (as the seed did)."""
    import shap
    import xgboost

    frame = pd.read_parquet(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    size = values_bytes = data_bytes = 0
    dtypes = ("", "")
    for k, (chroms, path) in enumerate(folds(manifest)):
        model = xgboost.XGBClassifier()
        model.load_model(str(path))
        rows = frame[frame["chrom"].isin(chroms)]
        explainer = shap.TreeExplainer(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explanation = explainer(rows[synth_l2g.FEATURES])
        target = out_dir / f"shap_values_{k}.pkl"
        with target.open("wb") as handle:
            pickle.dump(explanation, handle)
        size += target.stat().st_size
        values_bytes += explanation.values.nbytes
        data_bytes += np.asarray(explanation.data).nbytes
        dtypes = (str(explanation.values.dtype), str(np.asarray(explanation.data).dtype))
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "rows_per_s": len(frame) / wall,
        "pickle_bytes": size,
        "values_bytes": values_bytes,
        "data_bytes": data_bytes,
        "dtypes": dtypes,
        "xgboost_threads": os.cpu_count(),
    }


def engine_alone(table: Path, manifest: Path) -> dict:
    """genejobs' engines (auto, checked per model as a job's plan does) over the same rows in
    this process, nothing stored; the check and each model's set-up are in the timing."""
    from genejobs.tasks.shap_engines import check_engine, explain, warm_up
    from genejobs.tasks.shap_input import CHECK_ROWS, shard_rows_for
    from genejobs.tasks.tree_models import load_model

    warm_up()  # imports outside the timing (the job's workers pay them, in parallel)
    frame = pd.read_parquet(table)
    started = time.perf_counter()
    engines, notes, specs, model_of_row = set(), [], [], np.zeros(len(frame), dtype=np.int16)
    for model_id, (chroms, path) in enumerate(folds(manifest)):
        model = load_model(str(path))
        rows = frame["chrom"].isin(chroms).to_numpy()
        X = frame.loc[rows, list(model.features)].to_numpy(np.float32)
        check = X[np.linspace(0, len(X) - 1, min(len(X), CHECK_ROWS)).astype(int)]
        choice = check_engine(model, check)
        engines.add(explain(model, X, choice.engine).engine)
        notes.append(f"model m{model_id}: {choice.note}")
        specs.append({"model_id": model_id, "engine": choice.engine})
        model_of_row[rows] = model_id
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "rows_per_s": len(frame) / wall,
        "engines": sorted(engines),
        "notes": notes,
        "shard_rows": shard_rows_for(specs, model_of_row),
    }


def engines_per_core(table: Path, manifest: Path, rows: int, repeats: int) -> dict:
    """pred_contribs, fast and woodelf on one core, one fold model, the same rows; medians.
    Each run builds its explainer (woodelf: its tables) anew, as a worker's first shard does."""
    from genejobs.tasks import shap_engines
    from genejobs.tasks.tree_models import load_model

    shap_engines.warm_up()
    chroms, path = folds(manifest)[0]
    frame, model = pd.read_parquet(table), load_model(str(path))
    X = frame.loc[frame["chrom"].isin(chroms), list(model.features)].to_numpy(np.float32)[:rows]
    results, reference = {engine: {"all_s": []} for engine in ("native", "fast", "woodelf")}, None
    for _ in range(repeats):
        for engine, result in results.items():
            shap_engines._EXPLAINERS.clear()
            started = time.perf_counter()
            explained = shap_engines.explain(model, X, engine)
            result["all_s"].append(time.perf_counter() - started)
            reference = explained.shap if engine == "native" else reference
            result["max_abs_diff"] = float(np.abs(explained.shap - reference).max())
    for result in results.values():
        result["rows_per_s"] = len(X) / statistics.median(result["all_s"])
    return {"rows": len(X), "engines": results}


def genejobs_job(table: Path, manifest: Path, shard_rows: int, home: Path) -> dict:
    """`genejobs shap run` on the stack, from the command's start until every shard is committed."""
    from genejobs.worker import inbox

    started = time.perf_counter()
    done = subprocess.run(
        [
            genejobs_command(), "shap", "run", str(table), "--partition-col", "chrom",
            "--manifest", str(manifest), "--id-cols", "study_id,locus_id,gene_id",
            "--shard-rows", str(shard_rows), "--no-wait",
        ],
        env=dict(os.environ), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    job_id = done.stdout.strip().splitlines()[-1]
    enqueued = time.perf_counter() - started
    while True:
        counts = inbox.progress(job_id)
        if counts and counts.get("pending", 1) == 0:
            break
        time.sleep(0.05)
    wall = time.perf_counter() - started
    # Outside the timing: it would take a core from the workers.
    help_started = time.perf_counter()
    subprocess.run([genejobs_command(), "--help"], capture_output=True, check=True)
    startup = time.perf_counter() - help_started
    return {
        "job_id": job_id,
        "wall_s": wall,
        "enqueue_s": enqueued,
        # The command's interpreter start and imports, timed apart: `genejobs --help`.
        "startup_s": startup,
        "shards": counts.get("total"),
        "failed": counts.get("failed", 0),
    }


def check_and_query(job_id: str, rows: int, repeats: int) -> dict:
    """Check what was stored, then time the global and presence views in this process."""
    from genejobs.api import reading
    from genejobs.storage import shap_queries

    with reading() as con:
        stored_rows, stored_values = con.execute(
            "SELECT (SELECT count(*) FROM shap_rows WHERE job_id = $1), "
            "(SELECT count(*) FROM shap_values WHERE job_id = $1)",
            [job_id],
        ).fetchone()
        failures, worst, engines = con.execute(
            "SELECT sum(additivity_failures), max(max_additivity_error), "
            "string_agg(DISTINCT engine) FROM shap_shards WHERE job_id = ?",
            [job_id],
        ).fetchone()
        timings = {}
        for name, view in (
            ("global", lambda: shap_queries.global_importance(con, job_id)),
            ("global_by_model", lambda: shap_queries.global_importance(con, job_id, True)),
            ("presence", lambda: shap_queries.presence(con, job_id)),
        ):
            view()  # warm
            runs = []
            for _ in range(repeats):
                t = time.perf_counter()
                view()
                runs.append(time.perf_counter() - t)
            timings[name] = {"median_s": statistics.median(runs), "all_s": runs}
    assert stored_rows == rows, (stored_rows, rows)
    assert stored_values == rows * len(synth_l2g.FEATURES), stored_values
    return {
        "rows": stored_rows,
        "values": stored_values,
        "additivity_failures": int(failures),
        "max_additivity_error": worst,
        "engines": engines,
        "views": timings,
    }


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time, its other figures with it; every wall time beside it."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return {**ordered[(len(ordered) - 1) // 2], "walls_s": [r["wall_s"] for r in runs]}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def summary(r: dict) -> str:
    seeds, job, alone, q = r["seeds_way"], r["genejobs"], r["engine_alone"], r["stored"]
    speedup = seeds["wall_s"] / job["wall_s"]
    target = TARGET_QUICK_SPEEDUP if r["config"]["quick"] else TARGET_SPEEDUP
    ideal = alone["wall_s"] / WORKERS
    overhead = job["wall_s"] / ideal - 1
    ratio = r["bytes"]["results_file"] / seeds["pickle_bytes"]
    data_itemsize = 8 if seeds["dtypes"][1] == "float64" else 4
    float32_pickles = seeds["pickle_bytes"] - seeds["data_bytes"] * (1 - 4 / data_itemsize)
    lines = [
        f"genejobs SHAP benchmark: {r['rows']:,} rows x 53 features, five XGBoost models of "
        f"{r['config']['trees']} trees (depth {r['config']['depth']}), {os.cpu_count()} cores",
        "",
        "1. the seeds' way against the genejobs job (2 compute workers, until queryable)",
        f"   seeds' way (shap.TreeExplainer, Explanation pickled): {seeds['wall_s']:.1f} s "
        f"({seeds['rows_per_s']:.0f} rows/s)",
        f"   genejobs shap run, {job['shards']} shards of {r['config']['shard_rows']} rows: "
        f"{job['wall_s']:.1f} s ({r['rows'] / job['wall_s']:.0f} rows/s)",
        f"   enqueue (the command, until its job is planned) {job['enqueue_s']:.2f} s: "
        f"start-up {job['startup_s']:.2f} s (`genejobs --help`), then "
        f"{(job['enqueue_s'] - job['startup_s']) / job['shards'] * 1000:.0f} ms a shard "
        "(reading and checking the table and models, the job's input copy, the plan)",
        f"   speedup {speedup:.2f}x  target >= {target}x {verdict(speedup >= target)}"
        f"  (medians of {len(job['walls_s'])}: seeds' way "
        f"{', '.join(f'{w:.1f}' for w in seeds['walls_s'])} s; job "
        f"{', '.join(f'{w:.1f}' for w in job['walls_s'])} s)",
        "",
        "2. overhead against the engine alone (one process, nothing stored)",
        *(f"   {note}" for note in alone["notes"]),
        f"   engine {','.join(alone['engines'])}: {alone['wall_s']:.1f} s "
        f"({alone['rows_per_s']:.0f} rows/s); split over {WORKERS} workers: {ideal:.1f} s",
        f"   job {job['wall_s']:.1f} s: overhead {overhead * 100:+.1f}%  target <= "
        f"{TARGET_OVERHEAD * 100:.0f}% {verdict(overhead <= TARGET_OVERHEAD)}",
        "",
        *per_core_lines(r["per_core"], r["config"]["trees"]),
        "",
        "3. stored bytes",
        f"   pickles {seeds['pickle_bytes'] / 1e6:.1f} MB; results file "
        f"{r['bytes']['results_file'] / 1e6:.1f} MB ({ratio:.2f} of the pickles)  target <= "
        f"{TARGET_BYTES} {verdict(ratio <= TARGET_BYTES)}",
        f"   (the pickles hold SHAP values as {seeds['dtypes'][0]} "
        f"({seeds['values_bytes'] / 1e6:.1f} MB) and the data as {seeds['dtypes'][1]} "
        f"({seeds['data_bytes'] / 1e6:.1f} MB); with float32 data they would be "
        f"{float32_pickles / 1e6:.1f} MB and the results file "
        f"{r['bytes']['results_file'] / float32_pickles:.2f} of them)",
        f"   the job's input copy in the data dir: {r['bytes']['job_input'] / 1e6:.1f} MB",
        "",
        f"4. views over {q['values']:,} stored values (in-process, median of "
        f"{len(q['views']['global']['all_s'])})",
    ]
    for name, row in q["views"].items():
        lines.append(
            f"   shap {name:<16} {row['median_s']:.3f} s  target < {TARGET_QUERY_S} s "
            f"{verdict(row['median_s'] < TARGET_QUERY_S)}"
        )
    lines += [
        "",
        f"checks: {q['rows']:,} rows and {q['values']:,} values stored; additivity failures "
        f"{q['additivity_failures']} (max error {q['max_additivity_error']:.2g}); "
        f"engines {q['engines']}",
    ]
    return "\n".join(lines)


def per_core_lines(per_core: dict, trees: int) -> list[str]:
    engines, names = per_core["engines"], {"native": "xgboost pred_contribs", "fast": "fast"}
    return [
        f"   each engine on one core, one fold model ({trees} trees), {per_core['rows']:,} rows "
        f"(median of {len(engines['native']['all_s'])}; set-up included):",
        *(
            f"   {names.get(engine, engine):<24} {row['rows_per_s']:>7.0f} rows/s  "
            f"{row['rows_per_s'] / engines['native']['rows_per_s']:5.1f}x  max |diff| from "
            f"pred_contribs {row['max_abs_diff']:.1e}"
            for engine, row in engines.items()
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=323_604)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument(
        "--shard-rows", type=int, default=None,
        help="Rows per shard [default: what the engines suit (shap_input.shard_rows_for)].",
    )  # fmt: skip
    parser.add_argument(
        "--per-core-rows", type=int, default=20_000,
        help="Rows of one fold model that each engine explains alone on one core.",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--job-repeats", type=int, default=None,
        help="Runs of the seeds' way and of the job, alternating (medians; 1, or 5 with --quick).",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT / "shap.json")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 50 trees: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.trees = 20_000, 50
    if args.job_repeats is None:
        args.job_repeats = 5 if args.quick else 1
    table, manifest = prepare(args.rows, args.trees, args.depth)
    report: dict = {
        "rows": args.rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {k: v for k, v in vars(args).items() if k != "out"},
    }
    with tempfile.TemporaryDirectory(prefix="genejobs-bench-shap-") as temp:
        temp_dir = Path(temp)
        log("the engine alone")
        report["engine_alone"] = engine_alone(table, manifest)
        log("each engine on one core")
        report["per_core"] = engines_per_core(
            table, manifest, args.per_core_rows, min(args.repeats, 3)
        )
        if args.shard_rows is None:
            args.shard_rows = report["engine_alone"]["shard_rows"]
        report["config"]["shard_rows"] = args.shard_rows
        seeds_runs, job_runs = [], []
        for repeat in range(args.job_repeats):
            log(f"the seeds' way ({repeat + 1}/{args.job_repeats})")
            seeds_runs.append(seeds_way(table, manifest, temp_dir / "pickles"))
            # Each job on a fresh stack and results file, as the first job after `genejobs up`.
            home = temp_dir / f"home{repeat}"
            with local_stack(home, WORKERS):
                log(f"genejobs shap run ({repeat + 1}/{args.job_repeats})")
                job_runs.append(genejobs_job(table, manifest, args.shard_rows, home))
                if repeat == args.job_repeats - 1:
                    report["stored"] = check_and_query(
                        job_runs[-1]["job_id"], args.rows, args.repeats
                    )
        report["seeds_way"] = _median_run(seeds_runs)
        report["genejobs"] = {**_median_run(job_runs), "job_id": job_runs[-1]["job_id"]}
        report["raw"] = {"seeds_way": seeds_runs, "genejobs": job_runs}
        job_input = home / "shap" / report["genejobs"]["job_id"] / "input.parquet"
        report["bytes"] = {
            "results_file": (home / "results.duckdb").stat().st_size,
            "job_input": job_input.stat().st_size,
        }
    text = summary(report)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**report, "summary": text}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
