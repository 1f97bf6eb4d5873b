"""Following a job: its unit counts, and the one waiter that the CLI's bar and `Job.wait` use.

A job is finished when the writer has published its counts and no unit is
pending: each is done, failed or cancelled. A SHAP shard that is computed and
waits in the spool to be stored with others (`spooled`) is not finished yet;
the writer stores every waiting shard once none is left to compute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """A job's unit counts by status, as the writer last published them (empty: none yet)."""

    counts: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def pending(self) -> int:
        """Units still to compute."""
        return self.count("pending")

    @property
    def completed(self) -> int:
        """Units no worker needs to run again: done, failed, cancelled, or computed and spooled."""
        return sum(map(self.count, ("done", "failed", "cancelled", "spooled")))

    @property
    def total(self) -> int:
        """Every unit of the job so far (a job run until stable grows by rounds)."""
        return max(self.count("total"), self.completed + self.pending)

    @property
    def finished(self) -> bool:
        """No unit pending or spooled: each is done, failed or cancelled."""
        return bool(self.counts) and self.pending == 0 and self.count("spooled") == 0


def progress(job_id: str) -> Progress:
    """A job's unit counts as the writer last published them (read from Redis, not the file)."""
    from genejobs.worker import inbox

    return Progress(inbox.progress(job_id))


def wait(
    job_id: str,
    *,
    timeout: float | None = None,
    poll: float = 0.2,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Poll a job's counts until it is finished (see `Progress.finished`); return the last.

    `on_progress` sees every poll's counts (a progress bar). Raises
    TimeoutError after `timeout` seconds, ServiceUnavailable without Redis.
    Failed units do not raise: the counts say how many.
    """
    from genejobs.worker import inbox

    inbox.require_redis()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        now = Progress(inbox.progress(job_id))
        if on_progress is not None:
            on_progress(now)
        if now.finished:
            return now
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still has {now.pending} units pending")
        time.sleep(poll)
