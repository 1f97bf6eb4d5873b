"""The one exception family of genejobs.

Storage, tasks and the worker raise these; only the CLI turns them into a
one-line message and an exit code.
"""


class GenejobsError(Exception):
    """Base class: a failure the user can understand and act on."""

    exit_code = 1


class InputError(GenejobsError):
    """The user asked for something invalid (bad file, bad option, unknown name)."""

    exit_code = 2


class NotFoundError(InputError):
    """A named dataset, job, model or run does not exist."""


class ServiceUnavailable(GenejobsError):
    """Redis, the writer or the workers cannot be reached."""

    exit_code = 3


class ResultUndelivered(ServiceUnavailable):
    """A task's result could not be handed to the writer; its task must run again."""


class StoreBusy(GenejobsError):
    """The DuckDB file stayed locked by another process for longer than we wait."""

    exit_code = 4
