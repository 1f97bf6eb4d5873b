"""Seeded importance runs: one fit per seed, recording which genes the model found important.

`fit_run` is the pure function (no broker, no database); `importance_run`
is the Celery task around it, which hands the result to the writer.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from genejobs.storage.datasets import ExpressionMatrix, load_matrix
from genejobs.tasks.models import make_estimator, model_kind
from genejobs.worker import inbox
from genejobs.worker.app import unit_task, worker_name
from genejobs.worker.config import settings
from genejobs.worker.contract import RunDone, RunFailed, Task


@dataclass(frozen=True)
class Selection:
    """The genes a fitted model selected (non-zero importance), most important first.

    `coef` is the signed coefficient of a linear model (for multiclass, the one
    of largest magnitude), else None. `class_coefs` holds a multiclass linear
    model's signed coefficients per class, one row per selected gene and one
    column per class, else None.
    """

    gene_index: tuple[int, ...] = ()
    importance: tuple[float, ...] = ()
    coef: tuple[float, ...] | None = None
    class_coefs: tuple[tuple[float, ...], ...] | None = None


@dataclass(frozen=True)
class RunResult:
    """The outcome of one seeded fit."""

    seed: int
    n_train: int
    n_test: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    fit_seconds: float
    selection: Selection

    @property
    def n_selected(self) -> int:
        return len(self.selection.gene_index)


def _select(importance: np.ndarray, coef: np.ndarray | None = None, class_coefs=None):
    """The genes with non-zero importance, most important first (ties in gene order)."""
    nonzero = np.flatnonzero(importance != 0)
    order = nonzero[np.argsort(-importance[nonzero], kind="stable")]
    return Selection(
        gene_index=tuple(order.tolist()),
        importance=tuple(importance[order].tolist()),
        coef=None if coef is None else tuple(coef[order].tolist()),
        class_coefs=None if class_coefs is None else tuple(map(tuple, class_coefs.T[order])),
    )


def gene_importances(estimator, model: str) -> Selection:
    """The genes a fitted estimator selected, with their importances.

    Trees: feature_importances_. Linear: importance = |coef|; for multiclass the
    summary is the mean |coef| over classes, its signed value the coefficient of
    largest magnitude, and every class's signed coefficient is kept as well.
    """
    kind = model_kind(model)
    if kind == "none":
        return Selection()
    if kind == "tree":
        return _select(np.asarray(estimator.feature_importances_, dtype=np.float64))
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    if coef.shape[0] == 1:
        return _select(np.abs(coef[0]), coef[0])
    magnitude = np.abs(coef)
    dominant = coef[magnitude.argmax(axis=0), np.arange(coef.shape[1])]
    return _select(magnitude.mean(axis=0), dominant, coef)


def fit_estimator(matrix: ExpressionMatrix, model: str, seed: int, test_size: float):
    """Split with `seed` (stratified) and fit `model` with random_state = seed.

    Returns the fitted estimator, the holdout (X_test, y_test), the training
    size and the fit's seconds. The same arguments give the same estimator, so
    a run's model can be fitted again where it is needed (SHAP of a run).
    """
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        matrix.X, matrix.y, test_size=test_size, stratify=matrix.y, random_state=seed
    )
    estimator, seconds = _fit(model, seed, X_train, y_train)
    return estimator, X_test, y_test, len(y_train), seconds


def _fit(model: str, seed: int, X: np.ndarray, y: np.ndarray):
    """`model` with random_state = seed, fitted on (X, y); and the fit's seconds."""
    estimator = make_estimator(model, seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Library notices (deprecated defaults, convergence) are the model's
        # business; PyCaret's defaults are kept as they are.
        warnings.simplefilter("ignore")
        estimator.fit(X, y)
    return estimator, time.perf_counter() - started


def fit_run(matrix: ExpressionMatrix, model: str, seed: int, test_size: float) -> RunResult:
    """Split with `seed` (stratified), fit `model` with random_state = seed, score the holdout."""
    estimator, X_test, y_test, n_train, fit_seconds = fit_estimator(matrix, model, seed, test_size)
    accuracy, precision, recall, f1 = _scores(estimator, X_test, y_test, len(matrix.classes))
    return RunResult(
        seed=seed,
        n_train=n_train,
        n_test=len(y_test),
        accuracy=accuracy,
        precision=precision,
        recall=recall,
        f1=f1,
        fit_seconds=fit_seconds,
        selection=gene_importances(estimator, model),
    )


def fit_pair(matrix: ExpressionMatrix, model: str, seed: int) -> tuple[RunResult, Selection]:
    """The `pairs` scheme: split with `seed` into two stratified halves, fit each on its own.

    Each half's model is scored on the other half; the run's metrics are the
    mean of the two. Returns the result (selection of the first half) and the
    second half's selection. Complementary half-samples are what the
    stability selection bound of Shah & Samworth (2013) assumes.
    """
    from sklearn.model_selection import train_test_split

    half_a, half_b = train_test_split(
        np.arange(len(matrix.y)), test_size=0.5, stratify=matrix.y, random_state=seed
    )
    fits = []
    for train, test in ((np.sort(half_a), half_b), (np.sort(half_b), half_a)):
        estimator, seconds = _fit(model, seed, matrix.X[train], matrix.y[train])
        scores = _scores(estimator, matrix.X[test], matrix.y[test], len(matrix.classes))
        fits.append((estimator, seconds, scores))
    scores = np.mean([f[2] for f in fits], axis=0)
    result = RunResult(
        seed=seed,
        n_train=len(half_a),
        n_test=len(half_b),
        accuracy=float(scores[0]),
        precision=float(scores[1]),
        recall=float(scores[2]),
        f1=float(scores[3]),
        fit_seconds=fits[0][1] + fits[1][1],
        selection=gene_importances(fits[0][0], model),
    )
    return result, gene_importances(fits[1][0], model)


def _scores(estimator, X_test, y_test, n_classes: int) -> tuple[float, float, float, float]:
    """Accuracy, precision, recall and F1 on a holdout (binary, or weighted over classes)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    predicted = estimator.predict(X_test)
    average = "binary" if n_classes == 2 else "weighted"
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_test, predicted, average=average, zero_division=0
    )
    return float(accuracy_score(y_test, predicted)), float(precision), float(recall), float(f1)


@lru_cache(maxsize=8)
def _matrix(relative_path: str) -> ExpressionMatrix:
    # Dataset files are content-addressed and never change: load once per process.
    return load_matrix(settings().home / Path(relative_path))


def packed_selection(selection: Selection) -> dict:
    """A selection as JSON-safe packed arrays; absent coefficients travel as NaN."""
    n = len(selection.gene_index)
    coef = np.full(n, np.nan) if selection.coef is None else np.asarray(selection.coef)
    class_coefs = np.asarray(selection.class_coefs or np.empty((n, 0)), dtype=np.float64)
    return {
        "gene_index": inbox.pack(selection.gene_index, "i4"),
        "importance": inbox.pack(selection.importance, "f8"),
        "coef": inbox.pack(coef, "f8"),
        "n_classes": int(class_coefs.shape[1]) if n else 0,
        "class_coefs": inbox.pack(class_coefs.ravel(), "f8"),
    }


def run_message(
    job_id: str, dataset_id: str, model: str, result: RunResult, other_half: Selection | None = None
) -> RunDone:
    return RunDone(
        job_id=job_id,
        dataset_id=dataset_id,
        model=model,
        seed=result.seed,
        n_train=result.n_train,
        n_test=result.n_test,
        accuracy=result.accuracy,
        precision=result.precision,
        recall=result.recall,
        f1=result.f1,
        fit_seconds=result.fit_seconds,
        n_selected=result.n_selected,
        worker=worker_name(),
        importances=packed_selection(result.selection),
        importances_b=None if other_half is None else packed_selection(other_half),
    )


def execute(
    job_id: str,
    dataset_id: str,
    dataset_path: str,
    model: str,
    seed: int,
    test_size: float,
    scheme: str = "split",
) -> str:
    """Run one seed and hand the outcome (done or failed) to the writer.

    `scheme`: "split" (one fit on a stratified split of 1 - test_size) or
    "pairs" (both halves of a stratified half split; see `fit_pair`).
    """
    if inbox.is_cancelled(job_id):
        return "cancelled"
    other_half = None
    try:
        if scheme == "pairs":
            result, other_half = fit_pair(_matrix(dataset_path), model, seed)
        else:
            result = fit_run(_matrix(dataset_path), model, seed, test_size)
    except Exception as exc:
        inbox.push(
            RunFailed(
                job_id=job_id,
                dataset_id=dataset_id,
                model=model,
                seed=seed,
                error=f"{exc.__class__.__name__}: {exc}",
                worker=worker_name(),
            )
        )
        raise
    inbox.push(run_message(job_id, dataset_id, model, result, other_half))
    return f"accuracy={result.accuracy:.4f} genes={result.n_selected}"


@unit_task(
    Task.IMPORTANCE_RUN,
    lambda kw, error: RunFailed(
        kw["job_id"], kw["dataset_id"], kw["model"], kw["seed"], error, worker_name()
    ),
)
def importance_run(job_id, dataset_id, dataset_path, model, seed, test_size, scheme="split"):
    return execute(job_id, dataset_id, dataset_path, model, seed, test_size, scheme)
