"""The single writer: the only process that opens the DuckDB file read-write.

It pops JSON messages from the Redis inbox (moving them to a processing list
first, so a crash loses nothing), applies results in batches inside one
transaction, answers requests after their commit, and publishes job progress.
It keeps the file open only while work keeps coming, and lets go at least
every `max_hold` seconds, so readers (`genejobs sql`, the duckdb CLI, a
notebook) get their turn.

Run it with `python -m worker.writer`; `genejobs up` does.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time
import traceback

import redis

from storage import shap_store
from storage.db import connect
from storage.model_store import RESULT_OPS as MODEL_RESULT_OPS
from storage.model_store import ModelStore
from storage.shap_store import ShapStore
from storage.store import ResultStore, create_schema
from worker import inbox
from worker.config import settings
from worker.errors import GenejobsError, StoreBusy

log = logging.getLogger("genejobs.writer")

RESULT_OPS = {"run_done", "run_failed"} | MODEL_RESULT_OPS | shap_store.OPS
# Where a job's units are counted for its progress: seeded runs, SHAP shards,
# or a search's folds and an evaluation's tests (the model store counts those).
RUNS, SHARDS, MODELS = "runs", "shap_shards", "models"
# The requests that change a job's unit counts, and where those units are.
CONTROL_KINDS = {
    "plan_importance": RUNS,
    "cancel_job": RUNS,
    "retry_job": RUNS,
    "plan_search": MODELS,
    "plan_evaluate": MODELS,
    "plan_shap": SHARDS,
    "retry_shap": SHARDS,
}
# The lock is refreshed every loop (at most ~1 s apart); its expiry frees the
# name for a new writer when this one dies without letting go.
LOCK_SECONDS = 30


class Writer:
    """Drain the inbox into the results file, batch by batch."""

    def __init__(
        self,
        batch_max: int = 500,
        linger: float = 0.25,
        gather: float = 0.5,
        gather_target: int = 32,
        max_hold: float = 2.0,
        reader_window: float = 0.1,
    ):
        self.config = settings()
        self.redis = redis.Redis.from_url(self.config.redis_url, socket_timeout=30)
        self.batch_max = batch_max
        self.linger = linger
        self.gather = gather
        self.gather_target = gather_target
        self.max_hold = max_hold
        self.reader_window = reader_window
        self.identity = f"{socket.gethostname()}:{__import__('os').getpid()}"
        self.con = None
        self.store: ResultStore | None = None
        self.models: ModelStore | None = None
        self.shap: ShapStore | None = None
        self.opened_at = 0.0
        self.stopping = False

    # lifecycle ---------------------------------------------------------------

    def run(self) -> int:
        if not self.redis.set(inbox.WRITER_LOCK, self.identity, nx=True, ex=LOCK_SECONDS):
            holder = self.redis.get(inbox.WRITER_LOCK)
            log.error(
                "another writer is running (%s); there must be only one",
                holder.decode() if holder else "?",
            )
            return 1
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        try:
            self.config.ensure_dirs()
            self._open()
            create_schema(self.con)
            log.info("writer %s ready on %s", self.identity, self.config.db_path)
            # Messages left in the processing list by a writer that died are
            # applied first; every write is idempotent, so a repeat is harmless.
            leftover = self.redis.lrange(inbox.PROCESSING, 0, -1)
            if leftover:
                log.info("re-applying %d messages left by a previous writer", len(leftover))
                self._apply_batch(list(reversed(leftover)))
            while not self.stopping:
                self._refresh_lock()
                raw = self._take()
                if raw:
                    if self.con is None:
                        self._open()
                    self._apply_batch(raw)
                # Let readers in when idle, unless more results are on their way
                # (reopening costs more than a batch), and at least every max_hold.
                held_too_long = (
                    self.con is not None and time.monotonic() - self.opened_at > self.max_hold
                )
                if held_too_long or (not raw and not self._tasks_queued()):
                    self._close()
                    if held_too_long:
                        time.sleep(self.reader_window)
        finally:
            self._close()
            if self.redis.get(inbox.WRITER_LOCK) == self.identity.encode():
                self.redis.delete(inbox.WRITER_LOCK)
            log.info("writer %s stopped", self.identity)
        return 0

    def _stop(self, *_):
        self.stopping = True

    def _refresh_lock(self) -> None:
        self.redis.set(inbox.WRITER_LOCK, self.identity, ex=LOCK_SECONDS)

    def _open(self) -> None:
        while True:
            try:
                self.con = connect(self.config.db_path, read_only=False, wait=5)
                break
            except StoreBusy as exc:
                log.warning("%s; still waiting", exc)
                self._refresh_lock()
        self.store = ResultStore(self.con)
        self.models = ModelStore(self.con)
        self.shap = ShapStore(self.con)
        self.opened_at = time.monotonic()

    def _close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
            self.store = None
            self.models = None
            self.shap = None

    def _take(self) -> list[bytes]:
        """Move up to `batch_max` messages to the processing list and return them, oldest first.

        A transaction has a fixed cost (UPDATE, commit and progress counts take
        ~15 ms of CPU whatever the batch), so while more tasks wait in the
        compute queue, wait up to `gather` seconds for a batch of
        `gather_target`: at 0.5 s an lr job's batches hold ~10 runs, and the
        writer takes 4 ms of CPU per run instead of 6 at 0.2 s, CPU that the
        fits on the same cores get back. With nothing queued, apply at once,
        which keeps a lone run's latency low.
        """
        timeout = self.linger if self.con is not None else 1.0
        first = self.redis.blmove(inbox.INBOX, inbox.PROCESSING, timeout, "RIGHT", "LEFT")
        if first is None:
            return []
        raw = [first]
        deadline = time.monotonic() + self.gather
        while True:
            raw.extend(self._drain(self.batch_max - len(raw)))
            left = deadline - time.monotonic()
            if len(raw) >= self.gather_target or left <= 0:
                break
            if not self._tasks_queued():
                break
            more = self.redis.blmove(inbox.INBOX, inbox.PROCESSING, left, "RIGHT", "LEFT")
            if more is None:
                break
            raw.append(more)
        return raw

    def _tasks_queued(self) -> bool:
        return bool(self.redis.llen(inbox.COMPUTE_QUEUE))

    def _drain(self, limit: int) -> list[bytes]:
        waiting = min(self.redis.llen(inbox.INBOX), limit)
        if waiting <= 0:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for _ in range(waiting):
            pipe.lmove(inbox.INBOX, inbox.PROCESSING, "RIGHT", "LEFT")
        return [m for m in pipe.execute() if m is not None]

    # applying ------------------------------------------------------------------

    def _apply_batch(self, raw: list[bytes]) -> None:
        messages = []
        for item in raw:
            try:
                messages.append(json.loads(item))
            except ValueError:
                log.error("dropping a message that is not JSON: %r", item[:200])
                self.redis.lpush(inbox.DEAD_LETTERS, item)
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
        self._send_followups()
        self.redis.delete(inbox.PROCESSING)
        self._publish(touched)

    def _send_followups(self) -> None:
        """Enqueue the tasks that committed results call for (a search's finalize step)."""
        followups = {f["task_id"]: f for f in self.models.take_followups()}
        if not followups:
            return
        from worker.app import Call, enqueue

        enqueue(Call(f["task"], f["kwargs"], f["task_id"], f["shadow"]) for f in followups.values())

    def _transaction(self, work):
        self.con.execute("BEGIN TRANSACTION")
        try:
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
        models = [m for m in results if m["op"] in MODEL_RESULT_OPS]
        shards = [m for m in results if m["op"] in shap_store.OPS]
        return {
            **dict.fromkeys(self.store.record_done(done) | self.store.record_failed(failed), RUNS),
            **dict.fromkeys(self.models.record(models), MODELS),
            **dict.fromkeys(self.shap.record(shards), SHARDS),
        }

    def _after_commit(self) -> None:
        # Spool files go only once their rows are committed.
        self.shap.discard_spool()

    def _flush(self, results: list[dict]) -> dict[str, str]:
        if not results:
            return {}
        try:
            touched = self._transaction(lambda: self._write_results(results))
            self._after_commit()
            return touched
        except Exception:
            log.exception("a batch of %d results failed; applying them one by one", len(results))
        touched: dict[str, str] = {}
        for message in results:
            try:
                touched |= self._transaction(lambda m=message: self._write_results([m]))
                self._after_commit()
            except Exception:
                log.exception("dead letter: %s", json.dumps(message)[:300])
                self.redis.lpush(
                    inbox.DEAD_LETTERS,
                    json.dumps({"message": message, "error": traceback.format_exc(limit=3)}),
                )
        return touched

    def _control(self, message: dict) -> None:
        """Apply one request in a transaction of its own and answer it after the commit."""
        op = message.get("op")
        handler = getattr(self, f"_op_{op}", None)
        try:
            if handler is None:
                raise GenejobsError(f"the writer does not know the operation '{op}'")
            reply = self._transaction(lambda: handler(message))
        except GenejobsError as exc:
            reply = {"error": str(exc), "error_type": type(exc).__name__}
        except Exception as exc:
            log.exception("request %s failed", op)
            reply = {
                "error": f"the writer failed on {op}: {exc.__class__.__name__}: {exc}",
                "error_type": "GenejobsError",
            }
        kind = CONTROL_KINDS.get(op)
        if kind is not None and "job_id" in reply and "error" not in reply:
            # Progress first: whoever gets the reply may start polling it at once.
            self._publish({reply["job_id"]: kind})
        if message.get("reply_to"):
            pipe = self.redis.pipeline()
            pipe.lpush(message["reply_to"], json.dumps(reply, default=str))
            pipe.expire(message["reply_to"], 600)
            pipe.execute()

    def _publish(self, touched: dict[str, str]) -> None:
        """Publish the unit counts of the touched jobs, each counted where its units are."""
        by_kind: dict[str, set[str]] = {}
        for job_id, kind in touched.items():
            by_kind.setdefault(kind, set()).add(job_id)
        counts = self.models.job_counts(by_kind.get(MODELS, set()))
        for table in (RUNS, SHARDS):
            counts.update(self.store.job_counts(by_kind.get(table, set()), table))
        for job_id, job_counts in counts.items():
            inbox.publish_progress(job_id, job_counts)

    def _op_register_dataset(self, m: dict) -> dict:
        return self.store.register_dataset(m["meta"], m["temp_path"], m["name"], m["source"])

    def _op_filter_dataset(self, m: dict) -> dict:
        return self.store.filter_dataset(
            m.get("job_id"),
            m.get("dataset"),
            m.get("model"),
            m["min_count"],
            m.get("top"),
            m["name"],
        )

    def _op_plan_importance(self, m: dict) -> dict:
        return self.store.plan_importance(
            m["job_id"],
            m["dataset"],
            m["model"],
            m["runs"],
            m["test_size"],
            m["seed_max"],
            m.get("seeds"),
        )

    def _op_plan_search(self, m: dict) -> dict:
        return self.models.plan_search(
            m["job_id"],
            m["dataset"],
            m.get("include"),
            m.get("exclude"),
            m["folds"],
            m["sort"],
            m.get("session_id"),
            m["train_size"],
        )

    def _op_plan_evaluate(self, m: dict) -> dict:
        return self.models.plan_evaluate(
            m["job_id"],
            m["model_id"],
            m.get("dataset"),
            m.get("split_seeds"),
            m.get("runs", 1),
            m.get("hyper_seed"),
        )

    def _op_cancel_job(self, m: dict) -> dict:
        return self.store.cancel_job(m["job_id"])

    def _op_retry_job(self, m: dict) -> dict:
        return self.store.retry_job(m["job_id"], bool(m.get("include_pending")))

    def _op_plan_shap(self, m: dict) -> dict:
        return self.shap.plan(m)

    def _op_retry_shap(self, m: dict) -> dict:
        return self.shap.retry(m["job_id"])

    def _op_ping(self, m: dict) -> dict:
        return {"writer": self.identity}


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return Writer().run()


if __name__ == "__main__":
    sys.exit(main())
