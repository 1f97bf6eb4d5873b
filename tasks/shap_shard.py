"""SHAP shards: exact SHAP values for a slice of a job's rows, written to the results spool.

`explain_rows` is the pure function (no broker, no database, no files);
`execute` reads the job's input once per process, loads each model once per
process, writes the shard's two Parquet files into the spool atomically (a
temporary name, then `os.replace`), and hands the writer a small JSON message
with their paths. `shap_shard` is the Celery task around it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from genejobs.channel import Channel
from genejobs.config import settings
from genejobs.contract import ShardDone, ShardFailed
from genejobs.tasks.shap_engines import choose_engine, explain
from genejobs.tasks.tree_models import TreeModel, load_spec

ADDITIVITY_TOLERANCE = 1e-3
BINARY_CLASS = 1  # a binary classifier is explained for its positive class
SHAP_DECIMALS = 6


@dataclass(frozen=True)
class JobInput:
    """The rows of a job, in shard order: ids, partition, model per row, and the feature matrix."""

    row_id: np.ndarray  # int32, the row's position in the job's input (rows by model)
    source_row: np.ndarray  # int32, the row's position in the user's table
    row_key: np.ndarray  # object (str)
    partition: np.ndarray  # object (str or None)
    model_id: np.ndarray  # int16
    X: np.ndarray  # float32 [rows, job features], NaN where missing

    def slice(self, start: int, stop: int) -> JobInput:
        return JobInput(
            self.row_id[start:stop],
            self.source_row[start:stop],
            self.row_key[start:stop],
            self.partition[start:stop],
            self.model_id[start:stop],
            self.X[start:stop],
        )


@dataclass(frozen=True)
class ShardResult:
    """What one shard produced: a per-row table, a per-(row, class, feature) table, its checks."""

    rows: object  # pyarrow.Table
    values: object  # pyarrow.Table
    additivity_failures: int
    max_additivity_error: float
    engines: tuple[str, ...]


def explain_rows(
    rows: JobInput,
    models: dict[int, tuple[TreeModel, list[int]]],
    zero_is_present: bool = False,
    engine: str = "auto",
    model_engines: dict[int, str] | None = None,
) -> ShardResult:
    """Explain every row with its model; `models` maps model id -> (model, job feature indices).

    The feature indices give, for each of the model's features in its own
    order, the job feature it reads, so a table with columns in another order
    is matched by name. `model_engines` names a model's engine where its plan chose
    one (model id -> engine), else `engine` is used. Values are float32; the
    writer sorts them when it ingests a job's shards together.
    """
    import pyarrow as pa

    n_features = rows.X.shape[1]
    row_parts, value_parts = [], []
    failures, worst, engines = 0, 0.0, []
    for model_id in np.unique(rows.model_id):
        model, columns = models[int(model_id)]
        mask = rows.model_id == model_id
        X = rows.X[mask]
        chosen = (model_engines or {}).get(int(model_id), engine)
        explained = explain(model, X[:, columns], chosen)
        engines.append(explained.engine)
        n, k = len(X), model.n_outputs
        shap = np.zeros((n, k, n_features), dtype=np.float64)
        shap[:, :, columns] = explained.shap
        error = np.abs(explained.base[None, :] + shap.sum(axis=2) - explained.output)
        failures += int((error > ADDITIVITY_TOLERANCE).any(axis=1).sum())
        worst = max(worst, float(error.max()) if error.size else 0.0)
        present = ~np.isnan(X) if zero_is_present else ~np.isnan(X) & (X != 0)
        classes = np.array([BINARY_CLASS] if k == 1 else np.arange(k), dtype=np.int16)
        magnitude = np.abs(shap)
        top = magnitude.argmax(axis=2)  # [n, k]
        row_ids = rows.row_id[mask]
        row_parts.append(
            {
                "row_id": np.repeat(row_ids, k),
                "source_row": np.repeat(rows.source_row[mask], k),
                "class": np.tile(classes, n),
                "row_key": np.repeat(rows.row_key[mask], k),
                "partition": np.repeat(rows.partition[mask], k),
                "model_id": np.full(n * k, model_id, dtype=np.int16),
                "base_value": np.tile(explained.base, n).astype(np.float32),
                "output": explained.output.ravel().astype(np.float32),
                "probability": (
                    explained.probability.ravel().astype(np.float32)
                    if explained.probability is not None
                    else np.full(n * k, np.nan, dtype=np.float32)
                ),
                "additivity_error": error.ravel().astype(np.float32),
                "top_feature": top.ravel().astype(np.int16),
                "top_present": np.take_along_axis(
                    np.repeat(present[:, None, :], k, axis=1), top[:, :, None], axis=2
                ).ravel(),
            }
        )
        per_class = n * n_features
        columns_long = {
            "row_id": np.tile(row_ids, k * n_features),
            "class": np.repeat(classes, per_class),
            "model_id": np.full(k * per_class, model_id, dtype=np.int16),
            "feature_id": np.tile(np.repeat(np.arange(n_features, dtype=np.int16), n), k),
            "value": np.tile(X.T.ravel(), k),
            "present": np.tile(present.T.ravel(), k),
            # Rounded to 1e-6 (below the additivity tolerance by far): decimals that
            # DuckDB's ALP encoding stores in about 2.5 bytes instead of 4.2.
            "shap": np.round(np.transpose(shap, (1, 2, 0)).ravel(), SHAP_DECIMALS).astype(
                np.float32
            ),
        }
        # The writer sorts a job's values when it ingests them (storage.shap_store).
        value_parts.append(columns_long)

    def table(parts: list[dict]):
        columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        arrays = {}
        for name, column in columns.items():
            if column.dtype == object:
                arrays[name] = pa.array(column, type=pa.string())
            elif column.dtype.kind == "f":
                arrays[name] = pa.array(column, from_pandas=True)  # NaN -> null
            else:
                arrays[name] = pa.array(column)
        return pa.table(arrays)

    return ShardResult(
        rows=table(row_parts),
        values=table(value_parts),
        additivity_failures=failures,
        max_additivity_error=worst,
        engines=tuple(sorted(set(engines))),
    )


def read_input(path: Path) -> JobInput:
    """Read a job's input Parquet (written by `genejobs shap run`)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    features = [name for name in table.column_names if name.startswith("f")]
    features.sort(key=lambda name: int(name[1:]))
    X = np.empty((table.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        X[:, j] = table.column(name).to_numpy(zero_copy_only=False)
    return JobInput(
        row_id=table.column("row_id").to_numpy().astype(np.int32),
        # Inputs of jobs made before rows were ordered by model have no source_row.
        source_row=table.column("source_row" if "source_row" in table.column_names else "row_id")
        .to_numpy()
        .astype(np.int32),
        row_key=np.asarray(table.column("row_key").to_pylist(), dtype=object),
        partition=np.asarray(table.column("partition").to_pylist(), dtype=object),
        model_id=table.column("model_id").to_numpy().astype(np.int16),
        X=X,
    )


@lru_cache(maxsize=2)
def _input(relative_path: str) -> JobInput:
    # A job's input file never changes: read it once per process.
    return read_input(settings().home / relative_path)


@lru_cache(maxsize=32)
def _model(spec: str) -> TreeModel:
    # A job's models (copies, saved genejobs models, refitted runs) never change: one load
    # per process and model entry (JSON, so that the cache can key on it).
    return load_spec(json.loads(spec), settings().home)


def _write_atomically(table, path: Path) -> None:
    import pyarrow.parquet as pq

    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, temp, compression="lz4")
    os.replace(temp, path)


def spool_paths(job_id: str, shard: int) -> tuple[Path, Path]:
    """Where a shard's two files go, relative to the data dir."""
    directory = Path("spool") / "shap" / job_id
    return directory / f"{shard:06d}.rows.parquet", directory / f"{shard:06d}.values.parquet"


def shap_shard(
    channel: Channel,
    job_id: str,
    shard: int,
    input_path: str,
    first_row: int,
    n_rows: int,
    models: list[dict],
    zero_is_present: bool,
    engine: str,
) -> str:
    """Explain one shard, spool its Parquet files, and tell the writer where they are."""
    started = time.perf_counter()
    worker = channel.worker
    try:
        rows = _input(input_path).slice(first_row, first_row + n_rows)
        loaded, engines = {}, {}
        needed = set(np.unique(rows.model_id).tolist())
        for spec in models:
            if int(spec["model_id"]) not in needed:
                continue  # a shard's rows mostly belong to one model
            model = _model(json.dumps(spec, sort_keys=True))
            # The plan's choice for this model (`auto` checked it on the job's rows); a job
            # planned before engines were chosen per model has none.
            chosen = spec.get("engine", engine) if engine == "auto" else engine
            engines[int(spec["model_id"])] = choose_engine(model, chosen)
            loaded[int(spec["model_id"])] = (model, list(spec["columns"]))
        result = explain_rows(rows, loaded, zero_is_present, engine, engines)
        rows_path, values_path = spool_paths(job_id, shard)
        home = settings().home
        (home / rows_path).parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(result.rows, home / rows_path)
        _write_atomically(result.values, home / values_path)
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        channel.push([ShardFailed(job_id=job_id, shard=shard, error=error, worker=worker)])
        raise
    channel.push(
        [
            ShardDone(
                job_id=job_id,
                shard=shard,
                rows_path=str(rows_path),
                values_path=str(values_path),
                n_rows=n_rows,
                engine=",".join(result.engines),
                additivity_failures=result.additivity_failures,
                max_additivity_error=result.max_additivity_error,
                seconds=time.perf_counter() - started,
                worker=worker,
            )
        ]
    )
    return f"rows={n_rows} additivity_failures={result.additivity_failures}"
