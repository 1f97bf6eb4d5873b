"""`genejobs evaluate`: a searched model on holdout splits made with chosen or new seeds."""

from __future__ import annotations

import sys
import uuid

import click
import numpy as np
import pandas as pd

from genejobs.cli.output import format_option, frame, record
from genejobs.contract import PlanEvaluate
from genejobs.worker import inbox

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def spread(accuracy: pd.Series) -> dict:
    """Mean, SD, min, max and quantiles of holdout accuracy over split seeds."""
    values = accuracy.to_numpy(dtype=float)
    summary = {
        "tests": len(values),
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
    }
    for q in QUANTILES:
        summary[f"q{int(q * 100):02d}"] = float(np.quantile(values, q))
    return summary


@click.command()
@click.argument("model_id")
@click.option("--dataset", default=None, help="Check that the model belongs to this dataset.")
@click.option("--split-seed", type=int, default=None, help="Seed of the holdout split.")
@click.option(
    "--hyper-seed", type=int, default=None,
    help="random_state of the model [default: the search's session id].",
)  # fmt: skip
@click.option(
    "--split-seeds", "runs", type=int, default=None,
    help="Evaluate on N new split seeds, over the workers, and print the accuracy spread.",
)  # fmt: skip
@click.option(
    "--plot", type=click.Path(dir_okay=False), default=None,
    help="Write the confusion matrix as a PNG (with --split-seeds, summed over the splits, "
    "and a second PNG of the accuracy distribution beside it).",
)  # fmt: skip
@click.option(
    "--wait/--no-wait", default=None,
    help="Follow the job and print the results [default: when on a terminal].",
)  # fmt: skip
@format_option
def evaluate(model_id, dataset, split_seed, hyper_seed, runs, plot, wait, fmt):
    """Fit MODEL_ID's estimator on a seeded split and score the holdout.

    The split (stratified, the search's holdout fraction) is made with the
    split seed and the estimator gets random_state = the hyper seed. Records
    accuracy, precision, recall, F1, ROC AUC (one-vs-rest for multiclass) and
    the confusion matrix, one row per evaluation in `test_results`.
    """
    if split_seed is not None and runs is not None:
        raise click.UsageError("give --split-seed or --split-seeds, not both")
    if runs is not None and runs < 1:
        raise click.BadParameter(f"must be at least 1, got {runs}", param_hint="--split-seeds")
    plan = inbox.request(
        PlanEvaluate(
            job_id="eval-" + uuid.uuid4().hex[:10],
            model_id=model_id,
            dataset=dataset,
            split_seeds=[split_seed] if split_seed is not None else None,
            runs=runs or 1,
            hyper_seed=hyper_seed,
        )
    )
    job_id = plan["job_id"]
    if wait is None:
        wait = sys.stdout.isatty() or plot is not None
    if not wait:
        click.echo(job_id)
        return
    from genejobs.cli.runs import wait_for

    click.echo(f"job {job_id}: {len(plan['tests'])} holdout tests of {model_id}", err=True)
    wait_for(job_id, len(plan["tests"]))
    report(plan, plot, fmt, many=runs is not None)


def report(plan: dict, plot: str | None, fmt: str, many: bool) -> None:
    from genejobs.api import reading
    from genejobs.storage import model_queries

    with reading() as con:
        tests = model_queries.tests(con, plan["job_id"])
        classes = model_queries.classes_of_model(con, plan["model_id"])
    done = tests[tests["status"] == "done"]
    shown = tests.drop(columns=["confusion"])
    if not many:
        record(shown.iloc[0].to_dict(), fmt, title=f"holdout test of {plan['model_id']}")
    elif fmt != "table" or len(tests) <= 20:
        frame(shown, fmt, title=f"holdout tests of {plan['model_id']}")
    if many and len(done):
        record(spread(done["accuracy"]), fmt, title="holdout accuracy over split seeds")
    if plot and len(done):
        from genejobs.cli.evaluation_plots import accuracy_png, confusion_png, second_path

        counts = sum(np.array([list(row) for row in c], dtype=int) for c in done["confusion"])
        label = plan["model_id"] + (f", {len(done)} split seeds" if many else "")
        confusion_png(counts, classes, f"confusion matrix: {label}", plot)
        written = [plot]
        if many:
            written.append(second_path(plot, "accuracy"))
            accuracy_png(done["accuracy"].to_numpy(), f"holdout accuracy: {label}", written[-1])
        click.echo(f"wrote {', '.join(written)}", err=True)
    failed = tests[tests["status"] == "failed"]
    if len(failed):
        raise click.ClickException(
            f"{len(failed)} of {len(tests)} tests failed: {failed['error'].iloc[0]}"
        )


COMMANDS = [evaluate]
