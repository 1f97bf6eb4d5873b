"""The `genejobs` command group and the one place where project errors become exit codes.

A command's module is imported only when that command runs (or shows its own
help): `genejobs --version`, `--help` and `status` would otherwise wait for
pandas, DuckDB and Celery, which the other commands import.
"""

from __future__ import annotations

import importlib
import sys

import click

from genejobs.errors import GenejobsError

# Every command: the module of genejobs.cli that defines it (in its COMMANDS), and the
# line `genejobs --help` lists for it without importing that module. tests/test_startup.py
# checks each line against the command's own help.
COMMANDS: dict[str, tuple[str, str]] = {
    "datasets": ("datasets", "Register and list datasets (samples x genes plus a label column)."),
    "down": ("stack", "Stop what `genejobs up` started, by the pids it recorded."),
    "evaluate": ("evaluate", "Fit MODEL_ID's estimator on a seeded split and score the holdout."),
    "export": ("models", "Write results in the layouts of the seeds' CSV files."),
    "genes": ("genes", "Gene counts over seeded runs, and filters that make reduced datasets."),
    "importance": (
        "importance",
        "Fit MODEL once per new random seed on DATASET and record the genes it finds important.",
    ),
    "jobs": ("jobs", "Follow and control jobs of every kind: importance, search, evaluate, SHAP."),
    "models": ("models", "The models that searches compared, by model id."),
    "predict": (
        "models",
        "Predict TABLE (CSV, TSV or Parquet) with a saved model, as PyCaret's predict_model does.",
    ),
    "search": (
        "search",
        "Compare models on DATASET as PyCaret's compare_models does, spread over the workers.",
    ),
    "serve": (
        "explorer",
        "Serve the explorer: jobs with live progress, gene counts, searches, SHAP views.",
    ),
    "shap": (
        "shap",
        "Exact SHAP values for every prediction of tree models, computed in shards.",
    ),
    "sql": ("sql", "Run read-only SQL (SELECT, EXPLAIN) on the results."),
    "status": (
        "stack",
        "Say what is reachable and alive, the queue lengths, and the database path.",
    ),
    "up": (
        "stack",
        "Start Redis, the compute workers, the writer, Flower and the explorer (what is not "
        "running yet).",
    ),
}


class CliError(click.ClickException):
    """A project error shown as one line on stderr, with its own exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class GenejobsGroup(click.Group):
    """The top group: commands imported on first use, errors turned into one line."""

    def list_commands(self, ctx):
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMANDS:
            module = importlib.import_module(f"genejobs.cli.{COMMANDS[name][0]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return self.commands.get(name)

    def format_commands(self, ctx, formatter):
        # The listed lines come from COMMANDS: listing must not import every command.
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [
            (name, click.utils.make_default_short_help(short_help, limit))
            for name, (_, short_help) in sorted(COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GenejobsError as exc:
            raise CliError(str(exc), exc.exit_code) from None
        except click.UsageError as exc:
            # One line, not click's usage block: bad input reads the same everywhere.
            where = exc.ctx.command_path if exc.ctx else "genejobs"
            raise CliError(f"{exc.format_message()} (see `{where} --help`)", 2) from None
        except Exception as exc:
            # redis is imported by the commands that talk to it; none other can raise its errors.
            redis = sys.modules.get("redis")
            if redis is None or not isinstance(exc, redis.RedisError):
                raise
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


def main() -> None:
    cli(prog_name="genejobs")


if __name__ == "__main__":
    main()
