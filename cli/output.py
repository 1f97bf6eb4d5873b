"""Printing results as a table, CSV or JSON."""

from __future__ import annotations

import json
import math
import sys

import click
import pandas as pd

FORMATS = ("table", "csv", "json")

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How to print the result.",
)


def _console():
    from rich.console import Console

    # A pipe or a file gets whole rows; a terminal gets its own width.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _is_id(column: str) -> bool:
    return column == "id" or column.endswith(("_id", "_key")) or column in ("job", "unit")


def frame(df: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    """Print a DataFrame in the chosen format."""
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
        return
    if fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso", default_handler=str))
        return
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[column])
        if _is_id(str(column)) and not numeric:
            # Ids are what a person copies: never cut or wrapped; other columns give way.
            width = max([len(str(column)), *(len(_cell(v)) for v in df[column])])
            table.add_column(str(column), no_wrap=True, min_width=width)
        else:
            table.add_column(str(column), justify="right" if numeric else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    _console().print(table)


def record(values: dict, fmt: str, title: str | None = None) -> None:
    """Print one record (a mapping) in the chosen format."""
    if fmt == "json":
        click.echo(json.dumps(values, default=str))
        return
    if fmt == "csv":
        click.echo(pd.DataFrame([values]).to_csv(index=False), nl=False)
        return
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in values.items():
        table.add_row(
            str(key),
            _cell(value) if not isinstance(value, dict | list) else json.dumps(value, default=str),
        )
    _console().print(table)
