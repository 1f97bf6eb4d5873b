"""`genejobs genes`: which genes the runs selected, and reduced datasets made from them."""

from __future__ import annotations

import click

from cli.output import format_option, frame
from storage import queries
from storage.db import reading
from worker import inbox
from worker.contract import FilterDataset


def scope_options(command):
    command = click.option("--model", default=None, help="Model id (with --dataset).")(command)
    command = click.option("--dataset", default=None, help="Dataset name (with --model).")(command)
    return click.option("--job", "job_id", default=None, help="One job's runs.")(command)


@click.group()
def genes():
    """Gene counts over seeded runs, and filters that make reduced datasets."""


@genes.command()
@scope_options
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    help="Selected = rank <= K instead of any non-zero importance.",
)
@click.option(
    "--min-importance", type=float, default=None, help="Selected also needs importance >= X."
)
@click.option(
    "--class",
    "class_label",
    default=None,
    help="Linear models: count one class's coefficients instead of the summary.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Print the first N genes.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a bar chart of the top genes as a PNG.",
)
@format_option
def count(job_id, dataset, model, top, min_importance, class_label, limit, plot, fmt):
    """Per gene: the number and fraction of runs that selected it, mean importance and rank.

    For linear models, `positive_fraction` is the share of those runs in which
    the gene's (dominant) coefficient was positive. Sorted by count.
    """
    with reading() as con:
        where = queries.scope(con, job_id, dataset, model)
        total, table = queries.gene_counts(
            con, where, top=top, min_importance=min_importance, class_label=class_label
        )
    if limit:
        table = table.head(limit)
    if plot:
        from cli.plots import gene_counts_png

        criterion = [f"top {top}" if top else "non-zero importance"]
        criterion += [f"class {class_label}"] if class_label else []
        criterion += [f"importance >= {min_importance:g}"] if min_importance is not None else []
        gene_counts_png(table.head(30), total, f"{where.label} ({', '.join(criterion)})", plot)
    if fmt == "table":
        click.echo(f"{total} runs counted ({where.label})")
    frame(table, fmt, title=f"genes selected in {total} runs")


@genes.command("filter")
@scope_options
@click.option(
    "--min-count",
    type=click.IntRange(min=1),
    required=True,
    help="Keep genes selected in at least C runs.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    help="Selected = rank <= K instead of any non-zero importance.",
)
@click.option("--name", required=True, help="Name of the new, reduced dataset.")
def filter_(job_id, dataset, model, min_count, top, name):
    """Register a reduced dataset holding only the selected genes and the label."""
    if job_id is None and (dataset is None or model is None):
        raise click.UsageError("give --job, or both --dataset and --model")
    reply = inbox.request(
        FilterDataset(
            job_id=job_id,
            dataset=dataset,
            model=model,
            min_count=min_count,
            top=top,
            name=name,
        )
    )
    if reply.get("existing"):
        click.echo(
            f"the same genes and samples are already registered as '{reply['name']}' "
            f"({reply['dataset_id']})"
        )
    else:
        click.echo(
            f"registered '{reply['name']}' ({reply['dataset_id']}) with {reply['n_genes']} genes"
        )


COMMANDS = [genes]
