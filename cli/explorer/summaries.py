"""What a SHAP job's page reads from every one of its values, computed once and kept.

A SHAP job's page summarises all its values: mean |SHAP| per feature (and per
model), per feature group, presence against absence, the beeswarm's and a
feature's dependence bins; a comparison of two jobs matches every value of
one with the other's. At L2G size (17 million values a job) each of those
queries reads them all, seconds in all.
A job's values only grow while its shards land, and go only with the job
(shap_values is insert-only); a shard's rows and values are inserted in one
transaction (storage.shap_store), and a publication of the views holds whole
commits. So the number of rows the views hold for a job says whether a kept
summary is still the views' answer: `of(con, job_id)` counts them
(milliseconds: one row per prediction, where there is one value per prediction
and feature) and gives the summaries of that count.

The summaries of a finished job's first page, and its comparison with the
SHAP job before it over the same id columns (its previous release), are
computed ahead, on a thread of their own (`Warmer`), so that even a job's
first visit answers at once.
Kept frames are shared: callers must not change them.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from genejobs.cli.explorer.views import views_connection
from genejobs.errors import GenejobsError
from genejobs.storage import shap_bins, shap_compare, shap_queries

log = logging.getLogger("genejobs.explorer")

KEEP = 256  # summaries kept, least recently used dropped: a few per page
WARM_JOBS = 4  # finished SHAP jobs whose first pages are computed ahead, newest first


class Summaries:
    """Summaries by (job, its number of rows, query); safe to share between threads."""

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._kept: OrderedDict[tuple, object] = OrderedDict()
        self._computing: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()

    def of(self, con, job_id: str) -> JobSummaries:
        """The summaries of `job_id` as the views of `con` hold it."""
        found = con.execute("SELECT count(*) FROM shap_rows WHERE job_id = ?", [job_id]).fetchone()
        return JobSummaries(self, con, job_id, int(found[0]))

    def compare(self, con, job_a: str, job_b: str, class_label, top: int, wait=None):
        """storage.shap_compare.compare of two jobs as the views of `con` hold them.

        With `wait` (seconds), None if it is not ready by then: a thread goes on
        computing it, on a connection of its own, and keeps it (half a minute
        for two L2G-size jobs).
        """
        rows = (self.of(con, job_a).rows, self.of(con, job_b).rows)
        key = ("compare", job_a, job_b, rows, class_label, top)
        if wait is None:
            return self.get(key, lambda: shap_compare.compare(con, job_a, job_b, class_label, top))

        def compute():
            with views_connection() as own:
                return shap_compare.compare(own, job_a, job_b, class_label, top)

        return self.soon(key, compute, wait)

    def soon(self, key: tuple, compute: Callable[[], object], wait: float):
        """The summary under `key` if it is kept or computed within `wait` seconds, else None
        while a thread goes on computing it; an error within `wait` is raised here."""
        finished, failed = threading.Event(), []

        def run():
            try:
                self.get(key, compute)
            except Exception as exc:  # handed to the asker (a 400 line), or logged
                failed.append(exc)
                log.debug("computing %s: %s", key, exc)
            finally:
                finished.set()

        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
            computing = self._computing.get(key)
        if computing is not None:  # another asker's thread computes it
            computing.wait(wait)
            with self._lock:
                return self._kept.get(key)  # None: not yet, or it failed (the next ask says)
        threading.Thread(target=run, daemon=True).start()
        if not finished.wait(wait):
            return None
        if failed:
            raise failed[0]
        return self.get(key, compute)

    def get(self, key: tuple, compute: Callable[[], object]):
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

    def _get(self, name: str, compute, *args):
        key = (self.job_id, self.rows, name, *args)
        return self.kept.get(key, lambda: compute(self.con, self.job_id, *args))

    def global_importance(self, by_model: bool, klass: int | None) -> pd.DataFrame:
        return self._get("global", shap_queries.global_importance, by_model, klass)

    def group_importance(self, klass: int | None) -> pd.DataFrame:
        return self._get("groups", shap_queries.group_importance, False, klass)

    def presence(self, klass: int | None) -> pd.DataFrame:
        return self._get("presence", shap_queries.presence, klass)

    def beeswarm_bins(self, top: int, bins: int, klass: int | None) -> pd.DataFrame:
        return self._get("beeswarm", shap_bins.beeswarm_bins, top, bins, klass)

    def dependence_bins(self, feature: str, bins: int, klass: int | None) -> dict:
        return self._get("dependence", shap_bins.dependence_bins, feature, bins, klass)


KEPT = Summaries()  # the server's: pages and the warmer share it


class Warmer:
    """Computes the first pages of finished SHAP jobs ahead, on a thread, one job at a time.

    `tick()` runs on the server's loop every few seconds; `warm(con, job_id)` builds
    a job's default page and its per-model page, which leaves their summaries
    kept; then, once every job's pages are, `then(con, job_id)` (a comparison with
    the job before it: half a minute at L2G size, where a page takes seconds).
    A job is warmed again only when its number of finished shards changes (a retry).
    """

    def __init__(
        self,
        connect: Callable,
        warm: Callable[[object, str], None],
        then: Callable[[object, str], None] | None = None,
    ):
        self.connect = connect
        self.warm = warm
        self.then = then
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
                todo = [job for job, done in finished if self.warmed.get(job) != done]
                self.warmed.update(dict(finished))  # tried once, even if it fails: no retries
                for step in [s for s in (self.warm, self.then) if s is not None]:
                    for job_id in todo:
                        try:
                            step(con, job_id)
                        except GenejobsError as exc:  # a job deleted meanwhile
                            log.debug("warming the pages of %s: %s", job_id, exc)
        except (GenejobsError, duckdb.Error) as exc:  # no views yet
            log.debug("warming the SHAP pages: %s", exc)
