"""`genejobs up`, `down` and `status`: the local stack."""

from __future__ import annotations

import os
import time

import click

from genejobs import api
from genejobs.cli.output import format_option, record


@click.command()
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=os.cpu_count() or 1,
    show_default="number of cores",
    help="Compute worker processes (0: none here, as on a machine that only runs the writer).",
)
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
@click.option(
    "--flower-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Flower's port [default: $GENEJOBS_FLOWER_PORT or 5555].",
)
@click.option(
    "--no-explorer",
    is_flag=True,
    help="Do not start the explorer web page (`genejobs serve`; $GENEJOBS_EXPLORER_PORT).",
)
@click.option("--detach", is_flag=True, help="Return once everything is up.")
def up(workers, no_flower, flower_port, no_explorer, detach):
    """Start Redis, the compute workers, the writer, Flower and the explorer (what is not
    running yet).

    Redis is started from the bundled redis-server only when nothing answers
    at $GENEJOBS_REDIS_URL. Without --detach, the command stays in the
    foreground and Ctrl-C stops what it started.
    """
    started = api.up(
        workers,
        flower=not no_flower,
        flower_port=flower_port,
        explorer=not no_explorer,
        progress=click.echo,
    )
    if not started:
        click.echo("everything was already running")
    if detach:
        click.echo("stop it with `genejobs down`")
        return
    click.echo("running; press Ctrl-C to stop")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        api.down(started, progress=click.echo)


@click.command()
def down():
    """Stop what `genejobs up` started, by the pids it recorded."""
    if not api.down(progress=click.echo):
        click.echo("nothing that `genejobs up` started is running")


@click.command()
@format_option
def status(fmt):
    """Say what is reachable and alive, the queue lengths, and the database path."""
    record(api.status(), fmt, title="genejobs")


COMMANDS = [up, down, status]
