"""SHAP values side by side: two predictions of one job, and two jobs over the same rows.

SHAP values add up: a prediction's output is its model's base value plus the
sum of its features' values. So the difference of two outputs splits exactly
into the difference of the base values plus, per feature, the difference of
its SHAP values; summed over a group's features, per group. That answers
"why does gene A rank above gene B at this locus" (`pair`) and "which
features moved this prediction between two model releases" (`compare`).
"""

from __future__ import annotations

import duckdb

from genejobs.errors import InputError
from genejobs.storage.db import first
from genejobs.storage.shap_queries import find_row, job_outputs, resolve_class


def _one_class(con, job_id: str, class_label) -> int:
    """The class compared: the one asked, or the positive class of a binary job."""
    klass = resolve_class(con, job_id, class_label)
    if klass is not None:
        return klass
    if job_outputs(con, job_id) == 1:
        return 1
    raise InputError(f"SHAP job {job_id} explains several classes; say which with --class")


def pair(
    con: duckdb.DuckDBPyConnection, job_id: str, row_a: str, row_b: str, class_label=None
) -> dict:
    """Two predictions of one job and what separates them, feature by feature and by group.

    Returns `header` (each row's key, model, base value, output, probability),
    `features` (per feature: both values, both SHAP values and their
    difference a - b, largest first) and `groups` (the differences summed per
    feature group; empty when the job has none). The output difference equals
    the base difference plus the sum of the feature differences.
    """
    ids = [find_row(con, job_id, row_a), find_row(con, job_id, row_b)]
    if ids[0] == ids[1]:
        raise InputError("compare two different predictions")
    klass = _one_class(con, job_id, class_label)
    header = con.execute(
        """SELECT r.row_key, r.row_id, r.partition, m.source AS model, r.base_value, r.output,
                  r.probability
           FROM shap_rows r JOIN shap_models m USING (job_id, model_id)
           WHERE r.job_id = ? AND r.class = ? AND r.row_id IN (?, ?)
           ORDER BY r.row_id = ? DESC""",
        [job_id, klass, *ids, ids[0]],
    ).df()
    features = con.execute(
        """SELECT f.feature, f.feature_group AS "group",
                  a.value AS value_a, b.value AS value_b, a.shap AS shap_a, b.shap AS shap_b,
                  a.shap - b.shap AS difference
           FROM shap_values a
           JOIN shap_values b ON b.job_id = a.job_id AND b.class = a.class
                AND b.feature_id = a.feature_id AND b.row_id = ?
           JOIN shap_features f ON f.job_id = a.job_id AND f.feature_id = a.feature_id
           WHERE a.job_id = ? AND a.row_id = ? AND a.class = ?
           ORDER BY abs(a.shap - b.shap) DESC, f.feature""",
        [ids[1], job_id, ids[0], klass],
    ).df()
    groups = (
        features.dropna(subset=["group"])
        .groupby("group", as_index=False)[["shap_a", "shap_b", "difference"]]
        .sum()
        .sort_values("difference", key=abs, ascending=False, ignore_index=True)
    )
    output = header["output"].tolist()
    base = header["base_value"].tolist()
    return {
        "header": header,
        "features": features,
        "groups": groups,
        "output_difference": output[0] - output[1],
        "base_difference": base[0] - base[1],
    }


def _check_comparable(con, job_a: str, job_b: str) -> str:
    """Refuse two jobs whose rows cannot be matched; say how they are matched."""
    found = {
        job: (list(ids), n_outputs)
        for job, ids, n_outputs in con.execute(
            "SELECT job_id, id_cols, n_outputs FROM shap_jobs WHERE job_id IN (?, ?)",
            [job_a, job_b],
        ).fetchall()
    }
    for job in (job_a, job_b):
        if job not in found:
            raise InputError(f"unknown SHAP job '{job}'; see `genejobs shap list`")
    if job_a == job_b:
        raise InputError("compare two different SHAP jobs")
    if found[job_a][0] != found[job_b][0]:
        raise InputError(
            f"the jobs name their rows by different id columns ({', '.join(found[job_a][0])} "
            f"vs {', '.join(found[job_b][0])}): their rows cannot be matched"
        )
    # Without id columns a row's key is its number in the table the job was given.
    return ", ".join(found[job_a][0]) or "row number"


def compare(
    con: duckdb.DuckDBPyConnection,
    job_a: str,
    job_b: str,
    class_label=None,
    top: int = 20,
) -> dict:
    """Two SHAP jobs over the same rows (matched by their id columns) with different models.

    Returns `summary` (what rows are matched by, rows matched, only in A, only
    in B, mean and largest |move|),
    `moves` (the `top` rows whose output moved most, b - a, with the features
    that moved each most), `features` (per feature: mean |SHAP| in A and in B
    with their ranks, and the mean and mean |difference| b - a over matched
    rows), and `groups` (the same per feature group, when both jobs have
    groups). Features are matched by name; one only one job has counts as 0
    in the other.
    """
    matched_by = _check_comparable(con, job_a, job_b)
    class_a, class_b = _one_class(con, job_a, class_label), _one_class(con, job_b, class_label)
    params = [job_a, class_a, job_b, class_b]
    matched = """
        ra AS (SELECT row_key, row_id, output FROM shap_rows WHERE job_id = ? AND class = ?),
        rb AS (SELECT row_key, row_id, output FROM shap_rows WHERE job_id = ? AND class = ?)"""
    summary = con.execute(
        f"""WITH {matched}
            SELECT count(*) FILTER (WHERE ra.row_id IS NOT NULL AND rb.row_id IS NOT NULL)
                       AS matched,
                   count(*) FILTER (WHERE rb.row_id IS NULL) AS only_in_a,
                   count(*) FILTER (WHERE ra.row_id IS NULL) AS only_in_b,
                   avg(abs(rb.output - ra.output)) AS mean_abs_move,
                   max(abs(rb.output - ra.output)) AS max_abs_move
            FROM ra FULL JOIN rb USING (row_key)""",
        params,
    ).fetchone()
    if not summary[0]:
        raise InputError(f"no row of {job_a} has a row with the same key in {job_b}")
    deltas = _deltas(matched, only_keys=False)
    delta_params = [*params, job_a, job_b, job_a, class_a, job_b, class_b]
    # Features and groups in one pass over the values (an L2G-size job has 17 million).
    both = con.execute(
        f"""{deltas.replace("joined AS (", "joined AS MATERIALIZED (")},
            by_feature AS (
                SELECT 'feature' AS kind, any_value(ft.feature) AS name, any_value(ft.grp) AS grp,
                       avg(abs(shap_a)) AS mean_abs_shap_a, avg(abs(shap_b)) AS mean_abs_shap_b,
                       avg(shap_b - shap_a) AS mean_difference,
                       avg(abs(shap_b - shap_a)) AS mean_abs_difference
                FROM joined JOIN feats ft USING (f) GROUP BY f),
            per_row AS (SELECT j.pair, ft.grp, sum(j.shap_a) AS shap_a, sum(j.shap_b) AS shap_b
                        FROM joined j JOIN feats ft USING (f)
                        WHERE ft.grp IS NOT NULL GROUP BY ALL),
            by_group AS (
                SELECT 'group', grp, grp, avg(abs(shap_a)), avg(abs(shap_b)),
                       avg(shap_b - shap_a), avg(abs(shap_b - shap_a))
                FROM per_row GROUP BY grp)
            SELECT * FROM by_feature UNION ALL SELECT * FROM by_group
            ORDER BY kind, mean_abs_difference DESC, name""",
        delta_params,
    ).df()
    measures = ["mean_abs_shap_a", "mean_abs_shap_b", "mean_difference", "mean_abs_difference"]
    features = both[both["kind"] == "feature"].rename(columns={"name": "feature", "grp": "group"})
    features = features[["feature", "group", *measures]].reset_index(drop=True)
    features.insert(4, "rank_a", features["mean_abs_shap_a"].rank(ascending=False, method="min"))
    features.insert(5, "rank_b", features["mean_abs_shap_b"].rank(ascending=False, method="min"))
    groups = both[both["kind"] == "group"].rename(columns={"name": "group"})
    groups = groups[["group", *measures]].reset_index(drop=True)
    moves = con.execute(
        f"""WITH {matched}
            SELECT ra.row_key, ra.output AS output_a, rb.output AS output_b,
                   rb.output - ra.output AS move
            FROM ra JOIN rb USING (row_key)
            ORDER BY abs(rb.output - ra.output) DESC, ra.row_key LIMIT ?""",
        [*params, int(top)],
    ).df()
    # The features that moved each of these rows most, in one query over those rows only.
    movers = con.execute(
        f"""{_deltas(matched, only_keys=True)}
            SELECT row_key, feature, shap_b - shap_a AS move FROM d
            QUALIFY row_number() OVER (PARTITION BY row_key
                                       ORDER BY abs(shap_b - shap_a) DESC, feature) <= 3
            ORDER BY row_key, abs(move) DESC""",
        [*params, list(moves["row_key"]), *delta_params[4:]],
    ).fetchall()
    text: dict[str, list[str]] = {}
    for key, feature, delta in movers:
        text.setdefault(key, []).append(f"{feature} {delta:+.3g}")
    moves["top_features"] = [", ".join(text.get(key, [])) for key in moves["row_key"]]
    names = ("matched", "only_in_a", "only_in_b", "mean_abs_move", "max_abs_move")
    return {
        "summary": {"matched_by": matched_by, **dict(zip(names, summary, strict=True))},
        "moves": moves,
        "features": features,
        "groups": groups,
    }


def _deltas(matched: str, only_keys: bool) -> str:
    """SQL of `d`: per matched row (`pair`) and feature (by name: `f`, `feature`, `grp`), its
    SHAP value in A and in B (0 in a job without the feature). Rows and features are
    matched once, by key and by name; the 17 million values of an L2G-size job then join
    on integers. Parameters: the two jobs' rows (4), with `only_keys` a list of row keys,
    then the jobs' features (2) and values (4)."""
    among = " WHERE row_key IN (SELECT unnest(?::VARCHAR[]))" if only_keys else ""
    return f"""
        WITH {matched},
        pairs AS (SELECT row_number() OVER () AS pair, ra.row_key, ra.row_id AS row_a,
                         rb.row_id AS row_b
                  FROM ra JOIN rb USING (row_key){among}),
        fa AS (SELECT feature_id, feature, feature_group FROM shap_features WHERE job_id = ?),
        fb AS (SELECT feature_id, feature, feature_group FROM shap_features WHERE job_id = ?),
        feats AS (SELECT row_number() OVER () AS f, feature,
                         coalesce(fa.feature_group, fb.feature_group) AS grp,
                         fa.feature_id AS id_a, fb.feature_id AS id_b
                  FROM fa FULL JOIN fb USING (feature)),
        va AS (SELECT p.pair, ft.f, v.shap
               FROM pairs p JOIN shap_values v ON v.job_id = ? AND v.class = ?
                    AND v.row_id = p.row_a
               JOIN feats ft ON ft.id_a = v.feature_id),
        vb AS (SELECT p.pair, ft.f, v.shap
               FROM pairs p JOIN shap_values v ON v.job_id = ? AND v.class = ?
                    AND v.row_id = p.row_b
               JOIN feats ft ON ft.id_b = v.feature_id),
        joined AS (SELECT pair, f, coalesce(va.shap, 0) AS shap_a, coalesce(vb.shap, 0) AS shap_b
                   FROM va FULL JOIN vb USING (pair, f)),
        d AS (SELECT p.row_key, ft.feature, ft.grp, j.pair, j.f, j.shap_a, j.shap_b
              FROM joined j JOIN pairs p USING (pair) JOIN feats ft USING (f))"""


def move(
    con: duckdb.DuckDBPyConnection, job_a: str, job_b: str, row: str, class_label=None
) -> dict:
    """One prediction in two jobs: its outputs and, per feature, what moved it (b - a)."""
    _check_comparable(con, job_a, job_b)
    class_a, class_b = _one_class(con, job_a, class_label), _one_class(con, job_b, class_label)
    key = _row_key(con, job_a, row)
    ends = {}
    for job, klass in ((job_a, class_a), (job_b, class_b)):
        found = first(
            con.execute(
                "SELECT row_id, base_value, output FROM shap_rows "
                "WHERE job_id = ? AND class = ? AND row_key = ?",
                [job, klass, key],
            ).fetchall()
        )
        if found is None:
            raise InputError(f"no row '{key}' in SHAP job {job}")
        ends[job] = found
    features = con.execute(
        """WITH va AS (SELECT f.feature, f.feature_group, v.value, v.shap
                       FROM shap_values v JOIN shap_features f USING (job_id, feature_id)
                       WHERE v.job_id = ? AND v.class = ? AND v.row_id = ?),
                vb AS (SELECT f.feature, f.feature_group, v.value, v.shap
                       FROM shap_values v JOIN shap_features f USING (job_id, feature_id)
                       WHERE v.job_id = ? AND v.class = ? AND v.row_id = ?)
           SELECT feature, coalesce(va.feature_group, vb.feature_group) AS "group",
                  va.value AS value_a, vb.value AS value_b,
                  coalesce(va.shap, 0) AS shap_a, coalesce(vb.shap, 0) AS shap_b,
                  coalesce(vb.shap, 0) - coalesce(va.shap, 0) AS move
           FROM va FULL JOIN vb USING (feature)
           ORDER BY abs(move) DESC, feature""",
        [job_a, class_a, ends[job_a][0], job_b, class_b, ends[job_b][0]],
    ).df()
    return {
        "row_key": key,
        "output_a": ends[job_a][2],
        "output_b": ends[job_b][2],
        "base_move": ends[job_b][1] - ends[job_a][1],
        "features": features,
    }


def _row_key(con, job_id: str, row: str) -> str:
    row_id = find_row(con, job_id, row)
    return con.execute(
        "SELECT row_key FROM shap_rows WHERE job_id = ? AND row_id = ? LIMIT 1", [job_id, row_id]
    ).fetchone()[0]
