"""The pure parts, without a broker: fits, importances, ranks, dataset validation, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from genejobs.catalog import MODELS
from genejobs.storage.datasets import load_matrix, prepare, write_parquet
from genejobs.storage.synth import expression
from genejobs.tasks.fit import fit_run, gene_importances
from genejobs.tasks.models import make_estimator


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    prepared = prepare(expression(samples=90, genes=40, classes=3), "tissue", id_col="sample_id")
    return load_matrix(write_parquet(prepared, tmp_path_factory.mktemp("data")))


@pytest.mark.parametrize("model", [m for m in MODELS if m != "dummy"])
def test_every_model_fits_and_ranks_its_nonzero_genes(matrix, model):
    result = fit_run(matrix, model, seed=11, test_size=0.3)
    assert result.n_train + result.n_test == 90
    assert 0 <= result.accuracy <= 1
    chosen = result.selection
    assert chosen.gene_index, "a model with importances selects at least one gene"
    assert all(v != 0 for v in chosen.importance)
    assert list(chosen.importance) == sorted(chosen.importance, reverse=True)
    assert len(set(chosen.gene_index)) == len(chosen.gene_index)


def test_holdout_scores_are_scikit_learns():
    """The counted scores equal accuracy_score and precision_recall_fscore_support, binary
    and weighted, with classes missing from the predictions or from the holdout."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    from genejobs.tasks.fit import holdout_scores

    rng = np.random.default_rng(5)
    cases = 0
    for n_classes in (2, 3, 7):
        for _ in range(300):
            n = int(rng.integers(1, 40))
            y_true = rng.integers(0, n_classes, n)
            y_pred = rng.integers(0, int(rng.integers(1, n_classes + 1)), n)
            if rng.random() < 0.3:
                y_pred = y_true.copy()
            average = "binary" if n_classes == 2 else "weighted"
            expected = (
                accuracy_score(y_true, y_pred),
                *precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)[
                    :3
                ],
            )
            assert holdout_scores(y_true, y_pred, n_classes) == pytest.approx(expected, abs=1e-12)
            cases += 1
    assert cases == 900


def test_the_same_seed_gives_the_same_run(matrix):
    first = fit_run(matrix, "rf", seed=123, test_size=0.25).selection
    again = fit_run(matrix, "rf", seed=123, test_size=0.25).selection
    other = fit_run(matrix, "rf", seed=124, test_size=0.25).selection
    assert first == again
    assert first.importance != other.importance


def by_gene(selection, values) -> np.ndarray:
    order = np.argsort(selection.gene_index)
    return np.asarray(values)[order]


def test_linear_multiclass_keeps_signed_coefficients_per_class(matrix):
    estimator = make_estimator("lr", 5).fit(matrix.X, matrix.y)
    chosen = gene_importances(estimator, "lr")
    assert sorted(chosen.gene_index) == list(range(40))
    coefs = estimator.coef_
    assert np.allclose(by_gene(chosen, chosen.class_coefs), coefs.T)
    assert np.allclose(by_gene(chosen, chosen.importance), np.abs(coefs).mean(axis=0))
    dominant = coefs[np.abs(coefs).argmax(axis=0), np.arange(40)]
    assert np.allclose(by_gene(chosen, chosen.coef), dominant)


def test_linear_binary_has_one_signed_coefficient(tmp_path):
    prepared = prepare(
        expression(samples=60, genes=10, classes=2, informative=4), "tissue", id_col="sample_id"
    )
    matrix = load_matrix(write_parquet(prepared, tmp_path))
    estimator = make_estimator("lr", 1).fit(matrix.X, matrix.y)
    chosen = gene_importances(estimator, "lr")
    assert chosen.class_coefs is None
    assert np.allclose(by_gene(chosen, chosen.coef), estimator.coef_[0])
    assert np.allclose(by_gene(chosen, chosen.importance), np.abs(estimator.coef_[0]))


def test_tree_importances_come_from_feature_importances(matrix):
    estimator = make_estimator("ada", 3).fit(matrix.X, matrix.y)
    chosen = gene_importances(estimator, "ada")
    expected = estimator.feature_importances_
    assert chosen.coef is None and chosen.class_coefs is None
    assert sorted(chosen.gene_index) == sorted(np.flatnonzero(expected).tolist())
    assert np.allclose(chosen.importance, expected[list(chosen.gene_index)])


def test_the_content_hash_ignores_the_name_but_not_the_values():
    table = expression(samples=30, genes=5, informative=2)
    a = prepare(table, "tissue", id_col="sample_id")
    b = prepare(table.copy(), "tissue", id_col="sample_id")
    changed = table.copy()
    changed.loc[0, "SIG01"] += 1
    c = prepare(changed, "tissue", id_col="sample_id")
    assert a.dataset_id == b.dataset_id != c.dataset_id
