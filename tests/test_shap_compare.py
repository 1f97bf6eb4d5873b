"""SHAP side by side on a real stack: two predictions of one job (`shap pair`), two model
releases over the same rows (`shap compare`), and plots binned from every row.

SHAP values add up, so every difference shown must add up too: a pair's output
difference is the base difference plus the features' differences, and the
groups' differences are their features' summed.
"""

from __future__ import annotations

import json

import pytest

from genejobs import api
from genejobs.errors import InputError
from genejobs.tasks import synth_l2g
from tests.conftest import refused, run, sql

ROWS = 600
IDS = "study_id,locus_id,gene_id"


def _shap_job(folder, models: str, ids: str = IDS) -> str:
    output = run(
        "shap", "run", str(folder / "table.parquet"), "--partition-col", "chrom",
        "--manifest", str(folder / models / "models.tsv"), "--id-cols", ids,
        "--groups", str(folder / "groups.tsv"), "--shard-rows", "200", "--wait",
    ).output  # fmt: skip
    return output.split("job ")[1].split(":")[0]


@pytest.fixture(scope="module")
def releases(stack, tmp_path_factory):
    """One L2G-like table explained by two releases of its five fold models."""
    folder = tmp_path_factory.mktemp("releases")
    frame = synth_l2g.table(ROWS, seed=7)
    frame.to_parquet(folder / "table.parquet", index=False)
    synth_l2g.write_groups(folder / "groups.tsv")
    synth_l2g.train_models(frame, folder / "v1", trees=12, depth=3)
    synth_l2g.train_models(frame, folder / "v2", trees=20, depth=4)
    return {
        "folder": folder,
        "a": _shap_job(folder, "v1"),
        "b": _shap_job(folder, "v2"),
        "frame": frame,
    }


def _keys_of_one_locus(frame) -> tuple[str, str]:
    locus = frame.groupby(["study_id", "locus_id"]).size().idxmax()
    genes = frame[(frame.study_id == locus[0]) & (frame.locus_id == locus[1])].gene_id
    return tuple(f"{locus[0]}|{locus[1]}|{gene}" for gene in genes.iloc[:2])


def test_a_pair_splits_the_difference_of_two_predictions(releases, tmp_path):
    job = releases["a"]
    key_a, key_b = _keys_of_one_locus(releases["frame"])
    pair = api.shap_pair(job, key_a, key_b)
    outputs = dict(sql(f"SELECT row_key, output FROM shap_rows WHERE job_id = '{job}'"))
    assert pair["output_difference"] == pytest.approx(outputs[key_a] - outputs[key_b], abs=1e-5)
    features = pair["features"]
    assert len(features) == 53 and list(features.columns[:2]) == ["feature", "group"]
    # The features' differences and the base difference add up to the outputs' difference.
    total = pair["base_difference"] + features["difference"].sum()
    assert total == pytest.approx(pair["output_difference"], abs=1e-4)
    assert (features["difference"] == features["shap_a"] - features["shap_b"]).all()
    # Largest first, and the groups are their features summed.
    assert list(features["difference"].abs()) == sorted(features["difference"].abs(), reverse=True)
    by_group = features.groupby("group")["difference"].sum()
    for row in pair["groups"].itertuples():
        assert row.difference == pytest.approx(by_group[row.group], abs=1e-5)
    plot = tmp_path / "pair.png"
    shown = run("shap", "pair", job, key_a, key_b, "--limit", "5", "--plot", str(plot)).output
    assert f"A: row {key_a}" in shown and f"B: row {key_b}" in shown and "A - B: output" in shown
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_says_what_moved_between_two_releases(releases, tmp_path):
    a, b = releases["a"], releases["b"]
    compared = api.shap_compare(a, b, top=5)
    summary = compared["summary"]
    assert summary["matched"] == ROWS and summary["only_in_a"] == summary["only_in_b"] == 0
    assert summary["matched_by"] == IDS.replace(",", ", ")
    outputs = {
        job: dict(sql(f"SELECT row_key, output FROM shap_rows WHERE job_id = '{job}'"))
        for job in (a, b)
    }
    moves = {key: outputs[b][key] - outputs[a][key] for key in outputs[a]}
    largest = sorted(moves, key=lambda k: -abs(moves[k]))[:5]
    assert list(compared["moves"]["row_key"]) == largest
    assert summary["max_abs_move"] == pytest.approx(abs(moves[largest[0]]), abs=1e-5)
    # One row's move splits into its features' moves and the base's.
    moved = api.shap_move(a, b, largest[0])
    total = moved["base_move"] + moved["features"]["move"].sum()
    assert total == pytest.approx(moves[largest[0]], abs=1e-4)
    top_feature = moved["features"]["feature"].iloc[0]
    assert compared["moves"]["top_features"].iloc[0].startswith(top_feature + " ")
    # Both global rankings, side by side: each job's own ranking.
    features = compared["features"].set_index("feature")
    for job, column in ((a, "rank_a"), (b, "rank_b")):
        first = api.shap_global(job).iloc[0]["feature"]
        assert features.loc[first, column] == 1
    assert set(compared["groups"]["group"]) == set(synth_l2g.GROUPS)
    plot = tmp_path / "compare.png"
    shown = run("shap", "compare", a, b, "--top", "3", "--plot", str(plot)).output
    assert f"{ROWS:,} rows matched by study_id, locus_id, gene_id" in shown
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    as_json = json.loads(
        run("shap", "compare", a, b, "--row", largest[0], "--format", "json").output
    )
    assert as_json[0]["feature"] == top_feature


def test_compare_refuses_jobs_whose_rows_cannot_be_matched(releases):
    a = releases["a"]
    refused("shap", "compare", a, a, expect="compare two different SHAP jobs")
    refused("shap", "compare", a, "shap-nosuchjob", expect="unknown SHAP job 'shap-nosuchjob'")
    other = _shap_job(releases["folder"], "v1", ids="study_id,gene_id")
    refused("shap", "compare", a, other, expect="the jobs name their rows by different id columns")
    key = _keys_of_one_locus(releases["frame"])[0]
    refused("shap", "pair", a, key, key, expect="compare two different predictions")
    refused("shap", "pair", a, key, "no|such|row", expect="no row 'no|such|row'")


def test_binned_plots_count_every_row(releases):
    job = releases["a"]
    bins = api.shap_beeswarm_bins(job, top=5, bins=30)
    assert sorted(bins["rank"].unique()) == [1, 2, 3, 4, 5]
    per_feature = bins.groupby("feature")["rows"].sum()
    assert (per_feature == ROWS).all()  # every prediction, none sampled away
    absent = dict(
        sql(
            f"SELECT f.feature, count(*) FILTER (WHERE NOT v.present) FROM shap_values v "
            f"JOIN shap_features f USING (job_id, feature_id) WHERE v.job_id = '{job}' "
            "GROUP BY 1"
        )
    )
    for feature, rows in bins.groupby("feature")["rows_absent"].sum().items():
        assert rows == absent[feature]
    # The most extreme value of the top feature, however rare, is in a bin of its own range.
    top = bins[bins["rank"] == 1]
    feature = top["feature"].iloc[0]
    extreme = sql(
        f"SELECT max(v.shap), min(v.shap) FROM shap_values v JOIN shap_features f "
        f"USING (job_id, feature_id) WHERE v.job_id = '{job}' AND f.feature = '{feature}'"
    )[0]
    assert top["shap_hi"].max() >= extreme[0] - 1e-6 and top["shap_lo"].min() <= extreme[1] + 1e-6
    levels = bins["value_level"].dropna()
    assert ((levels >= 0) & (levels <= 1)).all()
    dependence = api.shap_dependence_bins(job, feature, bins=12)
    counted = dependence["cells"]["rows"].sum() + dependence["absent"]["rows"].sum()
    assert counted == ROWS == dependence["present"] + dependence["missing"]
    with pytest.raises(InputError, match="bins: a whole number from 2 to 200"):
        api.shap_beeswarm_bins(job, bins=100000)
