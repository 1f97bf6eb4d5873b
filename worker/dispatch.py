"""Sending units to the compute queue, and finding the units the broker lost (writer side).

The writer sends a job's units right after the commit that created them (a
plan, a retry, a ranked search's finalize step). Everything else is derived
from the results file: every `sweep_seconds`, units that are pending in the
file but that the broker holds nowhere (not queued, not delivered to a
worker) and whose result is not waiting in the inbox, are suspects; a unit
still missing at the next sweep is sent again. That covers a writer that died
between its commit and the send, a request whose sender gave up, a Redis that
lost recent writes, and any other way a task can vanish. A unit sent twice is
harmless: every write is idempotent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable

import redis

from genejobs.units import Task, Unit, pack_runs, unit_of
from genejobs.worker import lease
from genejobs.worker.inbox import COMPUTE_QUEUE, INBOX

log = logging.getLogger("genejobs.writer")

UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages


def send(units: Iterable[Unit]) -> int:
    from genejobs.worker.app import enqueue

    return enqueue(units)


# Packs shrink as a job's waiting runs run out (guided self-scheduling): a pack
# holds at most 1/GUIDE of the runs still waiting, so a job's last tasks are
# single runs and no worker waits on a long last pack while others idle.
GUIDE = 16


def packed(units: list[Unit], waiting: Counter | None = None) -> list[Unit]:
    """The tasks for `units`: runs next to each other that may share a task, in one.

    `waiting` counts each job's runs waiting to be sent, these included.
    """
    waiting = Counter(waiting or Counter(u.job_id for u in units))
    tasks: list[Unit] = []
    group: list[Unit] = []
    size = 1

    def close() -> None:
        tasks.append(pack_runs(group, group[0].resend))
        waiting[group[0].job_id] -= len(group)

    for unit in units:
        if (
            group
            and unit.task is Task.IMPORTANCE_RUN
            and unit.job_id == group[0].job_id
            and unit.resend == group[0].resend
            and len(group) < size
        ):
            group.append(unit)
            continue
        if group:
            close()
            group = []
        size = min(unit.pack, -(-waiting[unit.job_id] // GUIDE))
        if unit.task is Task.IMPORTANCE_RUN and size > 1:
            group = [unit]
        else:
            tasks.append(unit)
            waiting[unit.job_id] -= 1
    if group:
        close()
    return tasks


def held_units(headers: dict) -> list[str]:
    """The units a task message carries: those its `units` header names, or its task id's."""
    return headers.get("units") or [unit_of(headers["id"])]


def broker_units(conn: redis.Redis) -> set[str]:
    """The unit ids of every task the broker holds: queued, or delivered and not acknowledged."""
    found: set[str] = set()
    for raw in conn.lrange(COMPUTE_QUEUE, 0, -1):
        found.update(held_units(json.loads(raw)["headers"]))
    for raw in conn.hvals(UNACKED):
        found.update(held_units(json.loads(raw)[0]["headers"]))
    return found


@dataclasses.dataclass
class Backlog:
    """A new job's units not made yet: `make(keys)` makes the units of some of its keys."""

    job_id: str
    keys: list
    make: Callable[[list], list[Unit]]


# Unit ids remembered so a plan applied twice is not sent twice; past this many the
# memory is let go (forgetting costs at most a task sent twice, which is harmless).
SENT_MEMORY = 200_000


class Dispatcher:
    """Queues units to send, sends them a chunk at a time, and resends units the broker lost.

    A plan of 100,000 runs takes the broker about a minute to accept: sent in
    one go it would hold up the writer's reply, its other work and the
    readers. Units wait in `outbox` and go out `chunk` at a time between
    batches; the sweep counts them as held (they are, by this writer). A new
    importance job's runs wait as a `Backlog` of seeds, made into units a
    chunk at a time, so the writer's memory does not grow with the job.
    """

    def __init__(self, conn: redis.Redis, sweep_seconds: float, chunk: int = 250):
        self.conn = conn
        self.sweep_seconds = sweep_seconds
        self.chunk = chunk
        self.sent: set[str] = set()
        self.outbox: deque[Unit] = deque()
        self.backlog: deque[Backlog] = deque()
        self.waiting: Counter = Counter()  # units in the outbox, by job
        self.suspects: set[str] = set()
        self.last_sweep = 0.0
        # Whether anything may have changed since a sweep found nothing pending;
        # an idle writer then leaves the file alone.
        self.busy = True

    @property
    def queued(self) -> int:
        """Units waiting to be sent, made or not."""
        return len(self.outbox) + sum(len(b.keys) for b in self.backlog)

    def send_later(self, job_id: str, keys: list, make: Callable[[list], list[Unit]]) -> int:
        """Queue a new job's units as keys, made into units when their turn comes."""
        if keys:
            self.backlog.append(Backlog(job_id, list(keys), make))
            self.waiting[job_id] += len(keys)
        return len(keys)

    def send_new(self, units: list[Unit]) -> int:
        """Queue the units this writer has not sent yet; return how many."""
        if len(self.sent) > SENT_MEMORY:
            self.sent = set()
        fresh = [u for u in units if u.unit_id not in self.sent]
        self.outbox.extend(fresh)
        self.waiting.update(u.job_id for u in fresh)
        self.sent.update(u.unit_id for u in fresh)
        return len(fresh)

    def resend(self, units: list[Unit]) -> int:
        """Queue units to be sent again under new task ids (a retry, a lost task)."""
        tag = uuid.uuid4().hex[:6]
        self.outbox.extend(dataclasses.replace(u, resend=tag) for u in units)
        self.waiting.update(u.job_id for u in units)
        self.sent.update(u.unit_id for u in units)
        return len(units)

    def drop(self, job_id: str) -> int:
        """Forget the units of a cancelled or deleted job waiting to be sent; return how many."""
        kept = deque(u for u in self.outbox if u.job_id != job_id)
        dropped = len(self.outbox) - len(kept)
        self.outbox = kept
        dropped += sum(len(b.keys) for b in self.backlog if b.job_id == job_id)
        self.backlog = deque(b for b in self.backlog if b.job_id != job_id)
        self.waiting.pop(job_id, None)
        self.suspects = {s for s in self.suspects if not s.startswith(job_id + "-")}
        return dropped

    def flush(self, limit: int | None = None) -> int:
        """Send up to `limit` (default: a chunk) queued units; return how many went.

        Seeded runs of one job that may share a task (`Unit.pack`) go out
        together, up to that many in one task.
        """
        want = self.chunk if limit is None else limit
        while self.backlog and len(self.outbox) < want:
            head = self.backlog[0]
            room = want - len(self.outbox)
            take, head.keys = head.keys[:room], head.keys[room:]
            self.outbox.extend(head.make(take))
            if not head.keys:
                self.backlog.popleft()
        count = min(len(self.outbox), want)
        if count:
            going = [self.outbox[i] for i in range(count)]
            send(packed(going, self.waiting))
            for _ in range(count):
                self.waiting[self.outbox.popleft().job_id] -= 1
            self.waiting = +self.waiting  # drop the jobs with nothing waiting
        return count

    def sweep_due(self) -> bool:
        return self.busy and time.monotonic() - self.last_sweep >= self.sweep_seconds

    def sweep(self, pending: list[Unit]) -> int:
        """Resend pending units that two sweeps in a row found nowhere; return how many."""
        self.last_sweep = time.monotonic()
        if not pending:
            self.suspects = set()
            self.busy = False
            return 0
        known = broker_units(self.conn) | {u.unit_id for u in self.outbox}
        # A job with units still to make holds them here, not in the broker.
        making = {b.job_id for b in self.backlog}
        pending = [u for u in pending if u.job_id not in making]
        # A task pushes its result before it is acknowledged: a unit missing
        # from the broker may have its result in the inbox, not yet applied.
        if self.conn.llen(INBOX):
            return 0
        missing = {u.unit_id: u for u in pending if u.unit_id not in known}
        # Between a worker's pop from the queue and its note in `unacked` a
        # task is briefly in neither: only a second sighting counts.
        lost = [u for unit_id, u in missing.items() if unit_id in self.suspects]
        self.suspects = set(missing) - {u.unit_id for u in lost}
        if lost:
            log.warning(
                "%d pending units were held nowhere by the broker; sending them again", len(lost)
            )
            self.resend(lost)
        return len(lost)


def sweep_interval() -> float:
    """Seconds between sweeps: a lost unit is sent again within about two of them."""
    return max(1.0, lease.lease_interval())
