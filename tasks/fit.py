"""One seeded fit: split, fit with random_state = seed, score the holdout, read importances.

Pure functions (no broker, no database): `fit_run` and `fit_pair` are what a
seeded run computes, `run_message` the result the writer records.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from genejobs import contract
from genejobs.catalog import model_kind
from genejobs.config import settings
from genejobs.contract import RunDone
from genejobs.storage.datasets import ExpressionMatrix, load_matrix
from genejobs.tasks.models import make_estimator


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
    return holdout_scores(np.asarray(y_test), np.asarray(estimator.predict(X_test)), n_classes)


def holdout_scores(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> tuple[float, float, float, float]:
    """scikit-learn's accuracy_score and precision_recall_fscore_support (zero_division=0;
    binary for class code 1 with two classes, else weighted by support), from the counts.

    The same numbers as scikit-learn's functions (tests/test_fit.py checks it),
    without their input checks, which cost more than a short fit itself.
    """
    labels = np.union1d(y_true, y_pred)
    true_pos = np.array([np.sum((y_true == c) & (y_pred == c)) for c in labels], dtype=float)
    predicted = np.array([np.sum(y_pred == c) for c in labels], dtype=float)
    support = np.array([np.sum(y_true == c) for c in labels], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(support > 0, true_pos / support, 0.0)
        denominator = predicted + support  # 2tp + fp + fn
        f1 = np.where(denominator > 0, 2 * true_pos / denominator, 0.0)
    accuracy = float(np.mean(y_true == y_pred))
    if n_classes == 2:
        at = np.flatnonzero(labels == 1)
        if not len(at):
            return accuracy, 0.0, 0.0, 0.0
        k = at[0]
        return accuracy, float(precision[k]), float(recall[k]), float(f1[k])
    total = support.sum()
    return (
        accuracy,
        float(precision @ support / total),
        float(recall @ support / total),
        float(f1 @ support / total),
    )


@lru_cache(maxsize=8)
def cached_matrix(relative_path: str) -> ExpressionMatrix:
    """A dataset's matrix, by its path under the data dir, loaded once per process."""
    # Dataset files are content-addressed and never change: load once per process.
    return load_matrix(settings().home / Path(relative_path))


def packed_selection(selection: Selection) -> dict:
    """A selection as JSON-safe packed arrays; absent coefficients travel as NaN."""
    n = len(selection.gene_index)
    coef = np.full(n, np.nan) if selection.coef is None else np.asarray(selection.coef)
    class_coefs = np.asarray(selection.class_coefs or np.empty((n, 0)), dtype=np.float64)
    return {
        "gene_index": contract.pack(selection.gene_index, "i4"),
        "importance": contract.pack(selection.importance, "f8"),
        "coef": contract.pack(coef, "f8"),
        "n_classes": int(class_coefs.shape[1]) if n else 0,
        "class_coefs": contract.pack(class_coefs.ravel(), "f8"),
    }


def run_message(
    job_id: str,
    dataset_id: str,
    model: str,
    result: RunResult,
    other_half: Selection | None = None,
    worker: str = "",
) -> RunDone:
    """A finished run as the writer takes it (`worker`: the process that fitted it)."""
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
        worker=worker,
        importances=packed_selection(result.selection),
        importances_b=None if other_half is None else packed_selection(other_half),
    )
