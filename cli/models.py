"""`genejobs models` and `genejobs export`: the models that searches ranked."""

from __future__ import annotations

from pathlib import Path

import click

from genejobs import api
from genejobs.cli.output import format_option, frame, record


@click.group()
def models():
    """The models that searches compared, by model id."""


@models.command("list")
@click.option("--dataset", default=None, help="Only the models searched on this dataset.")
@format_option
def list_(dataset, fmt):
    """List models: search, rank, leaderboard metrics, whether an artifact was saved."""
    frame(api.models(dataset), fmt, title="models")


@models.command()
@click.argument("model_id")
@format_option
def show(model_id, fmt):
    """Show one model: setup, scores and SDs, estimator and parameters, artifact, tests."""
    record(api.model(model_id), fmt, title=f"model {model_id}")


@models.command()
@click.argument("model_id")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the model is saved (or saving failed).",
)
def finalize(model_id, wait):
    """Save any ranked model of a search as the best one is saved.

    Refitted on the training split (its holdout accuracy is recorded), then on
    all the data, as PyCaret's finalize_model does; saved under models/ in the
    data dir with its sha256, so `shap run --model genejobs:MODEL_ID` and
    `evaluate` can use it.
    """
    reply = api.finalize(model_id)
    if reply["artifact_path"] is not None:
        click.echo(f"model {model_id} is already saved as {reply['artifact_path']}")
        return
    if not wait:
        click.echo(f"model {model_id}: saving")
        return
    click.echo(f"model {model_id}: refitting and saving ...", err=True)
    saved = api.wait_saved(model_id)
    if saved["artifact_path"] is None:
        raise click.ClickException(f"saving model {model_id} failed: {saved['finalize_error']}")
    click.echo(
        f"model {model_id} saved as {saved['artifact_path']} "
        f"(holdout accuracy {saved['pred_accuracy']:.4f})"
    )


@click.group()
def export():
    """Write results in the layouts of the seeds' CSV files."""


@export.command("model-runs")
@click.option(
    "--layout",
    type=click.Choice(["seed", "pycaret"]),
    default="seed",
    show_default=True,
    help="seed: the columns of the seeds' pycaret_results.csv. pycaret: the columns of "
    "PyCaret's pull() after compare_models (Model, Accuracy, AUC, Recall, Prec., F1, Kappa, "
    "MCC, TT (Sec)), one leaderboard per job in rank order.",
)
@click.option("--job", "job_id", default=None, help="Only this search job's models.")
@click.option("--dataset", default=None, help="Only searches on this dataset.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
    help="Output format.",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="File to write [default: stdout]."
)
def model_runs(layout, job_id, dataset, fmt, out):
    """Every searched model, in the seeds' layout or PyCaret's.

    seed: run_id,run_date,mlr_dataset,split,setup,best,pred_accuracy,metrics_dict,
    accuracy,precision,recall,f1,roc_auc
    """
    table = api.model_runs(job=job_id, dataset=dataset, layout=layout)
    text = (
        table.to_csv(index=False)
        if fmt == "csv"
        else table.to_json(orient="records", date_format="iso") + "\n"
    )
    if out is None:
        click.echo(text, nl=False)
    else:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        click.echo(f"wrote {len(table)} model runs to {out}", err=True)


@click.command()
@click.argument("model_id")
@click.argument("table", type=click.Path(path_type=Path))
@click.option("--id-col", default=None, help="The table's sample id column, kept with each row.")
@click.option(
    "--raw-score", is_flag=True, help="One probability column per class, as predict_model's."
)
@click.option(
    "--all-columns", is_flag=True, help="Print the input columns too [default: ids, predictions]."
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write a CSV here.")
@format_option
def predict(model_id, table, id_col, raw_score, all_columns, out, fmt):
    """Predict TABLE (CSV, TSV or Parquet) with a saved model, as PyCaret's predict_model does.

    The model is the pipeline `models finalize` (or a search, for its best
    model) saved, loaded only when its bytes have the recorded sha256. Adds
    `prediction_label` and `prediction_score` (and with --raw-score one
    `prediction_score_<class>` per class); a label column in the table is kept.
    """
    predicted = api.predict(
        model_id, table, id_col=id_col, raw_score=raw_score, all_columns=all_columns
    )
    if out is not None:
        predicted.to_csv(out, index=False)
        click.echo(f"wrote {len(predicted)} predictions to {out}", err=True)
        return
    frame(predicted, fmt, title=f"predictions of {model_id}")


COMMANDS = [models, export, predict]
