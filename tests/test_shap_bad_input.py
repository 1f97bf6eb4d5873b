"""Bad input to SHAP jobs: one clear line on stderr, a non-zero exit, and nothing written."""

from __future__ import annotations

import json
import pickle

import pytest

from genejobs.tasks import synth_l2g
from tests.conftest import frame_of, refused, run


@pytest.fixture(scope="module")
def small(stack, tmp_path_factory):
    """A 300-row L2G-like table, its five tiny models, and one finished job."""
    folder = tmp_path_factory.mktemp("shap-bad")
    frame = synth_l2g.table(300, seed=3)
    frame.to_csv(folder / "table.csv", index=False)
    synth_l2g.train_models(frame, folder / "models", trees=3, depth=2)
    result = run(
        "shap", "run", str(folder / "table.csv"), "--partition-col", "chrom",
        "--manifest", str(folder / "models" / "models.tsv"), "--wait",
    )  # fmt: skip
    return {"folder": folder, "frame": frame, "job": result.output.split("job ")[1].split(":")[0]}


def shap_run(small, table=None, *extra):
    return (
        "shap", "run", str(table or small["folder"] / "table.csv"), "--partition-col", "chrom",
        "--manifest", str(small["folder"] / "models" / "models.tsv"), *extra,
    )  # fmt: skip


def test_feature_columns_the_model_needs_and_the_table_lacks(small):
    table = small["folder"] / "lacking.csv"
    small["frame"].drop(columns=["dist_tss_min", "vep_credset_max"]).to_csv(table, index=False)
    line = refused(*shap_run(small, table), expect="lacks 2 feature columns the model needs")
    assert "dist_tss_min" in line and "vep_credset_max" in line


def test_a_pickled_model_is_refused_unread(small, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    refused(
        "shap", "run", str(small["folder"] / "table.csv"), "--model", str(path),
        expect="is not a supported model file",
    )  # fmt: skip


def test_a_json_file_that_is_no_model(small, tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"learner": {"broken": True}}))
    refused(
        "shap", "run", str(small["folder"] / "table.csv"), "--model", str(path),
        expect="cannot load",
    )  # fmt: skip


def test_a_missing_model_file(small, tmp_path):
    refused(
        "shap", "run", str(small["folder"] / "table.csv"), "--model", str(tmp_path / "m.json"),
        expect="no such model file",
    )  # fmt: skip


def test_a_partition_value_with_no_model(small, tmp_path):
    manifest = tmp_path / "models.tsv"
    lines = (small["folder"] / "models" / "models.tsv").read_text().splitlines()
    manifest.write_text(
        "".join(f"{line.split(chr(9))[0]}\t{small['folder'] / 'models' / line.split(chr(9))[1]}\n"
                for line in lines[1:])
    )  # fmt: skip
    refused(
        "shap", "run", str(small["folder"] / "table.csv"), "--partition-col", "chrom",
        "--manifest", str(manifest), expect="chrom value with no model",
    )  # fmt: skip


def test_a_shard_size_below_one(small):
    refused(*shap_run(small, None, "--shard-rows", "0"), expect="--shard-rows")


def test_a_table_with_no_rows(small, tmp_path):
    table = tmp_path / "empty.csv"
    small["frame"].head(0).to_csv(table, index=False)
    refused(*shap_run(small, table), expect="has no")


def test_an_unknown_job_or_row(small):
    refused("shap", "global", "shap-nope", expect="unknown SHAP job 'shap-nope'")
    refused("shap", "presence", "shap-nope", expect="unknown SHAP job 'shap-nope'")
    refused("shap", "local", "shap-nope", "1", expect="unknown SHAP job 'shap-nope'")
    refused("shap", "local", small["job"], "no-such-row", expect="no row 'no-such-row'")
    refused("shap", "report", "shap-nope", "--out", str(small["folder"] / "r"), expect="unknown")


@pytest.mark.parametrize("view", ["global", "presence"])
def test_a_class_the_models_lack(small, view):
    # The L2G models are binary: one output, class 0.
    refused("shap", view, small["job"], "--class", "9", expect="no class 9 in SHAP job")


def test_a_binary_jobs_class_is_its_positive_class(small):
    shown = run("shap", "global", small["job"], "--class", "1", "--format", "json")
    assert shown.exit_code == 0 and '"mean_abs_shap"' in shown.output
    refused("shap", "global", small["job"], "--class", "0", expect="classes are 1 (binary models)")


def test_class_names_for_model_files(small):
    """Model files do not name their classes: --class-names does, and views use them."""
    refused(*shap_run(small, None, "--class-names", "a,b,c"), expect="needs 2 distinct names")
    refused(*shap_run(small, None, "--class-names", "yes,yes"), expect="needs 2 distinct names")
    named = run(*shap_run(small, None, "--class-names", "other,causal", "--wait"))
    job = named.output.split("job ")[1].split(":")[0]
    by_name = frame_of(run("shap", "global", job, "--class", "causal", "--format", "json"))
    assert by_name.equals(frame_of(run("shap", "global", job, "--format", "json")))
    assert "class 1 (causal)" in run("shap", "global", job, "--class", "causal").output
    assert "class 1 (causal)" in run("shap", "presence", job, "--class", "1").output
    refused("shap", "global", job, "--class", "other", expect="1 (causal, the positive class)")


def test_groups_that_do_not_fit(small, tmp_path):
    refused("shap", "global", small["job"], "--by-group", expect="has no feature groups")
    groups = tmp_path / "groups.tsv"
    groups.write_text("feature\tgroup\ndist_foot_min\tdistance\nno_such_feature\tother\n")
    refused(*shap_run(small, None, "--groups", str(groups)), expect="no_such_feature")
    groups.write_text("dist_foot_min distance\n")
    refused(*shap_run(small, None, "--groups", str(groups)), expect="feature<TAB>group")
