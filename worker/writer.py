"""The single writer: the only process that opens the DuckDB file read-write.

It pops JSON messages from the Redis inbox (moving them to its own processing
list first, so a crash loses nothing), applies results in batches inside one
transaction, answers requests after their commit, sends the units a commit
created, and publishes job progress. It holds a lock in Redis (renewed by a
thread; see `worker.writer_lock`) and names itself in the results file's
`writer_fence`, which every transaction checks: a writer that lost its lock
commits nothing more. A Redis that goes away is waited for, not fatal.
It keeps the file open only while work keeps coming, and lets go within
`max_hold` seconds of a genejobs reader asking (`genejobs sql`, any command,
the Python API: they say so in Redis), and at least every `max_hold_alone`
seconds for readers that cannot ask (the duckdb CLI on the live file; the
views under `views/` never wait).

Run it with `python -m genejobs.worker.writer`; `genejobs up` does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
import traceback

import kombu.exceptions
import redis

from genejobs import contract
from genejobs.config import settings
from genejobs.contract import RESULT_OPS
from genejobs.errors import GenejobsError, StoreBusy
from genejobs.storage import evaluation_store, rounds, search_store, shap_store, units
from genejobs.storage.db import connect
from genejobs.storage.store import Store, create_schema
from genejobs.storage.views import ViewPublisher
from genejobs.units import JobKind
from genejobs.worker import inbox
from genejobs.worker.dispatch import Dispatcher, sweep_interval
from genejobs.worker.intake import CLIENT_PREFIX, Intake
from genejobs.worker.requests import DATASET_OPS, MODELS, RUNS, SHARDS, Requests
from genejobs.worker.writer_lock import WriterLock, new_identity

log = logging.getLogger("genejobs.writer")

# What a Redis outage raises: from redis-py directly, or through Celery's producer.
BROKER_DOWN = (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)


def _plain(value):
    """JSON for what a decoded message holds beyond JSON: its arrays, as lists."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


class LockLost(Exception):
    """Another writer holds the lock now: this one must commit nothing more."""


class Writer:
    """Drain the inbox into the results file, batch by batch."""

    def __init__(
        self,
        batch_max: int = 500,
        linger: float = 0.25,
        gather: float = 0.5,
        gather_target: int = 128,
        max_hold: float = 2.0,
        max_hold_alone: float = 10.0,
        reader_window: float = 0.1,
    ):
        self.config = settings()
        self.identity = new_identity()
        # Named, so that the next writer can close connections this one leaves
        # behind (a killed process whose socket lingers can still be handed
        # messages by a blocking pop).
        self.redis = redis.Redis.from_url(
            self.config.redis_url, socket_timeout=30, client_name=CLIENT_PREFIX + self.identity
        )
        self.intake = Intake(self.redis, self.identity, batch_max, linger, gather, gather_target)
        self.max_hold = max_hold
        self.max_hold_alone = max_hold_alone
        self.reader_window = reader_window
        self.lock = WriterLock(self.config.redis_url, self.identity)
        self.dispatcher = Dispatcher(self.redis, sweep_interval())
        interval = self.config.views_interval
        self.views = ViewPublisher(self.config.views_dir) if interval > 0 else None
        self.replay = False
        # Rounds that jobs run until stable got (storage.rounds): seeds to send.
        self.rounds_in_transaction: dict[str, list[int]] = {}
        self.new_rounds: dict[str, list[int]] = {}
        self.con = None
        self.store: Store | None = None
        self.requests = Requests(self)
        self.opened_at = 0.0
        self.stopping = False

    # lifecycle ---------------------------------------------------------------

    def run(self) -> int:
        other = self.lock.acquire()
        if other is not None:
            log.error("another writer is running (%s); there must be only one", other)
            return 1
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        code = 0
        try:
            self.config.ensure_dirs()
            self._open()
            create_schema(self.con)
            self._claim_fence()
            log.info("writer %s ready on %s", self.identity, self.config.db_path)
            self.intake.evict_old_writers()
            self.intake.recover_processing()
            # Celery and kombu load on the first send otherwise (0.2 s), on the first job's path.
            from genejobs.worker.app import sender

            sender()
            while not self.stopping:
                try:
                    self._step()
                except BROKER_DOWN as exc:
                    log.warning("Redis is unreachable (%s); waiting for it", exc)
                    self.replay = True
                    self._close()
                    time.sleep(1.0)
        except LockLost as exc:
            log.error("%s", exc)
            code = 1
        finally:
            self._close()
            with contextlib.suppress(*BROKER_DOWN):
                # Units still queued here would otherwise wait for the next
                # writer's sweep to find them.
                self.dispatcher.flush(len(self.dispatcher.outbox))
            self.lock.release()
            log.info("writer %s stopped", self.identity)
        return code

    def _step(self) -> None:
        if self.lock.lost.is_set():
            raise LockLost("another writer took the lock; this one stops")
        if self.replay:
            # After a Redis outage the last batch may be applied but not dropped:
            # apply it again (harmless) before taking anything new.
            leftover = self.intake.leftover()
            if leftover:
                self._ensure_open()
                self._apply_batch(leftover)
            self.replay = False
        raw = self.intake.take(bool(self.dispatcher.queued), self.con is not None)
        if raw:
            self._ensure_open()
            self._apply_batch(raw)
        self.dispatcher.flush()
        if raw:
            self.dispatcher.busy = True
        if self.dispatcher.sweep_due():
            # Messages an earlier writer's lingering connection took after this
            # one started go back on the inbox, then lost units are sent again.
            self.intake.recover_processing()
            self._sweep()
        # Let readers in when idle, unless more results are on their way
        # (reopening costs more than a batch), and at least every max_hold.
        held_too_long = self.con is not None and self._held_too_long()
        idle = not raw and not self.intake.tasks_queued() and not self.dispatcher.queued
        self._publish_views()
        if held_too_long or idle:
            self._close()
            if held_too_long:
                time.sleep(self.reader_window)

    def _held_too_long(self) -> bool:
        """Past max_hold when a reader waits for the file (it says so in Redis), past
        max_hold_alone when none does: each reopening costs a checkpoint."""
        held = time.monotonic() - self.opened_at
        if held <= self.max_hold:
            return False
        return held > self.max_hold_alone or bool(self.redis.exists(inbox.READER_WANTS))

    def _publish_views(self) -> None:
        """Publish the results' changes for other DuckDB clients (storage.views), at most
        every `views_interval` seconds: not at once after each change, which would hold up
        the next request of someone running one small job after another."""
        if self.views is None or not self.views.pending:
            return
        if time.monotonic() - self.views.published_at < self.config.views_interval:
            return
        self._ensure_open()
        try:
            seconds = self.views.publish(self.con)
        except Exception:  # a publication that failed is tried again at the next one
            log.exception("publishing the views failed")
            self.views.published_at = time.monotonic()
            return
        log.debug("views published in %.3f s", seconds)

    def _sweep(self) -> None:
        """Send again the pending units the broker lost (see worker.dispatch)."""
        self._ensure_open()
        try:
            self.dispatcher.sweep(units.pending(self.con))
        except BROKER_DOWN:
            raise
        except Exception:  # a sweep that failed is tried again at the next one
            log.exception("the sweep for lost units failed")

    def _claim_fence(self) -> None:
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute("DELETE FROM writer_fence")
        self.con.execute("INSERT INTO writer_fence (holder) VALUES (?)", [self.identity])
        self.con.execute("COMMIT")

    def _stop(self, *_):
        self.stopping = True

    def _ensure_open(self) -> None:
        if self.con is None:
            self._open()

    def _open(self) -> None:
        # Readers step aside while this key is set (storage.db.reading).
        self.redis.set(inbox.WRITER_WANTS, self.identity, px=5000)
        try:
            while True:
                try:
                    self.con = connect(self.config.db_path, read_only=False, wait=4)
                    break
                except StoreBusy as exc:
                    if self.lock.lost.is_set():
                        raise LockLost("another writer took the lock; this one stops") from None
                    self.redis.set(inbox.WRITER_WANTS, self.identity, px=5000)
                    log.warning("%s; still waiting", exc)
        finally:
            self.redis.delete(inbox.WRITER_WANTS)
        self.store = Store(self.con)
        self.opened_at = time.monotonic()

    def _close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
            self.store = None

    # applying ------------------------------------------------------------------

    def _apply_batch(self, raw: list[bytes]) -> None:
        messages = []
        for item in raw:
            try:
                messages.append(contract.decode(item))
            except ValueError as exc:
                log.error("dead letter (%s): %r", exc, item[:200])
                self.redis.lpush(
                    inbox.DEAD_LETTERS,
                    json.dumps({"message": item.decode(errors="replace"), "error": str(exc)}),
                )
        if self.views is not None:
            self.views.touch(
                {m["job_id"] for m in messages if isinstance(m.get("job_id"), str)},
                datasets=any(m.get("op") in DATASET_OPS for m in messages),
            )
        touched: dict[str, str] = {}
        results: list[dict] = []
        for message in messages:
            if message.get("op") in RESULT_OPS:
                results.append(message)
                continue
            touched |= self._flush(results)
            results = []
            self._control(message)
        touched |= self._flush(results)
        searches = {job for job, where in touched.items() if where == MODELS}
        if searches:
            # A search ranked by this batch has its finalize step pending now.
            self.dispatcher.send_new(units.finalize_steps(self.con, searches))
        if self.new_rounds:
            found = units.pending(self.con, set(self.new_rounds), JobKind.IMPORTANCE)
            self.dispatcher.send_new(
                [u for u in found if u.kwargs["seed"] in set(self.new_rounds[u.job_id])]
            )
            self.new_rounds.clear()
        self.intake.done()
        self.publish(touched)

    def _transaction(self, work):
        if self.lock.lost.is_set():
            raise LockLost("another writer took the lock; this one stops")
        self.con.execute("BEGIN TRANSACTION")
        try:
            fence = self.con.execute("SELECT holder FROM writer_fence").fetchall()
            if fence != [(self.identity,)]:
                raise LockLost(f"the results file names another writer ({fence}); this one stops")
            outcome = work()
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")
        return outcome

    def _write_results(self, results: list[dict]) -> dict[str, str]:
        """Apply results; return the jobs they touched, each with where its units are counted."""
        done = [m for m in results if m["op"] == "run_done"]
        failed = [m for m in results if m["op"] == "run_failed"]
        models = [m for m in results if m["op"] in search_store.RESULT_OPS]
        shards = [m for m in results if m["op"] in shap_store.OPS]
        tests = [m for m in results if m["op"] in evaluation_store.RESULT_OPS]
        importance = self.store.importance
        runs = importance.record_done(done) | importance.record_failed(failed)
        # Jobs run until stable get their next round in the same transaction.
        self.rounds_in_transaction = rounds.advance(importance, runs)
        counted_with_models = self.store.search.record(models) | self.store.evaluation.record(tests)
        return {
            **dict.fromkeys(runs, RUNS),
            **dict.fromkeys(counted_with_models, MODELS),
            **dict.fromkeys(self.store.shap.record(shards), SHARDS),
        }

    def _after_commit(self) -> None:
        # Spool files go only once their rows are committed.
        self.store.shap.discard_spool()

    def _flush(self, results: list[dict]) -> dict[str, str]:
        if not results:
            return {}
        try:
            touched = self._transaction(lambda: self._write_results(results))
            self._after_commit()
            self.new_rounds.update(self.rounds_in_transaction)
            return touched
        except (LockLost, *BROKER_DOWN):
            raise
        except Exception:
            log.exception("a batch of %d results failed; applying them one by one", len(results))
        touched: dict[str, str] = {}
        for message in results:
            try:
                touched |= self._transaction(lambda m=message: self._write_results([m]))
                self._after_commit()
                self.new_rounds.update(self.rounds_in_transaction)
            except (LockLost, *BROKER_DOWN):
                raise
            except Exception:
                log.exception("dead letter: %s", json.dumps(message, default=_plain)[:300])
                self.redis.lpush(
                    inbox.DEAD_LETTERS,
                    json.dumps(
                        {"message": message, "error": traceback.format_exc(limit=3)},
                        default=_plain,
                    ),
                )
        return touched

    def _control(self, message: dict) -> None:
        """Apply one request in a transaction of its own and answer it after the commit."""
        op = message.get("op")
        try:
            request = contract.typed(message)
            reply = self._transaction(lambda: self.requests.apply(request))
            self._after_commit()
        except (LockLost, *BROKER_DOWN):
            raise
        except GenejobsError as exc:
            reply = {"error": str(exc), "error_type": type(exc).__name__}
        except Exception as exc:
            log.exception("request %s failed", op)
            reply = {
                "error": f"the writer failed on {op}: {exc.__class__.__name__}: {exc}",
                "error_type": "GenejobsError",
            }
        if "error" not in reply:
            self.requests.after(request, reply)
        if message.get("reply_to"):
            pipe = self.redis.pipeline()
            pipe.lpush(message["reply_to"], json.dumps(reply, default=str))
            pipe.expire(message["reply_to"], 600)
            pipe.execute()

    def publish(self, touched: dict[str, str]) -> None:
        """Publish the unit counts of the touched jobs, each counted where its units are."""
        by_kind: dict[str, set[str]] = {}
        for job_id, kind in touched.items():
            by_kind.setdefault(kind, set()).add(job_id)
        counts = self.store.search.job_counts(by_kind.get(MODELS, set()))
        for table in (RUNS, SHARDS):
            counts.update(self.store.job_counts(by_kind.get(table, set()), table))
        for job_id, job_counts in counts.items():
            inbox.publish_progress(job_id, job_counts)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return Writer().run()


if __name__ == "__main__":
    sys.exit(main())
