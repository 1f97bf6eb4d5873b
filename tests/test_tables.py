"""Tables on a terminal of 80 and 120 columns: every number and gene name printed whole,
and the columns left out named; mean-rank intervals inside the ranks there are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genejobs.cli import output
from genejobs.storage.stability import mean_interval
from tests.conftest import frame_of, run

GENE_COUNT_COLUMNS = [
    "gene", "runs", "fraction", "fraction_lo", "fraction_hi", "mean_importance",
    "mean_rank", "mean_rank_lo", "mean_rank_hi", "positive_fraction",
]  # fmt: skip


def gene_counts_like(genes: list[str]) -> pd.DataFrame:
    """A `genes count` table with numbers of six significant digits, as the CLI prints them."""
    rng = np.random.default_rng(3)
    n = len(genes)
    table = pd.DataFrame({"gene": genes, "runs": rng.integers(1, 2000, n)})
    for column in GENE_COUNT_COLUMNS[2:]:
        table[column] = rng.random(n) * (30 if "rank" in column else 1)
    table.loc[0, "fraction_lo"] = 0.0123456789  # the widest a number gets: 0.0123457
    return table


def printed_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


def left_out(stderr: str) -> list[str]:
    """The columns a note on stderr names as left out (none without a note)."""
    if not stderr.strip():
        return []
    assert "--format csv" in stderr, stderr
    return stderr.split("characters: ")[1].split(";")[0].split(", ")


def assert_whole(table: pd.DataFrame, stdout: str, stderr: str, width: int) -> list[str]:
    """Every cell of every column shown appears whole in its row; returns the columns shown."""
    missing = left_out(stderr)
    shown = [c for c in table.columns if c not in missing]
    assert shown and shown[0] == table.columns[0]
    assert "…" not in stdout
    drawn = [line for line in stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert all(len(line) <= width for line in drawn), stdout
    rows = printed_rows(stdout)
    assert len(rows) == len(table)
    for line, row in zip(rows, table.itertuples(index=False), strict=True):
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        values = dict(zip(table.columns, row, strict=True))
        assert cells == [output._cell(values[c]) for c in shown], line
    return shown


@pytest.mark.parametrize("width", [80, 120])
def test_every_number_and_gene_name_is_printed_whole(monkeypatch, capsys, width):
    genes = ["COL6A3", "SIG01", "ENSG00000123456.12", "TTN", "HLA-DRB1", "MT-CO1"]
    table = gene_counts_like(genes)
    monkeypatch.setenv("COLUMNS", str(width))
    output.frame(table, "table", title="genes selected in 1999 fits")
    printed = capsys.readouterr()
    shown = assert_whole(table, printed.out, printed.err, width)
    # Headers wrap at their underscores before a column is left out.
    assert shown[:6] == GENE_COUNT_COLUMNS[:6]
    if width == 120:
        assert len(shown) >= 9


def test_a_table_wider_than_any_terminal_says_which_columns_it_left_out(monkeypatch, capsys):
    table = pd.DataFrame({f"score_{i}": [0.123456 * i, 1e-7 * i] for i in range(1, 12)})
    table.insert(0, "job_id", ["imp-0123456789", "imp-abcdefabcd"])
    monkeypatch.setenv("COLUMNS", "80")
    output.frame(table, "table")
    printed = capsys.readouterr()
    assert printed.err.count("\n") == 1 and "left out" in printed.err
    shown = assert_whole(table, printed.out, printed.err, 80)
    assert len(shown) + len(left_out(printed.err)) == len(table.columns)


def test_free_text_wraps_and_keeps_every_word():
    columns = [
        output.Column("job_id", 14, whole=True),
        output.Column("error", 300, whole=False),
        output.Column("accuracy", 8, whole=True, numeric=True),
    ]
    shown, widths = output.layout(columns, 80)
    assert shown == [0, 1, 2]
    assert widths[0] == 14 and widths[2] == 8 and sum(widths) + 3 * 3 + 1 == 80
    assert output.header("mean_rank_lo", 8) == "mean_\nrank_lo"
    assert output.header("mean_rank_lo", 12) == "mean_rank_lo"


def test_a_record_on_a_narrow_terminal_keeps_its_numbers(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "60")
    values = {"job_id": "imp-0123456789", "mean_accuracy": 0.912345678, "params": {"x": "y" * 90}}
    output.record(values, "table")
    printed = capsys.readouterr().out
    assert "imp-0123456789" in printed and "0.912346" in printed
    assert all(len(line) <= 60 for line in printed.splitlines())


def test_mean_rank_interval_stays_within_the_ranks():
    # Three fits ranked a gene 1, 2 and 30: the t interval alone reaches from -24 to 46.
    mean, sd = np.mean([1, 2, 30]), np.std([1, 2, 30], ddof=1)
    lo, hi = mean_interval([mean], [sd], [3])
    assert lo[0] < 1 and hi[0] > 30
    lo, hi = mean_interval([mean], [sd], [3], bounds=(1, 30))
    assert (lo[0], hi[0]) == (1, 30)
    lo, hi = mean_interval([5.0], [0.0], [1], bounds=(1, 30))
    assert np.isnan(lo[0]) and np.isnan(hi[0])


@pytest.fixture(scope="module")
def few_fits(stack, tmp_path_factory):
    """Three lr fits on 30 genes: mean ranks with wide intervals."""
    path = tmp_path_factory.mktemp("narrow") / "narrow.csv"
    run("datasets", "demo", "--out", str(path), "--genes", "30", "--samples", "60")
    run("datasets", "add", str(path), "--label", "tissue", "--id-col", "sample_id")
    out = run("importance", "narrow", "--model", "lr", "--runs", "3", "--wait")
    return out.output.split()[1].rstrip(":")


def test_gene_counts_intervals_of_few_fits_stay_within_the_ranks(few_fits):
    table = frame_of(run("genes", "count", "--job", few_fits, "--format", "json"))
    assert len(table) == 30
    assert table["mean_rank_lo"].min() == 1 and table["mean_rank_hi"].max() == 30
    assert (table["mean_rank_lo"] <= table["mean_rank"]).all()
    assert (table["mean_rank"] <= table["mean_rank_hi"]).all()
    top = frame_of(run("genes", "count", "--job", few_fits, "--top", "5", "--format", "json"))
    assert top["mean_rank_hi"].max() <= 5


@pytest.mark.parametrize("width", [80, 120])
def test_genes_count_on_a_terminal(few_fits, monkeypatch, width):
    table = frame_of(run("genes", "count", "--job", few_fits, "--format", "json"))
    monkeypatch.setenv("COLUMNS", str(width))
    result = run("genes", "count", "--job", few_fits)
    assert_whole(table, result.stdout, result.stderr, width)
