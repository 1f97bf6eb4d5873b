"""Planning a SHAP job: its table and models checked, its input written to the data dir, planned.

The input (rows ordered by their model, with their keys) and copies of the
model files go to `$GENEJOBS_HOME/shap/JOB/`, where the tasks read them; the
writer then records the job and its shards. Nothing stays behind when
planning fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from genejobs.api._reading import reading
from genejobs.errors import InputError, ServiceUnavailable


def plan_shap(
    table: str | os.PathLike,
    *,
    models: list[str] | tuple[str, ...] = (),
    manifest: str | os.PathLike | None = None,
    partition_col: str | None = None,
    id_cols: list[str] | None = None,
    features: list[str] | None = None,
    shard_rows: int | None = None,
    zero_is_present: bool = False,
    groups: str | os.PathLike | None = None,
    class_names: list[str] | None = None,
    engine: str = "auto",
) -> dict:
    """Check a SHAP job (as `genejobs shap run`), write its input and plan it; returns the plan.

    `table`: a CSV/Parquet file or a registered dataset's name. `models`: model
    files, `genejobs:MODEL_ID` or `genejobs:JOB:SEED`, each `VALUES=PATH` with
    `partition_col`; `manifest`: a file of `VALUES<TAB>PATH` lines. `groups`: a
    file of `feature<TAB>group` lines. `shard_rows`: by default what suits the
    engine that explains most rows. The plan holds `job_id`, `shards`, `n_rows`,
    `n_features` and `engine_notes` (the engine each model runs, and why).
    """
    from genejobs.tasks.shap_input import parse_model_option, prepare_job, read_manifest
    from genejobs.worker import inbox

    choices = [parse_model_option(m, partition_col is not None) for m in models]
    if manifest is not None:
        if partition_col is None:
            raise InputError("--manifest needs --partition-col")
        choices += read_manifest(Path(manifest))
    data, source, default_ids, exclude = _read_source(str(table))
    prepared = prepare_job(
        data,
        choices,
        partition_col=partition_col,
        id_cols=id_cols or default_ids,
        features=features,
        engine=engine,
        exclude=exclude,
        source=source if not Path(source).exists() else str(Path(table)),
        class_names=class_names,
        reading=reading,
    )
    grouping = _read_groups(Path(groups), prepared.features) if groups is not None else None
    conn = inbox.require_redis()
    if not inbox.writer_alive(conn):
        raise ServiceUnavailable("the genejobs writer is not running; start it with `genejobs up`")
    job_id = "shap-" + uuid.uuid4().hex[:10]
    rows = shard_rows or prepared.shard_rows
    plan = _write_and_plan(job_id, prepared, source, rows, zero_is_present, engine, grouping)
    return {
        **plan,
        "n_rows": len(prepared.input),
        "n_features": len(prepared.features),
        "engine_notes": list(prepared.notes),
    }


def _read_source(table: str) -> tuple:
    """A table by path, or a registered dataset by name: (frame, source, default ids, label)."""
    from genejobs.config import settings
    from genejobs.storage import queries
    from genejobs.storage.datasets import load_frame, read_table

    path = Path(table)
    if path.exists():
        return read_table(path), str(path.resolve()), [], ()
    if path.suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq") or "/" in table:
        raise InputError(f"no such file: {path}")
    with reading() as con:
        found = queries.dataset(con, table)
    data, label_col, id_col = load_frame(settings().home / found["path"])
    data = data.reset_index()
    return data, found["name"], [id_col] if id_col else [], (label_col,)


def _read_groups(path: Path, features) -> dict[str, str]:
    """feature -> group from a two-column file; every feature named must be the job's."""
    import csv

    from genejobs.storage.datasets import listed

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
        raise InputError(f"{path} names features the job does not have: {listed(unknown)}")
    return groups


def _write_and_plan(
    job_id, prepared, source, shard_rows, zero_is_present, engine, groups=None
) -> dict:
    """Put the job's input and model copies in the data dir, then have the writer plan it."""
    from genejobs.config import settings
    from genejobs.contract import PlanShap
    from genejobs.worker import inbox

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
