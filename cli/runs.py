"""Following a job with a progress bar, and saying how it ended."""

from __future__ import annotations

import sys
import time

import click

from genejobs import api


def wait_for(
    job_id: str, total: int, header: str | None = None, poll: float = 0.2
) -> dict[str, int]:
    """Show a progress bar (done, failed, rate, ETA) until the job is finished (`api.wait`).

    `header` goes to stderr above the bar, once the stack answers.
    """
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
    with Progress(*columns, transient=False, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(job_id, total=total, failed=0, rate="-")

        def show(now: api.Progress) -> None:
            nonlocal header
            if header is not None:
                click.echo(header, err=True)
                header = None
            elapsed = time.monotonic() - started
            bar.update(
                task,
                total=max(total, now.total),  # a job run until stable grows by rounds
                completed=now.completed,
                failed=now.count("failed"),
                rate=f"{now.count('done') / elapsed:.1f}" if elapsed > 0 else "-",
            )

        return api.wait(job_id, poll=poll, on_progress=show).counts


def follow(job_id: str, wait: bool | None, header: str, total: int) -> dict[str, int] | None:
    """Print the job id and return (--no-wait), or show the job's progress until it ends.

    Without --wait/--no-wait, follow the job when stdout is a terminal.
    """
    if wait is None:
        wait = sys.stdout.isatty()
    if not wait:
        click.echo(job_id)
        return None
    return wait_for(job_id, total, header)


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
