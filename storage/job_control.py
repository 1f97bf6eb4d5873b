"""Cancel and retry for every job kind, in the results file (writer side).

Contract: called by the single writer inside its transaction. A cancel is
durable: the job is marked cancelled in the file and its pending units move to
`cancelled`, so no result that arrives later (a task already running, a
redelivered message) can record them, whatever happens to Redis. A job whose
units are all final is not relabelled: cancelling it changes nothing. A retry
moves failed units (and, when asked, stranded pending ones, or cancelled ones)
back to `pending`; it never brings back cancelled units unless asked. A delete
removes a job that runs no more and every row it recorded, and names the files
under the data dir that only it used, for the writer to remove after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from genejobs.contract import CancelJob, DeleteJob, RetryJob
from genejobs.errors import InputError, NotFoundError
from genejobs.storage.db import first
from genejobs.units import JobKind, UnitStatus

PENDING, FAILED, CANCELLED = (
    UnitStatus.PENDING.value,
    UnitStatus.FAILED.value,
    UnitStatus.CANCELLED.value,
)


@dataclass(frozen=True)
class UnitTable:
    """Where a job kind keeps its units, and the columns that name one."""

    table: str
    key: str  # SQL of the unit id, as genejobs.units.Unit.unit_id spells it
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


def open_units(con: duckdb.DuckDBPyConnection, job_id: str, kind: JobKind) -> int:
    """How many of a job's units are still to run (pending, or a SHAP shard not ingested yet)."""
    units = UNITS[kind]
    count = con.execute(
        f"SELECT count(*) FROM {units.table} WHERE job_id = ? AND status = '{PENDING}'", [job_id]
    ).fetchone()[0]
    if kind is JobKind.SEARCH:
        # A ranked search's finalize step is open until its best model is saved or failed.
        count += con.execute(
            f"SELECT count(*) FROM model_runs WHERE job_id = ? AND (status = '{PENDING}' "
            "OR (best AND artifact_sha256 IS NULL AND finalize_error IS NULL))",
            [job_id],
        ).fetchone()[0]
    return int(count)


def cancel(con: duckdb.DuckDBPyConnection, request: CancelJob) -> dict:
    """Mark a job cancelled and its pending units with it; finished units stay recorded.

    A job with no unit left to run stays as it is (`finished` in the reply).
    """
    job_id = request.job_id
    kind, already = kind_of(con, job_id)
    units = UNITS[kind]
    if not already and not open_units(con, job_id, kind):
        return {"job_id": job_id, "kind": kind.value, "cancelled": 0, "finished": True}
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
    return {"job_id": job_id, "kind": kind.value, "cancelled": len(cancelled), "finished": False}


def retry(con: duckdb.DuckDBPyConnection, request: RetryJob) -> dict:
    """Put a job's failed units (and stranded pending or cancelled ones, if asked) back to pending.

    Returns the ids of the units to send: the ones moved, plus with `pending`
    those that were pending already (their tasks may be lost).
    """
    job_id, pending, cancelled = request.job_id, request.include_pending, request.include_cancelled
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
    return {
        "job_id": job_id,
        "kind": kind.value,
        "unit_ids": sorted(r[0] for r in moved),
        "uncancelled": bool(cancelled and job_cancelled),
    }


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


# Every table that holds a job's rows, by kind, dependent rows first.
JOB_TABLES = {
    JobKind.IMPORTANCE: ("importances", "runs", "jobs"),
    JobKind.SEARCH: ("search_folds", "model_runs", "jobs"),
    JobKind.EVALUATE: ("test_results", "jobs"),
    JobKind.SHAP: (
        "shap_values",
        "shap_rows",
        "shap_shards",
        "shap_models",
        "shap_features",
        "shap_jobs",
    ),
}
# The files under the data dir that only one job uses, by kind: (table, column). A SHAP
# job's input and model copies are in its own folder (`shap/<job>`), removed with it;
# a genejobs model it explains stays where its search saved it.
JOB_FILES = {
    JobKind.SEARCH: (("model_runs", "artifact_path"),),
    JobKind.SHAP: (("shap_shards", "rows_path"), ("shap_shards", "values_path")),
}


def delete(con: duckdb.DuckDBPyConnection, request: DeleteJob) -> dict:
    """Remove a job and every row it recorded; refuse a job that still runs.

    A job still runs while a unit is left to run and it is not cancelled
    (`genejobs jobs cancel` first). A search whose models other jobs evaluated
    is refused too: their results would lose the model they name. The seeds
    of a deleted importance job may be drawn again. Returns the rows removed
    per table and the files (relative to the data dir) to remove after the commit.
    """
    job_id = request.job_id
    kind, cancelled = kind_of(con, job_id)
    left = open_units(con, job_id, kind)
    if left and not cancelled:
        raise InputError(
            f"job {job_id} is running ({left} units left); cancel it first with "
            f"`genejobs jobs cancel {job_id}`"
        )
    if kind is JobKind.SEARCH:
        users = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT t.job_id FROM test_results t JOIN model_runs m "
                "USING (model_id) WHERE m.job_id = ? AND t.job_id <> ? "
                "UNION SELECT DISTINCT s.job_id FROM shap_models s JOIN model_runs m "
                "ON s.path = m.artifact_path WHERE m.job_id = ? ORDER BY 1",
                [job_id, job_id, job_id],
            ).fetchall()
        ]
        if users:
            raise InputError(
                f"job {job_id}'s models are used by job {', '.join(users)}; delete those first"
            )
    files = {
        path
        for table, column in JOB_FILES.get(kind, ())
        for (path,) in con.execute(
            f"SELECT {column} FROM {table} WHERE job_id = ? AND {column} IS NOT NULL",
            [job_id],
        ).fetchall()
    }
    if kind is JobKind.SHAP:
        files.add(f"shap/{job_id}")
    removed = {
        table: len(
            con.execute(f"DELETE FROM {table} WHERE job_id = ? RETURNING 1", [job_id]).fetchall()
        )
        for table in JOB_TABLES[kind]
    }
    return {"job_id": job_id, "kind": kind.value, "removed": removed, "files": sorted(files)}
