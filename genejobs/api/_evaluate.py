"""Holdout evaluations: a searched model fitted on seeded splits, and the spread of its accuracy."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from genejobs.api._checks import InvalidOption, at_least
from genejobs.api._reading import reading

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def plan_evaluate(
    model_id: str,
    *,
    split_seed: int | None = None,
    split_seeds: int | None = None,
    hyper_seed: int | None = None,
    dataset: str | None = None,
) -> dict:
    """Check the arguments and plan holdout tests of a searched model; returns the writer's plan.

    `split_seed`: one split made with that seed; `split_seeds`: that many new
    split seeds, never used for the model (default: one). `hyper_seed`: the
    estimator's random_state (default: the search's session id). `dataset`:
    check that the model belongs to it. The plan holds `job_id`, `model_id`
    and `tests`.
    """
    from genejobs.contract import PlanEvaluate
    from genejobs.worker import inbox

    if split_seed is not None and split_seeds is not None:
        raise InvalidOption("give --split-seed or --split-seeds, not both")
    if split_seeds is not None:
        at_least(split_seeds, 1, "--split-seeds")
    return inbox.request(
        PlanEvaluate(
            job_id="eval-" + uuid.uuid4().hex[:10],
            model_id=model_id,
            dataset=dataset,
            split_seeds=[split_seed] if split_seed is not None else None,
            runs=split_seeds or 1,
            hyper_seed=hyper_seed,
        )
    )


def holdout_tests(job_id: str) -> pd.DataFrame:
    """An evaluation's tests in planned order: seeds, status, metrics, confusion matrix, error.

    `frame.attrs["classes"]`: the class labels of the model's dataset, in the
    confusion matrices' order.
    """
    from genejobs.storage import model_queries

    with reading() as con:
        tests = model_queries.tests(con, job_id)
        models = tests["model_id"].unique()
        tests.attrs["classes"] = (
            model_queries.classes_of_model(con, models[0]) if len(models) else []
        )
    return tests


def accuracy_spread(accuracy: pd.Series) -> dict:
    """Mean, SD, min, max and quantiles of holdout accuracy over split seeds."""
    import numpy as np

    values = accuracy.to_numpy(dtype=float)
    summary = {
        "tests": len(values),
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
    }
    for q in QUANTILES:
        summary[f"q{int(q * 100):02d}"] = float(np.quantile(values, q))
    return summary


def confusion_total(confusions: pd.Series) -> np.ndarray:
    """The confusion matrices of several tests summed, cell by cell."""
    import numpy as np

    return sum(np.array([list(row) for row in c], dtype=int) for c in confusions)
