"""Model search, one model on one fold at a time: PyCaret's `compare_models` spread over workers.

`score_fold` does for one fold exactly what PyCaret's `_create_model` ->
`cross_validate` does for all of them: the same experiment (setup with the
session id, train size and folds), the same fold generator over the same
training split, the same pipeline with a fresh clone of the candidate's
estimator, the same fit parameters and scorers, and `error_score=0.0`.
`finalize_model` refits a model on the training split (its holdout accuracy)
and then on all the data, as `finalize_model` does. The Celery tasks around
them hand JSON results to the writer, which builds the leaderboard.

PyCaret is imported inside functions, and told where to log first, so the
CLI and the workers start fast and no `logs.log` appears anywhere.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from genejobs.candidates import METRICS
from genejobs.channel import Channel
from genejobs.config import settings
from genejobs.contract import FoldScored, ModelFinalized, ModelFinalizeFailed
from genejobs.storage.datasets import load_frame
from genejobs.tasks.artifacts import quiet_pycaret, write_artifact


@dataclass(frozen=True)
class SearchSetup:
    """The parameters of PyCaret's `setup` that a search fixes."""

    session_id: int
    train_size: float
    folds: int


@dataclass(frozen=True)
class FoldScore:
    """One candidate scored on one fold. A failed fold scores 0 on every metric."""

    model: str
    fold: int
    failed: bool
    error: str | None
    scores: dict[str, float]
    fit_seconds: float
    score_seconds: float
    estimator: str  # module.Class of the candidate's estimator
    params: str  # its constructor parameters as JSON


@dataclass(frozen=True)
class FinalModel:
    """The best model, refitted: its holdout accuracy and the pipeline fitted on all data."""

    pipeline: Any
    pred_accuracy: float
    fit_seconds: float


def experiment(frame, label_col: str, setup: SearchSetup):
    """A ClassificationExperiment set up as a search sets it up (n_jobs=1, no logs, no output)."""
    quiet_pycaret()
    from pycaret.classification import ClassificationExperiment

    exp = ClassificationExperiment()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp.setup(
            data=frame,
            target=label_col,
            session_id=setup.session_id,
            train_size=setup.train_size,
            fold=setup.folds,
            n_jobs=1,
            system_log=False,
            verbose=False,
            html=False,
        )
    return exp


@lru_cache(maxsize=4)
def _experiment(dataset_path: str, session_id: int, train_size: float, folds: int):
    # One experiment per worker process and (dataset, setup): datasets are
    # content-addressed files that never change.
    frame, label_col, _ = load_frame(settings().home / Path(dataset_path))
    return experiment(frame, label_col, SearchSetup(session_id, train_size, folds))


def cached_experiment(dataset_path: str, setup: SearchSetup):
    return _experiment(dataset_path, setup.session_id, setup.train_size, setup.folds)


def estimator_spec(estimator) -> tuple[str, str]:
    """The estimator's class path and constructor parameters as JSON."""
    cls = type(estimator)
    return f"{cls.__module__}.{cls.__qualname__}", json.dumps(estimator.get_params(deep=False))


def _failure(exc: Exception) -> str:
    # cross_validate wraps the fit's error in a long report; its last line is the cause.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = lines[-1] if lines else exc.__class__.__name__
    return cause if ":" in cause else f"{exc.__class__.__name__}: {cause}"


def score_fold(exp, model: str, fold: int) -> FoldScore:
    """Fit and score one candidate on one fold, as PyCaret's cross-validation does."""
    import numpy as np
    from pycaret.internal.logging import redirect_output
    from pycaret.internal.patches.sklearn import fit_and_score
    from pycaret.internal.pipeline import estimator_pipeline, get_pipeline_fit_kwargs
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate

    np.random.seed(exp.seed)
    data_X, data_y = exp.X_train, exp.y_train
    groups = exp._get_groups(None, data=data_X)
    splits = list(exp._get_cv_splitter(None).split(data_X, data_y, groups=groups))
    definition = exp._all_models_internal[model]
    estimator = clone(definition.class_def(**definition.args))
    class_path, params = estimator_spec(estimator)
    metrics = exp._all_metrics
    with estimator_pipeline(exp.pipeline, estimator) as pipeline:
        fit_kwargs = get_pipeline_fit_kwargs(pipeline, {})
        try:
            with (
                warnings.catch_warnings(),
                _patched_fit_and_score(fit_and_score),
                redirect_output(exp.logger),
            ):
                warnings.simplefilter("ignore")
                result = cross_validate(
                    pipeline,
                    data_X,
                    data_y,
                    cv=[splits[fold]],
                    groups=groups,
                    scoring={k: v.scorer for k, v in metrics.items()},
                    params=fit_kwargs,
                    n_jobs=exp.gpu_n_jobs_param,
                    return_train_score=False,
                    error_score=0.0,
                )
        except Exception as exc:
            return FoldScore(
                model, fold, True, _failure(exc), {m.column: 0.0 for m in METRICS}, 0.0, 0.0,
                class_path, params,
            )  # fmt: skip
    by_display = {
        v.display_name: float(result[f"test_{k}"][0]) * (1 if v.greater_is_better else -1)
        for k, v in metrics.items()
    }
    return FoldScore(
        model=model,
        fold=fold,
        failed=False,
        error=None,
        scores={m.column: by_display[m.display] for m in METRICS},
        fit_seconds=float(result["fit_time"][0]),
        score_seconds=float(result["score_time"][0]),
        estimator=class_path,
        params=params,
    )


def _patched_fit_and_score(fit_and_score):
    from unittest.mock import patch

    # PyCaret patches sklearn's _fit_and_score for pipelines that drop samples.
    return patch("sklearn.model_selection._validation._fit_and_score", fit_and_score)


def finalize_model(exp, model: str) -> FinalModel:
    """Refit `model` on the training split (holdout accuracy), then on all data (the artifact)."""
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.random.seed(exp.seed)
        trained, _ = exp._create_model(
            estimator=model,
            cross_validation=False,
            predict=False,
            system=False,
            verbose=False,
            model_only=False,
            add_to_model_list=False,
        )
        exp.predict_model(trained, verbose=False)
        holdout = exp.pull(pop=True)
        np.random.seed(exp.seed)
        started = time.perf_counter()
        final, _ = exp._create_model(
            estimator=model,
            cross_validation=False,
            verbose=False,
            system=False,
            X_train_data=exp.X,
            y_train_data=exp.y,
            fit_kwargs={},
            predict=False,
            groups=exp._get_groups(None, data=exp.X),
            add_to_model_list=False,
            model_only=False,
        )
    return FinalModel(
        pipeline=final,
        pred_accuracy=float(holdout["Accuracy"].iloc[0]),
        fit_seconds=time.perf_counter() - started,
    )


def failed_fold(worker: str, unit: dict, error: str) -> FoldScored:
    """A fold that could not be scored: 0 on every metric, as PyCaret's error_score."""
    score = FoldScore(
        unit["model"], unit["fold"], True, error, {m.column: 0.0 for m in METRICS}, 0.0, 0.0, "",
        "{}",
    )  # fmt: skip
    return FoldScored(job_id=unit["job_id"], worker=worker, **asdict(score))


def search_fold(
    channel: Channel, job_id: str, dataset_path: str, setup: dict, model: str, fold: int
) -> str:
    """Score one fold and hand the outcome, scored or failed, to the writer."""
    if channel.cancelled(job_id):
        return "cancelled"
    try:
        score = score_fold(cached_experiment(dataset_path, SearchSetup(**setup)), model, fold)
    except Exception as exc:
        unit = {"job_id": job_id, "model": model, "fold": fold}
        channel.push([failed_fold(channel.worker, unit, _failure(exc))])
        raise
    channel.push([FoldScored(job_id=job_id, worker=channel.worker, **asdict(score))])
    return f"{model} fold {fold}: " + (score.error or f"accuracy={score.scores['accuracy']:.4f}")


def search_finalize(
    channel: Channel, job_id: str, dataset_path: str, setup: dict, model_id: str, model: str
) -> str:
    """Finalize the best model, write it to the spool, and tell the writer where it is."""
    try:
        final = finalize_model(cached_experiment(dataset_path, SearchSetup(**setup)), model)
        path, sha256 = write_artifact(final.pipeline, settings().spool_dir, model_id)
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        channel.push([ModelFinalizeFailed(job_id=job_id, model_id=model_id, error=error)])
        raise
    channel.push(
        [
            ModelFinalized(
                job_id=job_id,
                model_id=model_id,
                spool_path=str(path.relative_to(settings().home)),
                sha256=sha256,
                pred_accuracy=final.pred_accuracy,
                fit_seconds=final.fit_seconds,
            )
        ]
    )
    return f"{model_id}: holdout accuracy {final.pred_accuracy:.4f}"
