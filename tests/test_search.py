"""Model search and holdout evaluation through the real stack, checked against PyCaret itself."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genejobs.candidates import CANDIDATES, METRICS
from genejobs.config import settings
from genejobs.storage.synth import expression
from tests.conftest import frame_of, refused, run, sql

SMALL = "search_small"
SESSION_ID = 123
FOLDS = 2
SEED_COLUMNS = [
    "run_id", "run_date", "mlr_dataset", "split", "setup", "best", "pred_accuracy",
    "metrics_dict", "accuracy", "precision", "recall", "f1", "roc_auc",
]  # fmt: skip


def small_table() -> pd.DataFrame:
    """60 samples x 30 genes; class C has 3 samples, so QDA fails on every 2-fold split."""
    table = expression(samples=60, genes=30, classes=3, informative=5, seed=11)
    labels = np.array(["tissue_A"] * 29 + ["tissue_B"] * 28 + ["tissue_C"] * 3)
    table["tissue"] = np.random.default_rng(5).permutation(labels)
    return table


@pytest.fixture(scope="module")
def small(stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.csv"
    small_table().to_csv(path, index=False)
    run("datasets", "add", str(path), "--label", "tissue", "--id-col", "sample_id",
        "--name", SMALL)  # fmt: skip
    return SMALL


@pytest.fixture(scope="module")
def searched(small):
    """One search on the small dataset, run through the CLI, and its printed leaderboard."""
    result = run(
        "search", small, "--folds", str(FOLDS), "--session-id", str(SESSION_ID),
        "--wait", "--format", "json",
    )  # fmt: skip
    board = pd.read_json(io.StringIO(result.stdout))
    return board["model_id"].iloc[0].rsplit("-", 1)[0], board


def pycaret_reference() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """PyCaret's own compare_models on the same data, session id and folds, in this process."""
    from genejobs.tasks.search import SearchSetup, experiment

    frame = small_table().set_index("sample_id")
    exp = experiment(frame, "tissue", SearchSetup(SESSION_ID, 0.7, FOLDS))
    exp.compare_models(turbo=True, verbose=False, errors="ignore", n_select=1)
    board = exp.pull()
    per_model = {
        exp._get_model_id(entry["model"]): entry["scores"] for entry in exp._master_model_container
    }
    assert [(k, v.name, v.is_turbo) for k, v in exp._all_models.items()] == [
        (c.model, c.name, c.turbo) for c in CANDIDATES.values()
    ], "genejobs/candidates.py no longer matches the installed PyCaret"
    assert [(m.id, m.display) for m in METRICS] == [
        (k, v.display_name) for k, v in exp._all_metrics.items()
    ]
    return board, per_model


def test_the_leaderboard_equals_pycarets_compare_models(searched, tmp_path, monkeypatch):
    job_id, board = searched
    monkeypatch.chdir(tmp_path)
    reference, per_model = pycaret_reference()
    ranked = board[board["status"] == "done"]
    assert list(ranked["model"]) == list(reference.index)
    for metric in METRICS:
        ours = ranked[metric.column].to_numpy(dtype=float)
        assert np.abs(ours - reference[metric.display].to_numpy(dtype=float)).max() < 1e-6

    sds = pd.DataFrame(
        sql(
            f"SELECT model, {', '.join(m.column + '_sd' for m in METRICS)} FROM model_runs "
            f"WHERE job_id = '{job_id}' AND status = 'done'"
        ),
        columns=["model", *(m.column + "_sd" for m in METRICS)],
    ).set_index("model")
    for model in ranked["model"]:
        std = per_model[model].loc["Std"]
        for metric in METRICS:
            assert abs(sds.loc[model, metric.column + "_sd"] - std[metric.display]) < 1e-6

    # QDA cannot fit a class with one sample: failed with its error, as PyCaret drops it
    assert "qda" not in reference.index
    failed = board[board["status"] == "failed"]
    assert list(failed["model"]) == ["qda"]
    assert "covariance is ill defined" in failed["error"].iloc[0]
    assert len(board) == sum(c.turbo for c in CANDIDATES.values())
    # PyCaret never wrote its log: not here, not in the workers' directory
    assert not list(tmp_path.rglob("logs.log"))
    assert not list(settings().home.rglob("logs.log"))
    assert not Path("logs.log").exists()


def test_the_best_model_is_finalized_and_loaded_only_with_its_hash(searched, tmp_path):
    from genejobs.errors import GenejobsError
    from genejobs.tasks.artifacts import load_artifact

    job_id, board = searched
    best = board.iloc[0]
    shown = json.loads(run("models", "show", best["model_id"], "--format", "json").output)
    assert shown["best"] and shown["rank"] == 1 and shown["status"] == "done"
    assert shown["setup"] == {"session_id": SESSION_ID, "train_size": 0.7, "folds": FOLDS}
    assert 0 <= shown["pred_accuracy"] <= 1
    path = settings().home / shown["artifact_path"]
    pipeline = load_artifact(path, shown["artifact_sha256"])
    frame = small_table().set_index("sample_id")
    predicted = np.asarray(pipeline.predict(frame.drop(columns="tissue")))
    assert set(predicted) <= {"tissue_A", "tissue_B", "tissue_C"}
    assert (predicted == frame["tissue"].to_numpy()).mean() > 0.5

    tampered = tmp_path / "tampered.joblib"
    shutil.copy(path, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(GenejobsError, match="does not have the sha256"):
        load_artifact(tampered, shown["artifact_sha256"])

    listed = frame_of(run("models", "list", "--dataset", SMALL, "--format", "json"))
    assert set(board["model_id"]) <= set(listed["model_id"])
    assert listed["artifact"].sum() >= 1


def test_export_writes_the_seeds_pycaret_results_layout(searched):
    job_id, board = searched
    text = run("export", "model-runs", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0].keys()) == SEED_COLUMNS
    mine = [r for r in rows if r["run_id"].startswith(job_id)]
    assert [r["run_id"] for r in mine] == list(board["model_id"])
    best = mine[0]
    assert best["best"] == "True" and best["mlr_dataset"] == SMALL and best["split"] == "0.7"
    assert json.loads(best["setup"])["session_id"] == SESSION_ID
    metrics = json.loads(best["metrics_dict"])
    assert metrics["job_id"] == job_id and metrics["rank"] == 1
    assert float(best["accuracy"]) == board.iloc[0]["accuracy"]
    assert float(best["roc_auc"]) == board.iloc[0]["auc"]


def test_evaluate_records_a_seeded_holdout_test(searched, tmp_path):
    from genejobs.storage.datasets import load_matrix
    from genejobs.tasks.evaluate import evaluate_holdout

    job_id, board = searched
    model_id = board.iloc[0]["model_id"]
    plot = tmp_path / "cm.png"
    result = run(
        "evaluate", model_id, "--split-seed", "7", "--hyper-seed", "3", "--plot", str(plot),
        "--format", "json",
    )  # fmt: skip
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert (shown["split_seed"], shown["hyper_seed"], shown["status"]) == (7, 3, "done")
    assert plot.stat().st_size > 1000

    row = sql(
        f"SELECT t.accuracy, t.roc_auc, t.confusion, t.n_test, m.estimator, m.params, d.path "
        f"FROM test_results t JOIN model_runs m USING (model_id) JOIN datasets d "
        f"ON d.dataset_id = t.dataset_id WHERE t.test_id = '{shown['test_id']}'"
    )[0]
    accuracy, roc_auc, confusion, n_test, estimator, params, path = row
    expected = evaluate_holdout(load_matrix(settings().home / path), estimator, params, 7, 3, 0.3)
    assert accuracy == pytest.approx(expected.accuracy, abs=1e-12)
    assert confusion == expected.confusion and np.sum(confusion) == n_test == 18
    assert (roc_auc is None) == (expected.roc_auc is None)

    again = run("evaluate", model_id, "--split-seed", "7", "--hyper-seed", "3", ok=False)
    assert again.exit_code == 2 and "already evaluated with split seed 7" in again.stderr


def test_evaluate_over_many_split_seeds_prints_the_spread(searched, tmp_path):
    job_id, board = searched
    model_id = board.iloc[0]["model_id"]
    plot = tmp_path / "many.png"
    result = run(
        "evaluate", model_id, "--split-seeds", "6", "--plot", str(plot), "--format", "json"
    )
    lines = result.stdout.strip().splitlines()
    tests, summary = pd.read_json(io.StringIO(lines[0])), json.loads(lines[1])
    assert len(tests) == 6 == tests["split_seed"].nunique() == summary["tests"]
    assert summary["mean"] == pytest.approx(tests["accuracy"].mean())
    assert summary["min"] <= summary["q25"] <= summary["q50"] <= summary["q75"] <= summary["max"]
    assert plot.exists() and (tmp_path / "many_accuracy.png").exists()
    stored = sql(f"SELECT count(*) FROM test_results WHERE model_id = '{model_id}'")[0][0]
    assert stored >= 7


# bad input ------------------------------------------------------------------------------


def test_unknown_model_id(searched):
    refused("evaluate", "srch-nothing-lr", expect="unknown model 'srch-nothing-lr'")
    refused("models", "show", "srch-nothing-lr", expect="unknown model 'srch-nothing-lr'")


def test_a_model_id_from_another_dataset(searched, tissue):
    model_id = searched[1].iloc[0]["model_id"]
    refused("evaluate", model_id, "--dataset", tissue, expect=f"searched on dataset '{SMALL}'")


@pytest.mark.parametrize(
    ("folds", "expect"),
    [("1", "must be at least 2"), ("21", "more than the classes allow")],
)
def test_folds(small, folds, expect):
    refused("search", small, "--folds", folds, "--session-id", "1", expect=expect)


def test_an_unknown_sort_metric(small):
    refused("search", small, "--sort", "Speed", expect="unknown metric 'Speed'")


def test_an_exclude_list_that_leaves_no_model(small):
    every = ",".join(m for m, c in CANDIDATES.items() if c.turbo)
    refused("search", small, "--exclude", every, expect="leaves no model")


def test_an_unknown_candidate(small):
    refused("search", small, "--models", "lr,catboost", expect="unknown model id 'catboost'")


@pytest.mark.parametrize("size", ["0", "1", "1.5", "-0.1"])
def test_train_size_outside_zero_one(small, size):
    refused("search", small, "--train-size", size, expect="must be between 0 and 1")


def test_search_of_an_unknown_dataset(stack):
    refused("search", "no_such_set", expect="unknown dataset 'no_such_set'")


def test_no_logs_log_in_the_test_directory():
    assert not Path(os.getcwd(), "logs.log").exists()


def test_shap_explains_a_searched_tree_model_and_refuses_others(small):
    """`genejobs:<model id>`: a search's saved pipeline, explained like any model file."""
    import shap

    from genejobs.tasks.artifacts import load_artifact

    board = pd.read_json(
        io.StringIO(
            run(
                "search", small, "--models", "rf,dt", "--folds", str(FOLDS),
                "--session-id", str(SESSION_ID), "--wait", "--format", "json",
            ).stdout
        )
    )  # fmt: skip
    best, other = board["model_id"].iloc[0], board["model_id"].iloc[1]
    shown = json.loads(run("models", "show", best, "--format", "json").output)

    result = run("shap", "run", small, "--model", f"genejobs:{best}", "--wait")
    job_id = result.output.split("job ")[1].split(":")[0]
    pipeline = load_artifact(settings().home / shown["artifact_path"], shown["artifact_sha256"])
    estimator = pipeline.steps[-1][1]
    frame = small_table().set_index("sample_id").drop(columns="tissue")
    X = pipeline[:-1].transform(frame)[list(estimator.feature_names_in_)]
    reference = np.asarray(shap.TreeExplainer(estimator).shap_values(X))  # rows, features, classes
    stored = np.zeros_like(reference)
    features = list(estimator.feature_names_in_)
    for source_row, cls, feature, value in sql(
        f"SELECT r.source_row, v.class, f.feature, v.shap FROM shap_values v "
        f"JOIN shap_rows r USING (job_id, row_id, class) "
        f"JOIN shap_features f USING (job_id, feature_id) WHERE v.job_id = '{job_id}'"
    ):
        stored[source_row, features.index(feature), cls] = value
    assert reference.shape == (60, 30, 3)
    assert np.abs(stored - reference).max() < 1e-4
    assert sql(f"SELECT format FROM shap_models WHERE job_id = '{job_id}'") == [
        ("genejobs-joblib",)
    ]
    # Class k of the values is the pipeline's class k, by its label (PyCaret encodes labels).
    labels = [str(c) for c in pipeline.inverse_transform(estimator.classes_)]
    params = sql(f"SELECT params FROM shap_jobs WHERE job_id = '{job_id}'")[0][0]
    assert json.loads(params)["classes"] == labels == sorted(small_table()["tissue"].unique())

    refused("shap", "run", small, "--model", "genejobs:srch-nope-rf", expect="unknown model")
    refused("shap", "run", small, "--model", f"genejobs:{other}", expect="best model only")
    linear = pd.read_json(
        io.StringIO(
            run("search", small, "--models", "lr", "--folds", str(FOLDS), "--wait",
                "--format", "json").stdout
        )
    )["model_id"].iloc[0]  # fmt: skip
    refused("shap", "run", small, "--model", f"genejobs:{linear}", expect="not a tree model")
    # Loading a saved pipeline imports PyCaret, which must not leave its log behind.
    assert not Path("logs.log").exists() and not list(settings().home.rglob("logs.log"))


def test_export_in_pycarets_layout_one_job(searched):
    job_id, board = searched
    out = run("export", "model-runs", "--layout", "pycaret", "--job", job_id, "--format", "json")
    table = pd.read_json(io.StringIO(out.output))
    assert list(table.columns) == [
        "job_id", "model_id", "rank", "id", "Model", "Accuracy", "AUC", "Recall", "Prec.",
        "F1", "Kappa", "MCC", "TT (Sec)",
    ]  # fmt: skip
    ranked = board[board["status"] == "done"]
    assert list(table["model_id"]) == list(ranked["model_id"])
    assert set(table["job_id"]) == {job_id}
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    for m in METRICS:
        assert np.allclose(table[m.display], ranked[m.column].to_numpy(dtype=float))
    by_dataset = run("export", "model-runs", "--dataset", SMALL, "--format", "csv").output
    assert all(row["mlr_dataset"] == SMALL for row in csv.DictReader(io.StringIO(by_dataset)))
    refused("export", "model-runs", "--job", "srch-none", expect="unknown search job 'srch-none'")


def test_auc_zero_comes_with_its_reason(stack, tmp_path):
    table = expression(samples=60, genes=20, classes=3, seed=5)
    rare = table.index[table["tissue"] == "tissue_C"][8:]
    table.loc[rare, "tissue"] = "tissue_A"  # tissue_C keeps 8 samples: ~6 in training
    path = tmp_path / "rare_class.csv"
    table.to_csv(path, index=False)
    run("datasets", "add", str(path), "--label", "tissue", "--id-col", "sample_id")
    result = run("search", "rare_class", "--models", "lr", "--folds", "10", "--wait")
    assert "note: AUC is 0 for lr" in result.stderr
    assert "tissue_C (" in result.stderr and "fewer training samples than folds" in result.stderr


def test_a_0_1_label_stays_integer_and_the_leaderboard_is_pycarets(stack, tmp_path, monkeypatch):
    """On a user's file whose label is 0/1, PyCaret reports binary metrics for class 1."""
    from genejobs.tasks.search import SearchSetup, experiment

    table = expression(samples=80, genes=15, classes=2, informative=4, seed=3)
    table["tissue"] = (table["tissue"] == "tissue_B").astype(int)
    path = tmp_path / "binary01.csv"
    table.to_csv(path, index=False)
    run("datasets", "add", str(path), "--label", "tissue", "--id-col", "sample_id")
    result = run(
        "search", "binary01", "--models", "lr,dt,nb", "--folds", "3", "--session-id", "1",
        "--wait", "--format", "json",
    )  # fmt: skip
    ranked = pd.read_json(io.StringIO(result.stdout)).query("status == 'done'")
    monkeypatch.chdir(tmp_path)
    frame = pd.read_csv(path).set_index("sample_id")  # the file as pandas reads it
    assert frame["tissue"].dtype.kind == "i"
    exp = experiment(frame, "tissue", SearchSetup(1, 0.7, 3))
    exp.compare_models(include=["lr", "dt", "nb"], verbose=False, n_select=1)
    reference = exp.pull()
    assert list(ranked["model"]) == list(reference.index)
    for m in METRICS:
        ours = ranked[m.column].to_numpy(dtype=float)
        assert np.abs(ours - reference[m.display].to_numpy(dtype=float)).max() < 1e-6, m.display
    # Binary recall of class 1, not the weighted recall that equals accuracy.
    assert (ranked["recall"] != ranked["accuracy"]).any()


def test_any_ranked_model_can_be_saved_as_the_best_one_is(searched):
    import hashlib

    job_id, board = searched
    second = board[board["rank"] == 2]["model_id"].iloc[0]
    out = run("models", "finalize", second).output
    assert f"model {second} saved as models/{second}.joblib" in out
    (path, digest, accuracy), = sql(
        f"SELECT artifact_path, artifact_sha256, pred_accuracy FROM model_runs "
        f"WHERE model_id = '{second}'"
    )  # fmt: skip
    saved = settings().home / path
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest and 0 <= accuracy <= 1
    assert "already saved" in run("models", "finalize", second).output
    failed = board[board["status"] == "failed"]["model_id"].iloc[0]
    refused("models", "finalize", failed, expect="not ranked")
    refused("models", "finalize", "srch-none-lr", expect="unknown model 'srch-none-lr'")


def test_predict_with_a_saved_model_as_predict_model_does(searched, tmp_path):
    from genejobs.tasks.artifacts import load_artifact

    job_id, board = searched
    best = board[board["rank"] == 1]["model_id"].iloc[0]
    table = small_table()
    path = tmp_path / "new.csv"
    table.to_csv(path, index=False)
    out = run("predict", best, str(path), "--id-col", "sample_id", "--format", "json")
    predicted = pd.read_json(io.StringIO(out.output))
    columns = ["sample_id", "tissue", "prediction_label", "prediction_score"]
    assert list(predicted.columns) == columns
    assert list(predicted["sample_id"]) == list(table["sample_id"])
    ((artifact, digest),) = sql(
        f"SELECT artifact_path, artifact_sha256 FROM model_runs WHERE model_id = '{best}'"
    )
    pipeline = load_artifact(settings().home / artifact, digest)
    expected = pipeline.predict(table.drop(columns=["tissue"]).set_index("sample_id"))
    assert list(predicted["prediction_label"]) == list(expected)
    assert predicted["prediction_score"].between(0, 1).all()
    raw = pd.read_json(io.StringIO(
        run("predict", best, str(path), "--raw-score", "--format", "json").output
    ))  # fmt: skip
    assert {"prediction_score_tissue_A", "prediction_score_tissue_C"} <= set(raw.columns)

    unsaved = board[(board["status"] == "done") & (board["rank"] > 2)]["model_id"].iloc[0]
    refused("predict", unsaved, str(path), expect=f"model {unsaved} is not saved")
    table.drop(columns=["GENE0001", "SIG01"]).to_csv(tmp_path / "fewer.csv", index=False)
    refused("predict", best, str(tmp_path / "fewer.csv"), expect="lacks 2 gene columns")
    refused("predict", "srch-none-lr", str(path), expect="unknown model")
