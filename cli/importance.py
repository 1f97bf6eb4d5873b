"""`genejobs importance`: a job of seeded gene-importance runs."""

from __future__ import annotations

import uuid

import click

from cli.runs import follow, report
from storage.store import SEED_LIMIT
from tasks.models import MODELS
from worker import inbox
from worker.contract import PlanImportance


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
    "--wait/--no-wait",
    default=None,
    help="Follow the job with a progress bar [default: when on a terminal].",
)
def importance(dataset, model, runs, test_size, seeds, seed_max, wait):
    """Fit MODEL once per new random seed on DATASET and record the genes it finds important.

    Each run splits with its seed (stratified), fits with random_state = seed,
    scores the holdout, and stores every gene with a non-zero importance and its
    rank. A seed is used at most once per (dataset, model), across all jobs.
    """
    if seeds is None and runs is None:
        raise click.UsageError("give --runs N or --seeds S1,S2,...")
    if seeds is not None and runs is not None and runs != len(seeds):
        raise click.BadParameter(f"--runs {runs} but {len(seeds)} seeds given", param_hint="--runs")
    if runs is not None and runs < 1:
        raise click.BadParameter(f"must be at least 1, got {runs}", param_hint="--runs")
    if not 0 < test_size < 1:
        raise click.BadParameter(
            f"must be between 0 and 1, got {test_size}", param_hint="--test-size"
        )
    if not 1 <= seed_max <= SEED_LIMIT:
        raise click.BadParameter(
            f"must be between 1 and {SEED_LIMIT}, got {seed_max}", param_hint="--seed-max"
        )
    plan = inbox.request(
        PlanImportance(
            job_id="imp-" + uuid.uuid4().hex[:10],
            dataset=dataset,
            model=model,
            runs=runs or len(seeds),
            test_size=test_size,
            seed_max=seed_max,
            seeds=seeds,
        )
    )
    job_id = plan["job_id"]
    header = f"job {job_id}: {len(plan['seeds'])} runs of {model} on {plan['dataset']}"
    counts = follow(job_id, wait, header, len(plan["seeds"]))
    if counts is not None:
        report(job_id, counts)


COMMANDS = [importance]
