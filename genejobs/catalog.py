"""The models a seeded run can fit, by PyCaret's model ids: what each is and how its
importance is read. The estimators themselves are built in `tasks.models`."""

from __future__ import annotations

# id -> (kind, description). "tree": feature_importances_; "linear": coef_.
MODELS: dict[str, tuple[str, str]] = {
    "ada": ("tree", "AdaBoost"),
    "rf": ("tree", "Random Forest"),
    "et": ("tree", "Extra Trees"),
    "gbc": ("tree", "Gradient Boosting"),
    "dt": ("tree", "Decision Tree"),
    "xgboost": ("tree", "XGBoost"),
    "lightgbm": ("tree", "LightGBM"),
    "lr": ("linear", "Logistic Regression"),
    "ridge": ("linear", "Ridge Classifier"),
    "lda": ("linear", "Linear Discriminant Analysis"),
    "svm": ("linear", "Linear SVM (SGD, hinge loss)"),
    "dummy": ("none", "Dummy (prior); no importances, for measuring the service itself"),
}


def model_kind(model: str) -> str:
    return MODELS[model][0]
