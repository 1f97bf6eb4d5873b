"""`genejobs genes`: which genes the runs selected, and reduced datasets made from them."""

from __future__ import annotations

import json

import click

from genejobs import api
from genejobs.cli.output import format_option, frame
from genejobs.cli.usage import usage_errors


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

    `fraction_lo`/`fraction_hi` are the fraction's 95% Wilson score interval
    over the fits counted (a run of a `pairs` job is two fits);
    `mean_rank_lo`/`mean_rank_hi` the Student-t 95% interval of the mean rank
    over the runs that selected the gene. For linear models,
    `positive_fraction` is the share of those runs in which the gene's
    (dominant) coefficient was positive. Sorted by count.
    """
    table = api.gene_counts(
        job=job_id,
        dataset=dataset,
        model=model,
        top=top,
        min_importance=min_importance,
        class_label=class_label,
    )
    total, scope = table.attrs["runs"], table.attrs["scope"]
    if limit:
        table = table.head(limit)
    if plot:
        from genejobs.cli.plots import gene_counts_png

        criterion = [f"top {top}" if top else "non-zero importance"]
        criterion += [f"class {class_label}"] if class_label else []
        criterion += [f"importance >= {min_importance:g}"] if min_importance is not None else []
        gene_counts_png(table.head(30), total, f"{scope} ({', '.join(criterion)})", plot)
    if fmt == "table":
        click.echo(
            f"{total} fits counted ({scope}); 95% intervals: Wilson for the fraction, "
            "Student t for the mean rank"
        )
    frame(table, fmt, title=f"genes selected in {total} fits")


def _selection(top: int | None) -> str:
    return f"top {top}" if top else "non-zero importance"


@genes.command()
@scope_options
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Also the stability of each fit's top K genes.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the convergence plot (stability and top-K agreement against fits) as PNG.",
)
@format_option
def stability(job_id, dataset, model, top, plot, fmt):
    """How stable the selected gene sets are across fits, with a 95% interval.

    The estimator of Nogueira, Sechidis & Brown (JMLR 2018): 1 when every fit
    selected the same genes, 0 when fits agree no more than random sets of the
    same sizes would. Given for each fit's top K genes and for every gene with
    non-zero importance.
    """
    found = api.gene_stability(
        job=job_id, dataset=dataset, model=model, top=top, curve=plot is not None
    )
    if plot:
        from genejobs.cli.plots import stability_png

        stability_png(found.curve, f"{found.scope}, {_selection(top)}", plot)
    if fmt == "table":
        click.echo(f"{found.runs} runs, {found.fits} fits ({found.scope})")
    frame(found.table, fmt, title="selection stability (Nogueira et al. 2018), 95% interval")


@genes.command()
@scope_options
@click.option(
    "--pi",
    type=click.FloatRange(0.5, 1, min_open=True),
    default=0.6,
    show_default=True,
    help="A gene is stable when selected in at least this fraction of the fits.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    help="Selected = rank <= K instead of any non-zero importance.",
)
@format_option
def stable(job_id, dataset, model, pi, top, fmt):
    """The genes selected in at least a fraction PI of the fits, with an error bound.

    The bound of stability selection (Meinshausen & Buhlmann 2010) on the
    expected number of falsely selected genes, q^2 / ((2 pi - 1) p), for q
    genes selected per fit out of p. It holds for complementary half-samples
    (Shah & Samworth 2013): jobs run with `importance --scheme pairs`. For
    other jobs it is printed with the reason it does not apply. Make a reduced
    dataset of these genes with `genes filter --min-fraction PI`.
    """
    found = api.stable_genes(job=job_id, dataset=dataset, model=model, pi=pi, top=top)
    table, summary = found.genes, found.summary
    if fmt != "table":
        if fmt == "json":
            click.echo(json.dumps({**summary, "genes_stable": table.to_dict("records")}))
        else:
            frame(table, fmt)
        return
    click.echo(
        f"{summary['stable_genes']} genes selected in >= {pi:g} of {summary['fits']} fits "
        f"({summary['scope']}, {summary['selection']})"
    )
    click.echo(
        f"expected false selections <= {summary['expected_false_selections_at_most']:.3g} "
        f"(q = {summary['mean_selected_per_fit']:.1f} of p = {summary['genes']} genes); "
        f"the bound {summary['bound']}"
    )
    if summary["uncertain"]:
        click.echo(
            f"{summary['uncertain']} genes' 95% intervals straddle {pi:g}: "
            "more runs would settle them"
        )
    frame(table, fmt, title="stable genes")


@genes.command()
@click.argument("first")
@click.argument("second")
@click.option("--pi", type=click.FloatRange(0.5, 1, min_open=True), default=0.6, show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=None, help="Selected = rank <= K.")
@format_option
def compare(first, second, pi, top, fmt):
    """Compare two jobs (FIRST, SECOND: job ids, or DATASET:MODEL for every job on both).

    Their stabilities with 95% intervals and the test of Nogueira et al. (2018)
    that they differ, and the overlap of their stable sets at --pi.
    """
    result = api.compare_genes(first, second, pi=pi, top=top)
    if fmt == "json":
        click.echo(json.dumps(result, default=float))
        return
    if fmt == "csv":
        import pandas as pd

        frame(pd.DataFrame([result]), fmt)
        return
    for side in ("a", "b"):
        lo, hi = result[f"{side}_interval"]
        click.echo(
            f"{result[side]}: stability {result[side + '_stability']:.3f} [{lo:.3f}, {hi:.3f}] "
            f"over {result[side + '_fits']} fits, {result[side + '_stable']} stable genes"
        )
    click.echo(
        f"difference: z = {result['difference_z']:.2f}, p = {result['difference_p_value']:.3g} "
        f"({result['selection']})"
    )
    click.echo(
        f"stable at {pi:g}: {len(result['both'])} in both (Jaccard {result['jaccard']:.2f}), "
        f"{len(result['only_a'])} only in the first, {len(result['only_b'])} only in the second"
    )
    for key, label in (("only_a", "only first"), ("only_b", "only second")):
        if result[key]:
            click.echo(f"{label}: {', '.join(result[key])}")


@genes.command("filter")
@scope_options
@click.option(
    "--min-count",
    type=click.IntRange(min=1),
    default=None,
    help="Keep genes selected in at least C runs.",
)
@click.option(
    "--min-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Keep genes selected in at least this fraction of the fits (the stable set).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    help="Selected = rank <= K instead of any non-zero importance.",
)
@click.option("--name", required=True, help="Name of the new, reduced dataset.")
def filter_(job_id, dataset, model, min_count, min_fraction, top, name):
    """Register a reduced dataset holding only the selected genes and the label."""
    with usage_errors():
        reply = api.filter_genes(
            name,
            job=job_id,
            dataset=dataset,
            model=model,
            min_count=min_count,
            min_fraction=min_fraction,
            top=top,
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
