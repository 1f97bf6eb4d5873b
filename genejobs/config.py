"""All configuration in one place, read from environment variables.

| variable                      | default                          |
| ----------------------------- | -------------------------------- |
| GENEJOBS_HOME                 | ~/.genejobs                      |
| GENEJOBS_REDIS_URL            | redis://127.0.0.1:6379/0         |
| GENEJOBS_DB                   | $GENEJOBS_HOME/results.duckdb    |
| GENEJOBS_VISIBILITY_TIMEOUT   | 30 (seconds a dead worker's task |
|                               | waits before it runs elsewhere;  |
|                               | live workers renew their leases) |
| GENEJOBS_RESTORE_INTERVAL     | 5 (seconds between sweeps for    |
|                               | unacknowledged tasks)            |
| GENEJOBS_FLOWER_PORT          | 5555                             |
| GENEJOBS_LOCK_WAIT            | 30 (seconds a reader waits for   |
|                               | the DuckDB file)                 |
| GENEJOBS_VIEWS_INTERVAL       | 3 (seconds between publications  |
|                               | of $GENEJOBS_HOME/views; 0: off) |
| GENEJOBS_EXPLORER_PORT        | 5556 (the explorer of `up`)      |

Settings are read when asked for, so a test or a launcher can change the
environment and every later call sees it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit


@dataclass(frozen=True)
class Settings:
    """Where genejobs keeps its files and how it reaches Redis."""

    home: Path
    redis_url: str  # with the bundled Redis's password, when it has one
    db_path: Path
    visibility_timeout: int
    restore_interval: int
    flower_port: int
    lock_wait: float
    views_interval: float = 3.0  # seconds between view publications; 0: none
    explorer_port: int = 5556
    # Seconds of work a task of seeded runs aims at (storage.units.run_pack); 0: one run a task.
    pack_seconds: float = 0.5
    # The most runs one importance job may plan (a round job: in all); a bigger request is refused.
    max_runs: int = 100_000
    redis_url_given: str = ""  # GENEJOBS_REDIS_URL as given (no password added)

    @property
    def redis_url_shown(self) -> str:
        """The Redis URL with any password masked, for messages and `status`."""
        parsed = urlsplit(self.redis_url)
        if parsed.password is None:
            return self.redis_url
        host = parsed.netloc.rsplit("@", 1)[1]
        return urlunsplit(parsed._replace(netloc=f":***@{host}"))

    @property
    def redis_password_file(self) -> Path:
        return self.home / REDIS_PASSWORD

    @property
    def flower_credentials_file(self) -> Path:
        return self.home / FLOWER_CREDENTIALS

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def views_dir(self) -> Path:
        """Parquet copies of the results and a catalog any DuckDB client opens (storage.views)."""
        return self.home / "views"

    def ensure_dirs(self) -> None:
        for path in (
            self.datasets_dir,
            self.spool_dir,
            self.run_dir,
            self.logs_dir,
            self.redis_dir,
            self.db_path.parent,
        ):
            path.mkdir(parents=True, exist_ok=True)


_VARIABLES = (
    "GENEJOBS_HOME",
    "GENEJOBS_REDIS_URL",
    "GENEJOBS_DB",
    "GENEJOBS_VISIBILITY_TIMEOUT",
    "GENEJOBS_RESTORE_INTERVAL",
    "GENEJOBS_FLOWER_PORT",
    "GENEJOBS_LOCK_WAIT",
    "GENEJOBS_VIEWS_INTERVAL",
    "GENEJOBS_EXPLORER_PORT",
    "GENEJOBS_PACK_SECONDS",
    "GENEJOBS_MAX_RUNS",
)


# Secrets `genejobs up` generates in the data dir (mode 0600) at its first start.
REDIS_PASSWORD = "redis/password"
FLOWER_CREDENTIALS = "flower.credentials"


def settings() -> Settings:
    """Read the settings from the environment now.

    Every message a task or the writer sends asks for them, so the parsed
    result is kept per set of values (and the working and home directories
    that relative paths and `~` resolve against): resolving the paths costs
    file-system calls, reading the variables does not.
    """
    values = tuple(os.environ.get(name) for name in _VARIABLES)
    home = Path(os.environ.get("GENEJOBS_HOME", "~/.genejobs")).expanduser()
    try:
        # Part of the cache key: the password appears at the first `up`.
        secret = (home / REDIS_PASSWORD).stat().st_mtime_ns
    except OSError:
        secret = None
    return _settings(values, os.getcwd(), os.environ.get("HOME"), secret)


@lru_cache(maxsize=16)
def _settings(
    values: tuple[str | None, ...], cwd: str, user_home: str | None, secret: int | None
) -> Settings:
    env = {name: value for name, value in zip(_VARIABLES, values, strict=True) if value is not None}
    home = Path(env.get("GENEJOBS_HOME", "~/.genejobs")).expanduser().resolve()
    db = env.get("GENEJOBS_DB")
    given = env.get("GENEJOBS_REDIS_URL", "redis://127.0.0.1:6379/0")
    return Settings(
        home=home,
        redis_url=_with_password(given, home / REDIS_PASSWORD) if secret else given,
        redis_url_given=given,
        db_path=Path(db).expanduser().resolve() if db else home / "results.duckdb",
        visibility_timeout=int(env.get("GENEJOBS_VISIBILITY_TIMEOUT", "30")),
        restore_interval=int(env.get("GENEJOBS_RESTORE_INTERVAL", "5")),
        flower_port=int(env.get("GENEJOBS_FLOWER_PORT", "5555")),
        lock_wait=float(env.get("GENEJOBS_LOCK_WAIT", "30")),
        views_interval=float(env.get("GENEJOBS_VIEWS_INTERVAL", "3")),
        explorer_port=int(env.get("GENEJOBS_EXPLORER_PORT", "5556")),
        pack_seconds=float(env.get("GENEJOBS_PACK_SECONDS", "0.5")),
        max_runs=int(env.get("GENEJOBS_MAX_RUNS", "100000")),
    )


def _with_password(url: str, secret: Path) -> str:
    """`url` with the password kept in the data dir, unless the URL names one itself."""
    parsed = urlsplit(url)
    if parsed.password is not None or "@" in parsed.netloc:
        return url
    try:
        password = secret.read_text().strip()
    except OSError:
        return url
    return urlunsplit(parsed._replace(netloc=f":{quote(password, safe='')}@{parsed.netloc}"))


# Workers run one fit per process; the queue supplies the parallelism, so
# BLAS and OpenMP pools would only oversubscribe the cores.
THREAD_CAPS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}
