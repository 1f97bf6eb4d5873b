"""The pure parts, without a broker: fits, importances, ranks, dataset validation, seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storage.datasets import load_matrix, prepare, write_parquet
from storage.synth import expression
from tasks.importance import fit_run, gene_importances
from tasks.models import MODELS, make_estimator


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    prepared = prepare(expression(samples=90, genes=40, classes=3), "tissue", id_col="sample_id")
    return load_matrix(write_parquet(prepared, tmp_path_factory.mktemp("data")))


@pytest.mark.parametrize("model", [m for m in MODELS if m != "dummy"])
def test_every_model_fits_and_ranks_its_nonzero_genes(matrix, model):
    result = fit_run(matrix, model, seed=11, test_size=0.3)
    assert result.n_train + result.n_test == 90
    assert 0 <= result.accuracy <= 1
    summary = [i for i, c in enumerate(result.class_index) if c == -1]
    assert summary, "a model with importances selects at least one gene"
    values = [result.importance[i] for i in summary]
    assert all(v != 0 for v in values)
    assert values == sorted(values, reverse=True)
    assert [result.rank[i] for i in summary] == list(range(1, len(summary) + 1))
    assert len({result.gene_index[i] for i in summary}) == len(summary)


def test_the_same_seed_gives_the_same_run(matrix):
    first = fit_run(matrix, "rf", seed=123, test_size=0.25)
    again = fit_run(matrix, "rf", seed=123, test_size=0.25)
    other = fit_run(matrix, "rf", seed=124, test_size=0.25)
    assert first.importance == again.importance and first.gene_index == again.gene_index
    assert first.importance != other.importance


def test_linear_multiclass_keeps_signed_coefficients_per_class(matrix):
    estimator = make_estimator("lr", 5).fit(matrix.X, matrix.y)
    classes, genes, importance, coef, rank = gene_importances(estimator, "lr", 3)
    table = pd.DataFrame({"cls": classes, "gene": genes, "importance": importance, "coef": coef})
    per_class = table[table.cls >= 0]
    assert sorted(per_class.cls.unique()) == [0, 1, 2]
    for k in range(3):
        rows = per_class[per_class.cls == k].set_index("gene")
        expected = estimator.coef_[k]
        assert np.allclose(rows.loc[range(40), "coef"], expected)
        assert np.allclose(rows.loc[range(40), "importance"], np.abs(expected))
    summary = table[table.cls == -1].set_index("gene").loc[range(40)]
    assert np.allclose(summary.importance, np.abs(estimator.coef_).mean(axis=0))
    dominant = estimator.coef_[np.abs(estimator.coef_).argmax(axis=0), np.arange(40)]
    assert np.allclose(summary.coef, dominant)


def test_linear_binary_has_one_signed_summary(tmp_path):
    prepared = prepare(
        expression(samples=60, genes=10, classes=2, informative=4), "tissue", id_col="sample_id"
    )
    matrix = load_matrix(write_parquet(prepared, tmp_path))
    estimator = make_estimator("lr", 1).fit(matrix.X, matrix.y)
    classes, genes, importance, coef, _ = gene_importances(estimator, "lr", 2)
    assert set(classes) == {-1}
    order = np.argsort(genes)
    assert np.allclose(np.asarray(coef)[order], estimator.coef_[0])


def test_tree_importances_come_from_feature_importances(matrix):
    estimator = make_estimator("ada", 3).fit(matrix.X, matrix.y)
    classes, genes, importance, coef, _ = gene_importances(estimator, "ada", 3)
    expected = estimator.feature_importances_
    assert set(classes) == {-1} and all(c is None for c in coef)
    assert sorted(genes) == sorted(np.flatnonzero(expected).tolist())
    assert np.allclose(importance, expected[genes])


def test_the_content_hash_ignores_the_name_but_not_the_values():
    table = expression(samples=30, genes=5, informative=2)
    a = prepare(table, "tissue", id_col="sample_id")
    b = prepare(table.copy(), "tissue", id_col="sample_id")
    changed = table.copy()
    changed.loc[0, "SIG01"] += 1
    c = prepare(changed, "tissue", id_col="sample_id")
    assert a.dataset_id == b.dataset_id != c.dataset_id
