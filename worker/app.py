"""The Celery app that the CLI enqueues to and the compute workers run.

JSON only on the broker; late acks with reject-on-worker-lost, so a task whose
worker dies is run again (the writer makes that harmless); one task prefetched
per process; task events on for Flower. Tasks hand their results to the
writer's inbox, not to the result backend.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from genejobs.config import THREAD_CAPS, settings

for _name, _value in THREAD_CAPS.items():
    os.environ.setdefault(_name, _value)

import redis  # noqa: E402
from celery import Celery, signals  # noqa: E402

from genejobs.units import Unit  # noqa: E402
from genejobs.worker import inbox, lease  # noqa: E402
from genejobs.worker.inbox import COMPUTE_QUEUE  # noqa: E402


def make_app() -> Celery:
    config = settings()
    celery_app = Celery(
        "genejobs",
        broker=config.redis_url,
        backend=config.redis_url,
        include=["genejobs.worker.tasks"],
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
        # Live workers renew the lease of every task they hold (worker.lease),
        # so a short timeout only ever brings back the tasks of dead workers.
        broker_transport_options={
            "visibility_timeout": config.visibility_timeout,
            "unacked_restore_interval": config.restore_interval,
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": config.visibility_timeout},
    )
    return celery_app


app = make_app()
signals.worker_ready.connect(lease.start_renewing, weak=False)


@signals.worker_init.connect(weak=False)
def _preload(**_) -> None:
    """Import the fitting and explaining libraries in the worker's parent, before its pool
    forks: each process then starts with them (about a second each, otherwise paid by the
    first task a new process runs, after every process replaced as well)."""
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.dummy  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    from genejobs.tasks.shap_engines import warm_up

    warm_up()


_names: dict[int, str] = {}


def worker_name() -> str:
    """This process as results name it: host and pid."""
    pid = os.getpid()
    if pid not in _names:
        _names[pid] = f"{socket.gethostname()}:{pid}"
    return _names[pid]


def deliveries(task_id: str) -> int:
    """Count one more delivery of a task; return how many there have been (0 without Redis)."""
    key = inbox.DELIVERIES_PREFIX + task_id
    try:
        pipe = inbox.client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 7 * 24 * 3600)
        return int(pipe.execute()[0])
    except redis.RedisError:
        return 0


_senders: dict[str, Celery] = {}


def enqueue(units: Iterable[Unit]) -> int:
    """Send units' tasks to the compute queue over one connection; return how many were sent.

    Results never go to the result backend (the tasks hand them to the
    writer), so the tasks are sent with ignore_result: otherwise enqueueing
    subscribes to a result channel per task that no one reads.
    """
    app_ = sender()
    sent = 0
    with app_.producer_or_acquire() as producer:
        for unit in units:
            app_.send_task(
                unit.task.value,
                kwargs=unit.kwargs,
                queue=COMPUTE_QUEUE,
                task_id=unit.task_id,
                producer=producer,
                shadow=unit.shadow,
                ignore_result=True,
                **({"headers": {"units": list(unit.members)}} if unit.members else {}),
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
