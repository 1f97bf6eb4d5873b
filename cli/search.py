"""`genejobs search`: PyCaret's model comparison, one model on one fold per task."""

from __future__ import annotations

import click

from genejobs import api
from genejobs.candidates import METRICS
from genejobs.cli.output import format_option, frame
from genejobs.cli.runs import follow
from genejobs.cli.usage import usage_errors


def _model_list(ctx, param, value):
    if value is None:
        return None
    models = [m for m in value.replace(" ", "").split(",") if m]
    if not models:
        raise click.BadParameter("give model ids separated by commas, e.g. lr,rf,et")
    return models


def print_leaderboard(job_id: str, fmt: str) -> None:
    table = api.leaderboard(job_id)
    note = table.attrs["note"]
    frame(table, fmt, title=f"search {job_id}")
    if note:
        click.echo(f"note: {note}", err=True)
    failed = table[table["status"] == "failed"]
    if fmt == "table" and len(failed):
        for row in failed.itertuples():
            click.echo(f"{row.model} failed: {row.error}", err=True)


@click.command()
@click.argument("dataset")
@click.option(
    "--models", "include", callback=_model_list, default=None,
    help="Candidates to compare, comma separated [default: PyCaret's turbo candidates].",
)  # fmt: skip
@click.option("--exclude", callback=_model_list, default=None, help="Candidates to leave out.")
@click.option("--folds", type=int, default=10, show_default=True, help="Cross-validation folds.")
@click.option(
    "--sort", default="Accuracy", show_default=True,
    help=f"Metric to rank by: {', '.join(m.display for m in METRICS)}.",
)  # fmt: skip
@click.option(
    "--session-id", type=int, default=None,
    help="PyCaret's session id (the seed of the split and the models) [default: random].",
)  # fmt: skip
@click.option(
    "--train-size", type=float, default=0.7, show_default=True,
    help="Training fraction of PyCaret's stratified split.",
)  # fmt: skip
@click.option(
    "--wait/--no-wait", default=None,
    help="Follow the search and print its leaderboard [default: when on a terminal].",
)  # fmt: skip
@format_option
def search(dataset, include, exclude, folds, sort, session_id, train_size, wait, fmt):
    """Compare models on DATASET as PyCaret's compare_models does, spread over the workers.

    Each task fits one candidate on one fold; when every fold is in, the writer
    ranks the models (means and SDs over folds, rounded to 4 decimals, as
    PyCaret) and the best one is finalized (fitted on all the data) and saved.
    A candidate that fails on the data is recorded as failed with its error.
    """
    with usage_errors():
        plan = api.plan_search(
            dataset,
            models=include,
            exclude=exclude,
            folds=folds,
            sort=sort,
            session_id=session_id,
            train_size=train_size,
        )
    total = len(plan["models"]) * plan["setup"]["folds"]
    job_id = plan["job_id"]
    header = (
        f"job {job_id}: {len(plan['models'])} models x {plan['setup']['folds']} folds on "
        f"{plan['dataset']} (session id {plan['setup']['session_id']})"
    )
    if follow(job_id, wait, header, total + 1) is None:
        return
    print_leaderboard(job_id, fmt)


COMMANDS = [search]
