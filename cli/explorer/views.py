"""The explorer's way to the results: a read-only connection of its own to the views.

Each request, the warmer and each comparison computed in the background open
their own connection (`$GENEJOBS_HOME/views/genejobs.duckdb`, see
storage.views), so a page never waits for the writer and never makes it wait.
"""

from __future__ import annotations

from genejobs.errors import GenejobsError


def views_connection():
    """A read-only connection to the views' catalog; a one-line error until the writer made it."""
    import duckdb

    from genejobs.config import settings
    from genejobs.storage.views import CATALOG

    path = settings().views_dir / CATALOG
    if not path.exists():
        raise GenejobsError(f"no views at {path} yet; start the stack with `genejobs up`")
    return duckdb.connect(str(path), read_only=True)
