"""Exact SHAP values for a matrix, from a loaded tree model (`tasks.tree_models`).

Engines (all exact TreeSHAP, path-dependent, on the model's raw output):
`fast` is FastTreeSHAP's v1 algorithm (`fasttreeshap-fixed`), measured at
about twice the rows per second of xgboost's `pred_contribs` with equal values
within 5e-6; it handles single-output XGBoost and LightGBM models. `native` is
the library's own TreeSHAP (`pred_contribs` / `pred_contrib`), used for
multiclass boosters. `shap` is `shap.TreeExplainer`, used for scikit-learn
models and as the reference in tests. `auto` picks among them in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genejobs.errors import InputError
from genejobs.tasks.tree_models import TreeModel

ENGINES = ("auto", "fast", "native", "shap")


@dataclass(frozen=True)
class Explained:
    """SHAP values for a matrix: shap[n, outputs, features], base[outputs], output[n, outputs]."""

    shap: np.ndarray
    base: np.ndarray
    output: np.ndarray
    probability: np.ndarray | None
    engine: str


def choose_engine(model: TreeModel, engine: str = "auto") -> str:
    """The engine `auto` resolves to for a model, or a clear refusal of an unfit choice."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'; choose from {', '.join(ENGINES)}")
    booster = model.family in ("xgboost", "lightgbm")
    if engine == "auto":
        if booster and model.n_outputs == 1 and _fast_available():
            return "fast"
        return "native" if booster else "shap"
    if engine == "fast" and not (booster and model.n_outputs == 1):
        raise InputError("the fast engine handles single-output XGBoost and LightGBM models only")
    if engine == "fast" and not _fast_available():
        raise InputError("the fast engine needs the fasttreeshap-fixed package")
    if engine == "native" and not booster:
        raise InputError("the native engine is for XGBoost and LightGBM models")
    return engine


def _fast_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("fasttreeshap_fixed") is not None


# Building an explainer parses every tree (about 0.3 s for 300 trees): once per model.
_FAST_EXPLAINERS: dict[int, tuple[Any, Any]] = {}


def _fast_explainer(model: TreeModel):
    key = id(model.model)
    cached = _FAST_EXPLAINERS.get(key)
    if cached is None or cached[0] is not model.model:
        explainer = _fasttreeshap().TreeExplainer(model.model, algorithm="v1", n_jobs=1)
        cached = _FAST_EXPLAINERS[key] = (model.model, explainer)
    return cached[1]


def warm_up() -> None:
    """Import the engines' libraries now (a few seconds), outside any timed or queued work."""
    import xgboost  # noqa: F401

    if _fast_available():
        _fasttreeshap()


def _fasttreeshap():
    import warnings

    with warnings.catch_warnings():
        # It warns on import when IPython (for its notebook plots) is absent.
        warnings.simplefilter("ignore")
        import fasttreeshap_fixed
    return fasttreeshap_fixed


def raw_output(model: TreeModel, X: np.ndarray) -> np.ndarray:
    """The model's output that SHAP values add up to, as [n, outputs]."""
    if model.family == "xgboost":
        import xgboost

        margin = model.model.predict(
            xgboost.DMatrix(X, nthread=1), output_margin=True, validate_features=False
        )
    elif model.family == "lightgbm":
        margin = model.model.predict(X, raw_score=True, num_threads=1)
    elif model.family == "gbc":
        margin = model.model.decision_function(X)
    else:
        margin = model.model.predict_proba(X)
        if model.n_outputs == 1:
            margin = margin[:, 1]
    return np.asarray(margin, dtype=np.float64).reshape(len(X), model.n_outputs)


def probability(model: TreeModel, output: np.ndarray) -> np.ndarray | None:
    """Class probabilities from the raw output: logistic, softmax, or the output itself."""
    if not model.classifier:
        return None
    if model.family in ("rf", "et", "dt"):
        return output
    if model.n_outputs == 1:
        return 1.0 / (1.0 + np.exp(-output))
    shifted = np.exp(output - output.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def explain(model: TreeModel, X: np.ndarray, engine: str = "auto") -> Explained:
    """Exact SHAP values of every row of X (columns in the model's feature order)."""
    engine = choose_engine(model, engine)
    if model.prepare is not None:
        X = model.prepare(X)
    n, k, f = len(X), model.n_outputs, model.n_features
    if engine == "fast":
        explainer = _fast_explainer(model)
        values = np.asarray(explainer.shap_values(X), dtype=np.float64).reshape(n, 1, f)
        base = np.asarray(explainer.expected_value, dtype=np.float64).reshape(1)
    elif engine == "native":
        if model.family == "xgboost":
            import xgboost

            contribs = model.model.predict(
                xgboost.DMatrix(X, nthread=1),
                pred_contribs=True,
                strict_shape=True,
                validate_features=False,
            )
        else:
            contribs = model.model.predict(X, pred_contrib=True, num_threads=1)
        contribs = np.asarray(contribs, dtype=np.float64).reshape(n, k, f + 1)
        values = contribs[:, :, :f]
        base = contribs[0, :, f]
    else:
        import shap

        explainer = shap.TreeExplainer(model.model)
        raw = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=np.float64)
        base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        if raw.ndim == 2:
            raw = raw[:, :, None]
        if model.n_outputs == 1 and raw.shape[2] == 2:
            # Two-class probability models: the positive class alone (the other is its mirror).
            raw, base = raw[:, :, 1:], base[1:]
        values = np.transpose(raw, (0, 2, 1))
    output = raw_output(model, X)
    return Explained(
        shap=values,
        base=base,
        output=output,
        probability=probability(model, output),
        engine=engine,
    )
