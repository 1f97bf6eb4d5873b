"""Flower as `genejobs up` starts it: basic auth on every page, its metrics included.

Flower 2.2 checks credentials on its pages and API but serves `/metrics`
(Prometheus) to anyone; that page lists every task name it has seen, and a
genejobs task's name carries its seed and job. This entry point puts the
metrics behind the same basic auth as the rest, then runs `celery flower`.

Run it as `python -m genejobs.worker.flower [flower options]`.
"""

from __future__ import annotations

import sys

import tornado.web
from flower.views import monitor


def guard_metrics() -> None:
    """Make Flower's `/metrics` ask for the credentials its other pages ask for."""
    handler = monitor.Metrics
    if not getattr(handler.get, "genejobs_guarded", False):
        guarded = tornado.web.authenticated(handler.get)
        guarded.genejobs_guarded = True
        handler.get = guarded


def main(argv: list[str]) -> int:
    from celery.bin.celery import main as celery

    guard_metrics()
    sys.argv = ["celery", "-A", "genejobs.worker.app", "flower", *argv]
    return celery()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
