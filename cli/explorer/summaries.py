"""What a SHAP job's page reads from every one of its values, computed once and kept.

A SHAP job's page summarises all its values: mean |SHAP| per feature (and per
model), per feature group, presence against absence, a beeswarm sample. At L2G
size (17 million values) each of those queries reads them all, seconds in all.
A job's values only grow while its shards land, and go only with the job
(shap_values is insert-only); a shard's rows and values are inserted in one
transaction (storage.shap_store), and a publication of the views holds whole
commits. So the number of rows the views hold for a job says whether a kept
summary is still the views' answer: `of(con, job_id)` counts them
(milliseconds: one row per prediction, where there is one value per prediction
and feature) and gives the summaries of that count.

The summaries of a finished job's first page are computed ahead, on a thread
of their own (`Warmer`), so that even a job's first visit answers at once.
Kept frames are shared: callers must not change them.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from genejobs.errors import GenejobsError
from genejobs.storage import shap_queries

log = logging.getLogger("genejobs.explorer")

KEEP = 256  # summaries kept, least recently used dropped: a few per page
WARM_JOBS = 4  # finished SHAP jobs whose first pages are computed ahead, newest first


class Summaries:
    """Summaries by (job, its number of rows, query); safe to share between threads."""

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._kept: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
        self._computing: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()

    def of(self, con, job_id: str) -> JobSummaries:
        """The summaries of `job_id` as the views of `con` hold it."""
        found = con.execute("SELECT count(*) FROM shap_rows WHERE job_id = ?", [job_id]).fetchone()
        return JobSummaries(self, con, job_id, int(found[0]))

    def get(self, key: tuple, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The summary kept under `key`, computed first if need be (once, if two threads ask)."""
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            computing = self._computing.get(key)
            if computing is None:
                self._computing[key] = threading.Event()
        if computing is not None:  # the warmer computes it: wait rather than compute it twice
            computing.wait()
            return self.get(key, compute)
        try:
            found = compute()  # outside the lock: another job's page need not wait for it
            with self._lock:
                self._kept[key] = found
                while len(self._kept) > self.keep:
                    self._kept.popitem(last=False)
            return found
        finally:
            with self._lock:
                self._computing.pop(key).set()


@dataclass(frozen=True)
class JobSummaries:
    """One job's summaries at one count of its rows; each is computed on first use."""

    kept: Summaries
    con: object
    job_id: str
    rows: int

    def _get(self, name: str, compute, *args) -> pd.DataFrame:
        key = (self.job_id, self.rows, name, *args)
        return self.kept.get(key, lambda: compute(self.con, self.job_id, *args))

    def global_importance(self, by_model: bool, klass: int | None) -> pd.DataFrame:
        return self._get("global", shap_queries.global_importance, by_model, klass)

    def group_importance(self, klass: int | None) -> pd.DataFrame:
        return self._get("groups", shap_queries.group_importance, False, klass)

    def presence(self, klass: int | None) -> pd.DataFrame:
        return self._get("presence", shap_queries.presence, klass)

    def beeswarm_sample(self, features: list[str], rows: int, klass: int | None):
        def sample(con, job_id, features, rows, klass):
            return shap_queries.beeswarm_sample(con, job_id, list(features), rows, klass)

        return self._get("beeswarm", sample, tuple(features), rows, klass)


KEPT = Summaries()  # the server's: pages and the warmer share it


class Warmer:
    """Computes the first pages of finished SHAP jobs ahead, on a thread, one job at a time.

    `tick()` runs on the server's loop every few seconds; `warm(job_id)` builds a
    job's default page and its per-model page, which leaves their summaries kept.
    A job is warmed again only when its number of finished shards changes (a retry).
    """

    def __init__(self, connect: Callable, warm: Callable[[object, str], None]):
        self.connect = connect
        self.warm = warm
        self.warmed: dict[str, int] = {}  # job id -> finished shards when warmed
        self.busy = False

    async def tick(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            from tornado.ioloop import IOLoop

            await IOLoop.current().run_in_executor(None, self.run)
        finally:
            self.busy = False

    def run(self) -> None:
        import duckdb

        try:
            with self.connect() as con:
                finished = con.execute(
                    """SELECT s.job_id, count(*) FILTER (WHERE s.status = 'done') AS done
                       FROM shap_shards s JOIN shap_jobs j USING (job_id)
                       GROUP BY s.job_id, j.created_at
                       HAVING count(*) FILTER (WHERE s.status = 'pending') = 0
                       ORDER BY j.created_at DESC LIMIT ?""",
                    [WARM_JOBS],
                ).fetchall()
                for job_id, done in finished:
                    if self.warmed.get(job_id) == done:
                        continue
                    self.warmed[job_id] = done  # tried once, even if it fails: no retry loop
                    try:
                        self.warm(con, job_id)
                    except GenejobsError as exc:  # a job deleted meanwhile
                        log.debug("warming the pages of %s: %s", job_id, exc)
        except (GenejobsError, duckdb.Error) as exc:  # no views yet
            log.debug("warming the SHAP pages: %s", exc)
