"""Reading the results file: a read-only connection that takes turns with the writer."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import duckdb


@contextlib.contextmanager
def reading(wait: float | None = None, sealed: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the results file that takes turns with the writer.

    `wait`: seconds to wait while the writer holds the file (default
    $GENEJOBS_LOCK_WAIT); `sealed`: the connection reaches nothing but the
    results (what `sql` runs on).
    """
    from genejobs.storage import db
    from genejobs.worker.inbox import HANDSHAKE

    with db.reading(wait, sealed, handshake=HANDSHAKE) as con:
        yield con
