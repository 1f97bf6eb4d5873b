"""The writer's side of SHAP jobs: planning shards and ingesting them from the spool.

Contract: only the single writer calls `ShapStore`, inside its open
transaction. Planning the same job id twice returns the first plan. A shard's
rows are inserted in the transaction that moves it from pending (or failed) to
done, and a shard already done is skipped, so a repeated or redelivered shard
never duplicates rows. Spool files are removed by `discard_spool`, which the
writer calls only after the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from storage.db import first
from storage.schema import RunStatus
from worker.config import settings
from worker.errors import InputError

DONE_OP = "shap_shard_done"
FAILED_OP = "shap_shard_failed"
OPS = {DONE_OP, FAILED_OP}


class ShapStore:
    """Writer-side operations for SHAP jobs on an open read-write connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def plan(self, m: dict) -> dict:
        """Create a SHAP job and its pending shards; answer with what the tasks need."""
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
                json.dumps({"models": m["models"]}),
            ],
        )
        self._insert_frame(
            "shap_features",
            pd.DataFrame(
                {
                    "job_id": job_id,
                    "feature_id": range(len(m["features"])),
                    "feature": m["features"],
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

    def retry(self, job_id: str) -> dict:
        """Put a job's failed shards back to pending and return them."""
        self.shards_to_run(job_id, statuses=())
        self.con.execute(
            "UPDATE shap_shards SET status = ?, error = NULL WHERE job_id = ? AND status = ?",
            [RunStatus.PENDING.value, job_id, RunStatus.FAILED.value],
        )
        return self.shards_to_run(job_id, statuses=(RunStatus.PENDING.value,))

    # ingest -------------------------------------------------------------------

    def record(self, messages: list[dict]) -> set[str]:
        """Ingest finished shards and record failed ones; return the jobs touched."""
        touched: set[str] = set()
        home = settings().home
        for m in messages:
            key = (m["job_id"], int(m["shard"]))
            touched.add(m["job_id"])
            status = first(
                self.con.execute(
                    "SELECT status FROM shap_shards WHERE job_id = ? AND shard = ?", list(key)
                ).fetchall()
            )
            if status is None:
                continue
            if status[0] != RunStatus.PENDING.value and status[0] != RunStatus.FAILED.value:
                # A repeat (redelivery, retry) of a finished shard: counted, never ingested.
                self.con.execute(
                    "UPDATE shap_shards SET attempts = attempts + 1 WHERE job_id = ? AND shard = ?",
                    list(key),
                )
                continue
            if m["op"] == FAILED_OP:
                if status[0] == RunStatus.PENDING.value:
                    self.con.execute(
                        "UPDATE shap_shards SET status = ?, error = ?, worker = ?, "
                        "attempts = attempts + 1, finished_at = now() "
                        "WHERE job_id = ? AND shard = ?",
                        [RunStatus.FAILED.value, m["error"], m["worker"], *key],
                    )
                continue
            self.con.execute(
                "INSERT INTO shap_rows BY NAME SELECT ? AS job_id, * FROM read_parquet(?)",
                [m["job_id"], str(home / m["rows_path"])],
            )
            self.con.execute(
                "INSERT INTO shap_values BY NAME SELECT ? AS job_id, * FROM read_parquet(?)",
                [m["job_id"], str(home / m["values_path"])],
            )
            self.con.execute(
                """UPDATE shap_shards SET status = ?, engine = ?, additivity_failures = ?,
                       max_additivity_error = ?, seconds = ?, worker = ?, error = NULL,
                       attempts = attempts + 1, finished_at = now()
                   WHERE job_id = ? AND shard = ?""",
                [
                    RunStatus.DONE.value,
                    m["engine"],
                    m["additivity_failures"],
                    m["max_additivity_error"],
                    m["seconds"],
                    m["worker"],
                    *key,
                ],
            )
        return touched

    @staticmethod
    def discard_spool(messages: list[dict]) -> None:
        """Remove the spool files of shards whose rows are committed (or were already)."""
        home = settings().home
        for m in messages:
            if m.get("op") == DONE_OP:
                for name in ("rows_path", "values_path"):
                    Path(home / m[name]).unlink(missing_ok=True)
