"""Names given to genejobs: dataset names from a safe set, gene names that print on one
line and that whitespace alone does not tell apart."""

from __future__ import annotations

import pandas as pd
import pytest

import genejobs
from genejobs.config import settings
from genejobs.errors import InputError
from genejobs.storage.datasets import check_name, gene_names
from genejobs.storage.synth import expression
from tests.conftest import refused, run, sql


@pytest.fixture
def table():
    return expression(samples=40, genes=8, classes=2, informative=3, seed=19)


def write(tmp_path, frame: pd.DataFrame, name="names.csv") -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def add(path, *extra):
    return ("datasets", "add", path, "--label", "tissue", "--id-col", "sample_id", *extra)


BAD_NAMES = ["../../etc/x", "a/b c", "", "-rf", ".hidden", "x" * 65, "tab\tname", "gène", "a:b"]


@pytest.mark.parametrize("name", ["tissue", "a", "T2.v1-final_3", "x" * 64])
def test_names_of_the_safe_set_are_allowed(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_other_names_are_refused_with_the_rule(name):
    with pytest.raises(InputError, match="is not allowed: a dataset name is 1 to 64 letters"):
        check_name(name)


@pytest.mark.parametrize("name", ["../../etc/x", "a/b c", "x" * 65])
def test_datasets_add_refuses_a_bad_name(stack, tmp_path, table, name):
    line = refused(*add(write(tmp_path, table), "--name", name), expect="is not allowed")
    assert repr(name) in line
    result = run(*add(write(tmp_path, table), "--name", name), ok=False)
    assert result.exit_code == 2


def test_a_file_name_that_cannot_name_a_dataset(stack, tmp_path, table):
    refused(*add(write(tmp_path, table, "my data.csv")), expect="the file name's stem")


def test_genes_filter_refuses_a_bad_name(stack):
    refused(
        "genes", "filter", "--dataset", "tissue", "--model", "lr", "--min-count", "1",
        "--name", "../x", expect="'../x' is not allowed",
    )  # fmt: skip


def test_the_python_api_refuses_a_bad_name_before_anything_is_written(stack, tmp_path, table):
    spool = settings().spool_dir
    before = sorted(spool.iterdir()) if spool.exists() else []
    with pytest.raises(genejobs.InputError, match="'a/b c' is not allowed"):
        genejobs.add_dataset(write(tmp_path, table), "tissue", id_col="sample_id", name="a/b c")
    assert (sorted(spool.iterdir()) if spool.exists() else []) == before


def test_gene_names_lose_the_whitespace_around_them():
    assert gene_names([" G1", "G2\u00a0", "G 3"]) == ["G1", "G2", "G 3"]


@pytest.mark.parametrize("bad", ["G\t5", "G5\n", "\rG5", "G\x005"])
def test_gene_names_with_control_characters_are_refused(bad):
    with pytest.raises(InputError, match="control characters") as caught:
        gene_names(["G1", bad])
    assert "\n" not in str(caught.value) and repr(bad) in str(caught.value)


def test_gene_names_that_only_whitespace_tells_apart_are_refused():
    with pytest.raises(InputError, match="differ only in whitespace: 'G5' and 'G 5 '"):
        gene_names(["G1", "G5", "G 5 "])
    with pytest.raises(InputError, match="'tissue' and ' tissue'"):
        gene_names(["G1", " tissue"], others=["tissue"])


def test_datasets_add_refuses_a_tab_or_newline_in_a_gene_name(stack, tmp_path, table):
    tabbed = table.rename(columns={"GENE0001": "GENE\t0001"})
    refused(*add(write(tmp_path, tabbed)), expect="control characters")
    newline = table.rename(columns={"GENE0002": "GENE\n0002"})
    refused(*add(write(tmp_path, newline, "newline.parquet")), expect="'GENE\\n0002'")


def test_datasets_add_refuses_gene_names_that_differ_only_in_whitespace(stack, tmp_path, table):
    clash = table.rename(columns={"GENE0001": "G5", "GENE0002": "G 5 "})
    line = refused(*add(write(tmp_path, clash)), expect="differ only in whitespace")
    assert "'G5'" in line and "'G 5 '" in line


def test_datasets_add_strips_the_whitespace_around_gene_names(stack, tmp_path, table):
    table.loc[0, "GENE0003"] = 4242.0  # content no other test registers
    spaced = table.rename(columns={"GENE0003": " GENE0003 "})
    result = run(*add(write(tmp_path, spaced), "--name", "spaced"))
    assert "whitespace around 1 gene names" in result.stderr
    genes = sql("SELECT genes FROM datasets WHERE name = 'spaced'")[0][0]
    assert "GENE0003" in genes and " GENE0003 " not in genes
