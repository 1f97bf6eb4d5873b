"""Opening the DuckDB file: one read-write process (the writer), readers that wait their turn.

DuckDB lets one process hold a file read-write, and a reader in another
process cannot open it meanwhile. The writer holds the file only while it has
work, so readers retry briefly on a lock instead of failing. Readers and the
writer may also take turns through a `Handshake` the caller passes in (the
worker layer's, over Redis: `worker.inbox.HANDSHAKE`): a reader that finds the
file held says so, and the writer lets go within its `max_hold` (2 s) instead
of `max_hold_alone` (10 s); a reader lets a writer that waits go first.
Storage itself knows nothing of Redis.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import duckdb

from genejobs.config import settings
from genejobs.errors import GenejobsError, StoreBusy

_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# Ad hoc SQL reads the results and nothing else: no file outside them read or
# written (COPY, read_csv, ATTACH, INSTALL), no setting changed. DuckDB enforces
# it for the connection, whatever the statement's shape.
SEALED = {"enable_external_access": False, "lock_configuration": True}


class Handshake(Protocol):
    """How readers and the single writer take turns with the file."""

    def reader_waits(self) -> None:
        """Tell the writer a reader waits for the file (it lets go sooner)."""

    def writer_waits(self) -> bool:
        """Whether the writer waits to open the file (readers let it in first)."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


def connect(
    path: Path,
    read_only: bool,
    wait: float | None = None,
    sealed: bool = False,
    handshake: Handshake | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying while another process holds a conflicting lock.

    `sealed`: the connection can reach nothing but this file (see SEALED);
    `handshake`: how to tell the writer that this reader waits.
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
            if handshake is not None:
                handshake.reader_waits()
            if time.monotonic() > deadline:
                raise StoreBusy(
                    f"{path} stayed locked by another process for {wait:.0f} s; "
                    "try again, or raise GENEJOBS_LOCK_WAIT"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


@contextlib.contextmanager
def reading(
    wait: float | None = None, sealed: bool = False, handshake: Handshake | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the results file, closed on exit (`sealed`: see SEALED).

    With a `handshake`, a writer waiting for the file goes first (see `_yield_to_writer`).
    """
    path = settings().db_path
    if not path.exists():
        raise GenejobsError(f"no results file at {path} yet; start the stack with `genejobs up`")
    if handshake is not None:
        _yield_to_writer(handshake, settings().lock_wait if wait is None else wait)
    con = connect(path, read_only=True, wait=wait, sealed=sealed, handshake=handshake)
    try:
        yield con
    finally:
        con.close()


def _yield_to_writer(handshake: Handshake, wait: float) -> None:
    """Let a writer that is waiting for the file in first (up to `wait` seconds).

    Readers that open the file back to back would otherwise keep the writer
    out for as long as they keep coming: a reader polling a job would see it
    never advance.
    """
    deadline = time.monotonic() + min(wait, 10.0)
    while handshake.writer_waits() and time.monotonic() < deadline:
        time.sleep(0.005)


def insert_frame(
    con: duckdb.DuckDBPyConnection, name: str, frame, statement: str, params: list
) -> None:
    """Run `statement`, which reads the frame (pandas or Arrow) registered as `name`: a bulk
    insert in one statement, never row by row."""
    con.register(name, frame)
    try:
        con.execute(statement, params)
    finally:
        con.unregister(name)


def first(rows: list[tuple]) -> tuple | None:
    """The first row of a fetched result, or None.

    Results are always fetched whole: DuckDB refuses new work on a connection
    while a result is only partly read.
    """
    return rows[0] if rows else None
