"""The estimators a seeded run can fit, by PyCaret's model ids and with PyCaret's defaults.

Imports of the learning libraries happen inside `make_estimator`, so the CLI
can list model ids without paying for scikit-learn at start-up.
"""

from __future__ import annotations

from typing import Any


def make_estimator(model: str, seed: int) -> Any:
    """Build the estimator PyCaret would build for `model`, with random_state = seed.

    Threads are pinned to one: the queue runs one fit per worker process.
    """
    if model == "lr":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=1000, random_state=seed)
    if model == "ridge":
        from sklearn.linear_model import RidgeClassifier

        return RidgeClassifier(random_state=seed)
    if model == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        return LinearDiscriminantAnalysis()
    if model == "svm":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="hinge", penalty="l2", tol=0.001, eta0=0.001, random_state=seed, n_jobs=1
        )
    if model == "ada":
        from sklearn.ensemble import AdaBoostClassifier

        return AdaBoostClassifier(random_state=seed)
    if model == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=seed, n_jobs=1)
    if model == "et":
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(random_state=seed, n_jobs=1)
    if model == "gbc":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=seed)
    if model == "dt":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(random_state=seed)
    if model == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(
            random_state=seed,
            n_jobs=1,
            verbosity=0,
            booster="gbtree",
            tree_method="auto",
            device="cpu",
        )
    if model == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1)
    if model == "dummy":
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior", random_state=seed)
    raise KeyError(model)
