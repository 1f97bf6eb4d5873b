"""Bad input that names the option it came by, so the CLI can point at it."""

from __future__ import annotations

from genejobs.errors import InputError


class InvalidOption(InputError):
    """An argument out of bounds, or arguments that do not go together.

    `option` is the argument as the CLI spells it (`--folds`; None when the
    problem is how arguments combine): the CLI shows the problem as click shows
    its own (`Invalid value for --folds: ...`, and where to find help), a
    notebook gets `--folds: ...`.
    """

    def __init__(self, problem: str, option: str | None = None):
        super().__init__(problem if option is None else f"{option}: {problem}")
        self.problem = problem
        self.option = option


def at_least(value: int, low: int, option: str) -> None:
    if value < low:
        raise InvalidOption(f"must be at least {low}, got {value}", option)


def fraction(value: float, option: str) -> None:
    """A fraction strictly between 0 and 1 (a split's share)."""
    if not 0 < value < 1:
        raise InvalidOption(f"must be between 0 and 1, got {value}", option)
