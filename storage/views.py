"""Results any DuckDB client can open at any moment: Parquet snapshots and a catalog of views.

DuckDB lets one process hold a file read-write and no other process open it
meanwhile, so while jobs run the results file itself is the writer's. The
writer therefore publishes, every few seconds after its commits, what changed
as Parquet files under `$GENEJOBS_HOME/views/`, and then a small DuckDB
catalog, `views/genejobs.duckdb`, with one view per results table over the
files of that publication. The catalog is written aside and renamed into
place, never opened read-write where it lies, so the duckdb CLI, a notebook or
a BI tool opens it read-only at any time. A connection sees the publication of
the moment it opened, every table from the same one; open it again (or
`ATTACH` it again) for newer results.

Files are never changed once written, since DuckDB reads a Parquet file's
footer and its data in separate opens. A publication costs what changed, never
the size of the results:

- Tables of a job's state (jobs, runs, search folds, SHAP shards, ...): one
  file per job and publication that touched it, `views/<table>/<job>~<n>.parquet`.
  `datasets` is one file.
- Tables that only grow (importances, shap_rows, shap_values) get a part per
  publication with the rows added since the last one (DuckDB's row ids grow
  with every insert, and these tables are never updated or deleted from).
  Parts merge eight at a time into a part one level up, so a row is rewritten
  a few times in all and a table is a few dozen files.
- A deleted job (`genejobs jobs delete`) loses its files in the state tables.
  Deleting rows renumbers DuckDB's row ids when a checkpoint compacts the
  table, so once a job was ever deleted each publication also counts the rows
  of the growing tables: when the count is not what was published plus what
  is new, the table is written anew as one part.

A file the current catalog no longer names is deleted `KEEP_SECONDS` (an hour)
later: a connection kept open longer than that may find its files gone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import duckdb

log = logging.getLogger("genejobs.views")

CATALOG = "genejobs.duckdb"
# Tables that are only ever inserted into: published by row id.
GROWING = ("importances", "shap_rows", "shap_values")
# Not published: the writer's own bookkeeping.
PRIVATE = ("writer_fence",)
# A growing table gets a part per publication; parts merge this many at a time.
MERGE_FAN_IN = 8
KEEP_SECONDS = 3600.0
_JOB_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class ViewPublisher:
    """Publish the changes of the writer's commits under `directory` (see the module doc)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.tmp = directory / ".tmp"
        self.state_file = directory / "state.json"
        self.dirty_file = directory / "dirty.json"
        self.dirty_jobs: set[str] = set()
        self.dirty_datasets = False
        self.started = False
        self.everything = True  # rewrite every job's files (unless a saved state continues)
        self.published_at = 0.0
        self.number = 0  # publications so far: names each new file
        self.watermarks: dict[str, int] = {}
        self.counts: dict[str, int] = {}  # rows published, by growing table
        self.deletions = False  # a job was ever deleted: row ids may have moved
        self.files: dict[str, dict[str, str]] = {}  # table -> key -> file name
        self.retired: list[tuple[float, str]] = []  # (wall time, path relative to directory)
        self.schema: list = []
        self._builder: duckdb.DuckDBPyConnection | None = None
        self._built = 0

    # what changed ----------------------------------------------------------------

    def touch(self, job_ids: set[str], datasets: bool = False) -> None:
        """Note jobs about to change, before their transaction: a writer that dies
        after its commit leaves them in `dirty.json` for the next one to publish."""
        new = job_ids - self.dirty_jobs
        self.dirty_jobs |= job_ids
        self.dirty_datasets |= datasets
        if new or datasets:
            self.tmp.mkdir(parents=True, exist_ok=True)
            staged = self.tmp / "dirty.json"
            staged.write_text(json.dumps({"jobs": sorted(self.dirty_jobs), "datasets": True}))
            os.replace(staged, self.dirty_file)

    def forget(self, job_id: str) -> None:
        """Note a job deleted, after its commit: its files go at the next publication."""
        self.deletions = True
        self.touch({job_id})

    @property
    def pending(self) -> bool:
        return self.everything or self.dirty_datasets or bool(self.dirty_jobs)

    # publishing ------------------------------------------------------------------

    def publish(self, con: duckdb.DuckDBPyConnection) -> float:
        """Write what changed since the last publication; return the seconds it took."""
        started = time.perf_counter()
        self.tmp.mkdir(parents=True, exist_ok=True)
        tables = _tables(con)
        if not self.started:
            self._start(con, tables)
            self.started = True
        self.number += 1
        for table in tables:
            if table in GROWING:
                self._grow(con, table)
            elif table == "datasets":
                if self.everything or self.dirty_datasets:
                    self._write(con, table, "all", "SELECT * FROM datasets")
            else:
                present = _jobs_in(con, table, None if self.everything else self.dirty_jobs)
                for job_id in present:
                    if _JOB_ID.match(job_id):
                        query = f"SELECT * FROM \"{table}\" WHERE job_id = '{job_id}'"
                        self._write(con, table, job_id, query)
                self._drop_deleted(table, set(present))
        self._write_catalog(tables)
        self._save_state()
        self.dirty_file.unlink(missing_ok=True)
        self._delete_retired()
        self.dirty_jobs.clear()
        self.dirty_datasets = False
        self.everything = False
        self.published_at = time.monotonic()
        return time.perf_counter() - started

    def _start(self, con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
        """First publication of this writer: continue the saved state, or begin anew."""
        state = _load(self.state_file)
        tops = {t: _max_rowid(con, t) for t in GROWING if t in tables}
        saved = state.get("watermarks", {})
        self.deletions = self.deletions or bool(state.get("deletions"))
        files = state.get("files", {})
        self.schema = _schema(con)
        usable = (
            state.get("schema") == self.schema
            and all(-1 <= saved.get(t, -2) <= tops[t] for t in tops)
            and all(
                (self.directory / table / name).exists()
                for table, names in files.items()
                for name in names.values()
            )
        )
        if usable:
            self.number = int(state.get("number", 0))
            self.watermarks = {t: int(saved[t]) for t in tops}
            self.files = files
            self.retired = [tuple(r) for r in state.get("retired", [])]
            self.counts = {t: int(c) for t, c in state.get("counts", {}).items()}
            left = _load(self.dirty_file)
            self.dirty_jobs |= set(left.get("jobs", []))
            self.dirty_datasets |= bool(left.get("datasets"))
            self.everything = False
        else:
            # Begin anew: a first start, a saved state that does not match the file, or
            # columns added since (every file of a table has the same columns).
            for table in tables:
                shutil.rmtree(self.directory / table, ignore_errors=True)
            self.watermarks = dict.fromkeys(tops, -1)
            self.number = int(state.get("number", 0))
        # Every table's columns as of now (a file with no rows), so no view is empty.
        self.number += 1
        for table in tables:
            self._write(con, table, "_columns", f'SELECT * FROM "{table}" LIMIT 0')

    def _drop_deleted(self, table: str, present: set[str]) -> None:
        """Retire the files of jobs that have no rows in `table` any more (deleted jobs)."""
        files = self.files.get(table, {})
        among = set(files) if self.everything else self.dirty_jobs & set(files)
        for key in among - present - {"_columns", "all"}:
            if not key.startswith("L"):
                self.retired.append((time.time(), f"{table}/{files.pop(key)}"))

    def _grow(self, con, table: str) -> None:
        """The rows added since the last publication as a new part; then merge where due."""
        mark = self.watermarks.get(table, -1)
        if self.deletions:
            top, total, added_rows = con.execute(
                f"SELECT coalesce(max(rowid), -1), count(*), count(*) FILTER (WHERE rowid > {mark})"
                f' FROM "{table}"'
            ).fetchone()
            if total != self.counts.get(table, -1) + added_rows:
                self._rewrite(con, table, int(top), int(total))
                return
        else:
            top = _max_rowid(con, table)
        if top <= mark:
            return
        added = f'SELECT * FROM "{table}" WHERE rowid > {mark} AND rowid <= {top}'
        self._write(con, table, f"L0-{self.number}", added)
        if self.deletions:
            self.counts[table] = int(total)
        self.watermarks[table] = top
        self._merge(con, table)

    def _rewrite(self, con, table: str, top: int, total: int) -> None:
        """The whole table as one part, after rows were deleted or renumbered."""
        for key in [k for k in self.files.get(table, {}) if k.startswith("L")]:
            self.retired.append((time.time(), f"{table}/{self.files[table].pop(key)}"))
        # A level of its own: small parts do not merge into it.
        everything = f'SELECT * FROM "{table}" WHERE rowid <= {top}'
        self._write(con, table, f"L9-{self.number}", everything)
        self.watermarks[table] = top
        self.counts[table] = total

    def _merge(self, con, table: str) -> None:
        """Merge parts `MERGE_FAN_IN` at a time into one a level up, until no level is full.

        A row is rewritten once per level, so a table of n rows in parts of r
        costs O(n log(n / r)) in all and holds at most 8 parts per level.
        """
        while True:
            levels: dict[int, list[str]] = {}
            for key in self.files[table]:
                if key.startswith("L"):
                    level = int(key[1:].split("-")[0])
                    levels.setdefault(level, []).append(key)
            full = sorted(level for level, keys in levels.items() if len(keys) >= MERGE_FAN_IN)
            if not full:
                return
            keys = sorted(levels[full[0]], key=lambda k: int(k.split("-")[1]))[:MERGE_FAN_IN]
            paths = [str(self.directory / table / self.files[table][k]) for k in keys]
            listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            merged = f"L{full[0] + 1}-{self.number}"
            self._write(con, table, merged, f"SELECT * FROM read_parquet([{listed}])")
            for key in keys:
                self.retired.append((time.time(), f"{table}/{self.files[table].pop(key)}"))

    def _write(self, con, table: str, key: str, query: str) -> None:
        """A new file for `key` of `table`; the one it replaces is retired."""
        name = f"{key}~{self.number}.parquet"
        directory = self.directory / table
        directory.mkdir(parents=True, exist_ok=True)
        staged = self.tmp / f"{table}~{name}"
        quoted = str(staged).replace("'", "''")
        con.execute(f"COPY ({query}) TO '{quoted}' (FORMAT parquet, COMPRESSION lz4)")
        os.replace(staged, directory / name)
        old = self.files.setdefault(table, {}).get(key)
        if old is not None and old != name:
            self.retired.append((time.time(), f"{table}/{old}"))
        self.files[table][key] = name

    def _write_catalog(self, tables: list[str]) -> None:
        """The catalog: one view per table over this publication's files, renamed into place."""
        staged = self.tmp / CATALOG
        staged.unlink(missing_ok=True)
        builder = self._catalog_builder()
        quoted = str(staged).replace("'", "''")
        builder.execute(f"ATTACH '{quoted}' AS catalog")
        try:
            for table in tables:
                # The file with no rows first: the view takes its columns from it.
                names = sorted(self.files[table].items(), key=lambda kv: kv[0] != "_columns")
                paths = [str(self.directory / table / name) for _, name in names]
                listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
                builder.execute(
                    f'CREATE VIEW catalog."{table}" AS SELECT * FROM read_parquet([{listed}])'
                )
        finally:
            builder.execute("DETACH catalog")
        os.replace(staged, self.directory / CATALOG)

    def _catalog_builder(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB that writes the catalogs, caching the Parquet footers it read.

        Binding a view reads the footer of each file it lists; the files are
        never rewritten, so a footer read once holds: a catalog costs about a
        third of one made by a fresh connection. Renewed now and then, so the
        cache does not keep the footers of deleted files for ever.
        """
        if self._builder is None or self._built >= 1000:
            if self._builder is not None:
                self._builder.close()
            self._builder = duckdb.connect(":memory:")
            self._builder.execute("SET parquet_metadata_cache = true")
            self._built = 0
        self._built += 1
        return self._builder

    def _save_state(self) -> None:
        staged = self.tmp / "state.json"
        state = {
            "schema": self.schema,
            "number": self.number,
            "watermarks": self.watermarks,
            "files": self.files,
            "retired": self.retired,
            "deletions": self.deletions,
            "counts": self.counts,
        }
        staged.write_text(json.dumps(state))
        os.replace(staged, self.state_file)

    def _delete_retired(self) -> None:
        now = time.time()
        while self.retired and now - self.retired[0][0] > KEEP_SECONDS:
            _, path = self.retired.pop(0)
            (self.directory / path).unlink(missing_ok=True)


def _tables(con) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = 'main' ORDER BY table_name"
        ).fetchall()
        if name not in PRIVATE
    ]


def _jobs_in(con, table: str, among: set[str] | None) -> list[str]:
    """The jobs with rows in `table` (all, or those `among` the given ones)."""
    if among is not None and not among:
        return []
    query = f'SELECT DISTINCT job_id FROM "{table}"'
    if among is not None:
        query += " WHERE job_id IN (SELECT unnest(?::VARCHAR[]))"
    rows = con.execute(query, [] if among is None else [sorted(among)]).fetchall()
    return [job for (job,) in rows]


def _schema(con) -> list:
    """Every table's columns and types, to notice columns added since the last publication."""
    return [
        list(row)
        for row in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        ).fetchall()
    ]


def _max_rowid(con, table: str) -> int:
    return int(con.execute(f'SELECT coalesce(max(rowid), -1) FROM "{table}"').fetchone()[0])


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
