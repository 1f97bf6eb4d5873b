"""Seeded importance runs as compute tasks: one fit per seed, several seeds to a task.

The fitting itself is `tasks.fit`; this module runs a task's seeds in turn,
hands results to the writer through its channel in batches, hands back runs
of a task that runs long, and splits a task delivered again.
"""

from __future__ import annotations

import time
import uuid

from genejobs.channel import Channel
from genejobs.config import settings
from genejobs.contract import RunDone, RunFailed
from genejobs.errors import ResultUndelivered
from genejobs.tasks.fit import cached_matrix, fit_pair, fit_run, run_message
from genejobs.units import Unit, pack_runs, run_unit


def execute(
    channel: Channel,
    job_id: str,
    dataset_id: str,
    dataset_path: str,
    model: str,
    seed: int,
    test_size: float,
    scheme: str = "split",
) -> str:
    """Run one seed and hand the outcome (done or failed) to the writer.

    `scheme`: "split" (one fit on a stratified split of 1 - test_size) or
    "pairs" (both halves of a stratified half split; see `fit_pair`).
    """
    if channel.cancelled(job_id):
        return "cancelled"
    message, error = seed_outcome(
        channel.worker, job_id, dataset_id, dataset_path, model, seed, test_size, scheme
    )
    channel.push([message])
    if error is not None:
        raise RunError(error)
    return "done"


class RunError(Exception):
    """A seeded fit failed (its failure is already reported to the writer)."""


def seed_outcome(
    worker, job_id, dataset_id, dataset_path, model, seed, test_size, scheme
) -> tuple[RunDone | RunFailed, str | None]:
    """Fit one seed: the message for the writer, and the error text if the fit failed."""
    other_half = None
    try:
        if scheme == "pairs":
            result, other_half = fit_pair(cached_matrix(dataset_path), model, seed)
        else:
            result = fit_run(cached_matrix(dataset_path), model, seed, test_size)
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        return RunFailed(job_id, dataset_id, model, seed, error, worker), error
    return run_message(job_id, dataset_id, model, result, other_half, worker), None


# A task of several runs that has run this many times its planned seconds
# (GENEJOBS_PACK_SECONDS) hands the runs it has not started back to the queue,
# in two tasks, so a slow fit's job spreads over idle workers and a killed
# worker redoes little (see storage.units.run_pack).
HAND_BACK_FACTOR = 4.0
# A task of several runs hands its results to the writer together, in one Redis
# command: runs of a millisecond cost one round trip per batch, not one each. A
# result waits at most about this long (see `Outbox`); a slow fit's goes at once.
PUSH_AFTER = 0.02


class Outbox:
    """Results of a task of several runs, on their way to the writer in batches."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.messages: list[RunDone | RunFailed] = []
        self.oldest = 0.0  # when the first waiting result's fit started
        self.last_fit = 0.0  # seconds the last fit (with its scoring) took

    def add(self, message: RunDone | RunFailed, started: float) -> None:
        now = time.monotonic()
        if not self.messages:
            self.oldest = started
        self.messages.append(message)
        self.last_fit = now - started
        if now - self.oldest >= PUSH_AFTER:
            self.flush()

    def before_next(self) -> None:
        """Send now what would otherwise wait past PUSH_AFTER behind a fit like the last."""
        if self.messages and time.monotonic() - self.oldest + self.last_fit >= PUSH_AFTER:
            self.flush()

    def flush(self) -> None:
        if self.messages:
            self.channel.push(self.messages)
            self.messages = []


def execute_many(
    channel: Channel,
    job_id: str,
    dataset_id: str,
    dataset_path: str,
    model: str,
    seeds: list[int],
    test_size: float,
    scheme: str = "split",
) -> str:
    """Run several seeds of one job in turn, results handed to the writer as they are done.

    A failed fit is reported and the others go on. Past HAND_BACK_FACTOR times
    the planned seconds, the runs not started go back to the queue as two tasks.
    Whatever ends the task, the results it has are sent first (unless Redis is
    what failed: then the task goes back to the queue whole).
    """
    started = checked = time.monotonic()
    hand_back_after = HAND_BACK_FACTOR * settings().pack_seconds
    if channel.cancelled(job_id):
        return "cancelled"
    failed: list[str] = []
    outbox = Outbox(channel)
    try:
        for done, seed in enumerate(seeds):
            now = time.monotonic()
            left = seeds[done:]
            if done and now - started > hand_back_after and len(left) > 1:
                outbox.flush()
                half = (len(left) + 1) // 2
                args = (job_id, dataset_id, dataset_path, model, test_size, scheme)
                channel.enqueue([run_task(*args, left[:half]), run_task(*args, left[half:])])
                return f"{done} runs done, {len(left)} handed back"
            if now - checked > 0.25:
                checked = now
                if channel.cancelled(job_id):
                    outbox.flush()
                    return "cancelled"
            outbox.before_next()
            message, error = seed_outcome(
                channel.worker, job_id, dataset_id, dataset_path, model, seed, test_size, scheme
            )
            outbox.add(message, now)
            if error is not None:
                failed.append(f"seed {seed}: {error}")
        outbox.flush()
    except ResultUndelivered:
        raise
    except Exception:
        # Runs already done are not done again for the error of another.
        outbox.flush()
        raise
    if failed:
        raise RunError(f"{len(failed)} of {len(seeds)} runs failed; {failed[0]}")
    return f"{len(seeds)} runs done"


def run_task(job_id, dataset_id, dataset_path, model, test_size, scheme, seeds) -> Unit:
    """The task for some runs of a job, sent anew (a fresh resend tag)."""
    units = [
        run_unit(job_id, dataset_id, dataset_path, model, seed, test_size, scheme) for seed in seeds
    ]
    return pack_runs(units, uuid.uuid4().hex[:6])


def split_runs(channel: Channel, kwargs: dict) -> bool:
    """A task of several runs delivered again (its process died): send each run alone, so
    a run that kills its process fails alone. True when it was split."""
    seeds = kwargs.get("seeds") or []
    if len(seeds) < 2:
        return False
    args = [kwargs[k] for k in ("job_id", "dataset_id", "dataset_path", "model", "test_size")]
    scheme = kwargs.get("scheme", "split")
    channel.enqueue([run_task(*args, scheme, [seed]) for seed in seeds])
    return True


def give_up(worker: str, kwargs: dict, error: str) -> list[RunFailed]:
    """The failures to record for a task of runs that was not run again."""
    seeds = kwargs.get("seeds") or [kwargs["seed"]]
    return [
        RunFailed(kwargs["job_id"], kwargs["dataset_id"], kwargs["model"], s, error, worker)
        for s in seeds
    ]


def importance_run(
    channel: Channel,
    job_id,
    dataset_id,
    dataset_path,
    model,
    test_size,
    seed=None,
    seeds=None,
    scheme="split",
) -> str:
    """A task of one seeded run, or of several of one job (`seeds`)."""
    if seeds is None:
        return execute(channel, job_id, dataset_id, dataset_path, model, seed, test_size, scheme)
    return execute_many(channel, job_id, dataset_id, dataset_path, model, seeds, test_size, scheme)
