"""The local stack: Redis, compute workers, the writer, Flower and the explorer.

The launcher itself is the worker layer's (`genejobs.worker.stack`); these are
its three verbs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def up(
    workers: int,
    *,
    flower: bool = True,
    flower_port: int | None = None,
    explorer: bool = True,
    progress: Callable[[str], None] = print,
) -> list[str]:
    """Start what is not running yet; return the names of what this call started.

    `flower_port`: default $GENEJOBS_FLOWER_PORT. `progress` gets a line per step.
    """
    from genejobs.config import settings
    from genejobs.worker import stack

    port = flower_port or settings().flower_port
    return stack.start(workers, flower, port, progress=progress, explorer=explorer)


def down(
    names: Iterable[str] | None = None, *, progress: Callable[[str], None] = print
) -> list[str]:
    """Stop, by their pid files, the processes `up` started (`names`: only those); Redis last.

    Returns the names of what was stopped.
    """
    from genejobs.worker import stack

    if names is None:
        return stack.stop(progress=progress)
    return stack.stop(list(names), progress=progress)


def status() -> dict:
    """What is reachable and alive, the queue lengths, and where the results are."""
    from genejobs.worker import stack

    return stack.status()
