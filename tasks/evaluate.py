"""Holdout evaluation with seeds: how much a model's score owes to the random numbers.

`evaluate_holdout` is the pure function: split the dataset with the split seed
(stratified), fit the model's estimator (its class and parameters as the search
recorded them) with random_state = the hyper seed, and score the holdout.
`holdout_test` is the Celery task around it, which hands the result to the writer.
"""

from __future__ import annotations

import importlib
import json
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from genejobs.channel import Channel
from genejobs.contract import TestDone, TestFailed
from genejobs.storage.datasets import ExpressionMatrix
from genejobs.tasks.fit import cached_matrix

# Estimators are rebuilt from a class path stored in the results file; only
# these libraries' classes are ever imported that way.
TRUSTED_MODULES = ("sklearn.", "xgboost.", "lightgbm.", "catboost.")


@dataclass(frozen=True)
class HoldoutResult:
    """The holdout scores of one (split seed, hyper seed) evaluation."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None  # None when the estimator gives no usable scores
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    n_train: int
    n_test: int
    fit_seconds: float


def build_estimator(estimator: str, params: str, hyper_seed: int):
    """Rebuild an estimator from its class path and JSON parameters, random_state = hyper_seed."""
    module, _, name = estimator.rpartition(".")
    if not module.startswith(TRUSTED_MODULES):
        raise ValueError(f"refusing to build {estimator}: not a scikit-learn compatible library")
    values = json.loads(params)
    if "random_state" in values:
        values["random_state"] = hyper_seed
    return getattr(importlib.import_module(module), name)(**values)


def _roc_auc(estimator, X_test, y_test, n_classes: int) -> float | None:
    from sklearn.metrics import roc_auc_score

    try:
        if hasattr(estimator, "predict_proba"):
            scores = estimator.predict_proba(X_test)
            if n_classes == 2:
                scores = scores[:, 1]
        elif n_classes == 2 and hasattr(estimator, "decision_function"):
            scores = estimator.decision_function(X_test)
        else:
            return None
        return float(
            roc_auc_score(
                y_test, scores, multi_class="ovr", average="weighted", labels=range(n_classes)
            )
        )
    except (ValueError, AttributeError):
        return None


def evaluate_holdout(
    matrix: ExpressionMatrix,
    estimator: str,
    params: str,
    split_seed: int,
    hyper_seed: int,
    test_size: float,
) -> HoldoutResult:
    """Split with `split_seed`, fit with random_state = `hyper_seed`, score the holdout."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        matrix.X, matrix.y, test_size=test_size, stratify=matrix.y, random_state=split_seed
    )
    model = build_estimator(estimator, params, hyper_seed)
    n_classes = len(matrix.classes)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - started
        predicted = model.predict(X_test)
        roc_auc = _roc_auc(model, X_test, y_test, n_classes)
    average = "binary" if n_classes == 2 else "weighted"
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_test, predicted, average=average, zero_division=0
    )
    return HoldoutResult(
        accuracy=float(accuracy_score(y_test, predicted)),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        roc_auc=roc_auc,
        confusion=confusion_matrix(y_test, predicted, labels=np.arange(n_classes)).tolist(),
        n_train=len(y_train),
        n_test=len(y_test),
        fit_seconds=fit_seconds,
    )


def execute(
    channel: Channel,
    job_id: str,
    test_id: str,
    dataset_path: str,
    estimator: str,
    params: str,
    split_seed: int,
    hyper_seed: int,
    test_size: float,
) -> str:
    """Run one evaluation and hand the outcome (done or failed) to the writer."""
    worker = channel.worker
    try:
        result = evaluate_holdout(
            cached_matrix(dataset_path), estimator, params, split_seed, hyper_seed, test_size
        )
    except Exception as exc:
        failure = TestFailed(
            job_id=job_id, test_id=test_id, error=f"{exc.__class__.__name__}: {exc}", worker=worker
        )
        channel.push([failure])
        raise
    channel.push([TestDone(job_id=job_id, test_id=test_id, worker=worker, result=asdict(result))])
    return f"{test_id}: accuracy={result.accuracy:.4f}"
