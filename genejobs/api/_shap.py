"""The views of a SHAP job: global contribution, by group, one prediction, presence.

Every view takes `class_label`: one class's values, by its label (any case)
or its number; by default all classes, pooled where a view pools. Views that
name their scope in a title carry it in `frame.attrs["scope"]`: the job, and
the class by number and label when one is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from genejobs.api._reading import reading

if TYPE_CHECKING:
    import pandas as pd


def _scope(con, job_id: str, class_label) -> str:
    from genejobs.storage import shap_queries

    klass = shap_queries.resolve_class(con, job_id, class_label)
    return job_id + ("" if klass is None else ", " + shap_queries.class_title(con, job_id, klass))


def shap_jobs() -> pd.DataFrame:
    """Every SHAP job with its shard counts."""
    from genejobs.storage import shap_queries

    with reading() as con:
        return shap_queries.jobs(con)


def shap_job(job_id: str) -> dict:
    """One SHAP job: source, models, shard and row counts, additivity, first errors."""
    from genejobs.storage import shap_queries

    with reading() as con:
        return shap_queries.job(con, job_id)


def shap_global(job_id: str, *, by_model: bool = False, class_label=None) -> pd.DataFrame:
    """Mean |SHAP| per feature of a SHAP job, largest first (per model with `by_model`)."""
    from genejobs.storage import shap_queries

    with reading() as con:
        table = shap_queries.global_importance(con, job_id, by_model, class_label)
        table.attrs["scope"] = _scope(con, job_id, class_label)
    return table


def shap_groups(job_id: str, *, by_model: bool = False, class_label=None) -> pd.DataFrame:
    """Mean |SHAP| per feature group (`shap run --groups`): each prediction's values summed
    over the group's features first, since SHAP values add up."""
    from genejobs.storage import shap_queries

    with reading() as con:
        table = shap_queries.group_importance(con, job_id, by_model, class_label)
        table.attrs["scope"] = _scope(con, job_id, class_label)
    return table


def shap_beeswarm(
    job_id: str, features: list[str], *, class_label=None, rows: int = 2000
) -> pd.DataFrame:
    """Feature values and SHAP values of the same `rows` sampled predictions for `features`."""
    from genejobs.storage import shap_queries

    with reading() as con:
        return shap_queries.beeswarm_sample(con, job_id, features, rows, class_label)


def shap_local(job_id: str, row: str, *, class_label=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One prediction of a SHAP job: (its header, its contributions by |SHAP|).

    `row`: the row's key (its id columns joined with '|') or its number in the table.
    """
    from genejobs.storage import shap_queries

    with reading() as con:
        return shap_queries.local(con, job_id, str(row), class_label)


def shap_presence(job_id: str, *, class_label=None) -> pd.DataFrame:
    """Per feature of a SHAP job: SHAP when the feature is present and when absent."""
    from genejobs.storage import shap_queries

    with reading() as con:
        table = shap_queries.presence(con, job_id, class_label)
        table.attrs["scope"] = _scope(con, job_id, class_label)
    return table


@dataclass(frozen=True)
class ShapViews:
    """Every view of a SHAP job at once, for a report."""

    summary: dict
    overall: pd.DataFrame  # global, pooled over models
    by_model: pd.DataFrame
    sample: pd.DataFrame  # the beeswarm of the top 20 features
    presence: pd.DataFrame
    local_views: list[tuple[str, pd.DataFrame, pd.DataFrame]]  # (row, header, contributions)


def shap_views(job_id: str, rows: list[str] | None = None) -> ShapViews:
    """A SHAP job's views; local ones for `rows` (default: the highest and the lowest output)."""
    from genejobs.storage import shap_queries

    with reading() as con:
        summary = shap_queries.job(con, job_id)
        overall = shap_queries.global_importance(con, job_id)
        by_model = shap_queries.global_importance(con, job_id, by_model=True)
        sample = shap_queries.beeswarm_sample(
            con, job_id, list(dict.fromkeys(overall["feature"]))[:20]
        )
        presence = shap_queries.presence(con, job_id)
        if not rows:
            extremes = con.execute(
                "(SELECT row_key FROM shap_rows WHERE job_id = ? ORDER BY output DESC LIMIT 1) "
                "UNION ALL "
                "(SELECT row_key FROM shap_rows WHERE job_id = ? ORDER BY output LIMIT 1)",
                [job_id, job_id],
            ).fetchall()
            rows = list(dict.fromkeys(r[0] for r in extremes))
        locals_ = [(row, *shap_queries.local(con, job_id, row)) for row in rows]
    return ShapViews(summary, overall, by_model, sample, presence, locals_)
