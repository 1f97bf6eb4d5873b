"""What a compute task needs of the service around it: the worker layer gives it.

Tasks (`genejobs.tasks`) compute; they do not know Redis or Celery. A task's
function takes a `Channel` to hand its results to the writer, ask whether its
job was cancelled, and send units back to the queue; `worker.tasks` passes the
one that works over Redis and Celery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from genejobs.contract import Message
from genejobs.units import Unit


class Channel(Protocol):
    """A compute task's way to the writer and the queue."""

    @property
    def worker(self) -> str:
        """This process as results name it (host:pid)."""

    def push(self, messages: Sequence[Message]) -> None:
        """Hand results to the writer, oldest first; raise ResultUndelivered when it cannot,
        so the task goes back to the queue instead of being acknowledged."""

    def cancelled(self, job_id: str) -> bool:
        """Whether the job was announced cancelled (a shortcut: the results file decides)."""

    def enqueue(self, units: Sequence[Unit]) -> None:
        """Send units' tasks to the compute queue (runs handed back, a task split)."""
