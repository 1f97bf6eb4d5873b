"""The SHAP pages: a job's global view (/job/<id>) and one prediction (/shap/<id>/row/<row>).

A SHAP job's page shows its models (linked to the jobs that made them), global
contribution overall, per model or per class as bars beside a beeswarm, its
feature groups, contribution against presence with one feature's dependence
(`?feature=`), a search that finds predictions by any id column (`?q=`), and
the other SHAP jobs over the same id columns to compare it with (compare_pages).
The beeswarm and the dependence plot count every prediction, in bins
(storage.shap_bins), kept per job by summaries like the page's other aggregates.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from genejobs.cli.explorer import bin_figures, figures, shap_figures
from genejobs.cli.explorer.params import (
    ROW_ID_MAX,
    JobQuery,
    Page,
    like_pattern,
    shown,
    takes_only,
    whole_number,
)
from genejobs.cli.explorer.summaries import KEPT, JobSummaries
from genejobs.cli.shap_plots import OUTPUT_UNITS, pooled
from genejobs.errors import InputError, NotFoundError
from genejobs.storage import shap_queries
from genejobs.storage.db import first

SEARCH_ROWS = 50  # predictions listed for a search
SWARM_FEATURES = 15  # features of the beeswarm, largest mean |SHAP| first
SWARM_BINS = 60  # SHAP bins of the beeswarm, one scale for its features
DEPENDENCE_BINS = 40  # value bins and SHAP bins of a feature's dependence heatmap


def shap_values(con, job_id: str, args: JobQuery) -> dict:
    """The values of a SHAP job's page (templates/shap.html)."""
    outputs = shap_queries.job_outputs(con, job_id)
    klass = chosen_class(con, job_id, args.class_label)
    summaries = KEPT.of(con, job_id)
    dependence = None
    if args.feature:  # checked before the page's other queries: a bad one is refused at once
        try:
            dependence = summaries.dependence_bins(args.feature, DEPENDENCE_BINS, klass)
        except (InputError, NotFoundError) as exc:  # a parameter's value, not a missing page
            raise InputError(f"feature: {exc}; the presence plot links each one") from None
    unit = unit_of(con, job_id)
    chosen = "" if klass is None else shap_queries.class_title(con, job_id, klass)
    scope = ("per model" if args.by_model else "overall") + (f", {chosen}" if chosen else "")
    every = "all models" + (f", {chosen}" if chosen else "")
    classes = [(k, shap_queries.class_title(con, job_id, k)) for k in range(outputs)]
    values = {
        "job_id": job_id,
        "models": _models(con, job_id),
        "search": args.search,
        "matches": _matches(con, job_id, args.search) if args.search else None,
        "classes": classes if outputs > 1 else [],
        "positive_class": shap_queries.class_names(con, job_id).get(1) if outputs == 1 else None,
        "scope": scope,
        "by_model": args.by_model,
        # A multiclass model's signed values of one row cancel out over its classes.
        "one_class": outputs == 1 or klass is not None,
        "groups": _groups(con, summaries, klass, unit),
        "feature": args.feature,
        "dependence": None,
        "comparable": comparable(con, job_id, klass),
        **_global(con, summaries, args.by_model, klass, unit, scope),
        **_presence(summaries, klass, unit, every, outputs == 1 or klass is not None),
    }
    if dependence is not None:
        counted = dependence["present"] + dependence["missing"]
        title = f"{args.feature}: SHAP against its value, {counted:,} rows, binned ({every})"
        values["dependence"] = bin_figures.dependence(dependence, args.feature, unit, title)
    return values


def comparable(con, job_id: str, klass: int | None) -> list[dict]:
    """The other SHAP jobs whose rows are named by the same id columns, oldest first, each
    with the link that compares the older (A) with the newer (B)."""
    found = con.execute(
        """SELECT o.job_id, o.source, o.n_rows,
                  strftime(o.created_at, '%Y-%m-%d %H:%M:%S') AS created,
                  o.created_at < j.created_at
                      OR (o.created_at = j.created_at AND o.job_id < j.job_id) AS older
           FROM shap_jobs o JOIN shap_jobs j ON j.job_id = ? AND o.id_cols = j.id_cols
           WHERE o.job_id <> j.job_id ORDER BY o.created_at, o.job_id""",
        [job_id],
    ).df()
    only = "" if klass is None else f"&class={klass}"
    return [
        {
            **row,
            "link": f"/compare?a={row['job_id']}&b={job_id}{only}"
            if row["older"]
            else f"/compare?a={job_id}&b={row['job_id']}{only}",
        }
        for row in found.to_dict("records")
    ]


def chosen_class(con, job_id: str, label: str | None) -> int | None:
    """The class `?class=` names (a label or a number), or None; a 400 line naming it if none."""
    try:
        return shap_queries.resolve_class(con, job_id, label)
    except (InputError, ValueError) as exc:
        text = (label or "").strip()
        if isinstance(exc, InputError) and re.fullmatch(r"[0-9]{1,6}", text):
            raise  # a number the job lacks: storage's line names the classes there are
        known = f" ({exc})" if isinstance(exc, InputError) else ""
        raise InputError(f"class: a class name or number, not '{shown(text)}'{known}") from None


def _presence(summaries: JobSummaries, klass, unit: str, every: str, plot: bool) -> dict:
    """Per feature, mean SHAP when present and absent: a table, and a plot when `plot`."""
    job_id = summaries.job_id
    presence = summaries.presence(klass)

    def link(feature: str) -> str:
        only = "" if klass is None else f"&class={klass}"
        return f"/job/{job_id}?feature={quote(feature)}{only}#dependence"

    title = f"mean SHAP when the feature is present and when absent ({every})"
    rows = presence.head(25).to_dict("records")
    return {
        "presence_plot": shap_figures.presence(presence, unit, title, link) if plot else None,
        "presence": [{**row, "link": link(row["feature"])} for row in rows],
    }


def _global(con, summaries: JobSummaries, by_model: bool, klass, unit: str, scope: str) -> dict:
    """Mean |SHAP| per feature: per model, or overall beside a beeswarm of every prediction."""
    job_id = summaries.job_id
    glob = summaries.global_importance(by_model, klass)
    if by_model:
        serves = dict(
            con.execute(
                "SELECT source, partitions FROM shap_models WHERE job_id = ?", [job_id]
            ).fetchall()
        )
        column = shap_queries.job(con, job_id).get("partition_col") or "partition"
        per_model = []
        for model, part in glob.groupby("model", sort=False):
            bars = pooled(part)
            name = str(model).rsplit("/", 1)[-1]
            partitions = serves.get(model)
            per_model.append(
                {
                    "name": name,
                    "source": model,
                    "serves": f" ({column} {', '.join(partitions)})" if partitions else "",
                    "plot": figures.bars(
                        bars[bars > 0].head(12), f"Mean |SHAP| in model {name}", unit, width=360
                    ),
                }
            )
        return {"per_model": per_model}
    top = pooled(glob).head(20)
    swarm = None
    if klass is not None or shap_queries.job_outputs(con, job_id) == 1:
        bins = summaries.beeswarm_bins(SWARM_FEATURES, SWARM_BINS, klass)
        first_feature = bins[bins["rank"] == 1]["rows"].sum() if len(bins) else 0
        title = f"SHAP values of every prediction, {first_feature:,} rows, binned ({scope})"
        swarm = bin_figures.beeswarm(bins, unit, title)
    title = f"Mean |SHAP| of the top {len(top)} features ({scope})"
    return {"bars": figures.bars(top, title, unit), "swarm": swarm}


def _groups(con, summaries: JobSummaries, klass: int | None, unit: str):
    """Mean |SHAP| of each prediction's group sums, when the job has feature groups."""
    if not _has_groups(con, summaries.job_id):
        return None
    groups = summaries.group_importance(klass)
    series = groups.groupby("group")["mean_abs_shap"].mean().sort_values(ascending=False)
    return figures.bars(series, "Mean |SHAP| of each feature group's sum", unit)


def unit_of(con, job_id: str) -> str:
    """The unit of a job's SHAP values, when its models share one."""
    found = con.execute(
        "SELECT DISTINCT family FROM shap_models WHERE job_id = ?", [job_id]
    ).fetchall()
    units = {OUTPUT_UNITS.get(str(family), "raw output") for (family,) in found}
    return units.pop() if len(units) == 1 else "model output"


def _models(con, job_id: str) -> list[dict]:
    """The job's models; a model genejobs made links to the job that made it."""
    models = con.execute(
        "SELECT model_id, source, family FROM shap_models WHERE job_id = ? ORDER BY model_id",
        [job_id],
    ).df()
    return [
        {**row, "origin": _origin(con, str(row["source"]))} for row in models.to_dict("records")
    ]


def _origin(con, source: str) -> dict | None:
    """The job behind `genejobs:<model id>` or `genejobs:<job id>:<seed>`: link and words."""
    if not source.startswith("genejobs:"):
        return None
    name = source[len("genejobs:") :]
    if ":" in name:
        job_id, _, seed = name.rpartition(":")
        return {"job": job_id, "text": f"importance job {job_id}", "after": f", seed {seed}"}
    found = con.execute("SELECT job_id FROM model_runs WHERE model_id = ?", [name]).fetchone()
    if found is None:
        return None
    return {"job": found[0], "text": f"search {found[0]}", "after": ""}


def _has_groups(con, job_id: str) -> bool:
    found = con.execute(
        "SELECT count(feature_group) FROM shap_features WHERE job_id = ?", [job_id]
    ).fetchone()
    return bool(found[0])


def _matches(con, job_id: str, query: str) -> dict:
    """The predictions whose id contains `query`, highest output first, and whether more match."""
    # One more than shown says whether there are more, without counting every match.
    found = con.execute(
        """SELECT r.row_id, r.row_key, r.class, r.output, r.probability, m.source AS model
           FROM shap_rows r JOIN shap_models m USING (job_id, model_id)
           WHERE r.job_id = ? AND r.row_key ILIKE ? ESCAPE '\\'
           ORDER BY r.output DESC LIMIT ?""",
        [job_id, like_pattern(query), SEARCH_ROWS + 1],
    ).df()
    names = shap_queries.class_names(con, job_id)
    rows = [
        {
            **row,
            "class": f"{row['class']} {names[row['class']]}"
            if row["class"] in names
            else row["class"],
        }
        for row in found.head(SEARCH_ROWS).to_dict("records")
    ]
    return {"rows": rows, "more": len(found) > SEARCH_ROWS, "limit": SEARCH_ROWS}


def row_page(con, job_id: str, row: str, query: dict[str, str]) -> Page:
    """One prediction: its contributions with values, beside the candidates that share its key."""
    takes_only(query, (), "a prediction's page")
    row_id = whole_number("row id", row, 0, ROW_ID_MAX)
    found = first(
        con.execute(
            "SELECT row_key FROM shap_rows WHERE job_id = ? AND row_id = ? LIMIT 1",
            [job_id, row_id],
        ).fetchall()
    )
    if found is None:
        raise NotFoundError(f"no prediction {row_id} in SHAP job {job_id}")
    header, contributions = shap_queries.local(con, job_id, str(found[0]))
    head = header.iloc[0].to_dict()
    klass = int(head["class"])
    key = str(head["row_key"])
    if "class" in contributions.columns:
        contributions = contributions[contributions["class"] == klass]
    unit = OUTPUT_UNITS.get(str(head.get("family")), "raw output")
    class_title = shap_queries.class_title(con, job_id, klass)
    values = {
        "job_id": job_id,
        "head": head,
        "class_title": class_title,
        "unit": unit,
        "contributions": contributions.head(30).to_dict("records"),
        "waterfall": shap_figures.waterfall(
            head, contributions, unit, f"From the base value to the output ({class_title})"
        ),
        "groups": _group_sums(con, job_id, row_id, klass) if _has_groups(con, job_id) else None,
        "candidates": None,
    }
    if "|" in key:
        prefix = key.rsplit("|", 1)[0]
        others = con.execute(
            """SELECT row_id, row_key, output, probability FROM shap_rows
               WHERE job_id = ? AND starts_with(row_key, ?) AND class = ?
               ORDER BY output DESC LIMIT 50""",
            [job_id, prefix + "|", klass],
        ).df()
        only = "" if shap_queries.job_outputs(con, job_id) == 1 else f"&class={klass}"
        values["prefix"] = prefix
        values["candidates"] = [
            {**c, "pair": f"/job/{job_id}/pair?a={quote(key)}&b={quote(c['row_key'])}{only}"}
            for c in others.to_dict("records")
        ]
    return Page("row.html", f"Prediction {key}", values)


def _group_sums(con, job_id: str, row_id: int, klass: int) -> list[tuple[str, float]]:
    """A prediction's contributions summed over each feature group, largest first."""
    return con.execute(
        """SELECT f.feature_group, sum(v.shap) AS shap
           FROM shap_values v JOIN shap_features f USING (job_id, feature_id)
           WHERE v.job_id = ? AND v.row_id = ? AND v.class = ? AND f.feature_group IS NOT NULL
           GROUP BY 1 ORDER BY abs(sum(v.shap)) DESC""",
        [job_id, row_id, klass],
    ).fetchall()
