"""`genejobs shap pair` and `shap compare`: SHAP values side by side.

SHAP values add up, so the difference of two outputs splits exactly into a
difference per feature and per feature group (plus the base values'
difference): `pair` for two predictions of one job (why gene A ranks above
gene B at a locus), `compare` for two jobs over the same rows (what moved
between two model releases).
"""

from __future__ import annotations

import click

from genejobs import api
from genejobs.cli.output import format_option, frame

plot_option = click.option(
    "--plot", type=click.Path(dir_okay=False), default=None, help="Also write a PNG plot."
)
class_option = click.option(
    "--class",
    "class_label",
    default=None,
    help="The class compared, by label or number (a binary job's values are class 1).",
)
limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Features shown."
)


@click.command()
@click.argument("job_id")
@click.argument("row_a")
@click.argument("row_b")
@class_option
@limit_option
@plot_option
@format_option
def pair(job_id, row_a, row_b, class_label, limit, plot, fmt):
    """What separates two predictions of one job, feature by feature and by group.

    ROW_A and ROW_B are row keys (id columns joined with '|') or row numbers.
    Each feature's difference is its SHAP value for A minus for B; they add up,
    with the base values' difference, to the difference of the outputs.
    """
    found = api.shap_pair(job_id, row_a, row_b, class_label=class_label)
    if fmt == "table":
        for name, item in zip("AB", found["header"].to_dict("records"), strict=True):
            click.echo(
                f"{name}: row {item['row_key']}, model {item['model']}: base "
                f"{item['base_value']:.6g}, output {item['output']:.6g}"
            )
        features = found["features"]["difference"].sum()
        click.echo(
            f"A - B: output {found['output_difference']:+.6g} = base "
            f"{found['base_difference']:+.3g} + features {features:+.6g}"
        )
    frame(found["features"].head(limit), fmt, title=f"{job_id}: A - B by feature")
    if len(found["groups"]):
        frame(found["groups"], fmt, title=f"{job_id}: A - B by feature group")
    if plot:
        from genejobs.cli.compare_plots import pair_png

        pair_png(found, job_id, plot)


@click.command()
@click.argument("job_a")
@click.argument("job_b")
@click.option(
    "--top", type=click.IntRange(1, 1000), default=20, show_default=True,
    help="Rows whose output moved most.",
)  # fmt: skip
@click.option("--row", default=None, help="One row (key or number): what moved its output.")
@class_option
@limit_option
@plot_option
@format_option
def compare(job_a, job_b, top, row, class_label, limit, plot, fmt):
    """What changed between two SHAP jobs over the same rows (two model releases).

    Rows are matched by their id columns. Shown: the rows whose output moved
    most (B - A) with the features that moved each; per feature and per group
    the mean move and both global rankings. With --row, one row's move by feature.
    """
    if row is not None:
        moved = api.shap_move(job_a, job_b, row, class_label=class_label)
        if fmt == "table":
            change = moved["output_b"] - moved["output_a"]
            click.echo(
                f"row {moved['row_key']}: output {moved['output_a']:.6g} in A, "
                f"{moved['output_b']:.6g} in B; move {change:+.6g} = base "
                f"{moved['base_move']:+.3g} + features {moved['features']['move'].sum():+.6g}"
            )
        frame(moved["features"].head(limit), fmt, title=f"row {moved['row_key']}: B - A")
        return
    found = api.shap_compare(job_a, job_b, class_label=class_label, top=top)
    summary = found["summary"]
    if fmt == "table":
        click.echo(
            f"{summary['matched']:,} rows matched by {summary['matched_by']} "
            f"({summary['only_in_a']:,} only in A, {summary['only_in_b']:,} only in B); "
            f"mean |output move| {summary['mean_abs_move']:.4g}, largest "
            f"{summary['max_abs_move']:.4g}"
        )
    frame(found["moves"], fmt, title=f"rows that moved most, B - A ({job_b} - {job_a})")
    frame(found["features"].head(limit), fmt, title="features by mean |move|, with both rankings")
    if len(found["groups"]):
        frame(found["groups"], fmt, title="feature groups by mean |move|")
    if plot:
        from genejobs.cli.compare_plots import compare_png

        compare_png(found, job_a, job_b, plot)
