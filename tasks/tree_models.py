"""Tree models to explain: safe loading by file format.

A user's model file is never unpickled. Supported files:

| format          | how it is recognised                        |
| --------------- | ------------------------------------------- |
| `xgboost-json`  | a JSON document with a `learner` object     |
| `xgboost-ubj`   | a `.ubj` file (Universal Binary JSON)       |
| `lightgbm-text` | LightGBM's text dump (`tree` then `version=`) |

scikit-learn tree ensembles (rf, et, gbc, dt) are explained when they come as
fitted estimators, through `from_estimator`. That is the path for a model
trained by genejobs itself (`genejobs:<model id>` on the command line): the
pipeline model search finalized and saved, format `genejobs-joblib`, loaded
only if its bytes have the sha256 the service recorded when it wrote the
file. Its last step is explained; the steps before it (PyCaret's imputers)
are applied to the rows first, through `TreeModel.prepare`. A seeded
importance run keeps no model file (`genejobs:<job id>:<seed>`, format
`genejobs-run`): its model is fitted again from the run's dataset, seed and
test size, which gives the same estimator, in each process that needs it.
SHAP values for them: `tasks.shap_engines`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genejobs.errors import InputError

FORMATS = ("xgboost-json", "xgboost-ubj", "lightgbm-text")
SKLEARN_FAMILIES = {
    "RandomForestClassifier": "rf",
    "ExtraTreesClassifier": "et",
    "GradientBoostingClassifier": "gbc",
    "DecisionTreeClassifier": "dt",
}
GENEJOBS_PREFIX = "genejobs:"
GENEJOBS_FORMAT = "genejobs-joblib"  # a pipeline model search finalized; see the module docstring
RUN_FORMAT = "genejobs-run"  # a seeded importance run's model, fitted again from its dataset


@dataclass(frozen=True)
class TreeModel:
    """A loaded tree model and what explaining it needs to know.

    `n_outputs` is 1 for a binary classifier (explained for its positive class)
    and the number of classes for a multiclass one; `features` are the names the
    model was trained with, or None when it has no real names.
    """

    family: str  # xgboost, lightgbm, rf, et, gbc, dt
    model: Any
    n_outputs: int
    n_features: int
    features: tuple[str, ...] | None
    classifier: bool
    # Rows (columns in `features` order) -> what the model reads, for a pipeline's model.
    prepare: Callable[[np.ndarray], np.ndarray] | None = None
    # The class labels in the model's order (both of a binary model's), when it knows them.
    classes: tuple[str, ...] | None = None


def sniff_format(path: Path) -> str:
    """Name the format of a model file from its first bytes; refuse anything else."""
    if not path.exists():
        raise InputError(f"no such model file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    with path.open("rb") as handle:
        head = handle.read(64)
    if path.suffix.lower() == ".ubj" and head[:1] == b"{":
        return "xgboost-ubj"
    if head.lstrip()[:1] == b"{":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            document = None
        if isinstance(document, dict) and "learner" in document:
            return "xgboost-json"
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm-text"
    raise InputError(
        f"{path} is not a supported model file (XGBoost JSON or UBJ, or a LightGBM text "
        "model); pickled models are never loaded"
    )


def load_model(reference: str, fmt: str | None = None, sha256: str | None = None) -> TreeModel:
    """Load a model file of a supported format (a genejobs pipeline only with its sha256)."""
    path = Path(reference)
    if fmt == GENEJOBS_FORMAT:
        return _genejobs(path, sha256)
    fmt = fmt or sniff_format(path)
    try:
        if fmt in ("xgboost-json", "xgboost-ubj"):
            return _xgboost(path)
        if fmt == "lightgbm-text":
            return _lightgbm(path)
    except InputError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InputError(
            f"cannot load {path} as {fmt}: {exc.__class__.__name__} {first}".rstrip()
        ) from None
    raise InputError(f"unknown model format '{fmt}'")


def describe_model(reference: str, fmt: str | None = None) -> TreeModel:
    """What a model file holds (family, outputs, features), as `load_model` says it, for a
    command that checks a job and leaves the explaining to workers.

    An XGBoost JSON model of trees says it all in its JSON, which is read as such:
    importing xgboost costs the command half a second. Its `model` is then None
    (and its trees are checked for the arrays a booster is built from). Other
    files are loaded.
    """
    path = Path(reference)
    fmt = fmt or sniff_format(path)
    if fmt != "xgboost-json":
        return load_model(reference, fmt)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        learner = document["learner"]
        booster = learner["gradient_booster"]
        trees = booster["model"]["trees"] if booster["name"] == "gbtree" else None
        if (
            trees is None  # dart and linear boosters
            or list(document.get("version", [0]))[:1] < [1]  # the JSON of older versions
            or any(int(t["tree_param"]["size_leaf_vector"]) > 1 for t in trees)  # vector leaves
        ):
            return load_model(reference, fmt)
        param = learner["learner_model_param"]
        n_features = int(param["num_feature"])
        _check_trees(booster["model"], n_features)
        n_classes = int(param.get("num_class", "0") or 0)
        names = learner.get("feature_names") or None
        objective = learner["objective"]["name"]
        if not isinstance(objective, str) or not _is_names(names):
            raise TypeError("objective or feature names of the wrong type")
    except InputError as exc:
        if not str(exc).startswith(f"cannot load {path}"):
            raise
        raise _malformed(path, fmt, str(exc).split(": ", 1)[-1]) from None
    except Exception as exc:
        raise _malformed(path, fmt, _what_is_wrong(exc)) from None
    return TreeModel(
        family="xgboost",
        model=None,
        n_outputs=max(n_classes, 1),
        n_features=n_features,
        features=tuple(names) if names else None,
        classifier=objective.startswith(("binary:", "multi:")),
    )


def _malformed(path: Path, fmt: str, reason: str) -> InputError:
    return InputError(f"{path} is not a supported model file (cannot load it as {fmt}: {reason})")


def _what_is_wrong(exc: Exception) -> str:
    """What a malformed document lacks or holds, in words (not `KeyError 'name'`)."""
    if isinstance(exc, KeyError):
        return f"it has no {exc.args[0]!r} entry" if exc.args else "an entry is missing"
    if isinstance(exc, IndexError):
        return "an array is shorter than it says"
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    if isinstance(exc, TypeError | AttributeError):
        return f"an entry of the wrong type ({text})" if text else "an entry of the wrong type"
    return text or exc.__class__.__name__


def _is_names(names) -> bool:
    return names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names))


def _check_trees(model: dict, n_features: int) -> None:
    """Refuse an XGBoost tree dump whose trees lack the arrays a booster is built from, or
    whose nodes point outside their tree or at features the model does not have."""
    trees = model["trees"]
    if len(trees) != int(model["gbtree_model_param"]["num_trees"]) or len(trees) != len(
        model["tree_info"]
    ):
        raise ValueError(f"{len(trees)} trees, the model says {model['gbtree_model_param']}")
    arrays = (
        "right_children", "parents", "split_indices", "split_conditions", "default_left",
        "base_weights", "loss_changes", "sum_hessian",
    )  # fmt: skip
    for tree in trees:
        n = len(tree["left_children"])
        if n == 0 or n != int(tree["tree_param"]["num_nodes"]):
            raise ValueError(f"tree {tree.get('id')} has {n} nodes, it says otherwise")
        if any(len(tree[name]) != n for name in arrays):
            raise ValueError(f"tree {tree.get('id')} has arrays of different lengths")
        children = np.asarray([tree["left_children"], tree["right_children"]])
        if children.min() < -1 or children.max() >= n:
            raise ValueError(f"tree {tree.get('id')} has a child outside the tree")
        splits = np.asarray(tree["split_indices"])
        if splits.min() < 0 or splits.max() >= n_features:
            raise ValueError(f"tree {tree.get('id')} splits on a feature it does not have")


def load_spec(spec: dict, home: Path) -> TreeModel:
    """The model a SHAP job's model entry names (paths relative to the data dir `home`)."""
    if spec["format"] == RUN_FORMAT:
        run = spec["run"]
        return refit_run(home / spec["path"], run["model"], int(run["seed"]), run["test_size"])
    return load_model(str(home / spec["path"]), spec["format"], spec.get("sha256"))


def refit_run(dataset: Path, model: str, seed: int, test_size: float) -> TreeModel:
    """An importance run's model, fitted again exactly as the run fitted it."""
    import dataclasses

    from genejobs.storage.datasets import load_matrix
    from genejobs.tasks.fit import fit_estimator

    matrix = load_matrix(dataset)
    estimator = fit_estimator(matrix, model, seed, test_size)[0]
    return dataclasses.replace(
        from_estimator(estimator),
        features=tuple(matrix.genes),
        classes=tuple(matrix.classes[int(c)] for c in estimator.classes_),
    )


def _genejobs(path: Path, sha256: str | None) -> TreeModel:
    """The final estimator of a pipeline genejobs saved; the steps before it prepare the rows."""
    import dataclasses

    from genejobs.tasks.artifacts import load_artifact

    if not sha256:
        raise InputError(f"{path}: a model genejobs saved is loaded only with its recorded sha256")
    pipeline = load_artifact(path, sha256)
    steps = getattr(pipeline, "steps", None)
    model = from_estimator(steps[-1][1] if steps else pipeline)
    model = dataclasses.replace(model, classes=_decoded_classes(steps or [], model.classes))
    if not steps or len(steps) == 1:
        return model
    if model.features is None:
        raise InputError(f"{path}: the model does not name its features")
    before, names = pipeline[:-1], list(model.features)

    def prepare(X: np.ndarray) -> np.ndarray:
        import pandas as pd

        prepared = before.transform(pd.DataFrame(X, columns=names))
        return np.asarray(prepared[names], dtype=np.float32)

    return dataclasses.replace(model, prepare=prepare)


def _decoded_classes(steps: list, classes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A pipeline's class labels: its final estimator's, through the label encoder if any."""
    if classes is None:
        return None
    for _, step in steps[:-1]:
        encoder = getattr(step, "transformer", None)
        labels = getattr(encoder, "classes_", None)
        if labels is not None and hasattr(step, "inverse_transform"):
            return tuple(str(labels[int(c)]) for c in classes)
    return classes


def _xgboost(path: Path) -> TreeModel:
    import xgboost

    booster = xgboost.Booster(model_file=str(path))
    booster.set_param({"nthread": 1})
    config = json.loads(booster.save_config())["learner"]
    objective = config["objective"]["name"]
    n_classes = int(config["learner_model_param"].get("num_class", "0") or 0)
    names = booster.feature_names
    return TreeModel(
        family="xgboost",
        model=booster,
        n_outputs=max(n_classes, 1),
        n_features=booster.num_features(),
        features=tuple(names) if names else None,
        classifier=objective.startswith(("binary:", "multi:")),
    )


def _lightgbm(path: Path) -> TreeModel:
    import lightgbm

    booster = lightgbm.Booster(model_file=str(path))
    objective = str(booster.params.get("objective", "") or booster.dump_model()["objective"])
    names = booster.feature_name()
    generic = all(n == f"Column_{i}" for i, n in enumerate(names))
    return TreeModel(
        family="lightgbm",
        model=booster,
        n_outputs=booster.num_model_per_iteration(),
        n_features=booster.num_feature(),
        features=None if generic else tuple(names),
        classifier=objective.split()[0] in ("binary", "multiclass", "multiclassova", "softmax"),
    )


def from_estimator(estimator: Any) -> TreeModel:
    """Wrap a fitted scikit-learn tree model, or an XGBoost/LightGBM estimator or booster."""
    name = type(estimator).__name__
    if name in SKLEARN_FAMILIES:
        names = getattr(estimator, "feature_names_in_", None)
        n_classes = len(estimator.classes_)
        if name == "GradientBoostingClassifier" and n_classes > 2:
            raise InputError("shap.TreeExplainer explains GradientBoosting for two classes only")
        return TreeModel(
            family=SKLEARN_FAMILIES[name],
            model=estimator,
            n_outputs=1 if n_classes == 2 else n_classes,
            n_features=int(estimator.n_features_in_),
            features=tuple(str(n) for n in names) if names is not None else None,
            classifier=True,
            classes=tuple(str(c) for c in estimator.classes_),
        )
    labels = getattr(estimator, "classes_", None)
    classes = None if labels is None else tuple(str(c) for c in labels)
    if hasattr(estimator, "get_booster"):
        estimator = estimator.get_booster()
    if hasattr(estimator, "booster_"):
        estimator = estimator.booster_
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory() as temp:
        if type(estimator).__module__.startswith("xgboost"):
            path = Path(temp) / "model.json"
            estimator.save_model(str(path))
        elif type(estimator).__module__.startswith("lightgbm"):
            path = Path(temp) / "model.txt"
            estimator.save_model(str(path))
        else:
            raise InputError(f"{name} is not a tree model genejobs can explain")
        return dataclasses.replace(load_model(str(path)), classes=classes)
