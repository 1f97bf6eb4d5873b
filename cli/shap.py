"""`genejobs shap`: SHAP values of tree-model predictions in shards, and their views."""

from __future__ import annotations

from pathlib import Path

import click

from genejobs import api
from genejobs.cli import shap_compare
from genejobs.cli.output import format_option, frame, record
from genejobs.cli.runs import follow

plot_option = click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the view's plot as a PNG.",
)
class_option = click.option(
    "--class",
    "class_label",
    default=None,
    help="One class's values instead of all: its label (e.g. liver) or its number "
    "(0..K-1; a binary job's values are class 1, the positive class).",
)


@click.group()
def shap():
    """Exact SHAP values for every prediction of tree models, computed in shards."""


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@shap.command("run")
@click.argument("table")
@click.option(
    "--model",
    "models",
    multiple=True,
    help="A model file (XGBoost JSON/UBJ, LightGBM text), genejobs:MODEL_ID (a search's "
    "saved model) or genejobs:JOB:SEED (an importance run's model, fitted again); with "
    "--partition-col, VALUES=PATH.",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file of `VALUES<TAB>PATH` lines, one per partition model.",
)
@click.option("--partition-col", default=None, help="The column that picks each row's model.")
@click.option("--id-cols", default=None, help="Columns that identify a row, comma-separated.")
@click.option(
    "--features", default=None, help="Feature columns [default: the model's feature names]."
)
@click.option(
    "--shard-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per shard (one task each) [default: what suits the engine that explains most "
    "rows: 25,000 for woodelf, 10,000 for the others, at least 8 shards].",
)
@click.option("--zero-is-present", is_flag=True, help="Count a zero as present (default: absent).")
@click.option(
    "--groups",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file of `feature<TAB>group` lines (a header line `feature group`): SHAP values of "
    "a group add up, so `shap global --by-group` and the explorer show groups too.",
)
@click.option(
    "--class-names",
    default=None,
    help="The models' class labels in order, comma-separated (a binary model: negative, "
    "positive), for model files that do not record them; scikit-learn models and genejobs "
    "models name their classes themselves.",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "woodelf", "fast", "native", "shap"]),
    default="auto",
    show_default=True,
    help="auto: per model, WOODELF where it equals shap.TreeExplainer within 1e-5 on 200 of "
    "the job's rows (single-output boosters), else FastTreeSHAP v1 where it does, the "
    "library's own TreeSHAP for multiclass ones, shap.TreeExplainer for scikit-learn models; "
    "the engine each model runs, and why, is printed.",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Follow the job with a progress bar [default: when on a terminal].",
)
def run(
    table,
    models,
    manifest,
    partition_col,
    id_cols,
    features,
    shard_rows,
    zero_is_present,
    groups,
    class_names,
    engine,
    wait,
):
    """Compute SHAP values for every row of TABLE (a file, or a registered dataset's name).

    Each row is explained by the model for its partition value; shards of
    rows run as separate tasks and land in the results file, where the
    `global`, `local` and `presence` views read them.
    """
    plan = api.plan_shap(
        table,
        models=models,
        manifest=manifest,
        partition_col=partition_col,
        id_cols=_csv(id_cols),
        features=_csv(features),
        shard_rows=shard_rows,
        zero_is_present=zero_is_present,
        groups=groups,
        class_names=None if class_names is None else [c.strip() for c in class_names.split(",")],
        engine=engine,
    )
    job_id = plan["job_id"]
    for note in plan.get("engine_notes", ()):
        click.echo(note, err=True)
    header = (
        f"job {job_id}: {plan['n_rows']} rows, {plan['n_features']} features, "
        f"{len(plan['shards'])} shards"
    )
    if follow(job_id, wait, header, len(plan["shards"])) is None:
        return
    _report(job_id)


def _report(job_id: str) -> None:
    summary = api.shap_job(job_id)
    click.echo(
        f"job {job_id}: {summary['shards_done']} shards done, {summary['shards_failed']} failed; "
        f"{summary['rows_done']} rows explained; additivity failures "
        f"{summary['additivity_failures']} (max error {summary['max_additivity_error'] or 0:.2g})"
    )
    if summary["shards_failed"]:
        raise click.ClickException(
            f"{summary['shards_failed']} shards failed; see `genejobs shap show {job_id}`, "
            f"then `genejobs shap retry {job_id}`"
        )


@shap.command("list")
@format_option
def list_(fmt):
    """List SHAP jobs with their shard counts."""
    frame(api.shap_jobs(), fmt, title="SHAP jobs")


@shap.command()
@click.argument("job_id")
@format_option
def show(job_id, fmt):
    """Show one SHAP job: models, shards, rows, additivity, first errors."""
    record(api.shap_job(job_id), fmt, title=f"SHAP job {job_id}")


@shap.command()
@click.argument("job_id")
def retry(job_id):
    """Run the failed shards of a SHAP job again (as `genejobs jobs retry JOB`)."""
    from genejobs.cli.jobs import retry_job

    retry_job(job_id, pending=False, cancelled=False, wait=False)


@shap.command("global")
@click.argument("job_id")
@click.option("--by-model", is_flag=True, help="One ranking per partition model.")
@click.option(
    "--by-group",
    is_flag=True,
    help="Feature groups (`shap run --groups`): each prediction's SHAP summed per group.",
)
@class_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Print the first N rows.")
@plot_option
@format_option
def global_(job_id, by_model, by_group, class_label, limit, plot, fmt):
    """Mean |SHAP| per feature, sorted: overall, or per partition model (--by-model).

    The plot is a bar chart of the top features beside a beeswarm of their values.
    """
    if by_group:
        table = api.shap_groups(job_id, by_model=by_model, class_label=class_label)
        frame(table, fmt, title=f"global SHAP by feature group, {table.attrs['scope']}")
        return
    table = api.shap_global(job_id, by_model=by_model, class_label=class_label)
    scope = table.attrs["scope"]
    frame(table.head(limit) if limit else table, fmt, title=f"global SHAP, {scope}")
    if plot:
        from genejobs.cli.shap_plots import global_png, pooled

        top = list(pooled(table).index[:20])
        sample = api.shap_beeswarm(job_id, top, class_label=class_label)
        plural = {"model": "models", "class": "classes"}
        pooled_over = [plural[k] for k in plural if k in table.columns]
        label = scope + (f", pooled over {' and '.join(pooled_over)}" if pooled_over else "")
        global_png(table, sample, label, plot)


@shap.command()
@click.argument("job_id")
@click.argument("row")
@class_option
@plot_option
@format_option
def local(job_id, row, class_label, plot, fmt):
    """One prediction's contributions, by |SHAP|, with feature values, base value and output.

    ROW is the row's key (its id columns joined with '|') or its row number.
    """
    header, contributions = api.shap_local(job_id, row, class_label=class_label)
    if fmt == "table":
        for item in header.to_dict("records"):
            named = f" {item['class_name']}" if item.get("class_name") is not None else ""
            click.echo(
                f"row {item['row_key']} (class {item['class']}{named}), model {item['model']}: "
                f"base {item['base_value']:.6g}, output {item['output']:.6g}"
                + (
                    f", probability {item['probability']:.4g}"
                    if item["probability"] == item["probability"]
                    else ""
                )
            )
    frame(contributions, fmt, title=f"local SHAP, {job_id} row {row}")
    if plot:
        from genejobs.cli.shap_plots import waterfall_png

        first = header.iloc[0].to_dict()
        part = contributions
        if "class" in part.columns:
            part = part[part["class"] == first["class"]]
        waterfall_png(first, part, plot)


@shap.command()
@click.argument("job_id")
@class_option
@plot_option
@format_option
def presence(job_id, class_label, plot, fmt):
    """Per feature: presence rate, mean SHAP and |SHAP| present vs absent, top-contributor share.

    `top_share_present`: among rows where the feature is present, the share in
    which it has the largest |SHAP| of the row. Present = not missing, and not
    zero unless the job ran with --zero-is-present.
    """
    table = api.shap_presence(job_id, class_label=class_label)
    frame(table, fmt, title=f"SHAP by presence, {table.attrs['scope']}")
    if plot:
        from genejobs.cli.shap_plots import presence_png

        presence_png(table, table.attrs["scope"], plot)


@shap.command()
@click.argument("job_id")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="A folder."
)
@click.option(
    "--row",
    "rows",
    multiple=True,
    help="Rows for local views [default: the highest and the lowest output].",
)
def report(job_id, out, rows):
    """Write an HTML page (index.html, with its plots inside) of all views of a job."""
    from genejobs.cli.shap_report import write_report

    path = write_report(job_id, out, list(rows))
    click.echo(f"wrote {path}")


# Side by side (cli/shap_compare.py): two predictions of one job, two jobs.
shap.add_command(shap_compare.pair)
shap.add_command(shap_compare.compare)

COMMANDS = [shap]
