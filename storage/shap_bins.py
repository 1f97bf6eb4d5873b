"""SHAP plots from every row, binned in SQL: no sample, so a rare strong effect stays visible.

A beeswarm is, per feature, how many predictions fall in each SHAP bin and
how high the feature's value is among them; a dependence plot is a feature's
SHAP against its value, as counts per (value bin, SHAP bin). Both are
aggregates over all of a job's rows, computed where the values are, so their
cost grows with the rows but what travels (and what a page draws) does not.
Rows where the feature is absent (no value) are counted apart.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from genejobs.errors import InputError
from genejobs.storage.db import first
from genejobs.storage.shap_queries import class_filter, job_outputs

MAX_BINS = 200


def _bins(bins: int) -> int:
    if not 2 <= int(bins) <= MAX_BINS:
        raise InputError(f"bins: a whole number from 2 to {MAX_BINS}, not {bins}")
    return int(bins)


def _feature_ids(con, job_id: str, features: list[str]) -> dict[str, int]:
    rows = con.execute(
        "SELECT feature, feature_id FROM shap_features WHERE job_id = ? "
        "AND feature IN (SELECT unnest(?::VARCHAR[]))",
        [job_id, list(features)],
    ).fetchall()
    found = dict(rows)
    missing = [f for f in features if f not in found]
    if missing:
        raise InputError(f"no feature '{missing[0]}' in SHAP job {job_id}")
    return found


def beeswarm_bins(
    con: duckdb.DuckDBPyConnection,
    job_id: str,
    top: int = 20,
    bins: int = 60,
    class_label=None,
) -> pd.DataFrame:
    """The `top` features by mean |SHAP|, each as rows per SHAP bin over every prediction.

    Columns: feature, rank (1 = largest mean |SHAP|), shap_lo and shap_hi (the
    bin, on one scale for all features), rows, rows_absent (of them, the
    feature had no value), value_level (the mean of the present values' place
    between the feature's 1st and 99th percentiles, 0 to 1; empty when none).
    """
    bins = _bins(bins)
    job_outputs(con, job_id)
    where, params = class_filter(con, job_id, class_label)
    return con.execute(
        f"""WITH v AS (SELECT feature_id, value, present, shap FROM shap_values
                       WHERE job_id = ?{where}),
            ranked AS (SELECT feature_id, row_number() OVER (ORDER BY avg(abs(shap)) DESC,
                              feature_id) AS rank
                       FROM v GROUP BY feature_id QUALIFY rank <= ?),
            chosen AS (SELECT v.*, ranked.rank FROM v JOIN ranked USING (feature_id)),
            span AS (SELECT min(shap) AS lo, greatest(max(shap) - min(shap), 1e-12) AS width
                     FROM chosen),
            levels AS (SELECT feature_id, quantile_cont(value, 0.01) AS p01,
                              quantile_cont(value, 0.99) AS p99
                       FROM chosen WHERE present AND value IS NOT NULL GROUP BY feature_id),
            binned AS (
                SELECT c.feature_id, c.rank, c.present, c.value,
                       least(floor((c.shap - span.lo) / span.width * ?)::INTEGER, ? - 1) AS bin,
                       CASE WHEN c.present AND c.value IS NOT NULL THEN
                           greatest(0, least(1, (c.value - l.p01)
                                    / nullif(l.p99 - l.p01, 0))) END AS level
                FROM chosen c, span LEFT JOIN levels l ON l.feature_id = c.feature_id)
            SELECT f.feature, b.rank,
                   span.lo + b.bin * span.width / ? AS shap_lo,
                   span.lo + (b.bin + 1) * span.width / ? AS shap_hi,
                   count(*) AS rows, count(*) FILTER (WHERE NOT b.present) AS rows_absent,
                   avg(b.level) AS value_level
            FROM binned b, span
            JOIN shap_features f ON f.job_id = ? AND f.feature_id = b.feature_id
            GROUP BY f.feature, b.rank, b.bin, span.lo, span.width
            ORDER BY b.rank, b.bin""",
        [job_id, *params, int(top), bins, bins, bins, bins, job_id],
    ).df()


def dependence_bins(
    con: duckdb.DuckDBPyConnection,
    job_id: str,
    feature: str,
    bins: int = 40,
    class_label=None,
) -> dict:
    """A feature's SHAP against its value over every prediction, as counts per cell.

    Returns `cells` (value_lo, value_hi, shap_lo, shap_hi, rows: the present
    values, between their 0.5th and 99.5th percentiles, outliers in the edge
    bins), `absent` (shap_lo, shap_hi, rows: predictions without a value) and
    the counts `present` and `missing`.
    """
    bins = _bins(bins)
    job_outputs(con, job_id)
    feature_id = _feature_ids(con, job_id, [feature])[feature]
    where, params = class_filter(con, job_id, class_label)
    base = f"""WITH v AS (SELECT value, present AND value IS NOT NULL AS has_value, shap
                          FROM shap_values WHERE job_id = ? AND feature_id = ?{where}),
               s AS (SELECT min(shap) AS lo, greatest(max(shap) - min(shap), 1e-12) AS width
                     FROM v)"""
    args = [job_id, feature_id, *params]
    counts = first(
        con.execute(
            f"{base} SELECT count(*) FILTER (WHERE has_value), count(*) FILTER "
            "(WHERE NOT has_value) FROM v",
            args,
        ).fetchall()
    )
    cells = con.execute(
        f"""{base},
            r AS (SELECT quantile_cont(value, 0.005) AS lo,
                         greatest(quantile_cont(value, 0.995) - quantile_cont(value, 0.005),
                                  1e-12) AS width
                  FROM v WHERE has_value),
            binned AS (
                SELECT greatest(0, least(floor((v.value - r.lo) / r.width * ?)::INTEGER, ? - 1))
                           AS vbin,
                       least(floor((v.shap - s.lo) / s.width * ?)::INTEGER, ? - 1) AS sbin
                FROM v, r, s WHERE v.has_value)
            SELECT r.lo + vbin * r.width / ? AS value_lo, r.lo + (vbin + 1) * r.width / ?
                       AS value_hi,
                   s.lo + sbin * s.width / ? AS shap_lo, s.lo + (sbin + 1) * s.width / ?
                       AS shap_hi,
                   count(*) AS rows
            FROM binned, r, s GROUP BY vbin, sbin, r.lo, r.width, s.lo, s.width
            ORDER BY vbin, sbin""",
        [*args, *([bins] * 8)],
    ).df()
    absent = con.execute(
        f"""{base}
            SELECT s.lo + b * s.width / ? AS shap_lo, s.lo + (b + 1) * s.width / ? AS shap_hi,
                   count(*) AS rows
            FROM (SELECT least(floor((v.shap - s.lo) / s.width * ?)::INTEGER, ? - 1) AS b
                  FROM v, s WHERE NOT v.has_value) t, s
            GROUP BY b, s.lo, s.width ORDER BY b""",
        [*args, *([bins] * 4)],
    ).df()
    return {"cells": cells, "absent": absent, "present": counts[0], "missing": counts[1]}
