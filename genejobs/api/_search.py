"""Model searches: PyCaret's compare_models spread over the workers, and their leaderboards."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from genejobs.api._checks import InvalidOption, at_least, fraction
from genejobs.api._reading import reading

if TYPE_CHECKING:
    import pandas as pd


def plan_search(
    dataset: str,
    *,
    models: list[str] | None = None,
    exclude: list[str] | None = None,
    folds: int = 10,
    sort: str = "Accuracy",
    session_id: int | None = None,
    train_size: float = 0.7,
) -> dict:
    """Check the arguments and plan a search; returns the writer's plan.

    `models` (PyCaret ids, in the order given) or `exclude` pick the
    candidates (default: PyCaret's turbo ones); `sort` is any metric's PyCaret
    id or name. The plan holds `job_id`, `models`, `dataset` and `setup`
    (folds, session id, train size).
    """
    from genejobs.candidates import METRICS, choose, metric
    from genejobs.contract import PlanSearch
    from genejobs.worker import inbox

    try:
        choose(models, exclude)
    except ValueError as exc:
        raise InvalidOption(str(exc), "--models/--exclude") from None
    if metric(sort) is None:
        raise InvalidOption(
            f"unknown metric '{sort}'; choose from {', '.join(m.display for m in METRICS)}",
            "--sort",
        )
    at_least(folds, 2, "--folds")
    fraction(train_size, "--train-size")
    return inbox.request(
        PlanSearch(
            job_id="srch-" + uuid.uuid4().hex[:10],
            dataset=dataset,
            include=models,
            exclude=exclude,
            folds=folds,
            sort=sort,
            session_id=session_id,
            train_size=train_size,
        )
    )


def leaderboard(job_id: str) -> pd.DataFrame:
    """A search's models ranked as PyCaret ranks them, failed ones with their errors.

    `frame.attrs["note"]`: why AUC is 0 on some folds (a class missing from a
    fold's validation part), or None.
    """
    from genejobs.storage import model_queries

    with reading() as con:
        table = model_queries.leaderboard(con, job_id)
        table.attrs["note"] = model_queries.auc_note(con, job_id, table)
    return table
