"""The units of every job kind, read from the results file as the tasks that do them.

The results file is the one source of truth for what is left to do: a unit
is to be run while its row is `pending` and its job is not cancelled. The
writer sends the units a plan or a retry created from here, right after the
commit, and sends again, from here, any pending unit the broker has lost
(see `worker.dispatch`); no list of tasks to send lives only in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import duckdb

from genejobs.candidates import CANDIDATES
from genejobs.config import settings
from genejobs.units import JobKind, Task, Unit, UnitStatus, run_unit

PENDING = UnitStatus.PENDING.value


def _job_filter(column: str, job_ids: set[str] | None) -> tuple[str, list]:
    if job_ids is None:
        return "", []
    ids = sorted(job_ids)
    if not ids:
        return " AND false", []
    return f" AND {column} IN ({', '.join('?' * len(ids))})", ids


def pending(
    con: duckdb.DuckDBPyConnection, job_ids: set[str] | None = None, kind: JobKind | None = None
) -> list[Unit]:
    """Every unit left to run (of the given jobs, or of all jobs), slowest search folds first.

    With `kind`, only that kind's units are looked for (a request knows its
    job's kind, and a lone run's latency feels every query).
    """
    finders = {
        JobKind.SEARCH: (_search_folds, finalize_steps),
        JobKind.IMPORTANCE: (_runs,),
        JobKind.EVALUATE: (_tests,),
        JobKind.SHAP: (_shards,),
    }
    chosen = finders[kind] if kind is not None else [f for fs in finders.values() for f in fs]
    return [unit for find in chosen for unit in find(con, job_ids)]


def _setup(params: str) -> dict:
    stored = json.loads(params)
    return {k: stored[k] for k in ("session_id", "train_size", "folds")}


def _runs(con, job_ids) -> list[Unit]:
    where, args = _job_filter("r.job_id", job_ids)
    rows = con.execute(
        f"""SELECT r.job_id, r.dataset_id, d.path, r.model, r.seed, r.test_size,
                   json_extract_string(j.params, '$.scheme') = 'pairs'
            FROM runs r JOIN jobs j ON j.job_id = r.job_id
            JOIN datasets d ON d.dataset_id = r.dataset_id
            WHERE r.status = '{PENDING}' AND NOT j.cancelled{where} ORDER BY r.job_id, r.seed""",
        args,
    ).fetchall()
    per_job: dict[str, int] = {}
    for row in rows:
        per_job[row[0]] = per_job.get(row[0], 0) + 1
    packs: dict[tuple, int] = {}

    def pack(job_id: str, dataset_id: str, model: str, pairs: bool) -> int:
        if per_job[job_id] <= 1:
            return 1
        if (model, dataset_id) not in packs:
            packs[model, dataset_id] = run_pack(con, model, dataset_id)
        return max(1, packs[model, dataset_id] // _halves("pairs" if pairs else "split"))

    return [
        run_unit(
            job_id,
            dataset_id,
            path,
            model,
            seed,
            test_size,
            "pairs" if pairs else "split",
            pack(job_id, dataset_id, model, pairs),
        )
        for job_id, dataset_id, path, model, seed, test_size, pairs in rows
    ]


def planned_runs(con: duckdb.DuckDBPyConnection, plan: dict) -> list[Unit]:
    """The units of an importance job just planned (`ImportanceStore.plan_importance`'s reply):
    all its runs, pending, as `pending` would read them back, without reading them."""
    seeds, make = planned_runs_maker(con, plan)
    return make(seeds)


def planned_runs_maker(
    con: duckdb.DuckDBPyConnection, plan: dict
) -> tuple[list[int], Callable[[list[int]], list[Unit]]]:
    """A planned job's seeds, in order, and what makes the units of some of them (as
    `planned_runs` would): the writer makes them a chunk at a time as it sends them."""
    seeds = sorted(plan["seeds"])
    pack = 1
    if len(seeds) > 1:
        pack = max(1, run_pack(con, plan["model"], plan["dataset_id"]) // _halves(plan["scheme"]))
    job_id, dataset_id, path = plan["job_id"], plan["dataset_id"], plan["dataset_path"]
    model, test_size, scheme = plan["model"], plan["test_size"], plan["scheme"]

    def make(chosen: list[int]) -> list[Unit]:
        return [
            run_unit(job_id, dataset_id, path, model, seed, test_size, scheme, pack)
            for seed in chosen
        ]

    return seeds, make


def _halves(scheme: str) -> int:
    """Fits per seeded run: a `pairs` run fits both halves."""
    return 2 if scheme == "pairs" else 1


# A task that carries seeded runs aims at GENEJOBS_PACK_SECONDS of work: per-task costs
# (the broker, the worker's bookkeeping, the writer's send) fade, and a killed
# worker redoes little; a task stays under MAX_PACK runs. Packs also shrink as
# a job's runs run out (worker.dispatch.packed).
MAX_PACK = 64
# What a run costs beside its fit (split, score, report), in seconds.
RUN_OVERHEAD = 0.005
# A model's seconds per fit before any fit of it on the dataset is on record.
PRIOR_SECONDS = {"dummy": 0.0, "lr": 0.1, "ridge": 0.05, "lda": 0.1, "svm": 0.05, "dt": 0.1}
UNKNOWN_SECONDS = 1.0


def run_pack(con: duckdb.DuckDBPyConnection, model: str, dataset_id: str) -> int:
    """How many seeded runs of `model` on a dataset one task carries (1 for long fits).

    The seconds per fit are the median of up to 200 recorded fits of the same
    model on the same dataset, else a prior by model; a task whose fits run
    longer than expected hands its remaining runs back (tasks.importance).
    """
    found = con.execute(
        """SELECT median(fit_seconds), count(*) FROM (
               SELECT fit_seconds FROM runs
               WHERE model = ? AND dataset_id = ? AND status = 'done' LIMIT 200)""",
        [model, dataset_id],
    ).fetchone()
    seconds = float(found[0]) if found[1] else PRIOR_SECONDS.get(model, UNKNOWN_SECONDS)
    return max(1, min(MAX_PACK, int(settings().pack_seconds / (seconds + RUN_OVERHEAD))))


def _search_folds(con, job_ids) -> list[Unit]:
    where, args = _job_filter("f.job_id", job_ids)
    rows = con.execute(
        f"""SELECT f.job_id, f.model, f.fold, j.params, d.path
            FROM search_folds f JOIN jobs j ON j.job_id = f.job_id
            JOIN datasets d ON d.dataset_id = j.dataset_id
            WHERE f.status = '{PENDING}' AND NOT j.cancelled{where}
            ORDER BY f.job_id, f.model, f.fold""",
        args,
    ).fetchall()
    # Longest first keeps every worker busy to the end: a slow model's folds
    # run side by side instead of trailing behind the quick ones.
    rows.sort(key=lambda row: -CANDIDATES[row[1]].cost if row[1] in CANDIDATES else 0)
    return [
        Unit(
            Task.SEARCH_FOLD,
            job_id,
            f"{job_id}-{model}-{fold}",
            {
                "job_id": job_id,
                "dataset_path": path,
                "setup": _setup(params),
                "model": model,
                "fold": int(fold),
            },
            f"search {model} fold={fold} job={job_id}",
        )
        for job_id, model, fold, params, path in rows
    ]


def finalize_steps(con, job_ids) -> list[Unit]:
    """A search's best model, and any model `models finalize` asked for: ranked and not yet
    saved nor failed to save."""
    where, args = _job_filter("m.job_id", job_ids)
    rows = con.execute(
        f"""SELECT m.job_id, m.model_id, m.model, j.params, d.path
            FROM model_runs m JOIN jobs j ON j.job_id = m.job_id
            JOIN datasets d ON d.dataset_id = j.dataset_id
            WHERE (m.best OR (m.finalize_requested AND m.status = 'done'))
              AND m.artifact_sha256 IS NULL AND m.finalize_error IS NULL
              AND NOT j.cancelled{where} ORDER BY m.model_id""",
        args,
    ).fetchall()
    return [
        Unit(
            Task.SEARCH_FINALIZE,
            job_id,
            f"{model_id}-finalize",
            {
                "job_id": job_id,
                "dataset_path": path,
                "setup": _setup(params),
                "model_id": model_id,
                "model": model,
            },
            f"finalize {model} job={job_id}",
        )
        for job_id, model_id, model, params, path in rows
    ]


def _tests(con, job_ids) -> list[Unit]:
    where, args = _job_filter("t.job_id", job_ids)
    cursor = con.execute(
        f"""SELECT t.job_id, t.test_id, d.path AS dataset_path, m.estimator, m.params,
                   t.split_seed, t.hyper_seed, t.test_size, t.model_id
            FROM test_results t JOIN jobs j ON j.job_id = t.job_id
            JOIN model_runs m ON m.model_id = t.model_id
            JOIN datasets d ON d.dataset_id = t.dataset_id
            WHERE t.status = '{PENDING}' AND NOT j.cancelled{where} ORDER BY t.test_id""",
        args,
    )
    names = [d[0] for d in cursor.description]
    units = []
    for row in cursor.fetchall():
        test = dict(zip(names, row, strict=True))
        model_id = test.pop("model_id")
        test["split_seed"], test["hyper_seed"] = int(test["split_seed"]), int(test["hyper_seed"])
        units.append(
            Unit(
                Task.HOLDOUT_TEST,
                test["job_id"],
                test["test_id"],
                test,
                f"evaluate {model_id} split={test['split_seed']}",
            )
        )
    return units


def _shards(con, job_ids) -> list[Unit]:
    """SHAP shards not computed yet; one whose files wait in the spool is computed."""
    where, args = _job_filter("s.job_id", job_ids)
    rows = con.execute(
        f"""SELECT s.job_id, s.shard, s.first_row, s.n_rows, j.input_path, j.zero_is_present,
                   j.engine, j.params
            FROM shap_shards s JOIN shap_jobs j ON j.job_id = s.job_id
            WHERE s.status = '{PENDING}' AND s.values_path IS NULL AND NOT j.cancelled{where}
            ORDER BY s.job_id, s.shard""",
        args,
    ).fetchall()
    return [
        Unit(
            Task.SHAP_SHARD,
            job_id,
            f"{job_id}-{shard}",
            {
                "job_id": job_id,
                "shard": int(shard),
                "input_path": input_path,
                "first_row": int(first_row),
                "n_rows": int(n_rows),
                "models": json.loads(params)["models"],
                "zero_is_present": bool(zero_is_present),
                "engine": engine,
            },
            f"shap shard={shard} job={job_id}",
        )
        for job_id, shard, first_row, n_rows, input_path, zero_is_present, engine, params in rows
    ]
