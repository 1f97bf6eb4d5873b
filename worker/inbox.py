"""The writer's inbox on Redis, and the small shared state around it.

Compute workers and the CLI never open the DuckDB file. They push JSON
messages onto one Redis list; the single writer pops them, applies them in
batches, and answers requests on a per-request reply list. Job progress and
cancel flags also live here, so the CLI can follow a job without waiting for
the database lock.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

import redis

from genejobs.config import settings
from genejobs.contract import Message
from genejobs.errors import GenejobsError, ResultUndelivered, ServiceUnavailable
from genejobs.worker import writer_lock

INBOX = "genejobs:inbox"
PROCESSING = "genejobs:inbox:processing"
WRITER_WANTS = "genejobs:writer:wants-file"  # set while the writer waits to open the file
READER_WANTS = "genejobs:reader:wants-file"  # set while a reader waits for the writer to let go
DEAD_LETTERS = "genejobs:inbox:dead"
REPLY_PREFIX = "genejobs:reply:"
PROGRESS_PREFIX = "genejobs:job:"
CANCEL_PREFIX = "genejobs:cancelled:"
DELIVERIES_PREFIX = "genejobs:deliveries:"
COMPUTE_QUEUE = "compute"

_clients: dict[str, redis.Redis] = {}


def client() -> redis.Redis:
    """Return a Redis client for the configured URL (one per URL and process)."""
    url = settings().redis_url
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=30)
    return _clients[url]


def require_redis() -> redis.Redis:
    """Return a client after checking that Redis answers; raise a clear error if not."""
    conn = client()
    try:
        conn.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"Redis is not reachable at {settings().redis_url_shown} ({exc.__class__.__name__}); "
            "start the stack with `genejobs up` or set GENEJOBS_REDIS_URL"
        ) from None
    return conn


def writer_alive(conn: redis.Redis | None = None) -> bool:
    """Say whether a writer holds its lock and, if it runs on this machine, still runs."""
    return writer_lock.writer_alive(conn or client())


def push(message: Message, patience: float = 60.0) -> None:
    """Hand one message to the writer, waiting up to `patience` s for Redis to answer.

    A Redis restart takes a second or two; a result is worth waiting for. If
    Redis stays away, raise ResultUndelivered: the task must not be
    acknowledged as if its result had arrived.
    """
    push_many([message], patience)


def push_many(messages: list[Message], patience: float = 60.0) -> None:
    """Hand several messages to the writer in one command, oldest first (see `push`)."""
    if not messages:
        return
    bodies = [message.encode() for message in messages]
    deadline = time.monotonic() + patience
    while True:
        try:
            # LPUSH puts its last value at the head; the writer takes from the tail.
            client().lpush(INBOX, *bodies)
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise ResultUndelivered(
                    f"could not hand a result to the writer within {patience:.0f} s: {exc}"
                ) from None
            time.sleep(0.5)


def request(message: Message, timeout: float = 120.0) -> dict[str, Any]:
    """Send a message that needs an answer and wait for the writer's reply.

    Raises the error the writer reported, as a GenejobsError subclass.
    """
    conn = require_redis()
    if not writer_alive(conn):
        raise ServiceUnavailable(
            "the genejobs writer is not running; start the stack with `genejobs up`"
        )
    reply_to = REPLY_PREFIX + uuid.uuid4().hex
    body = message.encode(reply_to=reply_to)
    conn.lpush(INBOX, body)
    deadline = time.monotonic() + timeout
    while True:
        popped = conn.brpop([reply_to], timeout=1)
        if popped is not None:
            reply = json.loads(popped[1])
            break
        gave_up = (
            f"the writer did not answer within {timeout:.0f} s"
            if time.monotonic() > deadline
            else None
            if writer_alive(conn)
            else "the genejobs writer stopped before answering"
        )
        if gave_up is not None:
            raise ServiceUnavailable(gave_up + _withdrawn(conn, body, message))
    if "error" in reply:
        raise error_from_reply(reply)
    return reply


def _withdrawn(conn: redis.Redis, body: str, message: Message) -> str:
    """Take back a request no writer has taken; say what became of it."""
    if conn.lrem(INBOX, 1, body):
        return "; nothing was done"
    job_id = getattr(message, "job_id", None)
    job = f" job {job_id}" if job_id else " it"
    return (
        f"; the request was taken and will be applied when a writer runs: see{job} "
        "with `genejobs jobs list`"
    )


def error_from_reply(reply: dict[str, Any]) -> GenejobsError:
    """Rebuild the exception the writer reported."""
    from genejobs import errors

    cls = getattr(errors, reply.get("error_type", ""), GenejobsError)
    if not (isinstance(cls, type) and issubclass(cls, GenejobsError)):
        cls = GenejobsError
    return cls(reply["error"])


def publish_progress(job_id: str, counts: dict[str, int]) -> None:
    """Store a job's run counts where the CLI can poll them cheaply."""
    client().hset(PROGRESS_PREFIX + job_id, mapping={k: int(v) for k, v in counts.items()})


def progress(job_id: str) -> dict[str, int]:
    """Read the run counts the writer last published for a job."""
    raw = client().hgetall(PROGRESS_PREFIX + job_id)
    return {k.decode(): int(v) for k, v in raw.items()}


def mark_cancelled(job_id: str) -> None:
    client().set(CANCEL_PREFIX + job_id, "1")


def clear_cancelled(job_id: str) -> None:
    """Lift a job's cancel flag (a retry with --cancelled): its tasks run again."""
    client().delete(CANCEL_PREFIX + job_id)


def forget_job(job_id: str) -> None:
    """Drop what Redis holds of a deleted job: its progress and its cancel flag."""
    client().delete(PROGRESS_PREFIX + job_id, CANCEL_PREFIX + job_id)


def is_cancelled(job_id: str) -> bool:
    """Say whether the writer announced the job cancelled (a shortcut: the file decides).

    Without Redis the task runs; whatever it records, the writer keeps a
    cancelled unit cancelled.
    """
    try:
        return bool(client().exists(CANCEL_PREFIX + job_id))
    except redis.RedisError:
        return False


class RedisHandshake:
    """Readers and the writer taking turns with the results file, over Redis
    (`storage.db.Handshake`). Without Redis there is no writer to wait for."""

    def reader_waits(self) -> None:
        with contextlib.suppress(redis.RedisError):
            client().set(READER_WANTS, "1", px=1000)

    def writer_waits(self) -> bool:
        try:
            return bool(client().exists(WRITER_WANTS))
        except redis.RedisError:
            return False


HANDSHAKE = RedisHandshake()
