"""The processes the local stack launches: started in their own process groups, recorded
in pid files, waited for until they answer, and stopped by those pid files only.

Each process leads its own process group, so stopping it also stops its
children (prefork pool processes). A pid file records the process's start
time too: a recycled pid is not mistaken for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from genejobs.config import THREAD_CAPS, Settings
from genejobs.errors import ServiceUnavailable


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


def pid_file(config: Settings, name: str) -> Path:
    return config.run_dir / f"{name}.pid"


def recorded(config: Settings, name: str) -> Process | None:
    path = pid_file(config, name)
    try:
        data = json.loads(path.read_text())
        return Process(name, data["pid"], data["created"], tuple(data["command"]))
    except (OSError, ValueError, KeyError):
        return None


def running(config: Settings, name: str) -> Process | None:
    proc = recorded(config, name)
    return proc if proc is not None and proc.alive() else None


def environment(config: Settings) -> dict[str, str]:
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


def launch(
    config: Settings, name: str, command: list[str], env: dict[str, str] | None = None
) -> Process:
    log = (config.logs_dir / f"{name}.log").open("ab")
    child = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=config.home,
        env={**environment(config), **(env or {})},
        start_new_session=True,
    )
    log.close()
    proc = Process(name, child.pid, psutil.Process(child.pid).create_time(), tuple(command))
    pid_file(config, name).write_text(
        json.dumps({"pid": proc.pid, "created": proc.created, "command": list(command)})
    )
    return proc


def require_free_port(port: int, what: str, variable: str) -> None:
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


def wait_for(check, what: str, proc: Process | None, timeout: float, config: Settings) -> None:
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


def terminate(proc: Process, timeout: float) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.alive():
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
