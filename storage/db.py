"""Opening the DuckDB file: one read-write process (the writer), readers that wait their turn.

DuckDB lets one process hold a file read-write, and a reader in another
process cannot open it meanwhile. The writer holds the file only while it has
work, so readers retry briefly on a lock instead of failing; a reader that
finds the file held says so in Redis, and the writer lets go within its
`max_hold` (2 s) instead of `max_hold_alone` (10 s).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from genejobs.config import settings
from genejobs.errors import GenejobsError, StoreBusy

_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# Ad hoc SQL reads the results and nothing else: no file outside them read or
# written (COPY, read_csv, ATTACH, INSTALL), no setting changed. DuckDB enforces
# it for the connection, whatever the statement's shape.
SEALED = {"enable_external_access": False, "lock_configuration": True}


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


def connect(
    path: Path, read_only: bool, wait: float | None = None, sealed: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying while another process holds a conflicting lock.

    `sealed`: the connection can reach nothing but this file (see SEALED).
    """
    wait = settings().lock_wait if wait is None else wait
    deadline = time.monotonic() + wait
    pause = 0.005
    while True:
        try:
            config = {**_CONFIG, **(SEALED if sealed else {})}
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise GenejobsError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None
            _ask_writer()
            if time.monotonic() > deadline:
                raise StoreBusy(
                    f"{path} stayed locked by another process for {wait:.0f} s; "
                    "try again, or raise GENEJOBS_LOCK_WAIT"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


@contextlib.contextmanager
def reading(wait: float | None = None, sealed: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the results file, closed on exit (`sealed`: see SEALED)."""
    path = settings().db_path
    if not path.exists():
        raise GenejobsError(f"no results file at {path} yet; start the stack with `genejobs up`")
    _yield_to_writer(settings().lock_wait if wait is None else wait)
    con = connect(path, read_only=True, wait=wait, sealed=sealed)
    try:
        yield con
    finally:
        con.close()


def _ask_writer() -> None:
    """Tell the writer a reader waits for the file: it lets go within `max_hold` then."""
    import redis

    from genejobs.worker import inbox

    with contextlib.suppress(redis.RedisError):
        inbox.client().set(inbox.READER_WANTS, "1", px=1000)


def _yield_to_writer(wait: float) -> None:
    """Let a writer that is waiting for the file in first (up to `wait` seconds).

    Readers that open the file back to back would otherwise keep the writer
    out for as long as they keep coming: a reader polling a job would see it
    never advance. Without Redis there is no writer to wait for.
    """
    import redis

    from genejobs.worker import inbox

    deadline = time.monotonic() + min(wait, 10.0)
    try:
        while inbox.client().exists(inbox.WRITER_WANTS) and time.monotonic() < deadline:
            time.sleep(0.005)
    except redis.RedisError:
        return


def first(rows: list[tuple]) -> tuple | None:
    """The first row of a fetched result, or None.

    Results are always fetched whole: DuckDB refuses new work on a connection
    while a result is only partly read.
    """
    return rows[0] if rows else None
