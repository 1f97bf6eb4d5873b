"""The `genejobs` command group and the one place where project errors become exit codes."""

from __future__ import annotations

import click
import redis

from genejobs.worker.errors import GenejobsError


class CliError(click.ClickException):
    """A project error shown as one line on stderr, with its own exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class GenejobsGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GenejobsError as exc:
            raise CliError(str(exc), exc.exit_code) from None
        except click.UsageError as exc:
            # One line, not click's usage block: bad input reads the same everywhere.
            where = exc.ctx.command_path if exc.ctx else "genejobs"
            raise CliError(f"{exc.format_message()} (see `{where} --help`)", 2) from None
        except redis.RedisError as exc:
            raise CliError(
                f"lost the connection to Redis: {exc}; is the stack up (`genejobs status`)?", 3
            ) from None


@click.group(cls=GenejobsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="genejobs", prog_name="genejobs")
def cli():
    """genejobs: seeded gene-importance runs, model search and SHAP on a job queue.

    Results land in one DuckDB file ($GENEJOBS_DB) that you can query with
    `genejobs sql`. Start the local stack with `genejobs up`.
    """


def _register() -> None:
    from genejobs.cli import (
        datasets,
        evaluate,
        explain,
        explorer,
        genes,
        importance,
        jobs,
        models,
        search,
        sql,
        stack,
    )

    for module in (
        stack,
        datasets,
        importance,
        jobs,
        genes,
        sql,
        search,
        models,
        evaluate,
        explain,
        explorer,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="genejobs")


if __name__ == "__main__":
    main()
