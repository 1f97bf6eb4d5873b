"""Seeded importance runs: one fit per seed, recording which genes the model found important.

`fit_run` is the pure function (no broker, no database); `importance_run`
is the Celery task around it, which hands the result to the writer.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from storage.datasets import ExpressionMatrix, load_matrix
from tasks.models import make_estimator, model_kind
from worker import inbox
from worker.app import app
from worker.config import settings

TASK_NAME = "genejobs.importance_run"


@dataclass(frozen=True)
class RunResult:
    """The outcome of one seeded fit. Importance columns are parallel tuples.

    `class_index` is -1 for the summary row of a gene and the class code for a
    linear model's per-class coefficient rows.
    """

    seed: int
    n_train: int
    n_test: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    fit_seconds: float
    class_index: tuple[int, ...]
    gene_index: tuple[int, ...]
    importance: tuple[float, ...]
    coef: tuple[float | None, ...]
    rank: tuple[int, ...]

    @property
    def n_selected(self) -> int:
        return sum(1 for c in self.class_index if c == -1)


def _ranked(importance: np.ndarray, class_index: int, coef: np.ndarray | None):
    """Rows for the genes with non-zero importance, ranked 1 = most important."""
    nonzero = np.flatnonzero(importance != 0)
    order = nonzero[np.argsort(-importance[nonzero], kind="stable")]
    return (
        [class_index] * len(order),
        order.tolist(),
        importance[order].tolist(),
        coef[order].tolist() if coef is not None else [None] * len(order),
        list(range(1, len(order) + 1)),
    )


def gene_importances(estimator, model: str, n_classes: int):
    """Importance rows of a fitted estimator: summary rows, then per-class rows for linear models.

    Trees: feature_importances_. Linear: importance = |coef|; for multiclass the
    summary is the mean |coef| over classes and its signed value is the
    coefficient of largest magnitude, and each class has rows of its own.
    """
    kind = model_kind(model)
    if kind == "none":
        return [], [], [], [], []
    if kind == "tree":
        return _ranked(np.asarray(estimator.feature_importances_, dtype=np.float64), -1, None)
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    if coef.shape[0] == 1:
        return _ranked(np.abs(coef[0]), -1, coef[0])
    magnitude = np.abs(coef)
    dominant = coef[magnitude.argmax(axis=0), np.arange(coef.shape[1])]
    columns = _ranked(magnitude.mean(axis=0), -1, dominant)
    for k in range(coef.shape[0]):
        for total, part in zip(columns, _ranked(magnitude[k], k, coef[k]), strict=True):
            total.extend(part)
    return columns


def fit_run(matrix: ExpressionMatrix, model: str, seed: int, test_size: float) -> RunResult:
    """Split with `seed` (stratified), fit `model` with random_state = seed, score the holdout."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        matrix.X, matrix.y, test_size=test_size, stratify=matrix.y, random_state=seed
    )
    estimator = make_estimator(model, seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Library notices (deprecated defaults, convergence) are the model's
        # business; PyCaret's defaults are kept as they are.
        warnings.simplefilter("ignore")
        estimator.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    predicted = estimator.predict(X_test)
    average = "binary" if len(matrix.classes) == 2 else "weighted"
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_test, predicted, average=average, zero_division=0
    )
    classes, genes, importance, coef, rank = gene_importances(estimator, model, len(matrix.classes))
    return RunResult(
        seed=seed,
        n_train=len(y_train),
        n_test=len(y_test),
        accuracy=float(accuracy_score(y_test, predicted)),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        fit_seconds=fit_seconds,
        class_index=tuple(classes),
        gene_index=tuple(genes),
        importance=tuple(importance),
        coef=tuple(coef),
        rank=tuple(rank),
    )


@lru_cache(maxsize=8)
def _matrix(relative_path: str) -> ExpressionMatrix:
    # Dataset files are content-addressed and never change: load once per process.
    return load_matrix(settings().home / Path(relative_path))


def run_message(job_id: str, dataset_id: str, model: str, result: RunResult) -> dict:
    return {
        "op": "run_done",
        "job_id": job_id,
        "dataset_id": dataset_id,
        "model": model,
        "seed": result.seed,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "accuracy": result.accuracy,
        "precision": result.precision,
        "recall": result.recall,
        "f1": result.f1,
        "fit_seconds": result.fit_seconds,
        "n_selected": result.n_selected,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "importances": {
            "class_index": inbox.pack(result.class_index, "i2"),
            "gene_index": inbox.pack(result.gene_index, "i4"),
            "importance": inbox.pack(result.importance, "f8"),
            # None (no coefficient: tree models) travels as NaN and is stored as NULL
            "coef": inbox.pack(np.asarray(result.coef, dtype=np.float64), "f8"),
            "rank": inbox.pack(result.rank, "i4"),
        },
    }


def execute(
    job_id: str, dataset_id: str, dataset_path: str, model: str, seed: int, test_size: float
) -> str:
    """Run one seed and hand the outcome (done or failed) to the writer."""
    if inbox.is_cancelled(job_id):
        return "cancelled"
    try:
        result = fit_run(_matrix(dataset_path), model, seed, test_size)
    except Exception as exc:
        inbox.push(
            {
                "op": "run_failed",
                "job_id": job_id,
                "dataset_id": dataset_id,
                "model": model,
                "seed": seed,
                "error": f"{exc.__class__.__name__}: {exc}",
                "worker": f"{socket.gethostname()}:{os.getpid()}",
            }
        )
        raise
    inbox.push(run_message(job_id, dataset_id, model, result))
    return f"accuracy={result.accuracy:.4f} genes={result.n_selected}"


@app.task(name=TASK_NAME, ignore_result=True)
def importance_run(job_id, dataset_id, dataset_path, model, seed, test_size):
    return execute(job_id, dataset_id, dataset_path, model, seed, test_size)
