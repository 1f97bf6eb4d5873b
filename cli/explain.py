"""`genejobs shap`: SHAP values of tree-model predictions in shards, and their views."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import click

from genejobs.api import reading
from genejobs.cli.output import format_option, frame, record
from genejobs.config import settings
from genejobs.contract import PlanShap
from genejobs.errors import InputError, ServiceUnavailable
from genejobs.storage import shap_queries
from genejobs.worker import inbox

DEFAULT_SHARD_ROWS = 10_000

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


def _read_source(table: str) -> tuple:
    """A table by path, or a registered dataset by name: (frame, source, default ids, label)."""
    from genejobs.storage.datasets import load_frame, read_table

    path = Path(table)
    if path.exists():
        return read_table(path), str(path.resolve()), [], ()
    if path.suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq") or "/" in table:
        raise InputError(f"no such file: {path}")
    from genejobs.storage import queries

    with reading() as con:
        found = queries.dataset(con, table)
    data, label_col, id_col = load_frame(settings().home / found["path"])
    data = data.reset_index()
    return data, found["name"], [id_col] if id_col else [], (label_col,)


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
    default=DEFAULT_SHARD_ROWS,
    show_default=True,
    help="Rows per shard (one task each).",
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
    type=click.Choice(["auto", "fast", "native", "shap"]),
    default="auto",
    show_default=True,
    help="auto: FastTreeSHAP v1 for binary boosters, the library's own TreeSHAP for "
    "multiclass ones, shap.TreeExplainer for scikit-learn models.",
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
    from genejobs.tasks.shap_input import parse_model_option, prepare_job, read_manifest

    choices = [parse_model_option(m, partition_col is not None) for m in models]
    if manifest is not None:
        if partition_col is None:
            raise InputError("--manifest needs --partition-col")
        choices += read_manifest(manifest)
    data, source, default_ids, exclude = _read_source(table)
    prepared = prepare_job(
        data,
        choices,
        partition_col=partition_col,
        id_cols=_csv(id_cols) or default_ids,
        features=_csv(features),
        engine=engine,
        exclude=exclude,
        source=source if not Path(source).exists() else str(Path(table)),
        class_names=None if class_names is None else [c.strip() for c in class_names.split(",")],
        reading=reading,
    )
    grouping = _read_groups(groups, prepared.features) if groups is not None else None
    conn = inbox.require_redis()
    if not inbox.writer_alive(conn):
        raise ServiceUnavailable("the genejobs writer is not running; start it with `genejobs up`")
    job_id = "shap-" + uuid.uuid4().hex[:10]
    plan = _write_and_plan(job_id, prepared, source, shard_rows, zero_is_present, engine, grouping)
    from genejobs.cli.runs import follow

    header = (
        f"job {job_id}: {len(prepared.input)} rows, {len(prepared.features)} features, "
        f"{len(plan['shards'])} shards"
    )
    if follow(job_id, wait, header, len(plan["shards"])) is None:
        return
    _report(job_id)


def _read_groups(path: Path, features) -> dict[str, str]:
    """feature -> group from a two-column file; every feature named must be the job's."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [
                r for r in csv.reader(handle, delimiter="\t") if r and any(c.strip() for c in r)
            ]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the groups file {path}: {exc}") from None
    if rows and [c.strip().lower() for c in rows[0]] == ["feature", "group"]:
        rows = rows[1:]
    bad = [i + 2 for i, r in enumerate(rows) if len(r) != 2 or not r[0].strip() or not r[1].strip()]
    if bad or not rows:
        raise InputError(
            f"{path}: expected lines of feature<TAB>group"
            + (f" (line {bad[0]} is not)" if bad else ", found none")
        )
    groups = {r[0].strip(): r[1].strip() for r in rows}
    unknown = sorted(set(groups) - set(features))
    if unknown:
        from genejobs.storage.datasets import listed

        raise InputError(f"{path} names features the job does not have: {listed(unknown)}")
    return groups


def _write_and_plan(
    job_id, prepared, source, shard_rows, zero_is_present, engine, groups=None
) -> dict:
    """Put the job's input and model copies in the data dir, then have the writer plan it."""
    home = settings().home
    folder = Path("shap") / job_id
    (home / folder / "models").mkdir(parents=True, exist_ok=True)
    try:
        models = []
        for spec in prepared.models:
            if "path" not in spec:  # a genejobs model stays where the service saved it
                suffix = Path(spec["source"]).suffix or ".model"
                copy = folder / "models" / f"m{spec['model_id']}{suffix}"
                shutil.copyfile(spec["source"], home / copy)
                spec = {**spec, "path": str(copy)}
            models.append(spec)
        input_path = folder / "input.parquet"
        temp = home / folder / ".input.parquet.tmp"
        prepared.input.to_parquet(temp, index=False)
        temp.replace(home / input_path)
        return inbox.request(
            PlanShap(
                job_id=job_id,
                source=source,
                input_path=str(input_path),
                id_cols=list(prepared.id_cols),
                partition_col=prepared.partition_col,
                features=list(prepared.features),
                n_outputs=prepared.n_outputs,
                n_rows=len(prepared.input),
                shard_rows=shard_rows,
                zero_is_present=zero_is_present,
                engine=engine,
                models=models,
                groups=groups,
                classes=None if prepared.classes is None else list(prepared.classes),
            )
        )
    except BaseException:
        shutil.rmtree(home / folder, ignore_errors=True)
        raise


def _report(job_id: str) -> None:
    with reading() as con:
        summary = shap_queries.job(con, job_id)
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
    with reading() as con:
        frame(shap_queries.jobs(con), fmt, title="SHAP jobs")


@shap.command()
@click.argument("job_id")
@format_option
def show(job_id, fmt):
    """Show one SHAP job: models, shards, rows, additivity, first errors."""
    with reading() as con:
        record(shap_queries.job(con, job_id), fmt, title=f"SHAP job {job_id}")


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
        with reading() as con:
            table = shap_queries.group_importance(con, job_id, by_model, class_label)
            scope = _scope(con, job_id, class_label)
        frame(table, fmt, title=f"global SHAP by feature group, {scope}")
        return
    with reading() as con:
        table = shap_queries.global_importance(con, job_id, by_model, class_label)
        scope = _scope(con, job_id, class_label)
        sample = None
        if plot:
            from genejobs.cli.shap_plots import pooled

            top = list(pooled(table).index[:20])
            sample = shap_queries.beeswarm_sample(con, job_id, top, class_label=class_label)
    frame(table.head(limit) if limit else table, fmt, title=f"global SHAP, {scope}")
    if plot:
        from genejobs.cli.shap_plots import global_png

        plural = {"model": "models", "class": "classes"}
        pooled_over = [plural[k] for k in plural if k in table.columns]
        label = scope + (f", pooled over {' and '.join(pooled_over)}" if pooled_over else "")
        global_png(table, sample, label, plot)


def _scope(con, job_id: str, class_label) -> str:
    """A title's scope: the job, and the class by number and label when one is chosen."""
    klass = shap_queries.resolve_class(con, job_id, class_label)
    return job_id + ("" if klass is None else ", " + shap_queries.class_title(con, job_id, klass))


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
    with reading() as con:
        header, contributions = shap_queries.local(con, job_id, row, class_label)
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
    with reading() as con:
        table = shap_queries.presence(con, job_id, class_label)
        scope = _scope(con, job_id, class_label)
    frame(table, fmt, title=f"SHAP by presence, {scope}")
    if plot:
        from genejobs.cli.shap_plots import presence_png

        presence_png(table, scope, plot)


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


COMMANDS = [shap]
