"""Read-only SQL on the results file, and the tables it can read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genejobs.api._reading import reading

if TYPE_CHECKING:
    import pandas as pd


def sql(query: str, *, wait: float | None = None) -> pd.DataFrame:
    """Read-only SQL over the results file (as `genejobs sql`: nothing else is reachable).

    `wait`: seconds to wait while the writer holds the file (default $GENEJOBS_LOCK_WAIT).
    """
    from genejobs.storage import queries

    with reading(wait, sealed=True) as con:
        return queries.run_sql(con, query)


def tables() -> dict[str, list[str]]:
    """Every table of the results file and its columns, from the schema itself."""
    from genejobs.storage import schema

    return schema.tables()
