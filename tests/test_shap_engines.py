"""SHAP engines: `auto` picks woodelf per model where it equals the reference, else falls back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genejobs.errors import InputError
from genejobs.tasks import synth_l2g
from genejobs.tasks.shap_engines import CHECK_TOLERANCE, choose_engine, explain
from genejobs.tasks.shap_input import ModelChoice, prepare_job, shard_rows_for
from genejobs.tasks.shap_shard import JobInput, explain_rows
from genejobs.tasks.tree_models import load_model
from tests.conftest import run, sql

pytest.importorskip("woodelf")


@pytest.fixture(scope="module")
def l2g():
    """An L2G-like table (most features missing) and a binary XGBoost model of 60 trees."""
    from xgboost import XGBClassifier

    frame = synth_l2g.table(3000, seed=5)
    model = XGBClassifier(n_estimators=60, max_depth=6, learning_rate=0.1, n_jobs=1)
    model.fit(frame[synth_l2g.FEATURES].iloc[:2000], frame[synth_l2g.LABEL].iloc[:2000])
    return frame, model


def _saved(tmp_path, model, name: str) -> str:
    path = tmp_path / name
    (model.booster_ if hasattr(model, "booster_") else model).save_model(str(path))
    return str(path)


def _reference(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pred_contribs / pred_contrib as [n, outputs, features] and the base values."""
    from genejobs.tasks.shap_engines import _native_contributions

    contribs = _native_contributions(model, X)
    return contribs[:, :, :-1], contribs[0, :, -1]


def _rows(X: np.ndarray) -> JobInput:
    n = len(X)
    return JobInput(
        row_id=np.arange(n, dtype=np.int32),
        source_row=np.arange(n, dtype=np.int32),
        row_key=np.asarray([str(i) for i in range(n)], dtype=object),
        partition=np.full(n, None, dtype=object),
        model_id=np.zeros(n, dtype=np.int16),
        X=X,
    )


def test_auto_picks_woodelf_for_binary_xgboost_with_missing_values(l2g, tmp_path):
    frame, fitted = l2g
    job = prepare_job(frame, [ModelChoice(_saved(tmp_path, fitted, "m.json"), None)])
    spec = job.models[0]
    assert spec["engine"] == "woodelf"
    assert spec["engine_note"].startswith("woodelf (equals TreeExplainer within")
    assert job.notes == (f"model m0: {spec['engine_note']}",)
    model = load_model(spec["source"])
    X = frame[synth_l2g.FEATURES].to_numpy(np.float32)
    assert np.isnan(X).mean() > 0.4  # most of an L2G row is missing
    got = explain(model, X, spec["engine"])
    reference, base = _reference(model, X)
    assert np.abs(got.shap - reference).max() < CHECK_TOLERANCE
    assert np.abs(got.base - base).max() < CHECK_TOLERANCE
    assert np.abs(got.base + got.shap.sum(axis=2) - got.output).max() < 1e-4
    # Tables in float64: woodelf's own float32 ones drift about 1e-5 over 300 trees.
    fast = explain(model, X, "fast")
    assert np.abs(got.shap - fast.shap).max() < 1e-7


def test_a_shard_computed_with_woodelf_passes_its_additivity_check(l2g):
    from genejobs.tasks.tree_models import from_estimator

    frame, fitted = l2g
    X = frame[synth_l2g.FEATURES].to_numpy(np.float32)
    model = from_estimator(fitted)
    result = explain_rows(
        _rows(X), {0: (model, list(range(X.shape[1])))}, False, "auto", {0: "woodelf"}
    )
    assert result.engines == ("woodelf",)
    assert result.additivity_failures == 0 and result.max_additivity_error < 1e-4
    values = result.values.to_pandas()
    stored = values.pivot(index="row_id", columns="feature_id", values="shap").to_numpy()
    assert np.abs(stored - _reference(model, X)[0][:, 0, :]).max() < 2e-6  # rounded to 1e-6


def test_multiclass_xgboost_falls_back_with_its_reason(l2g, tmp_path):
    from xgboost import XGBClassifier

    frame, _ = l2g
    X = frame[synth_l2g.FEATURES]
    fitted = XGBClassifier(n_estimators=15, max_depth=4, n_jobs=1).fit(X, np.arange(len(X)) % 3)
    job = prepare_job(frame, [ModelChoice(_saved(tmp_path, fitted, "m.ubj"), None)])
    spec = job.models[0]
    assert spec["engine"] == "native"
    assert spec["engine_note"] == (
        "woodelf explains one output and the model has 3 classes; using native"
    )
    model = load_model(spec["source"])
    got = explain(model, X.to_numpy(np.float32), spec["engine"])
    reference, base = _reference(model, X.to_numpy(np.float32))
    assert got.shap.shape == (len(X), 3, 53)
    assert np.abs(got.shap - reference).max() < CHECK_TOLERANCE
    with pytest.raises(InputError, match="3 classes"):
        choose_engine(model, "woodelf")


def test_lightgbm_falls_back_where_woodelf_differs_and_values_equal_the_reference(l2g, tmp_path):
    """Zeros as missing: woodelf (and FastTreeSHAP) route rows otherwise than LightGBM."""
    import lightgbm

    frame, _ = l2g
    X = frame[synth_l2g.FEATURES]
    fitted = lightgbm.LGBMClassifier(
        n_estimators=20, max_depth=5, num_leaves=20, zero_as_missing=True, verbose=-1, n_jobs=1
    ).fit(X.fillna(0), frame[synth_l2g.LABEL])
    job = prepare_job(frame, [ModelChoice(_saved(tmp_path, fitted, "m.txt"), None)])
    spec = job.models[0]
    assert spec["engine"] != "woodelf"
    assert spec["engine_note"].startswith("woodelf differs from TreeExplainer by ")
    assert "on 200 rows" in spec["engine_note"] and f"using {spec['engine']}" in spec["engine_note"]
    model = load_model(spec["source"])
    got = explain(model, X.to_numpy(np.float32), spec["engine"])
    reference, _ = _reference(model, X.to_numpy(np.float32))
    assert np.abs(got.shap - reference).max() < CHECK_TOLERANCE


def test_lightgbm_with_paths_too_wide_for_woodelf_falls_back(l2g, tmp_path):
    import lightgbm

    frame, _ = l2g
    X = frame[synth_l2g.FEATURES]
    fitted = lightgbm.LGBMClassifier(
        n_estimators=10, num_leaves=64, min_child_samples=2, verbose=-1, n_jobs=1
    ).fit(X, frame[synth_l2g.LABEL])
    job = prepare_job(frame, [ModelChoice(_saved(tmp_path, fitted, "m.txt"), None)])
    spec = job.models[0]
    assert spec["engine"] == "fast"
    assert spec["engine_note"].startswith("woodelf: a path of its trees splits on ")
    assert "; using fast (equals TreeExplainer within " in spec["engine_note"]


def test_an_engine_asked_for_is_kept_unchecked(l2g, tmp_path):
    frame, fitted = l2g
    path = _saved(tmp_path, fitted, "m.json")
    job = prepare_job(frame, [ModelChoice(path, None)], engine="fast")
    assert job.models[0]["engine"] == "fast" and job.notes == ("model m0: fast, as asked",)


def test_shard_rows_suit_the_engine_that_explains_most_rows():
    rows = np.repeat(np.arange(3), [200_000, 100_000, 23_604])
    specs = [{"model_id": 0, "engine": "woodelf"}, {"model_id": 1, "engine": "woodelf"},
             {"model_id": 2, "engine": "fast"}]  # fmt: skip
    assert shard_rows_for(specs, rows) == 25_000
    specs[0]["engine"] = "fast"
    assert shard_rows_for(specs, rows) == 10_000
    # A small job still gets shards for every worker.
    assert shard_rows_for([{"model_id": 0, "engine": "woodelf"}], np.zeros(20_000)) == 2_500
    assert shard_rows_for([{"model_id": 0, "engine": "woodelf"}], np.zeros(300)) == 1_000


def test_a_job_records_each_models_engine_and_its_shards_run_it(stack, tmp_path):
    frame = synth_l2g.table(1500, seed=9)
    table = tmp_path / "l2g.parquet"
    frame.to_parquet(table, index=False)
    synth_l2g.train_models(frame, tmp_path / "models", trees=20, depth=4)
    result = run(
        "shap", "run", str(table), "--partition-col", "chrom",
        "--manifest", str(tmp_path / "models" / "models.tsv"), "--shard-rows", "400", "--wait",
    )  # fmt: skip
    job_id = result.output.split("job ")[1].split(":")[0]
    params = json.loads(sql(f"SELECT params FROM shap_jobs WHERE job_id = '{job_id}'")[0][0])
    assert [m["engine"] for m in params["models"]] == ["woodelf"] * 5
    assert all("equals TreeExplainer within" in m["engine_note"] for m in params["models"])
    shards = sql(
        f"SELECT string_agg(DISTINCT engine), sum(additivity_failures) FROM shap_shards "
        f"WHERE job_id = '{job_id}' AND status = 'done'"
    )[0]
    assert shards == ("woodelf", 0)
    stored = pd.DataFrame(
        sql(
            f"SELECT r.source_row, v.feature_id, v.shap FROM shap_values v JOIN shap_rows r "
            f"USING (job_id, row_id, class) WHERE v.job_id = '{job_id}'"
        ),
        columns=["source_row", "feature_id", "shap"],
    ).pivot(index="source_row", columns="feature_id", values="shap")
    for line in (tmp_path / "models" / "models.tsv").read_text().splitlines():
        chroms, name = line.split("\t")
        rows = np.flatnonzero(frame["chrom"].isin(chroms.split(",")))
        model = load_model(str(tmp_path / "models" / name))
        X = frame[synth_l2g.FEATURES].to_numpy(np.float32)[rows]
        assert np.abs(stored.loc[rows].to_numpy() - _reference(model, X)[0][:, 0]).max() < 2e-6
