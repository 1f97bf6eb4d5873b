"""PyCaret's classification candidates and metrics, as a table the CLI and the writer can read.

`genejobs search` plans, validates and orders its work without importing
PyCaret (three seconds and a lot of memory): the candidates, their order
(PyCaret's own), which ones `compare_models(turbo=True)` uses, and the
leaderboard's metrics are listed here. A test checks this table against the
installed PyCaret, so an upgrade that changes it fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One model PyCaret's `compare_models` can try."""

    model: str  # PyCaret's id
    name: str  # PyCaret's display name (the leaderboard's `Model` column)
    turbo: bool  # in the default comparison (turbo=True)
    cost: float  # relative seconds per fold on the tissue data; the slowest is enqueued first


CANDIDATES: dict[str, Candidate] = {
    c.model: c
    for c in (
        Candidate("lr", "Logistic Regression", True, 0.22),
        Candidate("knn", "K Neighbors Classifier", True, 0.1),
        Candidate("nb", "Naive Bayes", True, 0.11),
        Candidate("dt", "Decision Tree Classifier", True, 0.13),
        Candidate("svm", "SVM - Linear Kernel", True, 0.14),
        Candidate("rbfsvm", "SVM - Radial Kernel", False, 0.2),
        Candidate("gpc", "Gaussian Process Classifier", False, 2.0),
        Candidate("mlp", "MLP Classifier", False, 2.0),
        Candidate("ridge", "Ridge Classifier", True, 0.19),
        Candidate("rf", "Random Forest Classifier", True, 0.38),
        Candidate("qda", "Quadratic Discriminant Analysis", True, 0.24),
        Candidate("ada", "Ada Boost Classifier", True, 0.65),
        Candidate("gbc", "Gradient Boosting Classifier", True, 11.0),
        Candidate("lda", "Linear Discriminant Analysis", True, 0.12),
        Candidate("et", "Extra Trees Classifier", True, 0.23),
        Candidate("xgboost", "Extreme Gradient Boosting", True, 0.89),
        Candidate("lightgbm", "Light Gradient Boosting Machine", True, 0.54),
        Candidate("dummy", "Dummy Classifier", True, 0.05),
    )
}


@dataclass(frozen=True)
class Metric:
    """A leaderboard column: PyCaret's id and display name, and our column name."""

    id: str
    display: str
    column: str


METRICS: tuple[Metric, ...] = (
    Metric("acc", "Accuracy", "accuracy"),
    Metric("auc", "AUC", "auc"),
    Metric("recall", "Recall", "recall"),
    Metric("precision", "Prec.", "precision"),
    Metric("f1", "F1", "f1"),
    Metric("kappa", "Kappa", "kappa"),
    Metric("mcc", "MCC", "mcc"),
)
METRIC_COLUMNS = tuple(m.column for m in METRICS)


def metric(name: str) -> Metric | None:
    """The metric named by a PyCaret id, display name or our column name (any case)."""
    wanted = name.strip().lower()
    for m in METRICS:
        if wanted in (m.id, m.display.lower(), m.column):
            return m
    return None


def choose(include: list[str] | None, exclude: list[str] | None) -> list[str]:
    """The candidates a search runs, in PyCaret's order; raise ValueError on a bad list.

    As `compare_models`: `include` is taken in the order given, and otherwise the
    turbo candidates minus `exclude`.
    """
    if include and exclude:
        raise ValueError("give --models or --exclude, not both")
    unknown = [m for m in (include or []) + (exclude or []) if m not in CANDIDATES]
    if unknown:
        raise ValueError(
            f"unknown model id {', '.join(repr(m) for m in unknown)}; "
            f"choose from {', '.join(CANDIDATES)}"
        )
    if include:
        repeated = sorted({m for m in include if include.count(m) > 1})
        if repeated:
            raise ValueError(f"models given more than once: {', '.join(repeated)}")
        return list(include)
    chosen = [m for m, c in CANDIDATES.items() if c.turbo and m not in set(exclude or [])]
    if not chosen:
        raise ValueError("the exclude list leaves no model to compare")
    return chosen


def train_class_counts(class_counts: list[int], train_size: float, session_id: int) -> list[int]:
    """Per class, the samples in PyCaret's stratified training split."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    train, _ = train_test_split(
        labels, test_size=1 - train_size, stratify=labels, random_state=session_id
    )
    return np.bincount(train, minlength=len(class_counts)).tolist()
