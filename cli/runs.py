"""Enqueueing seeded runs and following a job until it ends."""

from __future__ import annotations

import sys
import time

import click

from genejobs.worker import inbox


def wait_for(job_id: str, total: int, poll: float = 0.2) -> dict[str, int]:
    """Show a progress bar (done, failed, rate, ETA) until no run of the job is pending."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]} runs/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    started = time.monotonic()
    counts: dict[str, int] = {}
    with Progress(*columns, transient=False, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(job_id, total=total, failed=0, rate="-")
        while True:
            counts = inbox.progress(job_id)
            # Spooled SHAP shards are computed and wait to be ingested with others.
            finished = counts.get("done", 0) + counts.get("failed", 0) + counts.get("spooled", 0)
            elapsed = time.monotonic() - started
            bar.update(
                task,
                # a job run until stable grows by rounds
                total=max(total, finished + counts.get("pending", 0)),
                completed=finished,
                failed=counts.get("failed", 0),
                rate=f"{counts.get('done', 0) / elapsed:.1f}" if elapsed > 0 else "-",
            )
            if counts and counts.get("pending", 1) == 0:
                break
            time.sleep(poll)
    return counts


def follow(job_id: str, wait: bool | None, header: str, total: int) -> dict[str, int] | None:
    """Print the job id and return (--no-wait), or show the job's progress until it ends.

    Without --wait/--no-wait, follow the job when stdout is a terminal.
    """
    if wait is None:
        wait = sys.stdout.isatty()
    if not wait:
        click.echo(job_id)
        return None
    click.echo(header, err=True)
    return wait_for(job_id, total)


def report(job_id: str, counts: dict[str, int]) -> None:
    """Print how a job ended; fail the command if any run failed."""
    click.echo(
        f"job {job_id}: {counts.get('done', 0)} done, {counts.get('failed', 0)} failed, "
        f"{counts.get('cancelled', 0)} cancelled"
    )
    if counts.get("failed", 0):
        raise click.ClickException(
            f"{counts['failed']} units failed; see `genejobs jobs show {job_id}`, "
            f"then `genejobs jobs retry {job_id}`"
        )
