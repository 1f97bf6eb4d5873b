"""`genejobs models` and `genejobs export`: the models that searches ranked."""

from __future__ import annotations

import time
from pathlib import Path

import click

from genejobs.api import reading
from genejobs.cli.output import format_option, frame, record
from genejobs.storage import model_queries


@click.group()
def models():
    """The models that searches compared, by model id."""


@models.command("list")
@click.option("--dataset", default=None, help="Only the models searched on this dataset.")
@format_option
def list_(dataset, fmt):
    """List models: search, rank, leaderboard metrics, whether an artifact was saved."""
    with reading() as con:
        frame(model_queries.models(con, dataset), fmt, title="models")


@models.command()
@click.argument("model_id")
@format_option
def show(model_id, fmt):
    """Show one model: setup, scores and SDs, estimator and parameters, artifact, tests."""
    with reading() as con:
        record(model_queries.model(con, model_id), fmt, title=f"model {model_id}")


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
    from genejobs.contract import FinalizeModel
    from genejobs.worker import inbox

    reply = inbox.request(FinalizeModel(model_id=model_id))
    if reply["artifact_path"] is not None:
        click.echo(f"model {model_id} is already saved as {reply['artifact_path']}")
        return
    if not wait:
        click.echo(f"model {model_id}: saving")
        return
    click.echo(f"model {model_id}: refitting and saving ...", err=True)
    while True:
        with reading() as con:
            saved, error, accuracy = con.execute(
                "SELECT artifact_path, finalize_error, pred_accuracy FROM model_runs "
                "WHERE model_id = ?",
                [model_id],
            ).fetchone()
        if saved is not None:
            click.echo(f"model {model_id} saved as {saved} (holdout accuracy {accuracy:.4f})")
            return
        if error is not None:
            raise click.ClickException(f"saving model {model_id} failed: {error}")
        time.sleep(0.5)


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
    with reading() as con:
        table = model_queries.model_runs_export(con, job_id=job_id, dataset=dataset)
    if layout == "pycaret":
        table = model_queries.pycaret_layout(table)
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
    from genejobs.config import settings
    from genejobs.errors import InputError
    from genejobs.storage.datasets import listed, read_table
    from genejobs.tasks.artifacts import load_artifact

    with reading() as con:
        found = model_queries.saved_model(con, model_id)
    data = read_table(table)
    if id_col is not None:
        if id_col not in data.columns:
            raise InputError(f"no column '{id_col}' in {table}")
        data = data.set_index(id_col)
    missing = [g for g in found["genes"] if g not in data.columns]
    if missing:
        raise InputError(
            f"{table} lacks {len(missing)} gene columns the model needs: {listed(missing)}"
        )
    pipeline = load_artifact(settings().home / found["artifact_path"], found["artifact_sha256"])
    from pycaret.classification import ClassificationExperiment

    predicted = ClassificationExperiment().predict_model(
        pipeline, data=data, raw_score=raw_score, verbose=False
    )
    if not all_columns:
        keep = [c for c in predicted.columns if c.startswith("prediction_")]
        keep = ([found["label_col"]] if found["label_col"] in predicted.columns else []) + keep
        predicted = predicted[keep]
    predicted = predicted.reset_index()
    if out is not None:
        predicted.to_csv(out, index=False)
        click.echo(f"wrote {len(predicted)} predictions to {out}", err=True)
        return
    frame(predicted, fmt, title=f"predictions of {model_id}")


COMMANDS = [models, export, predict]
