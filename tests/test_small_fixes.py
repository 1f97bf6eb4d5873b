"""Small things that read wrong: holdout tests in planned order, a search's accuracy in
`jobs list`, the kind of a refused SQL statement, malformed model files, `Job.wait`'s
progress line."""

from __future__ import annotations

import copy
import json

import duckdb
import numpy as np
import pytest

import genejobs
from genejobs.errors import InputError
from genejobs.storage import model_queries, queries, schema
from tests.conftest import refused


@pytest.fixture
def results(tmp_path):
    """An empty results file with the schema."""
    con = duckdb.connect(str(tmp_path / "results.duckdb"))
    for ddl in schema.DDL:
        con.execute(ddl)
    con.execute(
        "INSERT INTO datasets (dataset_id, name, path, label_col, n_samples, n_genes, classes, "
        "class_counts, genes) VALUES ('d1', 'data', 'd1.parquet', 'y', 10, 3, ['a', 'b'], "
        "[5, 5], ['g1', 'g2', 'g3'])"
    )
    yield con
    con.close()


def test_holdout_tests_are_listed_in_planned_order(results):
    results.execute(
        "INSERT INTO jobs (job_id, kind, dataset_id, params, n_runs) "
        "VALUES ('eval-1', 'evaluate', 'd1', '{}', 12)"
    )
    for n in (1, 2, 10, 3, 11, 12):
        results.execute(
            "INSERT INTO test_results (test_id, model_id, job_id, dataset_id, split_seed, "
            "hyper_seed, test_size, status, error) "
            "VALUES (?, 'm', 'eval-1', 'd1', ?, 1, 0.3, 'failed', 'boom')",
            [f"eval-1-{n}", n],
        )
    expected = [f"eval-1-{n}" for n in (1, 2, 3, 10, 11, 12)]
    assert model_queries.tests(results, "eval-1")["test_id"].tolist() == expected
    errors = queries.job(results, "eval-1")["errors"]
    assert [e["unit"] for e in errors] == expected[:5]


def test_a_search_in_jobs_list_shows_its_best_models_accuracy(results):
    results.execute(
        "INSERT INTO jobs (job_id, kind, dataset_id, params, n_runs) "
        "VALUES ('srch-1', 'search', 'd1', '{}', 4)"
    )
    folds = {("lr", 0): 0.9, ("lr", 1): 0.8, ("dummy", 0): 0.5, ("dummy", 1): 0.5}
    for (model, fold), accuracy in folds.items():
        results.execute(
            "INSERT INTO search_folds (job_id, model, fold, status, accuracy) "
            "VALUES ('srch-1', ?, ?, 'done', ?)",
            [model, fold, accuracy],
        )
    listed = queries.jobs(results).set_index("job_id")
    assert np.isnan(listed.loc["srch-1", "mean_accuracy"])  # not ranked yet: no best model
    for model, rank, accuracy in (("lr", 1, 0.85), ("dummy", 2, 0.5)):
        results.execute(
            "INSERT INTO model_runs (model_id, job_id, dataset_id, model, name, position, "
            "status, split, setup, session_id, folds, rank, best, accuracy) "
            "VALUES (?, 'srch-1', 'd1', ?, ?, ?, 'done', 0.7, '{}', 1, 2, ?, ?, ?)",
            [f"srch-1-{model}", model, model, rank, rank, rank == 1, accuracy],
        )
    assert queries.jobs(results).set_index("job_id").loc["srch-1", "mean_accuracy"] == 0.85
    assert queries.job(results, "srch-1")["mean_accuracy"] == 0.85


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("INSTALL httpfs", "INSTALL"),
        ("FORCE INSTALL httpfs", "FORCE INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS"),
        ("RESET threads", "RESET"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("/* quiet */ install httpfs", "INSTALL"),
        ("WITH x AS (SELECT 1) DELETE FROM runs", "DELETE"),
        ("SELECT 1; USE memory", "USE"),
    ],
)
def test_a_refused_statement_is_named_by_its_kind(results, statement, kind):
    with pytest.raises(InputError, match=f"^refusing {kind} statement: "):
        queries.run_sql(results, statement)


def test_sql_names_install_as_install(stack):
    refused("sql", "INSTALL httpfs", expect="refusing INSTALL statement")


@pytest.fixture(scope="module")
def xgboost_json(tmp_path_factory):
    import xgboost

    rng = np.random.default_rng(0)
    X = rng.random((40, 4))
    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1)
    model.fit(X, (X[:, 0] > 0.5).astype(int))
    path = tmp_path_factory.mktemp("model") / "model.json"
    model.save_model(str(path))
    return json.loads(path.read_text())


def _set(keys, value):
    def corrupt(document):
        for key in keys[:-1]:
            document = document[key]
        document[keys[-1]] = value

    return corrupt


def _drop(keys):
    def corrupt(document):
        for key in keys[:-1]:
            document = document[key]
        del document[keys[-1]]

    return corrupt


BOOSTER = ("learner", "gradient_booster")
TREE = (*BOOSTER, "model", "trees", 0)
CORRUPTIONS = {
    "no booster name": _drop((*BOOSTER, "name")),
    "no learner_model_param": _drop(("learner", "learner_model_param")),
    "no tree_info": _drop((*BOOSTER, "model", "tree_info")),
    "no objective": _drop(("learner", "objective")),
    "learner a list": _set(("learner",), [1, 2]),
    "learner null": _set(("learner",), None),
    "booster a list": _set(BOOSTER, []),
    "trees a dict": _set((*BOOSTER, "model", "trees"), {}),
    "a tree a list": _set(TREE, [1]),
    "objective a string": _set(("learner", "objective"), "binary:logistic"),
    "objective name a number": _set(("learner", "objective", "name"), 5),
    "feature count not a number": _set(("learner", "learner_model_param", "num_feature"), "x"),
    "feature count a list": _set(("learner", "learner_model_param", "num_feature"), [4]),
    "class count not a number": _set(("learner", "learner_model_param", "num_class"), "two"),
    "version a string": _set(("version",), "x"),
    "version a number": _set(("version",), 3),
    "feature names a number": _set(("learner", "feature_names"), 5),
    "children null": _set((*TREE, "left_children"), None),
    "split indices a string": _set((*TREE, "split_indices"), "ab"),
    "booster name a number": _set((*BOOSTER, "name"), 5),
    "dart without its fields": _set((*BOOSTER, "name"), "dart"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_malformed_xgboost_json_model_is_one_clear_line(xgboost_json, tmp_path, corruption):
    from genejobs.tasks.tree_models import describe_model

    document = copy.deepcopy(xgboost_json)
    CORRUPTIONS[corruption](document)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as caught:
        describe_model(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path} is not a supported model file (cannot load it as xgboost-")
    assert "\n" not in message and "KeyError" not in message


def test_job_wait_ends_its_progress_line(tissue, capsys):
    with pytest.raises(TimeoutError):
        genejobs.Job("imp-never-planned").wait(timeout=0.3)
    assert capsys.readouterr().err.endswith("imp-never-planned: 0/0 units\n")
    job = genejobs.importance(tissue, "dummy", runs=3)
    assert job.wait(timeout=120)["done"] == 3
    assert capsys.readouterr().err.endswith(f"{job.id}: 3/3 units\n")
