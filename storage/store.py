"""The results file as the single writer changes it: one small interface over the nouns.

Contract:

- Who writes: only the single writer process (`worker.writer`), one call at a
  time, each inside the transaction the writer opened; a call either applies
  all of its change or raises, and the writer rolls back. Not thread safe.
  Readers never use it: they open the file read-only (`storage.queries`,
  `storage.model_queries`, `storage.shap_queries`, the views).
- Requests (plans, a dataset to register, cancel, retry, delete) take the
  contract's frozen messages and answer a dict the writer sends back; bad
  input raises `InputError` or `NotFoundError` and changes nothing.
- Idempotent: a request applied twice (the same job id) answers the plan
  already made; a result applied twice changes nothing. A unit moves pending
  (or failed) -> done once, never out of `cancelled`, and its rows
  (importances, SHAP values, fold scores) are written in the same transaction
  that moves it. A seed is recorded once per (dataset, model): a PRIMARY KEY,
  not only a check.
- What is immutable: a done unit and its rows; a registered dataset.
"""

from __future__ import annotations

import duckdb

from genejobs.storage.dataset_store import DatasetStore
from genejobs.storage.evaluation_store import EvaluationStore
from genejobs.storage.importance_store import ImportanceStore
from genejobs.storage.schema import DDL, RunStatus
from genejobs.storage.search_store import SearchStore
from genejobs.storage.shap_store import ShapStore


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


SPOOLED = "spooled"


# What a finished run's message sets, and the key that finds its row.
class Store:
    """The writer's operations on an open read-write connection, by noun."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        looked_up: dict[str, dict] = {}  # datasets plans looked up (see ImportanceStore)
        self.datasets = DatasetStore(con, looked_up)
        self.importance = ImportanceStore(con, looked_up)
        self.search = SearchStore(con)
        self.evaluation = EvaluationStore(con)
        self.shap = ShapStore(con)

    def job_counts(self, job_ids: set[str], table: str = "runs") -> dict[str, dict[str, int]]:
        """Unit counts by status for the given jobs, for progress reporting.

        `table` holds the jobs' units: `runs` for seeded runs, `shap_shards`
        for SHAP jobs. One table, not their union: the writer calls this after
        every batch, and a lone run's latency feels every millisecond. A SHAP
        shard that finished and waits in the spool to be ingested counts as
        `spooled`, not pending: nothing is spooled once nothing is pending.
        """
        if table not in ("runs", "shap_shards"):
            raise ValueError(f"no units of jobs in table {table!r}")
        if not job_ids:
            return {}
        ids = sorted(job_ids)
        status = (
            "status"
            if table == "runs"
            else f"CASE WHEN status = '{RunStatus.PENDING.value}' AND values_path IS NOT NULL "
            f"THEN '{SPOOLED}' ELSE status END"
        )
        rows = self.con.execute(
            f"SELECT job_id, {status}, count(*) FROM {table} "
            f"WHERE job_id IN ({', '.join('?' * len(ids))}) GROUP BY ALL",
            ids,
        ).fetchall()
        states = [s.value for s in RunStatus] + ([SPOOLED] if table == "shap_shards" else [])
        counts = {job_id: dict.fromkeys(states, 0) for job_id in ids}
        for job_id, state, n in rows:
            counts[job_id][state] = n
        for job_id in ids:
            counts[job_id]["total"] = sum(counts[job_id].values())
        return counts
