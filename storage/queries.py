"""Read-side queries over the results file.

Every function takes an open connection (read-only for the CLI, the writer's
own for planning) and returns plain values or DataFrames. Nothing here writes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from genejobs.errors import InputError, NotFoundError
from genejobs.storage.db import first
from genejobs.storage.schema import RunStatus

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
# Holdout tests in the order they were planned: a test id is `<job id>-<n>`, and as text
# `...-10` would come before `...-2`.
TEST_ORDER = "job_id, TRY_CAST(regexp_extract(test_id, '-(\\d+)$', 1) AS BIGINT), test_id"


def dataset(con: duckdb.DuckDBPyConnection, name_or_id: str, columns: str = "*") -> dict:
    """One dataset's row, found by name or id (`columns`: all, or those named)."""
    cursor = con.execute(
        f"SELECT {columns} FROM datasets WHERE name = ? OR dataset_id = ? "
        "ORDER BY name = ? DESC LIMIT 1",
        [name_or_id, name_or_id, name_or_id],
    )
    row = first(cursor.fetchall())
    if row is None:
        raise NotFoundError(f"unknown dataset '{name_or_id}'; see `genejobs datasets list`")
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def datasets(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        """SELECT name, dataset_id, n_samples, n_genes, len(classes) AS n_classes, label_col,
                  parent_id, source, created_at
           FROM datasets ORDER BY created_at"""
    ).df()


_JOB_COUNTS = """
    SELECT j.job_id, j.kind, coalesce(d.name, j.source) AS dataset, j.model,
           CASE WHEN j.cancelled THEN 'cancelled'
                WHEN count(*) FILTER (WHERE r.status = 'pending') > 0 THEN 'running'
                WHEN count(*) FILTER (WHERE r.status = 'failed') > 0 THEN 'failed'
                ELSE 'done' END AS status,
           count(r.status) AS units,
           count(*) FILTER (WHERE r.status = 'done')      AS done,
           count(*) FILTER (WHERE r.status = 'failed')    AS failed,
           count(*) FILTER (WHERE r.status = 'pending')   AS pending,
           count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
           -- a search's units are folds of different models: its best model's accuracy
           CASE WHEN j.kind = 'search' THEN any_value(b.accuracy)
                ELSE round(avg(r.accuracy), 4) END AS mean_accuracy,
           strftime(j.created_at, '%Y-%m-%d %H:%M:%S') AS created,
           strftime(max(r.finished_at), '%Y-%m-%d %H:%M:%S') AS finished
    FROM (
        SELECT job_id, kind, dataset_id, NULL AS source, model, cancelled, created_at FROM jobs
        UNION ALL
        SELECT job_id, 'shap', NULL, source, NULL, cancelled, created_at FROM shap_jobs
    ) j LEFT JOIN datasets d USING (dataset_id) LEFT JOIN (
        -- a job's units of work, whatever its kind: seeded runs, search folds, evaluations,
        -- SHAP shards
        SELECT job_id, status, accuracy, finished_at FROM runs
        UNION ALL SELECT job_id, status, accuracy, finished_at FROM search_folds
        UNION ALL SELECT job_id, status, accuracy, finished_at FROM test_results
        UNION ALL SELECT job_id, status, NULL, finished_at FROM shap_shards
    ) r USING (job_id) LEFT JOIN (
        -- the mean fold accuracy of a search's best model, once the search ranked them
        SELECT job_id, accuracy FROM model_runs WHERE best
    ) b USING (job_id)
"""
_JOB_GROUP = " GROUP BY j.job_id, j.kind, d.name, j.source, j.model, j.cancelled, j.created_at"


def jobs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(_JOB_COUNTS + _JOB_GROUP + " ORDER BY j.created_at").df()


def run_model(con: duckdb.DuckDBPyConnection, job_id: str, seed: str) -> dict:
    """What fitting a seeded run's model again takes: its dataset file, model, seed, test size."""
    if not seed.isdigit():
        raise InputError(f"'{job_id}:{seed}': a run is named JOB:SEED, with a whole-number seed")
    found = first(
        con.execute(
            "SELECT d.path, r.model, r.seed, r.test_size, r.status FROM runs r "
            "JOIN datasets d USING (dataset_id) WHERE r.job_id = ? AND r.seed = ?",
            [job_id, int(seed)],
        ).fetchall()
    )
    if found is None:
        raise NotFoundError(
            f"no run with seed {seed} in job '{job_id}'; see `genejobs jobs show {job_id}`"
        )
    path, model, seed_value, test_size, status = found
    if status != RunStatus.DONE.value:
        raise InputError(f"run {job_id}:{seed} is {status}, not done")
    return {
        "path": path,
        "run": {"model": model, "seed": int(seed_value), "test_size": float(test_size)},
    }


def job(con: duckdb.DuckDBPyConnection, job_id: str) -> dict:
    """One job's summary: unit counts, then what its kind tells best.

    Importance: parameters, holdout accuracy spread, genes selected. Search:
    the top of its leaderboard and its saved model. Evaluation: holdout
    accuracy over the splits. SHAP: rows, models and additivity. Then the
    first errors.
    """
    frame = con.execute(_JOB_COUNTS + " WHERE j.job_id = ?" + _JOB_GROUP, [job_id]).df()
    if frame.empty:
        raise NotFoundError(f"unknown job '{job_id}'; see `genejobs jobs list`")
    summary = frame.iloc[0].to_dict()
    kind = summary["kind"]
    if kind == "shap":
        from genejobs.storage import shap_queries

        details = shap_queries.job(con, job_id)
        return {**summary, **{k: v for k, v in details.items() if k not in summary}}
    params = first(con.execute("SELECT params FROM jobs WHERE job_id = ?", [job_id]).fetchall())[0]
    summary["params"] = json.loads(params)
    table, key, order = {
        "importance": ("runs", "seed", "seed"),
        "search": ("search_folds", "model || ' fold ' || fold", "model, fold"),
        "evaluate": ("test_results", "test_id", TEST_ORDER),
    }[kind]
    if kind in ("importance", "evaluate"):
        stats = first(
            con.execute(
                f"""SELECT min(accuracy), quantile_cont(accuracy, 0.5), max(accuracy),
                      avg(accuracy), stddev(accuracy), avg(fit_seconds)
               FROM {table} WHERE job_id = ? AND status = 'done'""",
                [job_id],
            ).fetchall()
        )
        names = ["min", "median", "max", "mean", "sd"]
        summary.update({f"{n}_accuracy": v for n, v in zip(names, stats, strict=False)})
        summary["mean_fit_seconds"] = stats[-1]
    if kind == "importance":
        summary["mean_genes_selected"] = first(
            con.execute(
                "SELECT avg(n_selected) FROM runs WHERE job_id = ? AND status = 'done'", [job_id]
            ).fetchall()
        )[0]
    if kind == "search":
        summary["leaderboard_top"] = [
            {"rank": rank, "model": model, "accuracy": acc, "auc": auc, "f1": f1}
            for rank, model, acc, auc, f1 in con.execute(
                "SELECT rank, model, accuracy, auc, f1 FROM model_runs "
                "WHERE job_id = ? AND rank IS NOT NULL ORDER BY rank LIMIT 5",
                [job_id],
            ).fetchall()
        ]
        summary["best_model"] = (
            first(
                con.execute(
                    "SELECT model_id || coalesce(' saved as ' || artifact_path, "
                    "' (finalize failed: ' || finalize_error || ')', ' (not saved yet)') "
                    "FROM model_runs WHERE job_id = ? AND best",
                    [job_id],
                ).fetchall()
            )
            or [None]
        )[0]
    summary["errors"] = [
        {"unit": str(unit), "error": error}
        for unit, error in con.execute(
            f"SELECT {key}, error FROM {table} WHERE job_id = ? AND status = 'failed' "
            f"ORDER BY {order} LIMIT 5",
            [job_id],
        ).fetchall()
    ]
    return summary


@dataclass(frozen=True)
class Scope:
    """Which runs a gene question is about: one job, or every job on a dataset and model."""

    where: str
    params: tuple
    label: str
    dataset_id: str


def scope(
    con: duckdb.DuckDBPyConnection, job_id: str | None, dataset_name: str | None, model: str | None
) -> Scope:
    if job_id is not None:
        if dataset_name is not None or model is not None:
            raise InputError("give either --job or --dataset with --model, not both")
        row = first(
            con.execute("SELECT dataset_id, model FROM jobs WHERE job_id = ?", [job_id]).fetchall()
        )
        if row is None:
            raise NotFoundError(f"unknown job '{job_id}'; see `genejobs jobs list`")
        return Scope("job_id = ?", (job_id,), f"job {job_id}", row[0])
    if dataset_name is None or model is None:
        raise InputError("give --job, or both --dataset and --model")
    found = dataset(con, dataset_name)
    return Scope(
        "dataset_id = ? AND model = ?",
        (found["dataset_id"], model),
        f"dataset {found['name']}, model {model}",
        found["dataset_id"],
    )


def gene_counts(
    con: duckdb.DuckDBPyConnection,
    where: Scope,
    top: int | None = None,
    min_importance: float | None = None,
    class_label: str | None = None,
) -> tuple[int, pd.DataFrame]:
    """Per gene: how many finished runs selected it, with mean importance, rank and direction.

    Selected means a non-zero importance, or rank <= `top` when given, and
    importance >= `min_importance` when given. Returns (runs counted, table).
    """
    # A run of a `pairs` job made two fits (one per half): fractions are of fits.
    total = first(
        con.execute(
            f"""SELECT count(*) + count(*) FILTER (
                       WHERE json_extract_string(j.params, '$.scheme') = 'pairs')
                FROM (SELECT job_id FROM runs WHERE {where.where} AND status = ?) r
                JOIN jobs j USING (job_id)""",
            [*where.params, RunStatus.DONE.value],
        ).fetchall()
    )[0]
    source = "importances"
    params: list = []
    if class_label is not None:
        # One class of a multiclass linear model: its |coef| is the importance,
        # ranked within each run.
        position = _class_position(con, where, class_label)
        source = f"""(SELECT gene, abs(class_coefs[{position}]) AS importance,
                             class_coefs[{position}] AS coef,
                             row_number() OVER (PARTITION BY dataset_id, model, seed
                                 ORDER BY abs(class_coefs[{position}]) DESC, rank) AS rank
                      FROM importances
                      WHERE {where.where} AND class_coefs[{position}] <> 0)"""
        params.extend(where.params)
    filters = ["true"] if class_label is not None else [where.where]
    params.extend([] if class_label is not None else where.params)
    if top is not None:
        filters.append("rank <= ?")
        params.append(top)
    if min_importance is not None:
        filters.append("importance >= ?")
        params.append(min_importance)
    frame = con.execute(
        f"""SELECT gene, count(*) AS runs, count(*) / ?::DOUBLE AS fraction,
                   avg(importance) AS mean_importance, avg(rank) AS mean_rank,
                   stddev_samp(rank) AS rank_sd,
                   avg((coef > 0)::INTEGER) AS positive_fraction
            FROM {source} WHERE {" AND ".join(filters)}
            GROUP BY gene ORDER BY runs DESC, mean_importance DESC, gene""",
        [max(total, 1), *params],
    ).df()
    n_genes = first(
        con.execute(
            "SELECT n_genes FROM datasets WHERE dataset_id = ?", [where.dataset_id]
        ).fetchall()
    )[0]
    # Ranks run from 1 to the number of genes, or to K when only each fit's top K count.
    highest_rank = min(n_genes, top) if top is not None else n_genes
    return int(total), with_intervals(frame, int(total), highest_rank)


def with_intervals(
    frame: pd.DataFrame, total: int, highest_rank: int | None = None
) -> pd.DataFrame:
    """Add the 95% intervals: Wilson for each selection fraction, Student-t for each mean rank.

    The mean rank's interval is clipped to the ranks there are, 1 to `highest_rank`.
    """
    from genejobs.storage.stability import mean_interval, wilson_interval

    counts = frame["runs"].to_numpy(dtype=float)
    lo, hi = wilson_interval(counts, np.full_like(counts, float(max(total, 1))))
    rank_lo, rank_hi = mean_interval(
        frame["mean_rank"],
        frame.pop("rank_sd").fillna(0),
        counts,
        bounds=(1, highest_rank or np.inf),
    )
    frame.insert(frame.columns.get_loc("fraction") + 1, "fraction_lo", lo)
    frame.insert(frame.columns.get_loc("fraction_lo") + 1, "fraction_hi", hi)
    frame.insert(frame.columns.get_loc("mean_rank") + 1, "mean_rank_lo", rank_lo)
    frame.insert(frame.columns.get_loc("mean_rank_lo") + 1, "mean_rank_hi", rank_hi)
    return frame


def _class_position(con: duckdb.DuckDBPyConnection, where: Scope, class_label: str) -> int:
    """The 1-based position of a class in the dataset's classes, as stored in class_coefs."""
    classes = first(
        con.execute(
            "SELECT classes FROM datasets WHERE dataset_id = ?", [where.dataset_id]
        ).fetchall()
    )[0]
    if class_label not in classes:
        raise InputError(f"unknown class '{class_label}'; the classes are {', '.join(classes)}")
    has_classes = first(
        con.execute(
            f"SELECT count(*) FROM importances WHERE {where.where} AND class_coefs IS NOT NULL",
            list(where.params),
        ).fetchall()
    )[0]
    if not has_classes:
        raise InputError(
            f"--class needs per-class coefficients, which only multiclass linear models "
            f"(lr, ridge, lda, svm) have; {where.label} has none"
        )
    return classes.index(class_label) + 1


def run_sql(con: duckdb.DuckDBPyConnection, query: str) -> pd.DataFrame:
    """Run read-only SQL; refuse any statement that is not a query."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise InputError(_sql_error(exc)) from None
    if not statements:
        raise InputError("no SQL statement given")
    for statement in statements:
        kind = statement_kind(statement)
        if kind not in READ_ONLY_STATEMENTS:
            raise InputError(
                f"refusing {kind} statement: `genejobs sql` only reads (SELECT, EXPLAIN)"
            )
    try:
        for statement in statements[:-1]:
            con.execute(statement)
        return con.execute(statements[-1]).df()
    except duckdb.Error as exc:
        raise InputError(_sql_error(exc)) from None


def statement_kind(statement) -> str:
    """A parsed statement's kind, as its user wrote it where DuckDB's type is coarser.

    DuckDB types INSTALL as LOAD, RESET and USE as SET, CHECKPOINT as CALL, and
    has no type for some statements (UPDATE EXTENSIONS): those are named by
    their leading keywords. A read-only type (SELECT also covers SHOW,
    DESCRIBE, SUMMARIZE, FROM, VALUES) is kept as it is.
    """
    try:
        kind = statement.type.name
    except ValueError:  # a statement type the Python API does not know
        kind = None
    if kind in READ_ONLY_STATEMENTS:
        return kind
    words = re.findall(r"[A-Za-z_]+", statement.query[:100])[:2]
    if not words or words[0].upper() == "WITH":  # WITH ... DELETE: the type says it
        return kind or "unknown"
    two_words = kind is None or words[0].upper() == "FORCE"  # UPDATE EXTENSIONS, FORCE INSTALL
    return " ".join(words[: 2 if two_words else 1]).upper()


def _sql_error(exc: Exception) -> str:
    """DuckDB's message on one line, with its hint ("Did you mean ...?"), not its caret lines."""
    first = str(exc).strip().split("\n\n")[0]
    return "SQL error: " + " ".join(line.strip() for line in first.splitlines() if line.strip())
