"""`genejobs importance`: a job of seeded gene-importance runs."""

from __future__ import annotations

import click

from genejobs.api import plan_importance
from genejobs.catalog import MODELS
from genejobs.cli.runs import follow, report


def _seeds(ctx, param, value):
    if value is None:
        return None
    try:
        seeds = [int(s) for s in value.replace(" ", "").split(",") if s]
    except ValueError:
        raise click.BadParameter("give integers separated by commas, e.g. 11,42,7") from None
    if not seeds:
        raise click.BadParameter("give at least one seed")
    return seeds


@click.command()
@click.argument("dataset")
@click.option("--model", required=True, type=click.Choice(list(MODELS)), help="PyCaret model id.")
@click.option("--runs", type=int, default=None, help="How many seeded runs (new seeds).")
@click.option(
    "--test-size",
    type=float,
    default=0.3,
    show_default=True,
    help="Holdout fraction of each stratified split.",
)
@click.option(
    "--seeds",
    callback=_seeds,
    default=None,
    help="Explicit seeds, comma separated, instead of --runs.",
)
@click.option(
    "--seed-max",
    type=int,
    default=4_000_000_000,
    show_default=True,
    help="Seeds are drawn from 1..seed-max.",
)
@click.option(
    "--scheme",
    type=click.Choice(["split", "pairs"]),
    default="split",
    show_default=True,
    help="split: one fit per seed on a stratified split (1 - test size). pairs: each seed "
    "splits the samples into two stratified halves and fits both, the subsampling that "
    "the bound of `genes stable` needs.",
)
@click.option(
    "--until-stable",
    is_flag=True,
    help="Run in rounds of --runs (default 50) until the stopping rule holds (see below).",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=None,
    help="--until-stable: never plan more runs than this [default: 2000].",
)
@click.option(
    "--pi",
    type=click.FloatRange(0.5, 1, min_open=True),
    default=None,
    help="--until-stable: the selection-frequency threshold of the rule [default: 0.6].",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    help="--until-stable: a fit selects its top K genes [default: 20].",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="--until-stable: the widest stability interval accepted [default: 0.05].",
)
@click.option(
    "--min-runs",
    type=click.IntRange(min=2),
    default=None,
    help="--until-stable: fits needed before the rule may hold [default: 100].",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Follow the job with a progress bar [default: when on a terminal].",
)
def importance(
    dataset,
    model,
    runs,
    test_size,
    seeds,
    seed_max,
    scheme,
    until_stable,
    max_runs,
    pi,
    top,
    tolerance,
    min_runs,
    wait,
):
    """Fit MODEL once per new random seed on DATASET and record the genes it finds important.

    Each run splits with its seed (stratified), fits with random_state = seed,
    scores the holdout, and stores every gene with a non-zero importance and its
    rank. A seed is used at most once per (dataset, model), across all jobs.

    With --until-stable the job runs in rounds and stops by itself: each fit
    selects its top K genes, and after each round (rounds overlap, so workers
    never wait) the rule is checked on the fits so far. It holds, after at
    least --min-runs fits, when every gene's 95% Wilson interval of its
    selection frequency lies wholly above or below --pi, or when the K most
    often selected genes are those of the previous check and the stability
    interval (Nogueira et al. 2018) is narrower than --tolerance. The rule, the
    rounds and the reason the job stopped are shown by `genejobs jobs show`.
    """
    rule_options = {"max_runs": max_runs, "pi": pi, "top": top, "tolerance": tolerance}
    rule_options["min_runs"] = min_runs
    if not until_stable:
        given = [name for name, value in rule_options.items() if value is not None]
        if given:
            raise click.UsageError(f"--{given[0].replace('_', '-')} needs --until-stable")
    elif runs is None and seeds is None:
        runs = 50
    if seeds is None and runs is None:
        raise click.UsageError("give --runs N or --seeds S1,S2,...")
    if seeds is not None and runs is not None and runs != len(seeds):
        raise click.BadParameter(f"--runs {runs} but {len(seeds)} seeds given", param_hint="--runs")
    plan = plan_importance(
        dataset,
        model,
        runs=None if seeds is not None else runs,
        seeds=seeds,
        test_size=test_size,
        seed_max=seed_max,
        scheme=scheme,
        until_stable=rule_options if until_stable else None,
    )
    job_id = plan["job_id"]
    header = f"job {job_id}: {len(plan['seeds'])} runs of {model} on {plan['dataset']}"
    if until_stable:
        header += " (the first round; more follow until the rule holds)"
    counts = follow(job_id, wait, header, len(plan["seeds"]))
    if counts is not None:
        report(job_id, counts)


COMMANDS = [importance]
