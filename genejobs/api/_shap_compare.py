"""SHAP side by side: two predictions of one job, two jobs over the same rows, and the
binned aggregates over every row that the beeswarm and dependence plots are drawn from.

SHAP values add up, so a difference of outputs splits exactly into a
difference per feature (and per feature group) plus the difference of the
base values: see `storage.shap_compare` and `storage.shap_bins`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genejobs.api._reading import reading

if TYPE_CHECKING:
    import pandas as pd


def shap_pair(job_id: str, row_a: str, row_b: str, *, class_label=None) -> dict:
    """Why prediction A scores above (or below) B: per feature and per group, SHAP of A
    minus SHAP of B (`features`, `groups`), the two rows (`header`), `output_difference`
    and `base_difference`. Rows by key (id columns joined with '|') or row number."""
    from genejobs.storage import shap_compare

    with reading() as con:
        return shap_compare.pair(con, job_id, row_a, row_b, class_label)


def shap_compare(job_a: str, job_b: str, *, class_label=None, top: int = 20) -> dict:
    """Two SHAP jobs over the same rows (two model releases): `summary`, the `top` rows
    whose output moved most (`moves`), per feature and per group the mean move and both
    global rankings (`features`, `groups`)."""
    from genejobs.storage import shap_compare as compare

    with reading() as con:
        return compare.compare(con, job_a, job_b, class_label, top)


def shap_move(job_a: str, job_b: str, row: str, *, class_label=None) -> dict:
    """One prediction in two jobs: `output_a`, `output_b`, `base_move`, and per feature
    what moved it (`features`, SHAP in B minus SHAP in A)."""
    from genejobs.storage import shap_compare

    with reading() as con:
        return shap_compare.move(con, job_a, job_b, row, class_label)


def shap_beeswarm_bins(
    job_id: str, *, top: int = 20, bins: int = 60, class_label=None
) -> pd.DataFrame:
    """The top features' SHAP values over every row, as counts per SHAP bin with the mean
    value level of each bin (no sampling: `storage.shap_bins.beeswarm_bins`)."""
    from genejobs.storage import shap_bins

    with reading() as con:
        return shap_bins.beeswarm_bins(con, job_id, top, bins, class_label)


def shap_dependence_bins(job_id: str, feature: str, *, bins: int = 40, class_label=None) -> dict:
    """A feature's SHAP against its value over every row, as counts per (value, SHAP) cell,
    with the rows where it is absent apart (`storage.shap_bins.dependence_bins`)."""
    from genejobs.storage import shap_bins

    with reading() as con:
        return shap_bins.dependence_bins(con, job_id, feature, bins, class_label)
