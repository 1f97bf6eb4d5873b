"""Jobs of every kind (importance, search, evaluate, SHAP): list, summarise, follow, control."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genejobs.api._reading import reading
from genejobs.api._waiting import Progress, progress, wait

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Job:
    """A job on the stack: follow it, read its summary, cancel, retry or delete it."""

    id: str

    def progress(self) -> dict[str, int]:
        """Unit counts (pending, done, failed, cancelled) as the writer last published them."""
        return progress(self.id).counts

    def summary(self) -> dict:
        """What `genejobs jobs show` prints: counts, then the kind's own summary."""
        from genejobs.storage import queries

        with reading() as con:
            return queries.job(con, self.id)

    def wait(self, timeout: float | None = None, progress: bool = True) -> dict[str, int]:
        """Wait until no unit is pending (a progress line on stderr); return the unit counts.

        Raises TimeoutError after `timeout` seconds. Failed units do not raise:
        see the counts, `summary()["errors"]`, and `retry()`.
        """
        shown: list[int] = []

        def line(now: Progress) -> None:
            if progress and (not shown or shown[-1] != now.completed):
                print(f"\r{self.id}: {now.completed}/{now.total} units", end="", file=sys.stderr)
                sys.stderr.flush()
                shown.append(now.completed)

        try:
            return wait(self.id, timeout=timeout, on_progress=line).counts
        finally:
            if shown:  # the progress line ends, however the wait did
                print(file=sys.stderr)

    def cancel(self) -> int:
        """Cancel the job's pending units; returns how many were cancelled."""
        return int(cancel_job(self.id)["cancelled"])

    def retry(self, pending: bool = False, cancelled: bool = False) -> int:
        """Run the failed units again (see `retry_job`); returns how many were sent."""
        return int(retry_job(self.id, pending=pending, cancelled=cancelled)["sent"])

    def delete(self) -> dict[str, int]:
        """Remove the job and its rows (a running job is refused); return rows removed by table."""
        return delete_job(self.id)["removed"]


def job(job_id: str) -> Job:
    """A job by its id (checked to exist)."""
    found = Job(job_id)
    found.summary()
    return found


def jobs() -> pd.DataFrame:
    """Every job of every kind with its unit counts (as `genejobs jobs list`)."""
    from genejobs.storage import queries

    with reading() as con:
        return queries.jobs(con)


def cancel_job(job_id: str) -> dict:
    """Cancel a job: its pending units are not run, and no unit of it is recorded done afterwards.

    The writer's reply: `cancelled` (units), and `finished` (True when no unit
    was left to run: the job stays as it is).
    """
    from genejobs.contract import CancelJob
    from genejobs.worker import inbox

    return inbox.request(CancelJob(job_id=job_id))


def retry_job(job_id: str, pending: bool = False, cancelled: bool = False) -> dict:
    """Send a job's failed units again, with the same seeds, folds or shards.

    `pending`: also units still pending (their tasks may be lost); `cancelled`:
    also the units a cancel stopped, and the cancel is lifted. The writer's
    reply says how many units were `sent`.
    """
    from genejobs.contract import RetryJob
    from genejobs.worker import inbox

    return inbox.request(
        RetryJob(job_id=job_id, include_pending=pending, include_cancelled=cancelled)
    )


def delete_job(job_id: str) -> dict:
    """Remove a job that no longer runs and every row it recorded; `removed`: rows by table."""
    from genejobs.contract import DeleteJob
    from genejobs.worker import inbox

    return inbox.request(DeleteJob(job_id=job_id))
