"""The models that searches ranked: list, show, save (finalize), export, predict."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from genejobs.api._reading import reading

if TYPE_CHECKING:
    import pandas as pd


def models(dataset: str | None = None) -> pd.DataFrame:
    """Searched models: search, rank, leaderboard metrics, whether an artifact was saved."""
    from genejobs.storage import model_queries

    with reading() as con:
        return model_queries.models(con, dataset)


def model(model_id: str) -> dict:
    """One model: setup, scores and SDs, estimator and parameters, artifact, holdout tests."""
    from genejobs.storage import model_queries

    with reading() as con:
        return model_queries.model(con, model_id)


def finalize(model_id: str) -> dict:
    """Ask for a ranked model to be saved as a search's best one is (see `wait_saved`).

    The writer's reply: `artifact_path`, not None when the model is saved already.
    """
    from genejobs.contract import FinalizeModel
    from genejobs.worker import inbox

    return inbox.request(FinalizeModel(model_id=model_id))


def wait_saved(model_id: str, poll: float = 0.5) -> dict:
    """Wait until a model being finalized is saved or failed to be.

    Returns `artifact_path`, `pred_accuracy` (its holdout accuracy) and
    `finalize_error`, one of the first and the last not None.
    """
    while True:
        with reading() as con:
            saved, error, accuracy = con.execute(
                "SELECT artifact_path, finalize_error, pred_accuracy FROM model_runs "
                "WHERE model_id = ?",
                [model_id],
            ).fetchone()
        if saved is not None or error is not None:
            return {"artifact_path": saved, "pred_accuracy": accuracy, "finalize_error": error}
        time.sleep(poll)


def model_runs(
    *, job: str | None = None, dataset: str | None = None, layout: str = "seed"
) -> pd.DataFrame:
    """Every searched model in the seeds' `pycaret_results.csv` columns, or PyCaret's `pull()`.

    `layout="pycaret"`: Model, Accuracy, AUC, Recall, Prec., F1, Kappa, MCC,
    TT (Sec), one leaderboard per job in rank order. `job`, `dataset`: keep one
    search's or one dataset's models.
    """
    from genejobs.storage import model_queries

    with reading() as con:
        table = model_queries.model_runs_export(con, job_id=job, dataset=dataset)
    return model_queries.pycaret_layout(table) if layout == "pycaret" else table


def predict(
    model_id: str,
    table: str | os.PathLike,
    *,
    id_col: str | None = None,
    raw_score: bool = False,
    all_columns: bool = False,
) -> pd.DataFrame:
    """Predict a CSV, TSV or Parquet table with a saved model, as PyCaret's predict_model does.

    The model's file is loaded only when its bytes have the recorded sha256.
    The frame has `prediction_label` and `prediction_score` (with `raw_score`,
    one `prediction_score_<class>` per class), the label column when the table
    has one, and the id column; `all_columns` keeps the input columns too.
    """
    from genejobs.config import settings
    from genejobs.errors import InputError
    from genejobs.storage import model_queries
    from genejobs.storage.datasets import listed, read_table
    from genejobs.tasks.artifacts import load_artifact

    table = Path(table)
    with reading() as con:
        found = model_queries.saved_model(con, model_id)
    data = read_table(table)
    if id_col is not None:
        if id_col not in data.columns:
            raise InputError(f"no column '{id_col}' in {table}")
        data = data.set_index(id_col)
    missing = [g for g in found["genes"] if g not in data.columns]
    if missing:
        raise InputError(
            f"{table} lacks {len(missing)} gene columns the model needs: {listed(missing)}"
        )
    pipeline = load_artifact(settings().home / found["artifact_path"], found["artifact_sha256"])
    from pycaret.classification import ClassificationExperiment

    predicted = ClassificationExperiment().predict_model(
        pipeline, data=data, raw_score=raw_score, verbose=False
    )
    if not all_columns:
        keep = [c for c in predicted.columns if c.startswith("prediction_")]
        keep = ([found["label_col"]] if found["label_col"] in predicted.columns else []) + keep
        predicted = predicted[keep]
    return predicted.reset_index()
