"""Exact SHAP values for a matrix, from a loaded tree model (`tasks.tree_models`).

Engines (all exact TreeSHAP, path-dependent, on the model's raw output):
`woodelf`, WOODELF's algorithm (`woodelf-explainer`), for single-output XGBoost
and LightGBM models: per leaf a table once per model, then lookups (about 20x
xgboost's `pred_contribs` on one core for 300 trees). `fast`, FastTreeSHAP v1
(`fasttreeshap-fixed`), about 2x, for the same models. `native`, the booster's
own TreeSHAP (`pred_contribs` / `pred_contrib`: what `shap.TreeExplainer` runs
for boosters), for multiclass boosters and as the reference. `shap`,
`shap.TreeExplainer`, for scikit-learn models. `auto` resolves to `fast`,
`native` or `shap` by the model's kind; a job's plan (`check_engine`) tries
`woodelf` first on the job's rows and keeps it only where it equals the reference.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from genejobs.errors import InputError
from genejobs.tasks.tree_models import TreeModel

ENGINES = ("auto", "woodelf", "fast", "native", "shap")
CHECK_TOLERANCE = 1e-5  # largest |woodelf - reference| on the check rows for `auto` to use it
WOODELF_MAX_PATH = 10  # distinct features on a root-to-leaf path: tables hold 2**that per leaf
WOODELF_MAX_BYTES = 256 << 20  # a model's tables, per process (300 trees of depth 6: ~20 MB)


@dataclass(frozen=True)
class Explained:
    """SHAP values for a matrix: shap[n, outputs, features], base[outputs], output[n, outputs]."""

    shap: np.ndarray
    base: np.ndarray
    output: np.ndarray
    probability: np.ndarray | None
    engine: str


@dataclass(frozen=True)
class EngineChoice:
    """The engine a job runs for one model, and why, in words."""

    engine: str
    note: str


def choose_engine(model: TreeModel, engine: str = "auto") -> str:
    """The engine `auto` resolves to for a model, or a clear refusal of an unfit choice."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'; choose from {', '.join(ENGINES)}")
    booster = model.family in ("xgboost", "lightgbm")
    if engine == "auto":
        if booster and model.n_outputs == 1 and _available("fasttreeshap_fixed"):
            return "fast"
        return "native" if booster else "shap"
    if engine == "woodelf" and woodelf_unfit(model):
        raise InputError(f"the woodelf engine cannot run here: {woodelf_unfit(model)}")
    if engine == "fast" and not (booster and model.n_outputs == 1):
        raise InputError("the fast engine handles single-output XGBoost and LightGBM models only")
    if engine == "fast" and not _available("fasttreeshap_fixed"):
        raise InputError("the fast engine needs the fasttreeshap-fixed package")
    if engine == "native" and not booster:
        raise InputError("the native engine is for XGBoost and LightGBM models")
    return engine


def woodelf_unfit(model: TreeModel) -> str | None:
    """Why the woodelf engine cannot explain a model (None: it can), from what the model is."""
    if model.family not in ("xgboost", "lightgbm"):
        return "woodelf runs for XGBoost and LightGBM models"
    if model.n_outputs != 1:
        return f"woodelf explains one output and the model has {model.n_outputs} classes"
    if not _available("woodelf"):
        return "the woodelf-explainer package is not installed"
    return None


def check_engine(model: TreeModel, X: np.ndarray, engine: str = "auto") -> EngineChoice:
    """The engine a job runs for a model, with its reason; X: rows of the job, model's columns.

    For `auto`: woodelf, else fast, whichever first gives the values and base
    value of the reference (the library's own TreeSHAP, which shap.TreeExplainer
    runs for boosters) within CHECK_TOLERANCE on every row of X; else the
    reference itself. Models woodelf cannot explain get what `choose_engine` picks.
    """
    fallback = choose_engine(model, engine)
    if engine != "auto":
        return EngineChoice(fallback, f"{fallback}, as asked")
    unfit = woodelf_unfit(model)
    if unfit is not None or len(X) == 0:
        return EngineChoice(fallback, f"{unfit or 'no rows to check woodelf on'}; using {fallback}")
    reference, reasons = explain(model, X, "native"), []
    for candidate in ("woodelf", "fast") if fallback == "fast" else ("woodelf",):
        try:
            got = explain(model, X, candidate)
        except Exception as exc:  # a model it cannot read (InputError), or a library's failure
            known = isinstance(exc, InputError)
            reasons.append(f"{candidate}: {exc}" if known else f"{candidate} failed ({exc!r})")
            continue
        gaps = (np.abs(got.shap - reference.shap).max(), np.abs(got.base - reference.base).max())
        if (differs := float(max(gaps))) <= CHECK_TOLERANCE:
            agrees = f"{candidate} (equals TreeExplainer within {differs:.1e} on {len(X)} rows)"
            note = "; ".join([*reasons, f"using {agrees}"]) if reasons else agrees
            return EngineChoice(candidate, note)
        reasons.append(f"{candidate} differs from TreeExplainer by {differs:.1e} on {len(X)} rows")
    return EngineChoice("native", "; ".join(reasons) + "; using native (TreeExplainer's own)")


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# Building an explainer parses every tree (about 0.3 s for 300 trees), WOODELF's tables
# take longer: once per model and process, the most recent few kept (a plan checks its
# models side by side, in threads).
_EXPLAINERS: OrderedDict[tuple[str, int], tuple[Any, Any]] = OrderedDict()
_KEPT_EXPLAINERS, _KEEPING = 8, threading.Lock()


def _explainer(model: TreeModel, engine: str):
    key = (engine, id(model.model))
    with _KEEPING:
        cached = _EXPLAINERS.get(key)
    if cached is None or cached[0] is not model.model:
        if engine == "fast":
            built = _fasttreeshap().TreeExplainer(model.model, algorithm="v1", n_jobs=1)
        else:
            built = _WoodelfTables(model)
        cached = (model.model, built)
    with _KEEPING:
        _EXPLAINERS[key] = cached
        _EXPLAINERS.move_to_end(key)
        while len(_EXPLAINERS) > _KEPT_EXPLAINERS:
            _EXPLAINERS.popitem(last=False)
    return cached[1]


def warm_up() -> None:
    """Import the engines' libraries now (a few seconds), outside any timed or queued work."""
    import xgboost  # noqa: F401

    if _available("fasttreeshap_fixed"):
        _fasttreeshap()
    if _available("woodelf"):
        import treelite  # noqa: F401
        import woodelf.core.trees.parse_models  # noqa: F401


def _fasttreeshap():
    import warnings

    with warnings.catch_warnings():
        # It warns on import when IPython (for its notebook plots) is absent.
        warnings.simplefilter("ignore")
        import fasttreeshap_fixed
    return fasttreeshap_fixed


class _WoodelfTables:
    """A model's trees as WOODELF explains them: per tree its splits, per leaf a table.

    A leaf's path-dependent SHAP values depend on a row only through its
    decision pattern (a bit per distinct feature on the leaf's path: does the
    row take the path's side at every split on it), so each leaf holds
    values[features on its path, 2**those] and a row's values are the sum of
    its patterns' entries. The tables are woodelf's (its M matrices on the
    leaf's cover vector; a right leaf rides on its left sibling's pattern) in
    float64: woodelf's float32 drifts 1e-5 from pred_contribs over 300 trees.
    Splits compare float32 rows as XGBoost (`<`) or LightGBM (`<=`) does; a
    missing value takes the split's default side.
    """

    def __init__(self, model: TreeModel):
        from woodelf.core.trees.parse_models import load_decision_tree_ensemble_model

        self.n_features = f = model.n_features
        ensemble = load_decision_tree_ensemble_model(model.model, list(range(f)))
        self.trees, leaves = [], []  # leaves: (tree, node, features, covers, w, w_neighbour)
        for root in ensemble.trees:
            paths = root.get_nodes_to_path_dict()
            self.trees.append(self._splits(root, paths, f))
            leaves += [(len(self.trees) - 1, *leaf) for leaf in self._leaves(root, paths)]
        self.nbytes = sum(8 * len(leaf[2]) << len(leaf[2]) for leaf in leaves)
        if self.nbytes > WOODELF_MAX_BYTES:
            raise InputError(f"its tables would take {self.nbytes >> 20} MB (at most 256)")
        self._tables(leaves)
        # The base value (expected output) as the reference computes it: any row's bias.
        self.base = _native_contributions(model, np.full((1, f), np.nan, np.float32))[0, :, f]

    @staticmethod
    def _splits(root, paths: dict, n_features: int) -> tuple:
        """How a tree's rows get their patterns: its splits, parents before children."""
        from woodelf.core.trees.decision_trees_ensemble import LeftIsSmallerEqualDecisionTreeNode
        from woodelf.core.utils import get_unique_features_in_path

        splits = root.bfs(including_leaves=False)
        le = any(isinstance(node, LeftIsSmallerEqualDecisionTreeNode) for node in splits)
        thresholds = np.array([node.value for node in splits], dtype=np.float64)
        if not le:  # woodelf moved XGBoost's float32 thresholds one step down: undo it
            thresholds = np.nextafter(thresholds.astype(np.float32), np.float32(np.inf))
        steps, widest = [], 0
        for node in splits:
            on_path = get_unique_features_in_path(paths[node.index] + [node])
            widest, bit = max(widest, len(on_path)), 0
            if node.feature_name in [p.feature_name for p in paths[node.index]]:
                bit = 1 << (len(on_path) - 1 - on_path.index(node.feature_name))
            mask = (1 << len(on_path)) - 1 - bit
            steps.append((node.index, node.left.index, node.right.index, bit, mask))
        if widest > WOODELF_MAX_PATH:
            raise InputError(f"a path of its trees splits on {widest} features (at most 10)")
        # Where a missing value goes left it reads as -inf, where it goes right as +inf.
        sides = [node.feature_name + (0 if node.nan_go_left else n_features) for node in splits]
        dtype = np.uint8 if widest <= 8 else np.uint16
        return np.array(sides, np.intp), thresholds[:, None], le, steps, dtype, []

    @staticmethod
    def _leaves(root, paths: dict) -> list[tuple]:
        """(node, features, covers, w, w_neighbour) of the leaves woodelf visits."""
        from woodelf.core.decision_patterns import ignore_right_neighbor as rides
        from woodelf.core.utils import get_covers_vector, get_unique_features_in_path

        trick, found = root.depth > 1, []
        for leaf in root.get_all_leaves():
            path, parent = paths[leaf.index], leaf.parent
            features = get_unique_features_in_path(path)
            if not features or (
                trick
                and leaf is parent.right
                and parent.left.is_leaf()
                and rides(parent.left, paths[parent.left.index], True)
            ):
                continue  # a root alone adds nothing; a right leaf is in its sibling's table
            neighbour = parent.right.value if trick and rides(leaf, path, True) else 0.0
            covers = get_covers_vector(path + [leaf], features)
            found.append((leaf.index, features, covers, leaf.value, neighbour))
        return found

    def _tables(self, leaves: list) -> None:
        by_width: dict[int, list] = {}
        for leaf in leaves:
            by_width.setdefault(len(leaf[2]), []).append(leaf)
        for d, group in by_width.items():
            covers, m = np.array([leaf[3] for leaf in group], dtype=np.float64), len(group)
            f = np.ones((m, 1))
            for i in range(d):  # woodelf's f vector from covers, the first feature the top bit
                f = f[:, :, None] * np.stack([1 - covers[:, i], covers[:, i]], 1)[:, None]
                f = f.reshape(m, -1)
            operator = _woodelf_operator(d).reshape(d << d, 1 << d).T
            flip = np.arange(1 << d) ^ 1  # woodelf's neighbour_vector
            own = (f @ operator).reshape(m, d, 1 << d)
            neighbour = (f[:, flip] @ operator).reshape(m, d, 1 << d)[:, :, flip]
            weights = np.array([(leaf[4], leaf[5]) for leaf in group])
            tables = own * weights[:, :1, None] + neighbour * weights[:, 1:, None]
            offsets = (np.arange(d, dtype=np.intp) << d)[:, None]
            for leaf, table in zip(group, tables, strict=True):
                features = np.array(leaf[2], dtype=np.intp)
                self.trees[leaf[0]][5].append((leaf[1], features, table.ravel(), offsets))

    def values(self, X: np.ndarray) -> np.ndarray:
        """SHAP values [n, features] of float32 rows (NaN where missing)."""
        n, columns = len(X), np.ascontiguousarray(X.T, dtype=np.float32)
        missing = np.isnan(columns)
        sided = np.concatenate(
            [np.where(missing, -np.inf, columns), np.where(missing, np.inf, columns)]
        )
        sided, out = sided.astype(np.float32, copy=False), np.zeros((self.n_features, n))
        for sides, thresholds, le, steps, dtype, leaves in self.trees:
            x = sided[sides]
            goes_left = (x <= thresholds) if le else (x < thresholds)
            bits = goes_left.view(np.uint8) if dtype == np.uint8 else goes_left.astype(dtype)
            patterns = {steps[0][0] if steps else 0: np.zeros(n, dtype=dtype)}
            for i, (node, left, right, bit, mask) in enumerate(steps):
                parent, side = patterns[node], bits[i]
                if bit:  # a feature met again on the path: its bit must hold at both splits
                    patterns[left] = parent & (mask + side * bit).astype(dtype)
                    patterns[right] = parent & (mask + (1 - side) * bit).astype(dtype)
                else:
                    shifted = parent << 1
                    patterns[left], patterns[right] = shifted | side, shifted | (1 - side)
            for node, features, table, offsets in leaves:
                found = table.take(patterns[node].astype(np.intp) + offsets)
                for k, j in enumerate(features):
                    out[j] += found[k]
        return out.T


@cache
def _woodelf_operator(d: int) -> np.ndarray:
    """woodelf's map from a leaf's f vector to its table, [d, 2**d, 2**d], in float64: its s
    vectors are linear in f (leaf weight 1), so it is read off woodelf from unit vectors."""
    from woodelf.core.cube_metric import ShapleyValues
    from woodelf.core.path_to_s_vectors.woodelf_p2s import HighDepthWoodelfPathToSVectors

    class Float64(HighDepthWoodelfPathToSVectors):
        def _build_matrices(self):  # woodelf's own, without the cast to float32
            for depth in range(self.max_depth + 1):
                cube = self.map_patterns_to_cube(list(range(depth)))
                matrices = self.build_patterns_to_values_sparse_matrix(cube, self.metric, depth)
                self.matrices_frs_subsets[depth] = list(matrices)
                self.matrices[depth] = np.array(
                    [matrices[k] for k in self.matrices_frs_subsets[depth]], dtype=np.float64
                ).T

    calculator = Float64(ShapleyValues(), d)
    operator = np.zeros((d, 1 << d, 1 << d))
    for b, unit in enumerate(np.eye(1 << d)):
        for k, s in calculator._get_s_vectors_given_f(list(range(d)), unit, 1.0).items():
            operator[k, :, b] = s
    return operator


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


def _native_contributions(model: TreeModel, X: np.ndarray) -> np.ndarray:
    """The booster's own TreeSHAP: [n, outputs, features + 1], the bias last."""
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
    return np.asarray(contribs, dtype=np.float64).reshape(
        len(X), model.n_outputs, model.n_features + 1
    )


def explain(model: TreeModel, X: np.ndarray, engine: str = "auto") -> Explained:
    """Exact SHAP values of every row of X (columns in the model's feature order)."""
    engine = choose_engine(model, engine)
    if model.prepare is not None:
        X = model.prepare(X)
    n, f = len(X), model.n_features
    if engine == "woodelf":
        tables = _explainer(model, "woodelf")
        values = tables.values(np.asarray(X, dtype=np.float32)).reshape(n, 1, f)
        base = tables.base
    elif engine == "fast":
        explainer = _explainer(model, "fast")
        values = np.asarray(explainer.shap_values(X), dtype=np.float64).reshape(n, 1, f)
        base = np.asarray(explainer.expected_value, dtype=np.float64).reshape(1)
    elif engine == "native":
        contribs = _native_contributions(model, X)
        values, base = contribs[:, :, :f], contribs[0, :, f]
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
