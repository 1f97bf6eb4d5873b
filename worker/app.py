"""The Celery app that the CLI enqueues to and the compute workers run.

JSON only on the broker; late acks with reject-on-worker-lost, so a task whose
worker dies is run again (the writer makes that harmless); one task prefetched
per process; task events on for Flower. Tasks hand their results to the
writer's inbox, not to the result backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

from worker.config import THREAD_CAPS, settings

for _name, _value in THREAD_CAPS.items():
    os.environ.setdefault(_name, _value)

from celery import Celery  # noqa: E402

from worker.inbox import COMPUTE_QUEUE  # noqa: E402


def make_app() -> Celery:
    config = settings()
    celery_app = Celery(
        "genejobs",
        broker=config.redis_url,
        backend=config.redis_url,
        include=["tasks.importance", "tasks.search", "tasks.evaluate", "tasks.shap_shard"],
    )
    celery_app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=COMPUTE_QUEUE,
        task_send_sent_event=True,
        worker_send_task_events=True,
        task_ignore_result=True,
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Longer than the longest task, or Redis hands a running task to a
        # second worker; the restore sweep brings back tasks of dead workers.
        broker_transport_options={
            "visibility_timeout": config.visibility_timeout,
            "unacked_restore_interval": config.restore_interval,
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": config.visibility_timeout},
    )
    return celery_app


app = make_app()


_senders: dict[str, Celery] = {}


class Call(NamedTuple):
    """One task to enqueue: its registered name, JSON arguments, id, and Flower's name for it."""

    name: str
    kwargs: dict
    task_id: str
    shadow: str


def enqueue(calls: Iterable[Call]) -> int:
    """Send tasks to the compute queue over one connection; return how many were sent.

    Results never go to the result backend (the tasks hand them to the
    writer), so the tasks are sent with ignore_result: otherwise enqueueing
    subscribes to a result channel per task that no one reads.
    """
    app_ = sender()
    sent = 0
    with app_.producer_or_acquire() as producer:
        for call in calls:
            app_.send_task(
                call.name,
                kwargs=call.kwargs,
                queue=COMPUTE_QUEUE,
                task_id=call.task_id,
                producer=producer,
                shadow=call.shadow,
                ignore_result=True,
            )
            sent += 1
    return sent


def sender() -> Celery:
    """The app to enqueue and inspect with, bound to the Redis URL configured now.

    `app` reads the settings once, at import; a process whose settings change
    later (a test, a notebook) gets an app for the new URL.
    """
    url = settings().redis_url
    if url not in _senders:
        _senders[url] = app if app.conf.broker_url == url else make_app()
    return _senders[url]
