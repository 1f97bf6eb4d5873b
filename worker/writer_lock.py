"""The writer's lock in Redis: one holder, renewed by a thread, given up only by its holder.

The lock's value names the holder, `host:pid:token`. A thread renews it every
second with a compare-and-expire, so a long transaction never lets it lapse,
and a writer whose lock was taken over (it stalled past the lock's life and
another writer started) learns it at its next renewal and stops; the fence in
the results file (`writer_fence`) makes sure it commits nothing meanwhile.
When the holder is a process of this machine that no longer runs, anyone may
clear the lock at once instead of waiting for it to expire.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid

import psutil
import redis

log = logging.getLogger("genejobs.writer")

WRITER_LOCK = "genejobs:writer:lock"
LOCK_MS = 10_000
RENEW_SECONDS = 1.0

# Renew if still ours; take it again if Redis lost it (a restart without the
# key); report a foreign holder.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
elseif not holder then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def new_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder(conn: redis.Redis) -> str | None:
    value = conn.get(WRITER_LOCK)
    return value.decode() if value else None


def holder_is_dead(identity: str) -> bool:
    """Say whether the holder is a process of this machine that is gone (or is another program)."""
    host, _, rest = identity.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's writer: only its lock's expiry tells
    try:
        command = " ".join(psutil.Process(int(pid)).cmdline())
    except psutil.Error:
        return True
    return "genejobs.worker.writer" not in command


def writer_alive(conn: redis.Redis) -> bool:
    """Say whether a writer holds the lock and is not known to be dead."""
    current = holder(conn)
    return current is not None and not holder_is_dead(current)


def clear_if_dead(conn: redis.Redis) -> bool:
    """Delete the lock if its holder is a dead process of this machine; say whether it did."""
    current = holder(conn)
    if current is None or not holder_is_dead(current):
        return False
    log.warning("the writer lock's holder %s is not running; clearing the lock", current)
    return bool(conn.eval(_RELEASE, 1, WRITER_LOCK, current))


class WriterLock:
    """The lock one writer holds while it runs."""

    def __init__(self, url: str, identity: str):
        self.url = url
        self.identity = identity
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _conn(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    def acquire(self) -> str | None:
        """Take the lock; return None, or the identity of the live writer that holds it."""
        conn = self._conn()
        for _ in range(2):
            if conn.set(WRITER_LOCK, self.identity, nx=True, px=LOCK_MS):
                self._thread = threading.Thread(
                    target=self._renew_forever, name="genejobs-writer-lock", daemon=True
                )
                self._thread.start()
                return None
            clear_if_dead(conn)
        return holder(conn) or "?"

    def _renew_forever(self) -> None:
        conn = self._conn()
        while not self._stop.wait(RENEW_SECONDS):
            try:
                if not conn.eval(_RENEW, 1, WRITER_LOCK, self.identity, LOCK_MS):
                    log.error("the writer lock is held by %s now; this writer stops", holder(conn))
                    self.lost.set()
                    return
            except redis.RedisError as exc:
                log.warning("could not renew the writer lock: %s", exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if not self.lost.is_set():
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                self._conn().eval(_RELEASE, 1, WRITER_LOCK, self.identity)
