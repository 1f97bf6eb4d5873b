"""A search's leaderboard from its fold scores, computed the way PyCaret's `compare_models` does.

Per model: the mean and the (population) standard deviation of each metric over
the folds, in fold order, rounded to 4 decimals; the fit time is the rounded
total over the folds divided by their number. A fold that failed scores 0 on
every metric (PyCaret's `error_score=0.0`). A model is left off, as
`compare_models(errors="ignore")` leaves it off, when every fold failed or when
its first fold scored 0 on every metric. The table is sorted after each model
is added, exactly as PyCaret sorts its display, so ties keep PyCaret's order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genejobs.candidates import CANDIDATES, METRICS, Metric

ROUND = 4


def leaderboard(folds: pd.DataFrame, order: list[str], sort: Metric) -> pd.DataFrame:
    """Rank the models of one search.

    `folds` has one row per (model, fold) with `failed` (bool), `seconds`
    (fit and score time) and a column per metric. `order` is the candidates'
    order. Returns one row per ranked model: `model`, `name`, `rank`, the metric
    means (their column names), their SDs (`<column>_sd`) and `fit_seconds`.
    """
    master = None
    for model in order:
        scores = folds[folds["model"] == model].sort_values("fold")
        if scores.empty or scores["failed"].all():
            continue
        values = {}
        for m in METRICS:
            fold_scores = scores[m.column].astype(float).tolist()
            values[m.display] = [np.mean(fold_scores)]
            values[m.display + " SD"] = [np.std(fold_scores)]
        first_fold = scores.iloc[0]
        if sum(round(float(first_fold[m.column]), ROUND) for m in METRICS) == 0.0:
            continue
        n_folds = len(scores)
        total = np.array(float(scores["seconds"].sum())).round(2)
        row = pd.DataFrame(
            {"Model": [CANDIDATES[model].name], **values, "TT (Sec)": [total / n_folds]},
            index=[model],
        )
        master = row if master is None else pd.concat([master, row], ignore_index=False)
        master = master.round(ROUND).sort_values(by=sort.display, ascending=False)
    columns = (
        ["model", "name"]
        + [m.column for m in METRICS]
        + [m.column + "_sd" for m in METRICS]
        + ["fit_seconds", "rank"]
    )
    if master is None:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(
        {
            "model": master.index,
            "name": master["Model"].to_numpy(),
            **{m.column: master[m.display].to_numpy() for m in METRICS},
            **{m.column + "_sd": master[m.display + " SD"].to_numpy() for m in METRICS},
            "fit_seconds": master["TT (Sec)"].to_numpy(),
            "rank": np.arange(1, len(master) + 1),
        }
    )
    return table[columns]
