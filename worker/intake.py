"""The writer's end of its inbox: messages taken onto a processing list of its own.

Messages move from the inbox (a Redis list) to this writer's processing list
before they are applied, and are dropped only after their commit, so a crash
loses nothing; a new writer puts a dead writer's list back on the inbox first,
and closes the Redis connections earlier writers left behind (a killed
process whose socket lingers can still be handed messages by a blocking pop).
"""

from __future__ import annotations

import logging
import time

import redis

from genejobs.worker import inbox

log = logging.getLogger("genejobs.writer")

CLIENT_PREFIX = "genejobs-writer:"


class Intake:
    """Takes the writer's messages from the inbox, in batches."""

    def __init__(
        self,
        conn: redis.Redis,
        identity: str,
        batch_max: int = 500,
        linger: float = 0.25,
        gather: float = 0.5,
        gather_target: int = 128,
    ):
        self.redis = conn
        self.identity = identity
        self.processing = f"{inbox.PROCESSING}:{identity}"
        self.batch_max = batch_max
        self.linger = linger
        self.gather = gather
        self.gather_target = gather_target

    def evict_old_writers(self) -> None:
        """Close the Redis connections of writers before this one (dead, or fenced out)."""
        for client in self.redis.client_list():
            name = client.get("name", "")
            if name.startswith(CLIENT_PREFIX) and name != CLIENT_PREFIX + self.identity:
                log.info("closing a connection of an earlier writer (%s)", name)
                self.redis.client_kill_filter(_id=client["id"])

    def recover_processing(self) -> None:
        """Put back on the inbox what writers that died had taken and not finished."""
        for key in self.redis.scan_iter(match=inbox.PROCESSING + "*"):
            if key.decode() == self.processing:
                continue
            moved = 0
            while self.redis.lmove(key, inbox.INBOX, "LEFT", "RIGHT") is not None:
                moved += 1
            if moved:
                log.info("re-applying %d messages left by a previous writer", moved)

    def take(self, hurry: bool, holding: bool) -> list[bytes]:
        """Move up to `batch_max` messages to the processing list and return them, oldest first.

        A transaction has a fixed cost (its UPDATE alone takes ~6 ms for 10
        runs or 200), so while more tasks wait in the compute queue, wait up to
        `gather` seconds for a batch of `gather_target`: fast runs then cost
        the writer ~0.2 ms each (0.55 ms with batches of 32), CPU that fits on
        the same cores get back. With nothing queued, apply at once, which
        keeps a lone run's latency low.
        """
        if hurry:
            # Units wait to be sent: take what is there, do not wait for more.
            first = self.redis.lmove(inbox.INBOX, self.processing, "RIGHT", "LEFT")
            if first is None:
                return []
            return [first, *self.drain(self.batch_max - 1)]
        timeout = self.linger if holding else 1.0
        first = self.redis.blmove(inbox.INBOX, self.processing, timeout, "RIGHT", "LEFT")
        if first is None:
            return []
        raw = [first]
        deadline = time.monotonic() + self.gather
        while True:
            raw.extend(self.drain(self.batch_max - len(raw)))
            left = deadline - time.monotonic()
            if len(raw) >= self.gather_target or left <= 0:
                break
            if not self.tasks_queued():
                break
            more = self.redis.blmove(inbox.INBOX, self.processing, left, "RIGHT", "LEFT")
            if more is None:
                break
            raw.append(more)
        return raw

    def tasks_queued(self) -> bool:
        return bool(self.redis.llen(inbox.COMPUTE_QUEUE))

    def drain(self, limit: int) -> list[bytes]:
        waiting = min(self.redis.llen(inbox.INBOX), limit)
        if waiting <= 0:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for _ in range(waiting):
            pipe.lmove(inbox.INBOX, self.processing, "RIGHT", "LEFT")
        return [m for m in pipe.execute() if m is not None]

    def done(self) -> None:
        """Drop the messages taken: their changes are committed."""
        self.redis.delete(self.processing)

    def leftover(self) -> list[bytes]:
        """What this writer took and may not have applied (after a Redis outage), oldest first."""
        return list(reversed(self.redis.lrange(self.processing, 0, -1)))
