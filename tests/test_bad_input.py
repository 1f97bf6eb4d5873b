"""Bad input: one clear line on stderr, a non-zero exit, and nothing written."""

from __future__ import annotations

import pandas as pd
import pytest

from genejobs.storage.synth import expression
from tests.conftest import refused, run, run_subprocess, sql


def write(tmp_path, table: pd.DataFrame, name="data.csv", **kwargs) -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",", **kwargs)
    return str(path)


@pytest.fixture
def good():
    return expression(samples=40, genes=8, classes=2, informative=3)


def add(path, *extra):
    return ("datasets", "add", path, "--label", "tissue", "--id-col", "sample_id", *extra)


def test_missing_file(stack, tmp_path):
    refused(*add(str(tmp_path / "nope.csv")), expect="no such file")


def test_empty_file(stack, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    refused(*add(str(tmp_path / "empty.csv")), expect="is empty")


def test_header_only_file(stack, tmp_path):
    (tmp_path / "header.csv").write_text("sample_id,tissue,g1\n")
    refused(*add(str(tmp_path / "header.csv")), expect="has no samples")


def test_a_column_name_longer_than_a_csv_field_may_be(stack, tmp_path, good):
    path = write(tmp_path, good.rename(columns={"GENE0001": "G" * 200_000}))
    refused(*add(path), expect="cannot read")


def test_a_header_of_200000_columns_and_no_rows(stack, tmp_path):
    header = ",".join(["sample_id", "tissue", *(f"g{i}" for i in range(200_000))])
    (tmp_path / "wide.csv").write_text(header + "\n")
    refused(*add(str(tmp_path / "wide.csv")), expect="has no samples")


def test_a_header_of_200000_columns_with_duplicates(stack, tmp_path):
    names = ["sample_id", "tissue", *(f"g{i % 150_000}" for i in range(200_000))]
    (tmp_path / "dupes.csv").write_text(
        ",".join(names) + "\n" + ",".join(["s1", "a"] + ["1"] * 200_000) + "\n"
    )
    refused(*add(str(tmp_path / "dupes.csv")), expect="duplicate column names: g0, g1")


def test_classes_with_a_single_sample(stack, tmp_path, good):
    good.loc[0, "tissue"], good.loc[1, "tissue"] = "spleen", "kidney"
    refused(*add(write(tmp_path, good)), expect="2 classes of 'tissue' have a single sample")


def test_a_gzipped_csv_is_read(stack, tmp_path, good):
    good.loc[0, "GENE0001"] = 12345.678  # content no other test registers
    path = write(tmp_path, good, name="gzipped.csv.gz")
    assert "registered 'gzipped'" in run(*add(path)).output
    assert sql("SELECT n_samples FROM datasets WHERE name = 'gzipped'") == [(40,)]


def test_unreadable_file(stack, tmp_path):
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage\x00\x9c" * 50)
    refused(*add(str(tmp_path / "binary.csv")), expect="cannot read")


def test_corrupt_parquet(stack, tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really parquet")
    refused(*add(str(tmp_path / "bad.parquet")), expect="cannot read")


def test_unsupported_file_type(stack, tmp_path):
    (tmp_path / "data.xlsx").write_text("x")
    refused(*add(str(tmp_path / "data.xlsx")), expect="unsupported file type")


def test_label_column_missing(stack, tmp_path, good):
    path = write(tmp_path, good)
    refused("datasets", "add", path, "--label", "organ", expect="label column 'organ' is not in")


def test_label_with_one_class(stack, tmp_path, good):
    good["tissue"] = "liver"
    refused(*add(write(tmp_path, good)), expect="has one class")


def test_non_numeric_gene_columns(stack, tmp_path, good):
    good["GENE0002"] = "high"
    refused(*add(write(tmp_path, good)), expect="not numeric: GENE0002")


def test_an_id_column_given_as_a_gene_gets_a_hint(stack, tmp_path, good):
    path = write(tmp_path, good)
    message = refused("datasets", "add", path, "--label", "tissue", expect="not numeric")
    assert "--id-col" in message


def test_missing_values_are_located_unless_imputation_is_asked(stack, tmp_path, good):
    good.loc[3, "SIG02"] = None
    good.loc[5, "SIG02"] = None
    path = write(tmp_path, good, name="holes.tsv")
    refused(*add(path), expect="2 missing values in 1 genes (first: gene SIG02, sample S0004)")
    result = run(*add(path, "--impute", "median", "--name", "holes_imputed"))
    assert "registered 'holes_imputed'" in result.output


def test_missing_labels(stack, tmp_path, good):
    good.loc[2, "tissue"] = None
    refused(*add(write(tmp_path, good)), expect="1 samples have no label")


def test_duplicate_sample_ids(stack, tmp_path, good):
    good.loc[4, "sample_id"] = good.loc[0, "sample_id"]
    refused(*add(write(tmp_path, good)), expect="duplicate sample ids")


def test_duplicate_gene_names(stack, tmp_path, good):
    path = tmp_path / "dupes.csv"
    text = good.to_csv(index=False).splitlines()
    text[0] = text[0].replace("GENE0002", "GENE0001")
    path.write_text("\n".join(text) + "\n")
    refused(*add(str(path)), expect="duplicate column names: GENE0001")


def test_a_name_taken_by_other_content(stack, tmp_path, good):
    run(*add(write(tmp_path, good, name="first.csv"), "--name", "taken"))
    good.loc[0, "SIG01"] += 1
    refused(
        *add(write(tmp_path, good, name="second.parquet"), "--name", "taken"),
        expect="already registered as 'taken'",
    )


def test_unknown_dataset(stack):
    refused(
        "importance",
        "no_such_set",
        "--model",
        "lr",
        "--runs",
        "3",
        expect="unknown dataset 'no_such_set'",
    )


def test_unknown_model(tissue):
    refused(
        "importance",
        tissue,
        "--model",
        "catboost",
        "--runs",
        "3",
        expect="'catboost' is not one of",
    )


@pytest.mark.parametrize("runs", ["0", "-4"])
def test_runs_must_be_positive(tissue, runs):
    refused("importance", tissue, "--model", "lr", "--runs", runs, expect="must be at least 1")


def test_more_runs_than_unused_seeds(tissue):
    refused(
        "importance",
        tissue,
        "--model",
        "lr",
        "--runs",
        "6",
        "--seed-max",
        "5",
        expect="only 5 unused seeds remain in 1..5",
    )


def lr_runs(*options: str) -> tuple[str, ...]:
    return ("importance", "tissue", "--model", "lr", "--runs", "2", *options)


@pytest.mark.parametrize("size", ["0", "1", "1.5", "-0.2"])
def test_test_size_outside_zero_one(tissue, size):
    refused(*lr_runs("--test-size", size), expect="must be between 0 and 1")


def test_test_split_too_small_for_stratification(tissue):
    refused(
        *lr_runs("--test-size", "0.02"),
        expect="a stratified split of 7 classes needs at least 7",
    )


def test_bad_seed_list(tissue):
    refused(
        "importance",
        tissue,
        "--model",
        "lr",
        "--seeds",
        "1,two",
        expect="give integers separated by commas",
    )


def test_unknown_job(stack):
    refused("jobs", "show", "imp-nothing", expect="unknown job 'imp-nothing'")
    refused("genes", "count", "--job", "imp-nothing", expect="unknown job 'imp-nothing'")


def test_genes_count_needs_a_scope(stack):
    refused("genes", "count", "--dataset", "tissue", expect="give --job, or both")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO jobs VALUES ('x')",
        "DELETE FROM runs",
        "CREATE TABLE t (a INT)",
        "COPY runs TO 'runs.csv'",
        "ATTACH 'other.duckdb'",
        "SELECT 1; DROP TABLE runs",
    ],
)
def test_sql_that_writes(stack, statement):
    refused("sql", statement, expect="refusing")


@pytest.mark.parametrize(
    "statement",
    [
        "EXPLAIN ANALYZE COPY (SELECT 'x') TO '{out}'",
        "SELECT * FROM read_csv('{secret}')",
        "SELECT * FROM read_text('{secret}')",
        "SELECT * FROM glob('{folder}/*')",
        "EXPLAIN SELECT * FROM '{secret}'",
        "WITH f AS (SELECT * FROM read_csv('{secret}')) SELECT * FROM f",
    ],
)
def test_sql_reads_nothing_but_the_results(stack, tmp_path, statement):
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nhunter2\n")
    out = tmp_path / "out.csv"
    query = statement.format(out=out, secret=secret, folder=tmp_path)
    line = refused("sql", query, expect="SQL error: Permission Error")
    assert "hunter2" not in line and not out.exists()


def test_sql_changes_no_setting(stack):
    refused("sql", "SELECT 1; SET threads = 1", expect="refusing")
    # Below the statement check, the connection itself refuses.
    from genejobs.api import reading

    with (
        reading(sealed=True) as con,
        pytest.raises(Exception, match="configuration has been locked"),
    ):
        con.execute("SET threads = 1")


def test_sql_errors_keep_duckdbs_hint_on_one_line(stack):
    line = refused("sql", "SELECT * FROM runz", expect="SQL error: Catalog Error")
    assert 'Did you mean "runs"?' in line


def test_version(stack):
    assert run("--version").output.strip() == "genejobs, version 0.1.0"


def test_sql_that_does_not_parse(stack):
    refused("sql", "SELEKT 1", expect="SQL error")


def test_redis_not_reachable(stack, tmp_path, good, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("GENEJOBS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    path = write(tmp_path, good)
    message = refused(*add(path, "--name", "unreachable"), expect="Redis is not reachable")
    assert "genejobs up" in message
    refused("importance", "tissue", "--model", "lr", "--runs", "2", expect="Redis is not reachable")


def test_the_installed_command_prints_one_line_too(stack, tmp_path):
    result = run_subprocess("datasets", "add", str(tmp_path / "nope.csv"), "--label", "x")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr


def test_class_counts_need_per_class_coefficients(tissue):
    some_class = sql("SELECT classes[1] FROM datasets WHERE name = 'tissue'")[0][0]
    refused(
        *f"genes count --dataset tissue --model dt --class {some_class}".split(),
        expect="--class needs per-class coefficients",
    )
    refused(
        *["genes", "count", "--dataset", "tissue", "--model", "lr", "--class", "no_such_tissue"],
        expect="unknown class 'no_such_tissue'",
    )


def test_a_job_larger_than_the_limit_is_refused(tissue, monkeypatch):
    refused("importance", tissue, "--model", "dummy", "--runs", "10000000", "--no-wait",
            expect="--runs 10,000,000 is more than a job may plan (100,000 runs")  # fmt: skip
    refused("importance", tissue, "--model", "dummy", "--until-stable", "--max-runs",
            "10000000", "--no-wait", expect="--max-runs 10,000,000 is more than")  # fmt: skip
    # The limit is a setting (GENEJOBS_MAX_RUNS).
    monkeypatch.setenv("GENEJOBS_MAX_RUNS", "5")
    refused("importance", tissue, "--model", "dummy", "--runs", "6", "--no-wait",
            expect="--runs 6 is more than a job may plan (5 runs")  # fmt: skip
