"""`genejobs jobs`: list, show, cancel and retry jobs."""

from __future__ import annotations

import sys

import click

from cli.output import format_option, frame, record
from cli.runs import enqueue_runs, report, wait_for
from storage import queries
from storage.db import reading
from worker import inbox


@click.group()
def jobs():
    """Follow and control jobs."""


@jobs.command("list")
@format_option
def list_(fmt):
    """List jobs with their run counts and status."""
    with reading() as con:
        frame(queries.jobs(con), fmt, title="jobs")


@jobs.command()
@click.argument("job_id")
@format_option
def show(job_id, fmt):
    """Show one job: parameters, run counts, holdout accuracy spread, first errors."""
    with reading() as con:
        record(queries.job(con, job_id), fmt, title=f"job {job_id}")


@jobs.command()
@click.argument("job_id")
def cancel(job_id):
    """Cancel a job: its pending runs are skipped; finished runs stay recorded."""
    inbox.require_redis()
    inbox.mark_cancelled(job_id)
    try:
        reply = inbox.request({"op": "cancel_job", "job_id": job_id})
    except Exception:
        inbox.client().delete(inbox.CANCEL_PREFIX + job_id)
        raise
    click.echo(f"job {job_id}: cancelled {reply['cancelled']} pending runs")


@jobs.command()
@click.argument("job_id")
@click.option(
    "--pending",
    is_flag=True,
    help="Also re-enqueue runs still pending (e.g. after the queue was lost).",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Follow the job with a progress bar [default: when on a terminal].",
)
def retry(job_id, pending, wait):
    """Re-enqueue the failed runs of a job (with their seeds)."""
    inbox.require_redis()
    plan = inbox.request({"op": "retry_job", "job_id": job_id, "include_pending": pending})
    inbox.client().delete(inbox.CANCEL_PREFIX + job_id)
    if not plan["seeds"]:
        click.echo(f"job {job_id}: nothing to retry")
        return
    enqueue_runs(plan, retry=True)
    click.echo(f"job {job_id}: re-enqueued {len(plan['seeds'])} runs")
    if wait is None:
        wait = sys.stdout.isatty()
    if wait:
        counts = wait_for(job_id, inbox.progress(job_id).get("total", len(plan["seeds"])))
        report(job_id, counts)


COMMANDS = [jobs]
