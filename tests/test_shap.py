"""SHAP jobs through the real stack: shards on compute workers, spool, writer ingest, views."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genejobs.config import settings
from genejobs.tasks import synth_l2g
from genejobs.worker import inbox
from tests.conftest import frame_of, run, sql, wait_until

ROWS = 2400


def job_of(result) -> str:
    return result.output.split("job ")[1].split(":")[0]


@pytest.fixture(scope="module")
def l2g(stack, tmp_path_factory):
    """A small L2G-like table, its five fold models, and one SHAP job over it."""
    folder = tmp_path_factory.mktemp("l2g")
    table = folder / "l2g.parquet"
    run(
        "datasets",
        "synth-l2g",
        "--rows",
        str(ROWS),
        "--out",
        str(table),
        "--train-models",
        str(folder / "models"),
        "--trees",
        "25",
        "--depth",
        "4",
    )
    result = run(
        "shap",
        "run",
        str(table),
        "--partition-col",
        "chrom",
        "--manifest",
        str(folder / "models" / "models.tsv"),
        "--id-cols",
        "study_id,locus_id,gene_id",
        "--shard-rows",
        "500",
        "--wait",
    )
    return {"table": table, "models": folder / "models", "job": job_of(result), "out": result}


def values_of(job_id: str) -> pd.DataFrame:
    """A job's stored values, with each row's position in the table it was given."""
    rows = sql(
        f"SELECT r.source_row, f.feature, v.value, v.present, v.shap FROM shap_values v "
        f"JOIN shap_features f USING (job_id, feature_id) "
        f"JOIN shap_rows r USING (job_id, row_id, class) WHERE v.job_id = '{job_id}'"
    )
    return pd.DataFrame(rows, columns=["source_row", "feature", "value", "present", "shap"])


def test_synth_l2g_has_the_published_shape(l2g):
    table = pd.read_parquet(l2g["table"])
    assert len(table) == ROWS
    assert len(synth_l2g.FEATURES) == 53
    assert [len(names) for names, _ in synth_l2g.GROUPS.values()] == [8, 18, 12, 8, 7]
    present = table[synth_l2g.FEATURES].notna().mean()
    assert present[synth_l2g.GROUPS["distance"][0]].min() > 0.97
    assert present[synth_l2g.GROUPS["qtl_coloc"][0]].max() < 0.12
    assert present[synth_l2g.GROUPS["vep"][0]].max() < 0.15
    assert present[synth_l2g.GROUPS["helpers"][0]].min() == 1.0
    assert 0.05 < table["gold_standard"].mean() < 0.2
    manifest = (l2g["models"] / "models.tsv").read_text().splitlines()
    assert len(manifest) == 5
    assert sorted(c for line in manifest for c in line.split("\t")[0].split(",")) == sorted(
        synth_l2g.CHROMOSOMES
    )


def test_every_row_is_stored_once_with_its_partition_model_and_adds_up(l2g):
    job_id = l2g["job"]
    assert f"{ROWS} rows explained; additivity failures 0" in l2g["out"].output
    assert sql(f"SELECT count(*), count(DISTINCT row_id) FROM shap_rows WHERE job_id = '{job_id}'")[
        0
    ] == (ROWS, ROWS)
    assert sql(f"SELECT count(*) FROM shap_values WHERE job_id = '{job_id}'")[0][0] == ROWS * 53
    assert (
        sql(
            f"SELECT count(*) FROM (SELECT row_id, feature_id FROM shap_values "
            f"WHERE job_id = '{job_id}' GROUP BY ALL HAVING count(*) > 1)"
        )[0][0]
        == 0
    )
    # Each row was explained by the model for its chromosome.
    wrong = sql(
        f"SELECT count(*) FROM shap_rows r JOIN shap_models m USING (job_id, model_id) "
        f"WHERE r.job_id = '{job_id}' AND NOT list_contains(m.partitions, r.partition)"
    )[0][0]
    assert wrong == 0
    table = pd.read_parquet(l2g["table"])
    keys = sql(
        f"SELECT source_row, row_key, partition FROM shap_rows WHERE job_id = '{job_id}' "
        f"ORDER BY hash(row_id) LIMIT 50"
    )
    for source_row, key, partition in keys:
        source = table.iloc[source_row]
        assert key == f"{source.study_id}|{source.locus_id}|{source.gene_id}"
        assert partition == str(source.chrom)
    # The stored values add up to the stored output.
    sums = sql(
        f"""SELECT max(abs(r.base_value + s.total - r.output)), max(abs(r.probability
                  - 1 / (1 + exp(-r.output))))
            FROM shap_rows r JOIN (SELECT row_id, sum(shap) AS total FROM shap_values
                 WHERE job_id = '{job_id}' GROUP BY row_id) s USING (row_id)
            WHERE r.job_id = '{job_id}'"""
    )[0]
    assert sums[0] < 1e-3 and sums[1] < 1e-5
    shards = sql(
        f"SELECT count(*), sum(additivity_failures), max(max_additivity_error), "
        f"string_agg(DISTINCT engine) FROM shap_shards WHERE job_id = '{job_id}' "
        f"AND status = 'done'"
    )[0]
    assert shards[0] == ROWS // 500 + (ROWS % 500 > 0) and shards[1] == 0 and shards[2] < 1e-3
    # `auto` picks WOODELF for single-output XGBoost models where it equals TreeExplainer.
    assert shards[3] == "woodelf"
    leftover = list((settings().spool_dir / "shap" / job_id).glob("*.parquet"))
    assert leftover == []


def test_stored_values_match_shap_tree_explainer(l2g):
    import shap
    import xgboost

    job_id = l2g["job"]
    table = pd.read_parquet(l2g["table"])
    stored = values_of(job_id).pivot(index="source_row", columns="feature", values="shap")
    base = dict(sql(f"SELECT source_row, base_value FROM shap_rows WHERE job_id = '{job_id}'"))
    for line in (l2g["models"] / "models.tsv").read_text().splitlines():
        chroms, name = line.split("\t")
        rows = table.index[table["chrom"].isin(chroms.split(","))][:40]
        booster = xgboost.Booster(model_file=str(l2g["models"] / name))
        explainer = shap.TreeExplainer(booster)
        expected = explainer.shap_values(table.loc[rows, synth_l2g.FEATURES])
        got = stored.loc[rows, synth_l2g.FEATURES].to_numpy()
        assert np.abs(got - expected).max() < 1e-4, name
        assert abs(base[rows[0]] - float(explainer.expected_value)) < 1e-4


def test_a_redelivered_shard_never_duplicates_rows(l2g):
    from genejobs.units import Task, Unit
    from genejobs.worker.app import enqueue

    job_id = l2g["job"]
    before = sql(f"SELECT count(*) FROM shap_values WHERE job_id = '{job_id}'")[0][0]
    input_path, zero_is_present, engine, params = sql(
        "SELECT input_path, zero_is_present, engine, params FROM shap_jobs "
        f"WHERE job_id = '{job_id}'"
    )[0]
    first_row, n_rows = sql(
        f"SELECT first_row, n_rows FROM shap_shards WHERE job_id = '{job_id}' AND shard = 0"
    )[0]
    kwargs = {
        "job_id": job_id, "shard": 0, "input_path": input_path, "first_row": first_row,
        "n_rows": n_rows, "models": json.loads(params)["models"],
        "zero_is_present": zero_is_present, "engine": engine,
    }  # fmt: skip
    enqueue([Unit(Task.SHAP_SHARD, job_id, f"{job_id}-0", kwargs, "shap again", resend="again")])
    wait_until(
        lambda: (
            sql(f"SELECT attempts FROM shap_shards WHERE job_id = '{job_id}' AND shard = 0")[0][0]
            == 2
        ),
        what="the repeated shard to reach the writer",
    )
    assert sql(f"SELECT count(*) FROM shap_values WHERE job_id = '{job_id}'")[0][0] == before
    assert sql(f"SELECT count(*) FROM shap_rows WHERE job_id = '{job_id}'")[0][0] == ROWS
    wait_until(
        lambda: not list((settings().spool_dir / "shap" / job_id).glob("*.parquet")),
        what="the spool to be emptied",
    )


def test_global_local_and_presence_views(l2g, tmp_path):
    job_id = l2g["job"]
    values = values_of(job_id)
    expected = values.assign(abs_shap=values["shap"].abs()).groupby("feature")["abs_shap"].mean()
    expected = (
        expected.round(7).reset_index().sort_values(["abs_shap", "feature"], ascending=[0, 1])
    )
    expected = expected.set_index("feature")["abs_shap"]
    plot = tmp_path / "global.png"
    shown = frame_of(run("shap", "global", job_id, "--format", "json", "--plot", str(plot)))
    assert list(shown["feature"]) == list(expected.index)
    assert np.allclose(shown["mean_abs_shap"], expected.to_numpy(), atol=1e-6)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    per_model = frame_of(run("shap", "global", job_id, "--by-model", "--format", "json"))
    assert per_model["model"].nunique() == 5 and len(per_model) == 5 * 53

    key = sql(f"SELECT row_key FROM shap_rows WHERE job_id = '{job_id}' ORDER BY output DESC")[0][0]
    plot = tmp_path / "local.png"
    result = run("shap", "local", job_id, key, "--format", "json", "--plot", str(plot))
    contributions = frame_of(result)
    assert len(contributions) == 53
    assert list(contributions["shap"].abs()) == sorted(contributions["shap"].abs(), reverse=True)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert key in run("shap", "local", job_id, key).output
    number = sql(
        f"SELECT source_row FROM shap_rows WHERE job_id = '{job_id}' AND row_key = '{key}'"
    )[0][0]
    assert key in run("shap", "local", job_id, str(number)).output  # its place in the table

    plot = tmp_path / "presence.png"
    presence = frame_of(
        run("shap", "presence", job_id, "--format", "json", "--plot", str(plot))
    ).set_index("feature")
    rates = values.groupby("feature")["present"].mean()
    assert np.allclose(presence.loc[rates.index, "presence_rate"], rates)
    present = values[values["present"]]
    mean_present = present.assign(a=present["shap"].abs()).groupby("feature")["a"].mean()
    assert np.allclose(presence.loc[mean_present.index, "mean_abs_shap_present"], mean_present)
    top = values.loc[values.assign(a=values["shap"].abs()).groupby("source_row")["a"].idxmax()]
    top = top[top["present"]].groupby("feature").size()
    share = (top / present.groupby("feature").size()).fillna(0)
    assert np.allclose(presence.loc[share.index, "top_share_present"].fillna(0), share)
    assert presence.loc["dist_foot_min", "presence_rate"] > 0.97
    assert plot.read_bytes()[:4] == b"\x89PNG"

    page = run("shap", "report", job_id, "--out", str(tmp_path / "report")).output
    html = (tmp_path / "report" / "index.html").read_text()
    assert "index.html" in page
    assert html.count("data:image/png;base64,") >= 3 and "Presence" in html


def _small_table(classes: int, rows: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(classes)
    X = rng.normal(size=(rows, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int)
    if classes > 2:
        y = y + (np.nan_to_num(X[:, 2]) > 0.5).astype(int)
    frame = pd.DataFrame(X, columns=[f"g{i}" for i in range(6)])
    frame.insert(0, "sample", [f"s{i}" for i in range(rows)])
    return frame, y


def _job_matches_reference(job_id: str, frame: pd.DataFrame, reference: np.ndarray, base):
    """Compare a job's stored SHAP values ([rows, features, outputs]) and bases with a reference."""
    rows = sql(
        f"SELECT r.source_row, v.class, v.feature_id, v.shap FROM shap_values v "
        f"JOIN shap_rows r USING (job_id, row_id, class) WHERE v.job_id = '{job_id}'"
    )
    stored = np.zeros_like(reference)
    classes = sorted({r[1] for r in rows})
    for source_row, cls, feature_id, value in rows:
        stored[source_row, feature_id, classes.index(cls)] = value
    assert np.abs(stored - reference).max() < 1e-4
    bases = sql(f"SELECT DISTINCT class, base_value FROM shap_rows WHERE job_id = '{job_id}'")
    assert np.allclose(sorted(b for _, b in bases), sorted(np.ravel(base)), atol=1e-4)
    failures = sql(f"SELECT sum(additivity_failures) FROM shap_shards WHERE job_id = '{job_id}'")[
        0
    ][0]
    assert failures == 0


def test_lightgbm_and_multiclass_xgboost_models(stack, tmp_path):
    import lightgbm
    import shap
    import xgboost

    for name, classes in (("lgb", 2), ("xgb", 3)):
        frame, y = _small_table(classes)
        features = [c for c in frame.columns if c != "sample"]
        if name == "lgb":
            model = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1)
            model.fit(frame[features], y)
            path = tmp_path / "model.txt"
            model.booster_.save_model(str(path))
        else:
            model = xgboost.XGBClassifier(n_estimators=30, max_depth=4, n_jobs=1)
            model.fit(frame[features], y)
            path = tmp_path / "model.ubj"
            model.save_model(str(path))
        # Columns in another order are matched by name.
        table = tmp_path / f"{name}.csv"
        frame[["sample", *features[::-1]]].to_csv(table, index=False)
        result = run(
            "shap", "run", str(table), "--model", str(path), "--id-cols", "sample",
            "--shard-rows", "150", "--wait",
        )  # fmt: skip
        job_id = job_of(result)
        explainer = shap.TreeExplainer(model)
        reference = np.asarray(explainer.shap_values(frame[features]))
        if reference.ndim == 2:
            reference = reference[:, :, None]
        _job_matches_reference(job_id, frame, reference, explainer.expected_value)
        counts = sql(
            f"SELECT count(*), count(DISTINCT class) FROM shap_rows WHERE job_id = '{job_id}'"
        )[0]
        assert counts == (len(frame) * (1 if classes == 2 else classes), 1 if classes == 2 else 3)
        if classes > 2:
            # Probabilities over the classes of a row sum to one.
            sums = sql(
                f"SELECT max(abs(s - 1)) FROM (SELECT sum(probability) s FROM shap_rows "
                f"WHERE job_id = '{job_id}' GROUP BY row_id)"
            )[0][0]
            assert sums < 1e-5
            shown = frame_of(run("shap", "global", job_id, "--class", "2", "--format", "json"))
            assert len(shown) == len(features) and set(shown["class"]) == {2}


@pytest.mark.parametrize("family", ["rf", "et", "dt", "gbc"])
def test_scikit_learn_tree_models_match_shap(family):
    """scikit-learn ensembles come as fitted estimators (model search); the pure function."""
    import shap
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    from genejobs.tasks.shap_shard import JobInput, explain_rows
    from genejobs.tasks.tree_models import from_estimator

    makers = {
        "rf": lambda: RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1),
        "et": lambda: ExtraTreesClassifier(n_estimators=15, random_state=0, n_jobs=1),
        "dt": lambda: DecisionTreeClassifier(max_depth=5, random_state=0),
        "gbc": lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
    }
    for classes in (2, 3) if family != "gbc" else (2,):
        frame, y = _small_table(classes, rows=200)
        X = np.nan_to_num(frame.drop(columns="sample").to_numpy(np.float32))
        estimator = makers[family]().fit(X, y)
        rows = JobInput(
            row_id=np.arange(len(X), dtype=np.int32),
            source_row=np.arange(len(X), dtype=np.int32),
            row_key=np.asarray([str(i) for i in range(len(X))], dtype=object),
            partition=np.full(len(X), None, dtype=object),
            model_id=np.zeros(len(X), dtype=np.int16),
            X=X,
        )
        model = from_estimator(estimator)
        result = explain_rows(rows, {0: (model, list(range(X.shape[1])))})
        assert result.additivity_failures == 0 and result.engines == ("shap",)
        values = result.values.to_pandas()
        reference = np.asarray(shap.TreeExplainer(estimator).shap_values(X))
        if reference.ndim == 2:
            reference = reference[:, :, None]
        if classes == 2 and reference.shape[2] == 2:
            reference = reference[:, :, 1:]
        for k, cls in enumerate(sorted(values["class"].unique())):
            part = values[values["class"] == cls].pivot(
                index="row_id", columns="feature_id", values="shap"
            )
            assert np.abs(part.to_numpy() - reference[:, :, k]).max() < 1e-5


def test_progress_counts_shards(l2g):
    counts = inbox.progress(l2g["job"])
    assert counts["done"] == ROWS // 500 + 1 and counts["pending"] == 0
    shown = frame_of(run("shap", "list", "--format", "json"))
    assert l2g["job"] in set(shown["job_id"])
    summary = json.loads(run("shap", "show", l2g["job"], "--format", "json").output)
    assert summary["rows_done"] == ROWS and len(summary["models"]) == 5


def test_a_registered_dataset_is_explained_by_name(stack, tmp_path):
    import xgboost

    frame, y = _small_table(2, rows=120)
    frame["label"] = np.where(y == 1, "yes", "no")
    features = [f"g{i}" for i in range(6)]
    filled = frame.fillna(0.0)
    filled.to_csv(tmp_path / "named.csv", index=False)
    run("datasets", "add", str(tmp_path / "named.csv"), "--label", "label", "--id-col", "sample")
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1)
    model.fit(filled[features], y)
    model.save_model(str(tmp_path / "named.json"))
    # The label column is not a feature, and the dataset's id column keys the rows.
    job_id = job_of(run("shap", "run", "named", "--model", str(tmp_path / "named.json"), "--wait"))
    keys = {r[0] for r in sql(f"SELECT row_key FROM shap_rows WHERE job_id = '{job_id}'")}
    assert keys == set(frame["sample"])
    zero_is_absent = sql(
        f"SELECT count(*) FROM shap_values WHERE job_id = '{job_id}' AND value = 0 AND present"
    )[0][0]
    assert zero_is_absent == 0


def test_a_commands_reading_of_xgboost_json_equals_xgboosts(tmp_path):
    """`shap run` reads an XGBoost JSON model's header without xgboost; it must say what
    xgboost says (features, outputs, kind), and refuse trees xgboost could not build."""
    import dataclasses

    import xgboost

    from genejobs.errors import InputError
    from genejobs.tasks.tree_models import describe_model, load_model

    def described(path):
        return {
            f.name: getattr(m, f.name)
            for m in (describe_model(str(path)),)
            for f in dataclasses.fields(m)
            if f.name != "model"
        }

    def loaded(path):
        m = load_model(str(path))
        return {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name != "model"}

    cases = []
    for classes, named, objective in (
        (2, True, None),
        (2, False, None),
        (3, True, None),
        (4, False, None),
        (2, True, "binary:logitraw"),
    ):
        frame, y = _small_table(classes)
        features = [c for c in frame.columns if c != "sample"]
        X = frame[features] if named else frame[features].to_numpy()
        extra = {"objective": objective} if objective else {}
        model = xgboost.XGBClassifier(n_estimators=7, max_depth=3, n_jobs=1, **extra).fit(X, y)
        path = tmp_path / f"m{len(cases)}.json"
        model.save_model(str(path))
        cases.append(path)
    frame, y = _small_table(3)
    vector_leaves = xgboost.XGBClassifier(
        n_estimators=4,
        max_depth=2,
        n_jobs=1,
        tree_method="hist",
        multi_strategy="multi_output_tree",
    ).fit(frame.drop(columns="sample"), y)
    vector_leaves.save_model(str(tmp_path / "vector.json"))  # read by xgboost itself
    cases.append(tmp_path / "vector.json")
    regressor = xgboost.XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1)
    frame, y = _small_table(2)
    regressor.fit(frame.drop(columns="sample"), y.astype(float))
    regressor.save_model(str(tmp_path / "regressor.json"))
    cases.append(tmp_path / "regressor.json")
    for path in cases:
        assert described(path) == loaded(path), path
    assert describe_model(str(cases[0])).model is None

    document = json.loads(cases[2].read_text())
    tree = document["learner"]["gradient_booster"]["model"]["trees"][3]
    tree["split_conditions"] = tree["split_conditions"][:-1]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    with pytest.raises(InputError, match="cannot load .* as xgboost-json"):
        describe_model(str(broken))
    with pytest.raises(InputError, match="cannot load"):
        load_model(str(broken))
    document = json.loads(cases[0].read_text())
    document["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 10**6
    broken.write_text(json.dumps(document))
    with pytest.raises(InputError, match="a child outside the tree"):
        describe_model(str(broken))


def _boxes(fig, texts) -> list:
    """The drawn extents (pixels) of `texts`: of an annotation, its text without its leader."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for t in texts]


def _overlaps(boxes) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]


def _inside(box, frame) -> bool:
    return (
        frame.x0 - 0.5 <= box.x0
        and box.x1 <= frame.x1 + 0.5
        and frame.y0 - 0.5 <= box.y0
        and box.y1 <= frame.y1 + 0.5
    )


def test_a_waterfalls_long_title_and_labels_fit_in_the_figure(tmp_path):
    from genejobs.cli.shap_plots import waterfall_figure, waterfall_png

    rng = np.random.default_rng(3)
    features = list(synth_l2g.FEATURES)
    shap = rng.normal(0, 0.3, len(features)) * np.linspace(3, 0.05, len(features))
    contributions = pd.DataFrame(
        {"feature": features, "value": rng.uniform(0, 5000, len(features)), "shap": shap}
    ).sort_values("shap", key=abs, ascending=False)
    contributions.loc[contributions.index[2], "feature"] = "a_feature_named_by_a_pipeline_" * 3
    key = "GCST90002357|chr19_44908684_T_C_rs429358_a_long_locus|ENSG00000130203"
    header = {
        "row_key": key,
        "model": "/data/runs/2024-06-01/l2g/models/xgboost_fold2_chromosomes_1_3_8_trained.json",
        "family": "xgboost",
        "class": 1,
        "class_name": "gold standard",
        "base_value": -2.069,
        "output": -2.069 + shap.sum(),
        "probability": 0.7051,
    }
    fig = waterfall_figure(header, contributions)
    (ax,) = fig.axes
    labels = ax.get_yticklabels()
    title, *boxes = _boxes(fig, [*fig.texts, *labels])
    assert _inside(title, fig.bbox) and not title.overlaps(ax.get_window_extent())
    shown = fig.texts[0].get_text().replace("\n", "")
    assert key in shown and "probability 0.705" in shown and "xgboost_fold2" in shown
    assert all(_inside(box, fig.bbox) for box in boxes) and not _overlaps(boxes)
    assert len(labels) == 16 and "…" in "".join(label.get_text() for label in labels)
    waterfall_png(header, contributions, str(tmp_path / "local.png"))
    assert (tmp_path / "local.png").read_bytes()[:4] == b"\x89PNG"


def test_the_presence_plot_names_its_top_features_without_overlap(tmp_path):
    from genejobs.cli.shap_plots import presence_figure, presence_png

    rng = np.random.default_rng(5)
    features = list(synth_l2g.FEATURES)
    # As in L2G: the distance features are all present with like contributions, and
    # the rare ones crowd near zero presence.
    rates = np.r_[np.full(12, 0.995) + rng.uniform(0, 0.005, 12), rng.uniform(0.03, 0.3, 41)]
    means = np.r_[0.05 + rng.uniform(0, 0.01, 12), rng.uniform(0, 0.06, 41)]
    table = pd.DataFrame(
        {"feature": features, "presence_rate": rates, "mean_abs_shap_present": means}
    )
    table.loc[3, "feature"] = "a_feature_with_a_very_long_name_from_another_pipeline"
    fig = presence_figure(table, "shap-677a3f4008, class 1 (gold standard)")
    (ax,) = fig.axes
    names = _boxes(fig, ax.texts)
    top = table.nlargest(12, "mean_abs_shap_present")
    assert len(names) == 12 and not _overlaps(names)
    assert {t.get_text() for t in ax.texts} >= set(top["feature"]) - {table.loc[3, "feature"]}
    frame = ax.get_window_extent()
    assert all(_inside(box, frame) for box in names)
    points = ax.transData.transform(top[["presence_rate", "mean_abs_shap_present"]].to_numpy())
    assert not any(box.contains(x, y) for box in names for x, y in points)
    assert all(_inside(box, fig.bbox) for box in _boxes(fig, fig.texts))
    presence_png(table, "shap-677a3f4008", str(tmp_path / "presence.png"))
    assert (tmp_path / "presence.png").read_bytes()[:4] == b"\x89PNG"
