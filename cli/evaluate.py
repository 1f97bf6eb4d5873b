"""`genejobs evaluate`: a searched model on holdout splits made with chosen or new seeds."""

from __future__ import annotations

import sys

import click

from genejobs import api
from genejobs.cli.output import format_option, frame, record
from genejobs.cli.runs import wait_for
from genejobs.cli.usage import usage_errors


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
    with usage_errors():
        plan = api.plan_evaluate(
            model_id,
            split_seed=split_seed,
            split_seeds=runs,
            hyper_seed=hyper_seed,
            dataset=dataset,
        )
    job_id = plan["job_id"]
    if wait is None:
        wait = sys.stdout.isatty() or plot is not None
    if not wait:
        click.echo(job_id)
        return
    wait_for(
        job_id,
        len(plan["tests"]),
        f"job {job_id}: {len(plan['tests'])} holdout tests of {model_id}",
    )
    report(plan, plot, fmt, many=runs is not None)


def report(plan: dict, plot: str | None, fmt: str, many: bool) -> None:
    tests = api.holdout_tests(plan["job_id"])
    done = tests[tests["status"] == "done"]
    shown = tests.drop(columns=["confusion"])
    if not many:
        record(shown.iloc[0].to_dict(), fmt, title=f"holdout test of {plan['model_id']}")
    elif fmt != "table" or len(tests) <= 20:
        frame(shown, fmt, title=f"holdout tests of {plan['model_id']}")
    if many and len(done):
        record(
            api.accuracy_spread(done["accuracy"]), fmt, title="holdout accuracy over split seeds"
        )
    if plot and len(done):
        from genejobs.cli.evaluation_plots import accuracy_png, confusion_png, second_path

        counts = api.confusion_total(done["confusion"])
        label = plan["model_id"] + (f", {len(done)} split seeds" if many else "")
        confusion_png(counts, tests.attrs["classes"], f"confusion matrix: {label}", plot)
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
