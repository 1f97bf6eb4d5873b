"""Cancel and retry for every job kind, in the results file (writer side).

Contract: called by the single writer inside its transaction. A cancel is
durable: the job is marked cancelled in the file and its pending units move to
`cancelled`, so no result that arrives later (a task already running, a
redelivered message) can record them, whatever happens to Redis. A retry moves
failed units (and, when asked, stranded pending ones, or cancelled ones) back
to `pending`; it never brings back cancelled units unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from genejobs.storage.db import first
from genejobs.worker.contract import JobKind, UnitStatus
from genejobs.worker.errors import InputError, NotFoundError

PENDING, FAILED, CANCELLED = (
    UnitStatus.PENDING.value,
    UnitStatus.FAILED.value,
    UnitStatus.CANCELLED.value,
)


@dataclass(frozen=True)
class UnitTable:
    """Where a job kind keeps its units, and the columns that name one."""

    table: str
    key: str  # SQL of the unit id, as worker.contract.Unit.unit_id spells it
    jobs: str  # the table with the job's `cancelled` flag


UNITS = {
    JobKind.IMPORTANCE: UnitTable("runs", "job_id || '-' || seed", "jobs"),
    JobKind.SEARCH: UnitTable("search_folds", "job_id || '-' || model || '-' || fold", "jobs"),
    JobKind.EVALUATE: UnitTable("test_results", "test_id", "jobs"),
    JobKind.SHAP: UnitTable("shap_shards", "job_id || '-' || shard", "shap_jobs"),
}


def kind_of(con: duckdb.DuckDBPyConnection, job_id: str) -> tuple[JobKind, bool]:
    """A job's kind and whether it is cancelled; NotFoundError if there is no such job."""
    row = first(
        con.execute(
            "SELECT kind, cancelled FROM jobs WHERE job_id = ? "
            "UNION ALL SELECT 'shap', cancelled FROM shap_jobs WHERE job_id = ?",
            [job_id, job_id],
        ).fetchall()
    )
    if row is None:
        raise NotFoundError(f"unknown job '{job_id}'; see `genejobs jobs list`")
    return JobKind(row[0]), bool(row[1])


def cancel(con: duckdb.DuckDBPyConnection, job_id: str) -> dict:
    """Mark a job cancelled and its pending units with it; finished units stay recorded."""
    kind, _ = kind_of(con, job_id)
    units = UNITS[kind]
    con.execute(f"UPDATE {units.jobs} SET cancelled = true WHERE job_id = ?", [job_id])
    # A SHAP shard whose files wait in the spool is computed: it is ingested, not cancelled.
    computed = " AND values_path IS NULL" if kind is JobKind.SHAP else ""
    cancelled = con.execute(
        f"UPDATE {units.table} SET status = '{CANCELLED}', finished_at = now() "
        f"WHERE job_id = ? AND status = '{PENDING}'{computed} RETURNING 1",
        [job_id],
    ).fetchall()
    if kind is JobKind.SEARCH:
        con.execute(
            f"UPDATE model_runs SET status = '{CANCELLED}', finished_at = now() "
            f"WHERE job_id = ? AND status = '{PENDING}'",
            [job_id],
        )
    return {"job_id": job_id, "kind": kind.value, "cancelled": len(cancelled)}


def retry(
    con: duckdb.DuckDBPyConnection, job_id: str, pending: bool = False, cancelled: bool = False
) -> dict:
    """Put a job's failed units (and stranded pending or cancelled ones, if asked) back to pending.

    Returns the ids of the units to send: the ones moved, plus with `pending`
    those that were pending already (their tasks may be lost).
    """
    kind, job_cancelled = kind_of(con, job_id)
    if job_cancelled and not cancelled:
        raise InputError(
            f"job {job_id} is cancelled; `genejobs jobs retry {job_id} --cancelled` runs its "
            "cancelled units again"
        )
    units = UNITS[kind]
    statuses = [FAILED] + ([PENDING] if pending else []) + ([CANCELLED] if cancelled else [])
    marks = ", ".join("?" * len(statuses))
    computed = " AND values_path IS NULL" if kind is JobKind.SHAP else ""
    moved = con.execute(
        f"UPDATE {units.table} SET status = '{PENDING}', error = NULL "
        f"WHERE job_id = ? AND status IN ({marks}){computed} RETURNING {units.key}",
        [job_id, *statuses],
    ).fetchall()
    if cancelled:
        con.execute(f"UPDATE {units.jobs} SET cancelled = false WHERE job_id = ?", [job_id])
    if kind is JobKind.SEARCH:
        _reopen_search(con, job_id, bool(moved))
    return {"job_id": job_id, "kind": kind.value, "unit_ids": sorted(r[0] for r in moved)}


def _reopen_search(con: duckdb.DuckDBPyConnection, job_id: str, folds_moved: bool) -> None:
    """A search with folds to run again is ranked again; a failed finalize step is tried again."""
    if folds_moved:
        con.execute(
            f"""UPDATE model_runs SET status = '{PENDING}', rank = NULL, best = false,
                    error = NULL, finalize_error = NULL, finished_at = NULL
                WHERE job_id = ? AND artifact_sha256 IS NULL""",
            [job_id],
        )
    else:
        con.execute(
            "UPDATE model_runs SET finalize_error = NULL WHERE job_id = ? AND best "
            "AND artifact_sha256 IS NULL",
            [job_id],
        )
