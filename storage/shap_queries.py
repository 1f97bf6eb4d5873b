"""Read-side queries of SHAP jobs: global, local and presence views, and job summaries.

Every function takes an open (read-only) connection and returns plain values
or DataFrames. The views scan `shap_values` by job and GROUP BY feature_id;
feature names come from the small `shap_features` table.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from genejobs.storage.db import first
from genejobs.worker.errors import InputError, NotFoundError


def job(con: duckdb.DuckDBPyConnection, job_id: str) -> dict:
    """One SHAP job's summary: source, shard counts, rows, additivity."""
    cursor = con.execute(
        """SELECT j.job_id, j.source, j.n_rows, j.n_features, j.n_outputs, j.n_shards,
                  j.shard_rows, j.partition_col, j.id_cols, j.zero_is_present, j.engine,
                  count(*) FILTER (WHERE s.status = 'done') AS shards_done,
                  count(*) FILTER (WHERE s.status = 'failed') AS shards_failed,
                  count(*) FILTER (WHERE s.status = 'pending') AS shards_pending,
                  coalesce(sum(s.n_rows) FILTER (WHERE s.status = 'done'), 0) AS rows_done,
                  coalesce(sum(s.additivity_failures), 0) AS additivity_failures,
                  max(s.max_additivity_error) AS max_additivity_error,
                  string_agg(DISTINCT s.engine, ',') AS engines_used,
                  strftime(j.created_at, '%Y-%m-%d %H:%M:%S') AS created,
                  j.params
           FROM shap_jobs j LEFT JOIN shap_shards s USING (job_id)
           WHERE j.job_id = ? GROUP BY ALL""",
        [job_id],
    )
    row = first(cursor.fetchall())
    if row is None:
        raise NotFoundError(f"unknown SHAP job '{job_id}'; see `genejobs shap list`")
    summary = dict(zip([d[0] for d in cursor.description], row, strict=True))
    params = json.loads(summary.pop("params"))
    summary["models"] = [
        {"model_id": m["model_id"], "source": m["source"], "partitions": m["partitions"]}
        for m in params["models"]
    ]
    summary["errors"] = [
        {"shard": shard, "error": error}
        for shard, error in con.execute(
            "SELECT shard, error FROM shap_shards WHERE job_id = ? AND status = 'failed' "
            "ORDER BY shard LIMIT 5",
            [job_id],
        ).fetchall()
    ]
    return summary


def jobs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        """SELECT j.job_id, j.source, j.n_rows AS rows, j.n_features AS features,
                  j.n_shards AS shards,
                  count(*) FILTER (WHERE s.status = 'done') AS done,
                  count(*) FILTER (WHERE s.status = 'failed') AS failed,
                  count(*) FILTER (WHERE s.status = 'pending') AS pending,
                  coalesce(sum(s.additivity_failures), 0) AS additivity_failures,
                  strftime(j.created_at, '%Y-%m-%d %H:%M:%S') AS created
           FROM shap_jobs j LEFT JOIN shap_shards s USING (job_id)
           GROUP BY ALL ORDER BY created"""
    ).df()


def _class_filter(con, job_id: str, class_label: int | None) -> tuple[str, list]:
    """The SQL that keeps one class's values; a class the job's models lack is refused."""
    if class_label is None:
        return "", []
    outputs = job_outputs(con, job_id)
    # A single-output (binary) model's values are recorded as class 1, the positive class.
    known = [1] if outputs == 1 else list(range(outputs))
    if class_label not in known:
        shown = "1 (binary models)" if outputs == 1 else f"0..{outputs - 1}"
        raise InputError(
            f"no class {class_label} in SHAP job {job_id}: its models' classes are {shown}"
        )
    return " AND class = ?", [class_label]


def global_importance(
    con: duckdb.DuckDBPyConnection, job_id: str, by_model: bool = False, class_label=None
) -> pd.DataFrame:
    """Mean |SHAP| per feature (and per model with `by_model`, per class for multiclass)."""
    n_outputs = job_outputs(con, job_id)
    where, params = _class_filter(con, job_id, class_label)
    keys = (["model_id"] if by_model else []) + (["class"] if n_outputs > 1 else [])
    group = ", ".join(["feature_id", *keys])
    frame = con.execute(
        f"""WITH g AS (
                SELECT {group}, avg(abs(shap)) AS mean_abs_shap, avg(shap) AS mean_shap,
                       count(*) AS n
                FROM shap_values WHERE job_id = ?{where} GROUP BY {group})
            SELECT f.feature{"".join(", g." + k for k in keys)}, g.mean_abs_shap, g.mean_shap,
                   g.n AS rows
            FROM g JOIN shap_features f ON f.job_id = ? AND f.feature_id = g.feature_id
            ORDER BY {"".join("g." + k + ", " for k in keys)}g.mean_abs_shap DESC, f.feature""",
        [job_id, *params, job_id],
    ).df()
    if by_model:
        models = con.execute(
            "SELECT model_id, source FROM shap_models WHERE job_id = ?", [job_id]
        ).fetchall()
        names = {m: source for m, source in models}
        frame.insert(1, "model", frame.pop("model_id").map(names))
    return frame


def group_importance(
    con: duckdb.DuckDBPyConnection, job_id: str, by_model: bool = False, class_label=None
) -> pd.DataFrame:
    """Mean |SHAP| per feature group: each prediction's values summed over the group's
    features first (SHAP values add up), then averaged over predictions."""
    n_outputs = job_outputs(con, job_id)
    where, params = _class_filter(con, job_id, class_label)
    grouped = first(
        con.execute(
            "SELECT count(feature_group) FROM shap_features WHERE job_id = ?", [job_id]
        ).fetchall()
    )[0]
    if not grouped:
        raise InputError(f"SHAP job {job_id} has no feature groups; run it with `--groups FILE`")
    keys = (["model_id"] if by_model else []) + (["class"] if n_outputs > 1 else [])
    outer = ", ".join(["feature_group", *keys])
    only_class = where.replace("class", "v.class")
    frame = con.execute(
        f"""WITH per_row AS (
                SELECT v.row_id, v.class, v.model_id, f.feature_group, sum(v.shap) AS shap
                FROM shap_values v JOIN shap_features f USING (job_id, feature_id)
                WHERE v.job_id = ? AND f.feature_group IS NOT NULL{only_class}
                GROUP BY ALL)
            SELECT {outer}, avg(abs(shap)) AS mean_abs_shap, avg(shap) AS mean_shap,
                   count(*) AS rows
            FROM per_row GROUP BY ALL
            ORDER BY {"".join(k + ", " for k in keys)}mean_abs_shap DESC, feature_group""",
        [job_id, *params],
    ).df()
    frame = frame.rename(columns={"feature_group": "group"})
    if by_model:
        names = dict(
            con.execute(
                "SELECT model_id, source FROM shap_models WHERE job_id = ?", [job_id]
            ).fetchall()
        )
        frame.insert(1, "model", frame.pop("model_id").map(names))
    return frame


def job_outputs(con: duckdb.DuckDBPyConnection, job_id: str) -> int:
    row = first(
        con.execute("SELECT n_outputs FROM shap_jobs WHERE job_id = ?", [job_id]).fetchall()
    )
    if row is None:
        raise NotFoundError(f"unknown SHAP job '{job_id}'; see `genejobs shap list`")
    return int(row[0])


def find_row(con: duckdb.DuckDBPyConnection, job_id: str, row: str) -> int:
    """A row's id from its key (the id columns joined with '|'), or its number in the table."""
    job_outputs(con, job_id)
    found = first(
        con.execute(
            "SELECT row_id FROM shap_rows WHERE job_id = ? AND row_key = ? LIMIT 1", [job_id, row]
        ).fetchall()
    )
    if found is None and row.isdigit():
        found = first(
            con.execute(
                "SELECT row_id FROM shap_rows WHERE job_id = ? AND source_row = ? LIMIT 1",
                [job_id, int(row)],
            ).fetchall()
        )
    if found is None:
        raise NotFoundError(f"no row '{row}' in SHAP job {job_id}")
    return int(found[0])


def local(
    con: duckdb.DuckDBPyConnection, job_id: str, row: str, class_label=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One prediction: its header (key, model, base value, output) and contributions by |SHAP|."""
    row_id = find_row(con, job_id, row)
    where, params = _class_filter(con, job_id, class_label)
    header = con.execute(
        f"""SELECT r.row_key, r.source_row, r.row_id, r.class, r.partition, m.source AS model,
                   m.family, r.base_value, r.output, r.probability, r.additivity_error
            FROM shap_rows r JOIN shap_models m USING (job_id, model_id)
            WHERE r.job_id = ? AND r.row_id = ?{where.replace("class", "r.class")}
            ORDER BY r.class""",
        [job_id, row_id, *params],
    ).df()
    contributions = con.execute(
        f"""SELECT v.class, f.feature, v.value, v.present, v.shap
            FROM shap_values v JOIN shap_features f USING (job_id, feature_id)
            WHERE v.job_id = ? AND v.row_id = ?{where.replace("class", "v.class")}
            ORDER BY v.class, abs(v.shap) DESC, f.feature""",
        [job_id, row_id, *params],
    ).df()
    if job_outputs(con, job_id) == 1:
        contributions = contributions.drop(columns="class")
    return header, contributions


def presence(con: duckdb.DuckDBPyConnection, job_id: str, class_label=None) -> pd.DataFrame:
    """Per feature: presence rate, SHAP when present and absent, and the top-contributor share.

    `top_share_present` is the share of rows where the feature is present in
    which it is also the feature of largest |SHAP|.
    """
    job_outputs(con, job_id)
    where, params = _class_filter(con, job_id, class_label)
    return con.execute(
        f"""WITH p AS (
                SELECT feature_id,
                       avg(present::INTEGER) AS presence_rate,
                       avg(shap) FILTER (WHERE present) AS mean_shap_present,
                       avg(abs(shap)) FILTER (WHERE present) AS mean_abs_shap_present,
                       avg(shap) FILTER (WHERE NOT present) AS mean_shap_absent,
                       avg(abs(shap)) FILTER (WHERE NOT present) AS mean_abs_shap_absent,
                       count(*) FILTER (WHERE present) AS n_present
                FROM shap_values WHERE job_id = ?{where} GROUP BY feature_id),
            t AS (
                SELECT top_feature AS feature_id, count(*) AS n_top
                FROM shap_rows WHERE job_id = ? AND top_present{where} GROUP BY top_feature)
            SELECT f.feature, p.presence_rate, p.mean_shap_present, p.mean_abs_shap_present,
                   p.mean_shap_absent, p.mean_abs_shap_absent,
                   coalesce(t.n_top, 0) / nullif(p.n_present, 0) AS top_share_present
            FROM p JOIN shap_features f ON f.job_id = ? AND f.feature_id = p.feature_id
                   LEFT JOIN t ON t.feature_id = p.feature_id
            ORDER BY p.mean_abs_shap_present DESC NULLS LAST, f.feature""",
        [job_id, *params, job_id, *params, job_id],
    ).df()


def beeswarm_sample(
    con: duckdb.DuckDBPyConnection, job_id: str, features: list[str], rows: int = 2000
) -> pd.DataFrame:
    """SHAP values and feature values of up to `rows` rows for the given features."""
    names = ", ".join("?" * len(features))
    return con.execute(
        f"""WITH picked AS (
                SELECT DISTINCT row_id FROM shap_rows WHERE job_id = ?
                ORDER BY hash(row_id) LIMIT ?)
            SELECT f.feature, v.value, v.shap
            FROM shap_values v JOIN picked USING (row_id)
                 JOIN shap_features f USING (job_id, feature_id)
            WHERE v.job_id = ? AND f.feature IN ({names})""",
        [job_id, rows, job_id, *features],
    ).df()
