"""`genejobs sql`: read-only SQL on the results file."""

from __future__ import annotations

import click

from genejobs.cli.output import format_option, frame
from genejobs.storage import queries
from genejobs.storage.db import reading


@click.command()
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
    """Run read-only SQL (SELECT, EXPLAIN) on the results.

    Tables: datasets, jobs, runs, importances; model_runs, search_folds,
    test_results; shap_jobs, shap_models, shap_features, shap_shards,
    shap_rows, shap_values. Statements that would write are refused, and the
    query can read nothing but the results: no other file, no extension, no
    setting changed.
    """
    with reading(lock_wait, sealed=True) as con:
        frame(queries.run_sql(con, query), fmt)


COMMANDS = [sql]
