"""The writer's side of SHAP jobs: planning shards and ingesting them from the spool.

Contract: only the single writer calls `ShapStore`, inside its open
transaction. Planning the same job id twice returns the first plan. A
finished shard waits in the spool, still pending, until its job's waiting
shards are ingested together; their rows are inserted in the transaction that
moves them to done, and a shard already done is skipped, so a repeated or
redelivered shard never duplicates rows. Spool files are removed by
`discard_spool`, which the writer calls only after the commit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import duckdb
import pandas as pd

from genejobs.config import settings
from genejobs.contract import SHARD_DONE, SHARD_FAILED, PlanShap
from genejobs.errors import InputError
from genejobs.storage.db import first
from genejobs.storage.schema import RunStatus

DONE_OP, FAILED_OP = SHARD_DONE, SHARD_FAILED
OPS = {DONE_OP, FAILED_OP}
# Values (rows x features x outputs) of finished shards that a job gathers
# before they are ingested together: ~16 of DuckDB's row groups.
INGEST_VALUES = 2_000_000


class ShapStore:
    """Writer-side operations for SHAP jobs on an open read-write connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ingest_values: int = INGEST_VALUES):
        self.con = con
        self.ingest_values = ingest_values
        self.discard: list[Path] = []

    def plan(self, request: PlanShap) -> dict:
        """Create a SHAP job and its pending shards; answer with what the tasks need."""
        m = dataclasses.asdict(request)
        existing = first(
            self.con.execute(
                "SELECT job_id FROM shap_jobs WHERE job_id = ?", [m["job_id"]]
            ).fetchall()
        )
        if existing is None:
            if m["shard_rows"] < 1:
                raise InputError(f"--shard-rows must be at least 1, got {m['shard_rows']}")
            self._insert_job(m)
        return self.shards_to_run(m["job_id"], statuses=(RunStatus.PENDING.value,))

    def _insert_job(self, m: dict) -> None:
        job_id, n_rows, size = m["job_id"], m["n_rows"], m["shard_rows"]
        starts = list(range(0, n_rows, size))
        self.con.execute(
            """INSERT INTO shap_jobs (job_id, source, input_path, id_cols, partition_col, n_rows,
                   n_features, n_outputs, shard_rows, n_shards, zero_is_present, engine, params)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                job_id,
                m["source"],
                m["input_path"],
                m["id_cols"],
                m.get("partition_col"),
                n_rows,
                len(m["features"]),
                m["n_outputs"],
                size,
                len(starts),
                m["zero_is_present"],
                m["engine"],
                json.dumps({"models": m["models"], "classes": m.get("classes")}),
            ],
        )
        self._insert_frame(
            "shap_features",
            pd.DataFrame(
                {
                    "job_id": job_id,
                    "feature_id": range(len(m["features"])),
                    "feature": m["features"],
                    "feature_group": [(m.get("groups") or {}).get(f) for f in m["features"]],
                }
            ),
        )
        for spec in m["models"]:
            self.con.execute(
                "INSERT INTO shap_models (job_id, model_id, source, path, format, family, "
                "partitions) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    job_id,
                    spec["model_id"],
                    spec["source"],
                    spec["path"],
                    spec["format"],
                    spec["family"],
                    spec.get("partitions"),
                ],
            )
        self._insert_frame(
            "shap_shards",
            pd.DataFrame(
                {
                    "job_id": job_id,
                    "shard": range(len(starts)),
                    "status": RunStatus.PENDING.value,
                    "first_row": starts,
                    "n_rows": [min(size, n_rows - s) for s in starts],
                }
            ),
        )

    def _insert_frame(self, table: str, frame: pd.DataFrame) -> None:
        self.con.register("incoming", frame)
        try:
            names = ", ".join(frame.columns)
            self.con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming")
        finally:
            self.con.unregister("incoming")

    def shards_to_run(self, job_id: str, statuses: tuple[str, ...]) -> dict:
        """The task arguments for a job's shards in the given statuses."""
        job = first(
            self.con.execute(
                "SELECT input_path, zero_is_present, engine, params, n_rows, n_shards "
                "FROM shap_jobs WHERE job_id = ?",
                [job_id],
            ).fetchall()
        )
        if job is None:
            raise InputError(f"unknown SHAP job '{job_id}'; see `genejobs shap list`")
        marks = ", ".join("?" * len(statuses))
        shards = self.con.execute(
            f"SELECT shard, first_row, n_rows FROM shap_shards WHERE job_id = ? "
            f"AND status IN ({marks}) ORDER BY shard",
            [job_id, *statuses],
        ).fetchall()
        return {
            "job_id": job_id,
            "input_path": job[0],
            "zero_is_present": job[1],
            "engine": job[2],
            "models": json.loads(job[3])["models"],
            "n_rows": job[4],
            "n_shards": job[5],
            "shards": [{"shard": s, "first_row": f, "n_rows": n} for s, f, n in shards],
        }

    # ingest -------------------------------------------------------------------

    def record(self, messages: list[dict]) -> set[str]:
        """Note finished shards, record failed ones, ingest what is due; return the jobs touched.

        A finished shard waits in the spool (its row in `shap_shards` names its
        files, and it stays pending) until its job has `ingest_values` values
        waiting or no shard left to compute; then the waiting shards go in
        together, sorted by class, feature, presence and row. Sorted over many
        shards, a column holds one feature's values and SHAP values side by
        side, which DuckDB compresses far better than shard by shard (L2G:
        ~77 MB instead of ~100 MB), and it must be right when written: a
        DuckDB file never shrinks.
        """
        self.discard: list[Path] = []
        touched: set[str] = set()
        for m in messages:
            key = [m["job_id"], int(m["shard"])]
            found = first(
                self.con.execute(
                    "SELECT status, values_path IS NOT NULL FROM shap_shards "
                    "WHERE job_id = ? AND shard = ?",
                    key,
                ).fetchall()
            )
            if found is None:
                continue
            touched.add(m["job_id"])
            status, waiting = found
            if status not in (RunStatus.PENDING.value, RunStatus.FAILED.value):
                # A repeat (redelivery, retry) of a finished shard: counted, never ingested.
                self._count_attempt(key)
                if m["op"] == DONE_OP:
                    self.discard += self._spool_files(m["rows_path"], m["values_path"])
                continue
            if m["op"] == FAILED_OP:
                # A failed copy is counted but never undoes a copy that finished.
                if status == RunStatus.PENDING.value and not waiting:
                    self.con.execute(
                        "UPDATE shap_shards SET status = ?, error = ?, worker = ?, "
                        "attempts = attempts + 1, finished_at = now() "
                        "WHERE job_id = ? AND shard = ?",
                        [RunStatus.FAILED.value, m["error"], m["worker"], *key],
                    )
                else:
                    self._count_attempt(key)
                continue
            self.con.execute(
                """UPDATE shap_shards SET status = ?, rows_path = ?, values_path = ?, engine = ?,
                       additivity_failures = ?, max_additivity_error = ?, seconds = ?,
                       worker = ?, error = NULL, attempts = attempts + 1
                   WHERE job_id = ? AND shard = ?""",
                [
                    RunStatus.PENDING.value,
                    m["rows_path"],
                    m["values_path"],
                    m["engine"],
                    m["additivity_failures"],
                    m["max_additivity_error"],
                    m["seconds"],
                    m["worker"],
                    *key,
                ],
            )
        for job_id in sorted(touched):
            self.ingest_due(job_id)
        return touched

    def _count_attempt(self, key: list) -> None:
        self.con.execute(
            "UPDATE shap_shards SET attempts = attempts + 1 WHERE job_id = ? AND shard = ?", key
        )

    def ingest_due(self, job_id: str) -> None:
        """Ingest a job's waiting shards if enough values wait or nothing is left to compute."""
        outstanding, shards, rows_paths, values_paths, waiting_rows, per_row = first(
            self.con.execute(
                f"""SELECT count(*) FILTER (WHERE s.values_path IS NULL),
                           list(s.shard ORDER BY s.shard) FILTER (WHERE s.values_path IS NOT NULL),
                           list(s.rows_path ORDER BY s.shard)
                               FILTER (WHERE s.values_path IS NOT NULL),
                           list(s.values_path ORDER BY s.shard)
                               FILTER (WHERE s.values_path IS NOT NULL),
                           coalesce(sum(s.n_rows) FILTER (WHERE s.values_path IS NOT NULL), 0),
                           any_value(j.n_features * j.n_outputs)
                    FROM shap_shards s JOIN shap_jobs j USING (job_id)
                    WHERE s.job_id = ? AND s.status = '{RunStatus.PENDING.value}'""",
                [job_id],
            ).fetchall()
        )
        if not shards or (outstanding and waiting_rows * per_row < self.ingest_values):
            return
        home = settings().home
        self.con.execute(
            "INSERT INTO shap_rows BY NAME SELECT ? AS job_id, * FROM read_parquet(?) "
            "ORDER BY row_id, class",
            [job_id, [str(home / p) for p in rows_paths]],
        )
        self.con.execute(
            "INSERT INTO shap_values BY NAME SELECT ? AS job_id, * FROM read_parquet(?) "
            "ORDER BY class, feature_id, NOT present, row_id",
            [job_id, [str(home / p) for p in values_paths]],
        )
        self.con.execute(
            f"""UPDATE shap_shards SET status = '{RunStatus.DONE.value}', rows_path = NULL,
                   values_path = NULL, finished_at = now()
               WHERE job_id = ? AND list_contains(?, shard)""",
            [job_id, shards],
        )
        for rows_path, values_path in zip(rows_paths, values_paths, strict=True):
            self.discard += self._spool_files(rows_path, values_path)

    @staticmethod
    def _spool_files(*relative: str) -> list[Path]:
        home = settings().home
        return [home / path for path in relative]

    def discard_spool(self) -> None:
        """Remove the spool files whose rows the last `record` committed (or had already)."""
        for path in self.discard:
            path.unlink(missing_ok=True)
        self.discard = []
