"""Seeded importance runs: one fit per seed, recording which genes the model found important.

`fit_run` is the pure function (no broker, no database); `importance_run`
is the Celery task around it, which hands the result to the writer.
"""

from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from genejobs import contract
from genejobs.catalog import model_kind
from genejobs.channel import Channel
from genejobs.config import settings
from genejobs.contract import RunDone, RunFailed
from genejobs.errors import ResultUndelivered
from genejobs.storage.datasets import ExpressionMatrix, load_matrix
from genejobs.tasks.models import make_estimator
from genejobs.units import Unit, pack_runs, run_unit


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
def _matrix(relative_path: str) -> ExpressionMatrix:
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


def execute(
    channel: Channel,
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
    if channel.cancelled(job_id):
        return "cancelled"
    message, error = seed_outcome(
        channel.worker, job_id, dataset_id, dataset_path, model, seed, test_size, scheme
    )
    channel.push([message])
    if error is not None:
        raise RunError(error)
    return "done"


class RunError(Exception):
    """A seeded fit failed (its failure is already reported to the writer)."""


def seed_outcome(
    worker, job_id, dataset_id, dataset_path, model, seed, test_size, scheme
) -> tuple[RunDone | RunFailed, str | None]:
    """Fit one seed: the message for the writer, and the error text if the fit failed."""
    other_half = None
    try:
        if scheme == "pairs":
            result, other_half = fit_pair(_matrix(dataset_path), model, seed)
        else:
            result = fit_run(_matrix(dataset_path), model, seed, test_size)
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        return RunFailed(job_id, dataset_id, model, seed, error, worker), error
    return run_message(job_id, dataset_id, model, result, other_half, worker), None


# A task of several runs that has run this many times its planned seconds
# (GENEJOBS_PACK_SECONDS) hands the runs it has not started back to the queue,
# in two tasks, so a slow fit's job spreads over idle workers and a killed
# worker redoes little (see storage.units.run_pack).
HAND_BACK_FACTOR = 4.0
# A task of several runs hands its results to the writer together, in one Redis
# command: runs of a millisecond cost one round trip per batch, not one each. A
# result waits at most about this long (see `Outbox`); a slow fit's goes at once.
PUSH_AFTER = 0.02


class Outbox:
    """Results of a task of several runs, on their way to the writer in batches."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.messages: list[RunDone | RunFailed] = []
        self.oldest = 0.0  # when the first waiting result's fit started
        self.last_fit = 0.0  # seconds the last fit (with its scoring) took

    def add(self, message: RunDone | RunFailed, started: float) -> None:
        now = time.monotonic()
        if not self.messages:
            self.oldest = started
        self.messages.append(message)
        self.last_fit = now - started
        if now - self.oldest >= PUSH_AFTER:
            self.flush()

    def before_next(self) -> None:
        """Send now what would otherwise wait past PUSH_AFTER behind a fit like the last."""
        if self.messages and time.monotonic() - self.oldest + self.last_fit >= PUSH_AFTER:
            self.flush()

    def flush(self) -> None:
        if self.messages:
            self.channel.push(self.messages)
            self.messages = []


def execute_many(
    channel: Channel,
    job_id: str,
    dataset_id: str,
    dataset_path: str,
    model: str,
    seeds: list[int],
    test_size: float,
    scheme: str = "split",
) -> str:
    """Run several seeds of one job in turn, results handed to the writer as they are done.

    A failed fit is reported and the others go on. Past HAND_BACK_FACTOR times
    the planned seconds, the runs not started go back to the queue as two tasks.
    Whatever ends the task, the results it has are sent first (unless Redis is
    what failed: then the task goes back to the queue whole).
    """
    started = checked = time.monotonic()
    hand_back_after = HAND_BACK_FACTOR * settings().pack_seconds
    if channel.cancelled(job_id):
        return "cancelled"
    failed: list[str] = []
    outbox = Outbox(channel)
    try:
        for done, seed in enumerate(seeds):
            now = time.monotonic()
            left = seeds[done:]
            if done and now - started > hand_back_after and len(left) > 1:
                outbox.flush()
                half = (len(left) + 1) // 2
                args = (job_id, dataset_id, dataset_path, model, test_size, scheme)
                channel.enqueue([run_task(*args, left[:half]), run_task(*args, left[half:])])
                return f"{done} runs done, {len(left)} handed back"
            if now - checked > 0.25:
                checked = now
                if channel.cancelled(job_id):
                    outbox.flush()
                    return "cancelled"
            outbox.before_next()
            message, error = seed_outcome(
                channel.worker, job_id, dataset_id, dataset_path, model, seed, test_size, scheme
            )
            outbox.add(message, now)
            if error is not None:
                failed.append(f"seed {seed}: {error}")
        outbox.flush()
    except ResultUndelivered:
        raise
    except Exception:
        # Runs already done are not done again for the error of another.
        outbox.flush()
        raise
    if failed:
        raise RunError(f"{len(failed)} of {len(seeds)} runs failed; {failed[0]}")
    return f"{len(seeds)} runs done"


def run_task(job_id, dataset_id, dataset_path, model, test_size, scheme, seeds) -> Unit:
    """The task for some runs of a job, sent anew (a fresh resend tag)."""
    units = [
        run_unit(job_id, dataset_id, dataset_path, model, seed, test_size, scheme) for seed in seeds
    ]
    return pack_runs(units, uuid.uuid4().hex[:6])


def split_runs(channel: Channel, kwargs: dict) -> bool:
    """A task of several runs delivered again (its process died): send each run alone, so
    a run that kills its process fails alone. True when it was split."""
    seeds = kwargs.get("seeds") or []
    if len(seeds) < 2:
        return False
    args = [kwargs[k] for k in ("job_id", "dataset_id", "dataset_path", "model", "test_size")]
    scheme = kwargs.get("scheme", "split")
    channel.enqueue([run_task(*args, scheme, [seed]) for seed in seeds])
    return True


def give_up(worker: str, kwargs: dict, error: str) -> list[RunFailed]:
    """The failures to record for a task of runs that was not run again."""
    seeds = kwargs.get("seeds") or [kwargs["seed"]]
    return [
        RunFailed(kwargs["job_id"], kwargs["dataset_id"], kwargs["model"], s, error, worker)
        for s in seeds
    ]


def importance_run(
    channel: Channel,
    job_id,
    dataset_id,
    dataset_path,
    model,
    test_size,
    seed=None,
    seeds=None,
    scheme="split",
) -> str:
    """A task of one seeded run, or of several of one job (`seeds`)."""
    if seeds is None:
        return execute(channel, job_id, dataset_id, dataset_path, model, seed, test_size, scheme)
    return execute_many(channel, job_id, dataset_id, dataset_path, model, seeds, test_size, scheme)
