"""Printing results as a table, CSV or JSON.

A table fits the terminal without cutting a value: numbers, ids and names are
printed whole. Headers wrap at their underscores first (`fraction_` over
`lo`); what still does not fit is left out, from the right, and a line on
stderr names the columns left out and how to see them.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "json")
PIPE_WIDTH = 240  # a pipe or a file gets whole rows
# Text columns with longer values (descriptions, errors, paths) wrap, down to this width.
WRAPPED_WIDTH = 24
# Text columns always printed whole, whatever their length.
NAME_COLUMNS = ("gene", "feature", "name", "dataset", "model")

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How to print the result.",
)


def console_width() -> int | None:
    """$COLUMNS when set; else the terminal's width (None: rich asks it), or PIPE_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if sys.stdout.isatty() else PIPE_WIDTH


def _console():
    from rich.console import Console

    return Console(file=sys.stdout, width=console_width())


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


@dataclass(frozen=True)
class Column:
    """A column to print: its cells' width, and whether they may wrap (free text only)."""

    name: str
    cells: int  # the widest cell
    whole: bool  # numbers, ids and names: never wrapped, never cut
    numeric: bool = False
    style: str | None = None

    def header_width(self) -> int:
        """The narrowest the header gets, wrapped at its underscores."""
        return max(map(_cell_len, _header_parts(self.name)), default=0)

    def narrowest(self) -> int:
        cells = self.cells if self.whole else min(self.cells, WRAPPED_WIDTH)
        return max(cells, self.header_width(), 1)

    def widest(self) -> int:
        return max(self.cells, _cell_len(self.name), 1)


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _header_parts(name: str) -> list[str]:
    return re.findall(r"[^_]*_+|[^_]+$", name) or [name]


def header(name: str, width: int) -> str:
    """The header on as many lines as `width` needs, broken after underscores."""
    lines: list[str] = []
    for part in _header_parts(name):
        if lines and _cell_len(lines[-1] + part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines)


def layout(columns: list[Column], width: int) -> tuple[list[int], list[int]]:
    """Which columns a table of `width` characters shows, and their widths.

    Each column gets at least its narrowest (whole cells, the header wrapped at
    its underscores); columns are left out from the right, never the first,
    until those fit. Space left widens wrapped text, then unwraps headers.
    Returns (indices of the columns shown, their widths).
    """

    def overhead(n: int) -> int:
        return 3 * n + 1  # a rule before each column and after the last; a space each side

    shown = list(range(len(columns)))
    widths = [columns[i].narrowest() for i in shown]
    while len(shown) > 1 and sum(widths) + overhead(len(shown)) > width:
        shown.pop()
        widths.pop()
    spare = width - sum(widths) - overhead(len(shown))
    for k, i in enumerate(shown):  # wrapped text first, as far as there is room
        if not columns[i].whole:
            grow = min(spare, columns[i].widest() - widths[k])
            widths[k] += grow
            spare -= grow
    for k, i in enumerate(shown):  # then headers on one line, where the whole line fits
        grow = columns[i].widest() - widths[k]
        if columns[i].whole and 0 < grow <= spare:
            widths[k] += grow
            spare -= grow
    return shown, widths


def _table(columns: list[Column], rows: list[list[str]], title, show_header: bool = True):
    """A rich table of `rows` fitted to the console; prints a note for columns left out."""
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    shown, widths = layout(columns, console.width)
    left_out = [c.name for i, c in enumerate(columns) if i not in shown]
    if left_out:
        click.echo(
            f"left out {len(left_out)} of {len(columns)} columns to fit {console.width} "
            f"characters: {', '.join(left_out)}; `--format csv` or `--format json` prints them all",
            err=True,
        )
    table = Table(title=title, show_header=show_header)
    for i, width in zip(shown, widths, strict=True):
        column = columns[i]
        table.add_column(
            escape(header(column.name, width)),
            justify="right" if column.numeric else "left",
            style=column.style,
            width=width,
            no_wrap=column.whole,
            overflow="fold",  # whatever happens, no character is replaced by an ellipsis
        )
    for row in rows:
        table.add_row(*(escape(row[i]) for i in shown))
    console.print(table)


def frame(df: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    """Print a DataFrame in the chosen format."""
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
        return
    if fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso", default_handler=str))
        return
    import pandas as pd

    rows = [[_cell(v) for v in row] for row in df.itertuples(index=False)]
    columns = []
    for k, name in enumerate(map(str, df.columns)):
        kind = df.dtypes.iloc[k]
        numeric = pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
        cells = max((_cell_len(row[k]) for row in rows), default=0)
        whole = (
            numeric
            or pd.api.types.is_bool_dtype(kind)
            or pd.api.types.is_datetime64_any_dtype(kind)
            or _is_id(name)
            or name in NAME_COLUMNS
            or cells <= WRAPPED_WIDTH
        )
        columns.append(Column(name, cells, whole, numeric))
    _table(columns, rows, title)


def record(values: dict, fmt: str, title: str | None = None) -> None:
    """Print one record (a mapping) in the chosen format."""
    if fmt == "json":
        click.echo(json.dumps(values, default=str))
        return
    if fmt == "csv":
        import pandas as pd

        click.echo(pd.DataFrame([values]).to_csv(index=False), nl=False)
        return
    rows = [
        [
            str(key),
            _cell(value) if not isinstance(value, dict | list) else json.dumps(value, default=str),
        ]
        for key, value in values.items()
    ]
    fields = max((_cell_len(row[0]) for row in rows), default=0)
    cells = max((_cell_len(row[1]) for row in rows), default=0)
    columns = [
        Column("field", fields, whole=True, style="bold"),
        Column("value", cells, whole=cells <= WRAPPED_WIDTH),
    ]
    _table(columns, rows, title, show_header=False)
