"""`genejobs datasets`: register, list and generate datasets."""

from __future__ import annotations

from pathlib import Path

import click

from genejobs import api
from genejobs.cli.output import format_option, frame


@click.group()
def datasets():
    """Register and list datasets (samples x genes plus a label column)."""


@datasets.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--label", "label_col", required=True, help="The label column.")
@click.option("--name", default=None, help="Dataset name [default: the file name's stem].")
@click.option("--id-col", default=None, help="The sample id column, if there is one.")
@click.option(
    "--impute",
    type=click.Choice(api.IMPUTERS),
    default=None,
    help="Fill missing gene values; without it they are an error.",
)
def add(path, label_col, name, id_col, impute):
    """Validate a CSV, TSV or Parquet file and register it.

    The file is stored under the data dir as Parquet and identified by a hash
    of its content: adding the same content twice returns the first dataset.
    """
    reply = api.add_dataset(path, label_col, name=name, id_col=id_col, impute=impute)
    if reply["stripped_genes"]:
        click.echo(f"dropped the whitespace around {reply['stripped_genes']} gene names", err=True)
    if reply["existing"]:
        click.echo(
            f"the same content is already registered as '{reply['name']}' ({reply['dataset_id']})"
        )
    else:
        click.echo(
            f"registered '{reply['name']}' ({reply['dataset_id']}): "
            f"{reply['samples']} samples, {reply['genes']} genes, {reply['classes']} classes"
        )


@datasets.command("list")
@format_option
def list_(fmt):
    """List registered datasets."""
    frame(api.datasets(), fmt, title="datasets")


@datasets.command("demo")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Where to write the CSV."
)
@click.option("--samples", type=click.IntRange(min=10), default=150, show_default=True)
@click.option("--genes", type=click.IntRange(min=2), default=200, show_default=True)
@click.option("--classes", type=click.IntRange(min=2, max=26), default=3, show_default=True)
def demo(out, samples, genes, classes):
    """Write a synthetic expression dataset (label `tissue`, id `sample_id`).

    Twelve genes named SIG01..SIG12 carry the class signal; the rest are noise.
    """
    api.demo_dataset(out, samples=samples, genes=genes, classes=classes)
    click.echo(f"wrote {out}: {samples} samples, {genes} genes, {classes} classes")


@datasets.command("synth-l2g")
@click.option("--rows", type=click.IntRange(min=10), required=True, help="Rows to write.")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="A .parquet or .csv file."
)
@click.option("--seed", type=int, default=11, show_default=True)
@click.option(
    "--train-models",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also train the five chromosome-partitioned XGBoost models into this folder.",
)
@click.option("--trees", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--depth", type=click.IntRange(min=1), default=6, show_default=True)
def synth_l2g(rows, out, seed, train_models, trees, depth):
    """Write an L2G-like table: 53 features in five groups, `chrom`, ids, `gold_standard`.

    With --train-models, five XGBoost models are trained, each without one
    chromosome set, and written as JSON with a manifest `models.tsv` for
    `genejobs shap run --partition-col chrom --manifest DIR/models.tsv`.
    """
    written = api.synth_l2g(out, rows, seed=seed)
    click.echo(
        f"wrote {out}: {rows} rows, {written['features']} features (their groups: "
        f"{written['groups']})"
    )
    if train_models is not None:
        trained = api.train_l2g_models(written["table"], train_models, trees=trees, depth=depth)
        click.echo(f"trained {trained} models into {train_models} (manifest models.tsv)")


COMMANDS = [datasets]
