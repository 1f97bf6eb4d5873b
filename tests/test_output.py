"""What the CLI prints: ids whole on a narrow terminal, `sql --help` from the schema."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from genejobs.cli import output
from tests.conftest import run, sql


def test_ids_are_never_cut_on_a_narrow_terminal(monkeypatch, capsys):
    ids = [f"imp-{n:010x}" for n in (1, 2)]
    table = pd.DataFrame(
        {
            "job_id": ids,
            "model_id": [f"src-{i}-{'x' * 30}" for i in range(2)],
            "source": ["a long description of where this came from " * 3] * 2,
            "accuracy": [0.5, 0.75],
        }
    )
    monkeypatch.setattr(output, "_console", lambda: Console(width=80, file=None))
    output.frame(table, "table")
    printed = capsys.readouterr().out
    for value in [*ids, *table["model_id"]]:
        assert value in printed


def test_sql_help_lists_every_table_and_column(stack):
    text = run("sql", "--help").output
    flat = " ".join(text.split())
    tables = sql(
        "SELECT table_name, list(column_name ORDER BY ordinal_position) "
        "FROM information_schema.columns WHERE table_name <> 'writer_fence' GROUP BY 1"
    )
    assert len(tables) == 13
    for table, columns in tables:
        assert f"{table}: {', '.join(columns)}" in flat


def test_global_bars_pool_models_and_sort_by_the_pooled_mean():
    from genejobs.cli.shap_plots import pooled

    # Per model, sorted within model 0 first: pooled, "c" leads and "a" (model 0's top) does not.
    table = pd.DataFrame(
        {
            "feature": ["a", "b", "c", "c", "b", "a"],
            "model": ["m0", "m0", "m0", "m1", "m1", "m1"],
            "mean_abs_shap": [0.9, 0.5, 0.1, 2.0, 0.4, 0.0],
            "rows": [10, 10, 10, 30, 30, 30],
        }
    )
    bars = pooled(table)
    assert list(bars.index) == ["c", "b", "a"]
    assert bars["c"] == (0.1 * 10 + 2.0 * 30) / 40
