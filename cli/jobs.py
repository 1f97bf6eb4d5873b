"""`genejobs jobs`: list, show, watch, cancel, retry and delete jobs of every kind.

Importance jobs, searches, evaluations and SHAP jobs are all jobs of units
(seeded runs, folds, holdout tests, shards); these commands treat them alike.
"""

from __future__ import annotations

import sys

import click

from genejobs import api
from genejobs.cli.output import format_option, frame, record
from genejobs.cli.runs import report, wait_for


@click.group()
def jobs():
    """Follow and control jobs of every kind: importance, search, evaluate, SHAP."""


@jobs.command("list")
@format_option
def list_(fmt):
    """List jobs with their unit counts and status."""
    frame(api.jobs(), fmt, title="jobs")


@jobs.command()
@click.argument("job_id")
@format_option
def show(job_id, fmt):
    """Show one job: unit counts, its kind's summary, first errors."""
    record(api.Job(job_id).summary(), fmt, title=f"job {job_id}")


@jobs.command()
@click.argument("job_id")
def watch(job_id):
    """Follow a job with its progress bar until no unit is pending; fail if any unit failed."""
    summary = api.Job(job_id).summary()
    if summary["pending"]:
        header = f"job {job_id}: {summary['kind']}, {summary['units']} units"
        counts = wait_for(job_id, int(summary["units"]), header)
    else:
        counts = {k: int(summary[k]) for k in ("done", "failed", "cancelled")}
    report(job_id, counts)


@jobs.command()
@click.argument("job_id")
def cancel(job_id):
    """Cancel a job: its pending units are not run; finished ones stay recorded.

    The cancel is kept in the results file: no unit of the job is recorded as
    done afterwards, even by a task that was already running.
    """
    reply = api.cancel_job(job_id)
    if reply["finished"]:
        click.echo(f"job {job_id}: already finished, nothing to cancel")
        return
    click.echo(f"job {job_id}: cancelled {reply['cancelled']} pending units")


@jobs.command()
@click.argument("job_id")
def delete(job_id):
    """Remove a job and every row it recorded (runs, importances, folds, SHAP values).

    A running job is refused: cancel it first. The seeds of a deleted
    importance job may be drawn again by later jobs.
    """
    reply = api.delete_job(job_id)
    rows = sum(reply["removed"].values())
    click.echo(f"job {job_id}: deleted ({rows} rows)")


@jobs.command()
@click.argument("job_id")
@click.option(
    "--pending",
    is_flag=True,
    help="Also send again units still pending (their tasks may be lost).",
)
@click.option(
    "--cancelled",
    is_flag=True,
    help="Also run the units a cancel stopped, and lift the cancel.",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Follow the job with a progress bar [default: when on a terminal].",
)
def retry(job_id, pending, cancelled, wait):
    """Run a job's failed units again (with the same seeds, folds or shards)."""
    retry_job(job_id, pending, cancelled, wait)


def retry_job(job_id: str, pending: bool, cancelled: bool, wait: bool | None) -> None:
    reply = api.retry_job(job_id, pending=pending, cancelled=cancelled)
    if not reply["sent"]:
        click.echo(f"job {job_id}: nothing to retry")
        return
    click.echo(f"job {job_id}: sent {reply['sent']} units again")
    if wait is None:
        wait = sys.stdout.isatty()
    if wait:
        counts = wait_for(job_id, api.progress(job_id).count("total") or reply["sent"])
        report(job_id, counts)


COMMANDS = [jobs]
