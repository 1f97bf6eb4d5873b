"""Read-side queries for model searches, their models and holdout tests. Nothing here writes."""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from genejobs.candidates import METRIC_COLUMNS, METRICS
from genejobs.errors import InputError, NotFoundError
from genejobs.storage import queries
from genejobs.storage.db import first

_METRICS = ", ".join(METRIC_COLUMNS)


def leaderboard(con: duckdb.DuckDBPyConnection, job_id: str) -> pd.DataFrame:
    """A search's models in leaderboard order; failed models last, with their error."""
    return con.execute(
        f"""SELECT rank, model_id, model, name, {_METRICS}, fit_seconds, status, best, error
            FROM model_runs WHERE job_id = ?
            ORDER BY rank NULLS LAST, position""",
        [job_id],
    ).df()


def saved_model(con: duckdb.DuckDBPyConnection, model_id: str) -> dict:
    """A model's artifact, hash and its dataset's genes and label; refused when not saved."""
    row = first(
        con.execute(
            "SELECT m.artifact_path, m.artifact_sha256, d.genes, d.label_col FROM model_runs m "
            "JOIN datasets d USING (dataset_id) WHERE m.model_id = ?",
            [model_id],
        ).fetchall()
    )
    if row is None:
        raise NotFoundError(f"unknown model '{model_id}'; see `genejobs models list`")
    if row[0] is None:
        raise InputError(
            f"model {model_id} is not saved; save it with `genejobs models finalize {model_id}`"
        )
    return dict(zip(("artifact_path", "artifact_sha256", "genes", "label_col"), row, strict=True))


def auc_note(con: duckdb.DuckDBPyConnection, job_id: str, table: pd.DataFrame) -> str | None:
    """Why some models of a search score AUC 0, when they do: a validation fold lacked a class.

    PyCaret scores AUC 0 when roc_auc_score fails, which it does for a fold whose
    validation part lacks a class; stratified folds give every fold every class
    only when each class has at least as many training samples as there are folds.
    """
    zero = table[(table["status"] == "done") & (table["auc"] == 0)]
    if zero.empty:
        return None
    from genejobs.candidates import train_class_counts

    params, classes, counts = first(
        con.execute(
            "SELECT j.params, d.classes, d.class_counts FROM jobs j JOIN datasets d "
            "USING (dataset_id) WHERE j.job_id = ?",
            [job_id],
        ).fetchall()
    )
    setup = json.loads(params)
    train = train_class_counts(list(counts), setup["train_size"], setup["session_id"])
    short = [f"{c} ({n})" for c, n in zip(classes, train, strict=True) if n < setup["folds"]]
    models = ", ".join(zero["model"])
    if not short:
        return f"AUC is 0 for {models}: PyCaret scores 0 when it cannot compute AUC on a fold"
    return (
        f"AUC is 0 for {models}, as PyCaret scores it: with {setup['folds']} folds, some "
        f"validation folds lack a class, since these have fewer training samples than folds: "
        f"{', '.join(short)}; fewer --folds, or `genejobs evaluate` (AUC on a holdout with "
        "every class), gives a real AUC"
    )


def models(con: duckdb.DuckDBPyConnection, dataset: str | None = None) -> pd.DataFrame:
    """Every model of every search, newest search first, optionally for one dataset."""
    where, params = "", []
    if dataset is not None:
        from genejobs.storage.queries import dataset as find_dataset

        where, params = "WHERE m.dataset_id = ?", [find_dataset(con, dataset)["dataset_id"]]
    return con.execute(
        f"""SELECT m.model_id, d.name AS dataset, m.job_id, m.model, m.status, m.rank, m.best,
                   {_METRICS}, m.artifact_path IS NOT NULL AS artifact,
                   strftime(m.run_date, '%Y-%m-%d %H:%M:%S') AS run_date
            FROM model_runs m JOIN datasets d USING (dataset_id) {where}
            ORDER BY m.run_date DESC, m.job_id, m.rank NULLS LAST, m.position""",
        params,
    ).df()


def model(con: duckdb.DuckDBPyConnection, model_id: str) -> dict:
    """One model: its search, setup, scores with SDs, estimator, artifact, failed folds, tests."""
    cursor = con.execute(
        "SELECT m.*, d.name AS dataset FROM model_runs m JOIN datasets d USING (dataset_id) "
        "WHERE model_id = ?",
        [model_id],
    )
    row = first(cursor.fetchall())
    if row is None:
        raise NotFoundError(f"unknown model '{model_id}'; see `genejobs models list`")
    record = dict(zip([d[0] for d in cursor.description], row, strict=True))
    record["setup"] = json.loads(record["setup"])
    record["params"] = json.loads(record["params"]) if record["params"] else None
    record["failed_folds"] = [
        {"fold": fold, "error": error}
        for fold, error in con.execute(
            "SELECT fold, error FROM search_folds WHERE job_id = ? AND model = ? "
            "AND status = 'failed' ORDER BY fold",
            [record["job_id"], record["model"]],
        ).fetchall()
    ]
    tests = first(
        con.execute(
            "SELECT count(*), avg(accuracy), stddev_samp(accuracy) FROM test_results "
            "WHERE model_id = ? AND status = 'done'",
            [model_id],
        ).fetchall()
    )
    record["holdout_tests"] = tests[0]
    record["holdout_accuracy_mean"] = tests[1]
    record["holdout_accuracy_sd"] = tests[2]
    return record


def artifact(con: duckdb.DuckDBPyConnection, model_id: str) -> tuple[str, str]:
    """Where the service saved a model (a path under the data dir) and the file's sha256."""
    found = first(
        con.execute(
            "SELECT m.artifact_path, m.artifact_sha256, m.best, m.finalize_error, b.model_id "
            "FROM model_runs m LEFT JOIN model_runs b ON b.job_id = m.job_id AND b.best "
            "WHERE m.model_id = ?",
            [model_id],
        ).fetchall()
    )
    if found is None:
        raise NotFoundError(f"unknown model '{model_id}'; see `genejobs models list`")
    path, sha256, best, finalize_error, best_id = found
    if path is None:
        if best and finalize_error:
            reason = f"finalizing it failed: {finalize_error}"
        elif best:
            reason = "its search has not saved it yet"
        else:
            reason = f"a search saves its best model only ({best_id or 'none yet'})"
        raise InputError(f"model '{model_id}' has no saved file: {reason}")
    return path, sha256


def tests(con: duckdb.DuckDBPyConnection, job_id: str) -> pd.DataFrame:
    """The holdout tests of one evaluation job, in the order they were planned."""
    return con.execute(
        f"""SELECT test_id, model_id, split_seed, hyper_seed, status, accuracy, precision, recall,
                   f1, roc_auc, n_train, n_test, confusion, error
            FROM test_results WHERE job_id = ? ORDER BY {queries.TEST_ORDER}""",
        [job_id],
    ).df()


def classes_of_model(con: duckdb.DuckDBPyConnection, model_id: str) -> list[str]:
    row = first(
        con.execute(
            "SELECT d.classes FROM model_runs m JOIN datasets d USING (dataset_id) "
            "WHERE model_id = ?",
            [model_id],
        ).fetchall()
    )
    return list(row[0]) if row else []


EXPORT_COLUMNS = [
    "run_id",
    "run_date",
    "mlr_dataset",
    "split",
    "setup",
    "best",
    "pred_accuracy",
    "metrics_dict",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
]


def model_runs_export(
    con: duckdb.DuckDBPyConnection, job_id: str | None = None, dataset: str | None = None
) -> pd.DataFrame:
    """Every ranked or failed model in the column layout of the seeds' pycaret_results.csv.

    `metrics_dict` holds all the leaderboard's metrics (means, SDs, fit time) and
    the job and model ids as JSON; `roc_auc` is PyCaret's AUC. `job_id` and
    `dataset` (a name) keep one search's or one dataset's models.
    """
    filters, params = ["m.status <> 'pending'"], []
    if job_id is not None:
        if not con.execute(
            "SELECT 1 FROM jobs WHERE job_id = ? AND kind = 'search'", [job_id]
        ).fetchall():
            raise NotFoundError(f"unknown search job '{job_id}'; see `genejobs jobs list`")
        filters.append("m.job_id = ?")
        params.append(job_id)
    if dataset is not None:
        filters.append("m.dataset_id = ?")
        params.append(queries.dataset(con, dataset)["dataset_id"])
    frame = con.execute(
        f"""SELECT m.model_id, m.job_id, m.model, m.name, m.status, m.rank, m.run_date, d.name AS
                   dataset, m.split, m.setup, m.best, m.pred_accuracy, {_METRICS},
                   {", ".join(c + "_sd" for c in METRIC_COLUMNS)}, m.fit_seconds
            FROM model_runs m JOIN datasets d USING (dataset_id)
            WHERE {" AND ".join(filters)} ORDER BY m.run_date, m.job_id, m.rank NULLS LAST,
                  m.position""",
        params,
    ).df()
    metric_fields = [*METRIC_COLUMNS, *(c + "_sd" for c in METRIC_COLUMNS), "fit_seconds"]
    metrics_dict = [
        json.dumps(
            {
                "job_id": r["job_id"],
                "model": r["model"],
                "name": r["name"],
                "status": r["status"],
                "rank": None if pd.isna(r["rank"]) else int(r["rank"]),
                **{k: None if pd.isna(r[k]) else float(r[k]) for k in metric_fields},
            }
        )
        for _, r in frame.iterrows()
    ]
    return pd.DataFrame(
        {
            "run_id": frame["model_id"],
            "run_date": frame["run_date"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "mlr_dataset": frame["dataset"],
            "split": frame["split"],
            "setup": frame["setup"],
            "best": frame["best"],
            "pred_accuracy": frame["pred_accuracy"],
            "metrics_dict": metrics_dict,
            "accuracy": frame["accuracy"],
            "precision": frame["precision"],
            "recall": frame["recall"],
            "f1": frame["f1"],
            "roc_auc": frame["auc"],
        },
        columns=EXPORT_COLUMNS,
    )


def pycaret_layout(exported: pd.DataFrame) -> pd.DataFrame:
    """The seeds' layout (from `model_runs_export`) as PyCaret's pull() shows a leaderboard.

    One row per ranked model, each job's in rank order: job and model ids, then
    PyCaret's id (the index of pull()) and its columns, values unrounded.
    """
    rows = []
    for record in exported.to_dict("records"):
        metrics = json.loads(record["metrics_dict"])
        if metrics["rank"] is None:
            continue
        rows.append(
            {
                "job_id": metrics["job_id"],
                "model_id": record["run_id"],
                "rank": metrics["rank"],
                "id": metrics["model"],
                "Model": metrics["name"],
                **{m.display: metrics[m.column] for m in METRICS},
                "TT (Sec)": metrics["fit_seconds"],
            }
        )
    columns = ["job_id", "model_id", "rank", "id", "Model", *(m.display for m in METRICS)]
    frame = pd.DataFrame(rows, columns=[*columns, "TT (Sec)"])
    return frame.sort_values(["job_id", "rank"], kind="stable").reset_index(drop=True)
