"""Read-side queries of SHAP jobs: global, local and presence views, and job summaries.

Every function takes an open (read-only) connection and returns plain values
or DataFrames. The views scan `shap_values` by job and GROUP BY feature_id;
feature names come from the small `shap_features` table.
"""

from __future__ import annotations

import json
import re

import duckdb
import pandas as pd

from genejobs.errors import InputError, NotFoundError
from genejobs.storage.db import first


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


def class_names(con: duckdb.DuckDBPyConnection, job_id: str) -> dict[int, str]:
    """Recorded class -> its label, for jobs whose models name their classes (else empty).

    A binary job's values are recorded as class 1, its positive class.
    """
    row = first(
        con.execute("SELECT n_outputs, params FROM shap_jobs WHERE job_id = ?", [job_id]).fetchall()
    )
    if row is None:
        raise NotFoundError(f"unknown SHAP job '{job_id}'; see `genejobs shap list`")
    labels = json.loads(row[1]).get("classes") or []
    if int(row[0]) == 1:
        return {1: labels[1]} if len(labels) == 2 else {}
    return dict(enumerate(labels))


def resolve_class(con: duckdb.DuckDBPyConnection, job_id: str, class_label) -> int | None:
    """A class given by its label or by its number; a class the job's models lack is refused."""
    if class_label is None or class_label == "":
        return None
    outputs = job_outputs(con, job_id)
    names = class_names(con, job_id)
    text = str(class_label).strip()
    by_name = {label: k for k, label in names.items()}
    if text in by_name:
        return by_name[text]
    folded = {label.casefold(): k for k, label in names.items()}
    if text.casefold() in folded:
        return folded[text.casefold()]
    # A single-output (binary) model's values are recorded as class 1, the positive class.
    known = [1] if outputs == 1 else list(range(outputs))
    # ASCII digits only: str.isdigit() passes '²', and '--1' passes after lstrip.
    number = int(text) if re.fullmatch(r"-?[0-9]{1,6}", text) else None
    if number in known:
        return number
    if outputs == 1:
        shown = f"1 ({names[1]}, the positive class)" if names else "1 (binary models)"
    elif names:
        shown = ", ".join(f"{k} {label}" for k, label in names.items())
    else:
        shown = f"0..{outputs - 1}"
    raise InputError(f"no class {text} in SHAP job {job_id}: its models' classes are {shown}")


def with_class_names(con, job_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a class_name column after its class column, when the classes have names."""
    if "class" not in frame.columns or "class_name" in frame.columns:
        return frame
    names = class_names(con, job_id)
    if not names:
        return frame
    frame = frame.copy()
    frame.insert(list(frame.columns).index("class") + 1, "class_name", frame["class"].map(names))
    return frame


def class_title(con, job_id: str, klass: int | None) -> str:
    """How titles name a class: `class 2 (liver)`, or `class 2` without names."""
    if klass is None:
        return ""
    name = class_names(con, job_id).get(int(klass))
    return f"class {klass}" + (f" ({name})" if name is not None else "")


def class_filter(con, job_id: str, class_label) -> tuple[str, list]:
    """The SQL that keeps one class's values (given by label or number)."""
    klass = resolve_class(con, job_id, class_label)
    if klass is None:
        return "", []
    return " AND class = ?", [klass]


def global_importance(
    con: duckdb.DuckDBPyConnection, job_id: str, by_model: bool = False, class_label=None
) -> pd.DataFrame:
    """Mean |SHAP| per feature (and per model with `by_model`, per class for multiclass)."""
    n_outputs = job_outputs(con, job_id)
    where, params = class_filter(con, job_id, class_label)
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
    return with_class_names(con, job_id, frame)


def group_importance(
    con: duckdb.DuckDBPyConnection, job_id: str, by_model: bool = False, class_label=None
) -> pd.DataFrame:
    """Mean |SHAP| per feature group: each prediction's values summed over the group's
    features first (SHAP values add up), then averaged over predictions."""
    n_outputs = job_outputs(con, job_id)
    where, params = class_filter(con, job_id, class_label)
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
    return with_class_names(con, job_id, frame)


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
    where, params = class_filter(con, job_id, class_label)
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
    return with_class_names(con, job_id, header), with_class_names(con, job_id, contributions)


def presence(con: duckdb.DuckDBPyConnection, job_id: str, class_label=None) -> pd.DataFrame:
    """Per feature: presence rate, SHAP when present and absent, and the top-contributor share.

    `top_share_present` is the share of rows where the feature is present in
    which it is also the feature of largest |SHAP|.
    """
    job_outputs(con, job_id)
    where, params = class_filter(con, job_id, class_label)
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
    con: duckdb.DuckDBPyConnection,
    job_id: str,
    features: list[str],
    rows: int = 2000,
    class_label=None,
) -> pd.DataFrame:
    """SHAP values and feature values of up to `rows` rows for the given features.

    The rows are the same for every feature (a fixed pseudo-random choice), of
    one class when `class_label` is given.
    """
    if not features:
        return pd.DataFrame({"feature": [], "value": [], "shap": []})
    where, params = class_filter(con, job_id, class_label)
    names = ", ".join("?" * len(features))
    return con.execute(
        f"""WITH picked AS (
                SELECT DISTINCT row_id FROM shap_rows WHERE job_id = ?
                ORDER BY hash(row_id) LIMIT ?)
            SELECT f.feature, v.value, v.shap
            FROM shap_values v JOIN picked USING (row_id)
                 JOIN shap_features f USING (job_id, feature_id)
            WHERE v.job_id = ? AND f.feature IN ({names}){where.replace("class", "v.class")}""",
        [job_id, rows, job_id, *features, *params],
    ).df()


def dependence_sample(
    con: duckdb.DuckDBPyConnection, job_id: str, feature: str, rows: int = 2000, class_label=None
) -> pd.DataFrame:
    """One feature's value, presence and SHAP value in up to `rows` sampled predictions."""
    where, params = class_filter(con, job_id, class_label)
    found = first(
        con.execute(
            "SELECT feature_id FROM shap_features WHERE job_id = ? AND feature = ?",
            [job_id, feature],
        ).fetchall()
    )
    if found is None:
        raise NotFoundError(f"no feature '{feature}' in SHAP job {job_id}")
    return con.execute(
        f"""SELECT value, present, shap FROM shap_values
            WHERE job_id = ? AND feature_id = ?{where}
            ORDER BY hash(row_id, class) LIMIT ?""",
        [job_id, found[0], *params, rows],
    ).df()
