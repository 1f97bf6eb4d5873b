"""Leases on the tasks a compute worker holds, so a dead worker's tasks come back promptly.

Kombu's Redis transport keeps every delivered, unacknowledged message in the
`unacked` hash and its delivery time in the `unacked_index` sorted set; the
restore sweep of any live worker puts a message back on its queue once that
time is older than the visibility timeout. Celery's own default assumes no
task outlives the timeout, which forces a choice between long tasks being
run twice and a dead worker's tasks waiting hours.

Here the worker's parent process renews the time of every message it holds
(reserved or running) every `visibility_timeout / 6` seconds. The timeout can
then be short (30 s by default): a task of any length keeps its lease while
its worker lives, and a worker killed outright (SIGKILL, a lost machine)
stops renewing, so its tasks run elsewhere about one timeout later. A child
process that dies is handled by Celery itself (`reject_on_worker_lost`
requeues its task at once).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

import redis

from genejobs.config import settings

log = logging.getLogger("genejobs.lease")

# kombu.transport.redis.Channel.unacked_index_key's default; the app sets no other.
UNACKED_INDEX = "unacked_index"
# The same thread says the worker is alive: a key per worker node that lapses three
# renewals after its worker stopped (`genejobs status` reads them; no Celery ping).
PRESENCE_PREFIX = "genejobs:worker:"


def held_tags() -> list[str]:
    """Delivery tags of the messages this worker process has received and not yet acknowledged."""
    from celery.worker import state

    for _ in range(5):
        try:
            requests = list(state.reserved_requests) + list(state.active_requests)
            break
        except RuntimeError:  # the set changed while it was copied; try again
            continue
    else:
        return []
    return sorted({r.message.delivery_tag for r in requests if r.message.delivery_tag})


def renew(conn: redis.Redis, tags: list[str], now: float | None = None) -> int:
    """Move the lease of each held message to now; messages already acknowledged stay gone."""
    if not tags:
        return 0
    return conn.zadd(UNACKED_INDEX, dict.fromkeys(tags, now or time.time()), xx=True, ch=True)


def lease_interval() -> float:
    return max(0.5, settings().visibility_timeout / 6)


def workers_present(conn: redis.Redis) -> list[str]:
    """The compute worker nodes whose lease thread renewed lately (within 3 renewals)."""
    return sorted(
        key.decode()[len(PRESENCE_PREFIX) :] for key in conn.scan_iter(PRESENCE_PREFIX + "*")
    )


def _renew_forever(url: str, every: float, node: str) -> None:
    conn = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    presence = PRESENCE_PREFIX + node
    while True:
        with contextlib.suppress(redis.RedisError):  # said below, with the leases
            conn.set(presence, "1", px=int(every * 3000))
        time.sleep(every)
        try:
            renew(conn, held_tags())
        except redis.RedisError as exc:
            # Redis restarting: the leases resume when it answers again.
            log.warning("could not renew task leases: %s", exc)
        except Exception:  # the worker must keep renewing whatever one round hit
            log.exception("task lease renewal failed")


def start_renewing(sender=None, **_) -> None:
    """Start the renewal thread (connected to Celery's `worker_ready` signal, whose sender
    is the worker's consumer: its hostname names the node)."""
    node = getattr(sender, "hostname", None) or socket.gethostname()
    thread = threading.Thread(
        target=_renew_forever,
        args=(settings().redis_url, lease_interval(), node),
        name="genejobs-lease",
        daemon=True,
    )
    thread.start()
