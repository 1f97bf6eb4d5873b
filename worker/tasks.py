"""The compute tasks Celery runs: each a thin wrapper around a pure function of `tasks`.

Each wrapper hands its function the `RedisChannel` (results to the writer's
inbox, cancel flags, the compute queue), so the functions themselves know
nothing of Redis or Celery. Celery acknowledges a task that raised (acks_late
acks failures too); a task whose result never reached the writer must not be
acknowledged as done, so it is rejected with requeue instead, and if Redis
cannot even take the rejection, its lease lapses and the restore sweep brings
it back. A task delivered more than MAX_DELIVERIES times (each time its
process died) is not run again: its `give_up` failure is recorded. A task
delivered again that carries several units is split (each unit sent alone),
so that a unit whose process dies fails alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from celery.exceptions import Reject

from genejobs.contract import Message, ModelFinalizeFailed, ShardFailed, TestFailed
from genejobs.errors import ResultUndelivered
from genejobs.tasks import evaluate, importance, search, shap_shard
from genejobs.units import Task, Unit
from genejobs.worker import inbox
from genejobs.worker.app import app, deliveries, enqueue, worker_name

# A unit whose worker process died this many times while running it (a fit
# that runs out of memory, a library that crashes) is recorded failed.
MAX_DELIVERIES = 5


class RedisChannel:
    """A task's way to the writer and the queue, over Redis and Celery (`genejobs.channel`)."""

    @property
    def worker(self) -> str:
        return worker_name()

    def push(self, messages: Sequence[Message]) -> None:
        inbox.push_many(list(messages))

    def cancelled(self, job_id: str) -> bool:
        return inbox.is_cancelled(job_id)

    def enqueue(self, units: Sequence[Unit]) -> None:
        enqueue(units)


CHANNEL = RedisChannel()

GiveUp = Callable[[str, dict, str], Message | list[Message]]


def unit_task(name: Task, give_up: GiveUp, split: Callable | None = None):
    """Register `function(CHANNEL, **kwargs)` as the compute task `name` (see the module doc).

    `give_up(worker, kwargs, error)`: the failure recorded past MAX_DELIVERIES;
    `split(CHANNEL, kwargs)`: send a task's units one by one (True when it did).
    """

    def register(function):
        def body(self, **kwargs):
            try:
                delivered = deliveries(self.request.id)
                if delivered > MAX_DELIVERIES:
                    error = (
                        f"WorkerLost: the worker process running this unit died "
                        f"{MAX_DELIVERIES} times (out of memory, or a crash in a library)"
                    )
                    reports = give_up(worker_name(), kwargs, error)
                    CHANNEL.push(reports if isinstance(reports, list) else [reports])
                    return error
                if delivered > 1 and split is not None and split(CHANNEL, kwargs):
                    return "delivered again: its units were sent one by one"
                return function(CHANNEL, **kwargs)
            except ResultUndelivered as exc:
                raise Reject(str(exc), requeue=True) from None

        body.__name__, body.__doc__ = function.__name__, function.__doc__
        return app.task(name=str(name), ignore_result=True, bind=True, typing=False)(body)

    return register


importance_run = unit_task(Task.IMPORTANCE_RUN, importance.give_up, importance.split_runs)(
    importance.importance_run
)
search_fold = unit_task(
    Task.SEARCH_FOLD, lambda worker, kw, error: search.failed_fold(worker, kw, error)
)(search.search_fold)
search_finalize = unit_task(
    Task.SEARCH_FINALIZE,
    lambda worker, kw, error: ModelFinalizeFailed(kw["job_id"], kw["model_id"], error),
)(search.search_finalize)
holdout_test = unit_task(
    Task.HOLDOUT_TEST,
    lambda worker, kw, error: TestFailed(kw["job_id"], kw["test_id"], error, worker),
)(evaluate.execute)
shap_shard_task = unit_task(
    Task.SHAP_SHARD,
    lambda worker, kw, error: ShardFailed(kw["job_id"], kw["shard"], error, worker),
)(shap_shard.shap_shard)
