"""`genejobs sql`: read-only SQL on the results file."""

from __future__ import annotations

import click

from genejobs import api
from genejobs.cli.output import format_option, frame


class _SqlCommand(click.Command):
    """Its help lists the tables from the schema, built only when help is asked for."""

    def format_help_text(self, ctx, formatter):
        self.help = _tables_help()
        super().format_help_text(ctx, formatter)


@click.command(cls=_SqlCommand, short_help="Run read-only SQL (SELECT, EXPLAIN) on the results.")
@click.argument("query")
@format_option
@click.option(
    "--wait",
    "lock_wait",
    type=float,
    default=None,
    help="Seconds to wait while the writer holds the file [default: $GENEJOBS_LOCK_WAIT or 30].",
)
def sql(query, fmt, lock_wait):
    frame(api.sql(query, wait=lock_wait), fmt)


def _tables_help() -> str:
    """Every table of the results file and its columns, read from the schema itself."""
    lines = [
        "Run read-only SQL (SELECT, EXPLAIN) on the results.",
        "",
        "Statements that would write are refused, and the query can read nothing but the "
        "results: no other file, no extension, no setting changed. Other DuckDB clients: open "
        "$GENEJOBS_HOME/views/genejobs.duckdb read-only (see `genejobs status`).",
        "",
        "\b",
        "Tables and their columns:",
    ]
    for table, columns in api.tables().items():
        lines.append(f"  {table}: {', '.join(columns)}")
    return "\n".join(lines)


COMMANDS = [sql]
