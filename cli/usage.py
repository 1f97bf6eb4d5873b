"""Bad input found by the api, shown as click shows its own.

The api checks arguments once, for the CLI and notebooks alike, and names the
option at fault (`genejobs.api.InvalidOption`). Inside a command, `usage_errors()`
turns that into click's error for the option, so the line reads as every other
bad option does: `Invalid value for --folds: ...`, and where to find help.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Raise the api's InvalidOption as click.BadParameter (or UsageError, naming no option)."""
    from genejobs.api import InvalidOption

    try:
        yield
    except InvalidOption as exc:
        if exc.option is None:
            raise click.UsageError(exc.problem) from None
        raise click.BadParameter(exc.problem, param_hint=exc.option) from None
